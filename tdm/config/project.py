"""What loading a YAML file gives: a :class:`Project` of named pipelines and service settings."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tdm.core.pipeline import Pipeline
from tdm.effects.secrets import SecretsProvider
from tdm.errors import ConfigError

__all__ = ["ComponentSpec", "PipeSpec", "PipelineSpec", "Project"]


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """An alert manager or state manager as configured (built into an object at run time).

    Attributes:
        name: its ``name`` in the YAML.
        type: the ``type`` as written.
        target: the factory's dotted path (``tdm.alerts:email``), imported only when needed.
        config: its settings (``secrets`` replaced by ``secret: <name>``); never secret values.
        defaults: values implied by an original type name (Gmail's SMTP host, say).
        renames: original config keys -> candidate factory parameters.
        file / line: where it was declared.
        lines: the line of each config key.
    """

    name: str
    type: str
    target: str
    config: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    renames: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    file: str | None = None
    line: int | None = None
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        """One line for plans: type and settings, secrets by name only."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.type}({shown})"


@dataclass(frozen=True, slots=True)
class PipeSpec:
    """One ``pipes:`` entry as declared (for listings and messages)."""

    name: str
    type: str
    parents: tuple[str, ...]
    secret: str | None
    line: int | None


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """A named pipeline of a project, with its schedule and the built :class:`Pipeline`.

    Attributes:
        name: the pipeline's ``name``.
        pipeline: the immutable DAG (equal to the same pipeline written in Python).
        pipeline_id: a stable id for the audit trail (``pipeline_id`` or derived from the name).
        schedule: a cron expression for ``tdm deploy``, if any.
        description: free text.
        pipes: the declared pipes in file order.
        secrets: names of the secrets its effects use.
        file / line: where it was declared.
        drift: what a schema change against the last successful run does (``warn``,
            ``fail``, ``ignore``; None: the default, ``warn``).
    """

    name: str
    pipeline: Pipeline
    pipeline_id: str
    schedule: str | None = None
    description: str | None = None
    pipes: tuple[PipeSpec, ...] = ()
    secrets: tuple[str, ...] = ()
    file: str | None = None
    line: int | None = None
    drift: str | None = None


@dataclass(frozen=True, slots=True)
class Project:
    """Everything one YAML file declares.

    ``project["Device Inventory"]`` is a :class:`PipelineSpec`; ``project.pipeline(name)`` its
    :class:`~tdm.Pipeline`. Iterating yields the pipeline specs in file order.

    Attributes:
        pipelines: the pipelines in file order.
        alert_managers: who to alert when a run fails (``alert_managers:``).
        state_manager: the audit-trail store (``state_manager:``), None for the default.
        params: the parameter values used for ``${params.x}``.
        secrets: settings of the secret providers (``secrets:``: order, directory, file, aws).
        secret_routes: secret name -> provider kind chosen by its reference
            (``secrets: {type: awssecretsmanager, name: X}``).
        deploy: settings for ``tdm deploy`` (image, namespace, ...).
        source: the file it was loaded from (None for text).
        checkpoints: where resumable runs keep node outputs (``{url: ..., keep: ...}``).
    """

    pipelines: tuple[PipelineSpec, ...]
    alert_managers: tuple[ComponentSpec, ...] = ()
    state_manager: ComponentSpec | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    secret_routes: Mapping[str, str] = field(default_factory=dict)
    deploy: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    checkpoints: Mapping[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[PipelineSpec]:
        return iter(self.pipelines)

    def __len__(self) -> int:
        return len(self.pipelines)

    def names(self) -> list[str]:
        """Pipeline names in file order."""
        return [p.name for p in self.pipelines]

    def __getitem__(self, name: str) -> PipelineSpec:
        for spec in self.pipelines:
            if spec.name == name or spec.pipeline_id == name:
                return spec
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(
            f"no pipeline named {name!r}{hint} (pipelines: {', '.join(self.names())})",
            file=self.source,
        )

    def pipeline(self, name: str | None = None) -> Pipeline:
        """The pipeline called ``name`` (the only one when ``name`` is None)."""
        if name is None:
            if len(self.pipelines) != 1:
                raise ConfigError(
                    f"the file declares {len(self.pipelines)} pipelines "
                    f"({', '.join(self.names())}); name the one you want",
                    file=self.source,
                )
            return self.pipelines[0].pipeline
        return self[name].pipeline

    def with_state(self, url: str, secret: str | None = None) -> Project:
        """This project with its audit trail in ``url`` (``tdm run --state``).

        A local ``*.db`` path is a SQLite store; anything else a JSON Lines file store
        (``s3://bucket/tdm-audit``, ``az://container/audit``) whose credentials are the keys of
        the secret ``secret``.

        >>> from tdm.config import load_yaml
        >>> p = load_yaml("pipelines:\\n  - {name: P, pipes: [{name: a, type: input}]}\\n")
        >>> s = p.with_state("s3://audit/tdm", secret="S3").state_manager
        >>> s.target, s.config, p.with_state("s3://a/b", "S3").secret_names()
        ('tdm.state:files', {'url': 's3://audit/tdm', 'secret': 'S3'}, ['S3'])
        """
        import dataclasses

        from tdm.effects.state.sqlite_store import is_sqlite_path

        if not url.strip():
            raise ConfigError("--state needs a store: a SQLite file (*.db) or a folder URL")
        is_db = is_sqlite_path(url)
        if is_db and secret:
            raise ConfigError("--state-secret is for a remote store; a SQLite file takes none")
        config: dict[str, Any] = {"path": url} if is_db else {"url": url}
        if secret:
            config["secret"] = secret
        spec = ComponentSpec(
            name="--state",
            type="sqlite" if is_db else "files",
            target="tdm.state:sqlite" if is_db else "tdm.state:files",
            config=config,
        )
        return dataclasses.replace(self, state_manager=spec)

    def secret_names(self) -> list[str]:
        """Every secret name referenced by pipes and services (never values)."""
        names: set[str] = set()
        for spec in self.pipelines:
            names.update(spec.secrets)
        for comp in (*self.alert_managers, *([self.state_manager] if self.state_manager else [])):
            secret = comp.config.get("secret")
            if isinstance(secret, str):
                names.add(secret)
        return sorted(names)

    def secrets_provider(self) -> SecretsProvider:
        """The provider the project's settings describe (routes, order, locations)."""
        from tdm.effects.secret_routing import providers_from_settings

        return providers_from_settings(self.secrets, routes=self.secret_routes)
