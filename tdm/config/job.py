"""``tdm.load``: a YAML project -> one frozen :class:`Job` holding its pipelines and services.

A notebook, a script and the ``tdm`` command run a YAML project the same way: ``tdm run FILE``
is ``tdm.load(FILE).runs(...)`` and prints the reports.

>>> import tdm
>>> job = tdm.load("pipelines:\\n  - name: P\\n    pipes:\\n      - {name: x, type: input}\\n")
>>> job.names(), job["P"].pipeline == tdm.inputs.frame("x")
(['P'], True)
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tdm.config.loader import load_settings, load_yaml
from tdm.config.project import ComponentSpec, PipelineSpec, Project
from tdm.config.registry import Registry, default_registry
from tdm.config.services import build_service
from tdm.core.effect import SecretNeed
from tdm.effects.secrets import SecretsProvider, tdm_home
from tdm.errors import ConfigError, InputError, SecretNotFoundError

if TYPE_CHECKING:
    from tdm._types import Frame
    from tdm.config.deploy import Deployment
    from tdm.effects.alerts import Alerter
    from tdm.effects.state import StateStore
    from tdm.interpreter.executors import Executor
    from tdm.interpreter.report import RunReport
    from tdm.interpreter.runtime import Runtime

__all__ = ["LAST_FAILED", "Job", "LogSettings", "load"]

LAST_FAILED = "\x00last-failed"
"""``resume=LAST_FAILED``: resume each pipeline's last failed run (``tdm run --resume``)."""

InputValue = Any
"""A frame, or the path of a CSV or Parquet file to read it from."""


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How a run logs: ``format`` ``auto`` (text on a terminal, JSON lines otherwise), ``json``
    or ``text``; ``level`` a logging level name."""

    format: Literal["auto", "json", "text"] = "auto"
    level: str = "info"

    def apply(self) -> None:
        """Configure ``tdm.logging`` (process-wide) with these settings."""
        from tdm import logging as tdm_logging

        fmt = self.format
        if fmt == "auto":
            fmt = "text" if sys.stderr.isatty() else "json"
        tdm_logging.configure(level=self.level.upper(), fmt=fmt)
        if fmt == "json":
            import logging

            logging.captureWarnings(True)  # a Python warning is a JSON line too


@dataclass(frozen=True, slots=True)
class Job:
    """A loaded YAML project: its pipelines and the services a run uses, built and checked.

    Attributes:
        project: the pipelines and settings as declared (:class:`~tdm.config.Project`).
        secrets: the secrets provider the settings describe.
        state: the audit-trail store (None: ``Runtime.default()``'s SQLite store).
        alerters: the built alert managers (a ``null`` one is left out).
        executor: the default executor name (``sequential``, ``threads`` or ``dask``).
        logging: log settings the ``tdm`` command applies.
    """

    project: Project
    secrets: SecretsProvider
    state: StateStore | None = None
    alerters: tuple[Alerter, ...] = ()
    executor: str = "sequential"
    logging: LogSettings = field(default_factory=LogSettings)
    services: tuple[tuple[Any, ComponentSpec], ...] = field(default=(), repr=False)

    # the project ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Pipeline names in file order."""
        return self.project.names()

    def __getitem__(self, name: str) -> PipelineSpec:
        return self.project[name]

    def select(self, names: Sequence[str] = ()) -> list[PipelineSpec]:
        """The named pipelines (every one when ``names`` is empty), in the order given."""
        return list(self.project.pipelines) if not names else [self.project[n] for n in names]

    def evolve(self, **changes: Any) -> Job:
        """A copy with some fields replaced (``job.evolve(executor="threads")``)."""
        return dataclasses.replace(self, **changes)

    # checks --------------------------------------------------------------------------------
    def secret_needs(self) -> list[tuple[SecretNeed, str, str | None, int | None]]:
        """Every secret key the pipes and services read: (need, who, file, line)."""
        out: list[tuple[SecretNeed, str, str | None, int | None]] = []
        for spec in self.project.pipelines:
            lines = {p.name: p.line for p in spec.pipes}
            plan = spec.pipeline.plan
            for node, name in zip(plan.nodes, plan.names, strict=True):
                who = f"pipeline {spec.name!r}, pipe {name!r}"
                line = lines.get(name, spec.line)
                out += [(n, who, spec.file, line) for n in _needs(node.op)]
        for service, comp in self.services:
            what = "state manager" if service is self.state else "alert manager"
            out += [(n, f"{what} {comp.name!r}", comp.file, comp.line) for n in _needs(service)]
        return out

    def check_secrets(self, provider: SecretsProvider | None = None) -> None:
        """Raise ``SecretNotFoundError`` naming the first secret section or key that is missing.

        Looks every section up and checks its keys (names only; no value is ever shown).
        """
        provider = provider if provider is not None else self.secrets
        sections: dict[str, Mapping[str, Any]] = {}
        # Sections in name order: the first missing one is reported whatever declared it.
        needs = sorted(self.secret_needs(), key=lambda n: n[0].section)
        for need, who, file, line in needs:
            try:
                if need.section not in sections:
                    sections[need.section] = provider.section(need.section)
            except SecretNotFoundError as exc:
                raise SecretNotFoundError(f"{who}: {exc}", file=file, line=line) from None
            keys = list(sections[need.section])
            if not need.any_of:
                continue
            have = {k.lower() for k in keys} if need.ignore_case else set(keys)
            wanted = [k.lower() if need.ignore_case else k for k in need.any_of]
            if not any(k in have for k in wanted):
                alternatives = " or ".join(repr(k) for k in need.any_of)
                raise SecretNotFoundError(
                    f"{who}: secret {need.section!r} has no key {alternatives} (its keys: "
                    f"{', '.join(sorted(keys)) or 'none'}); add it to the secret",
                    file=file,
                    line=line,
                )

    def validate(self) -> None:
        """Check what loading cannot: every secret section and key exists. Runs nothing.

        Loading already built and checked every pipe and service, so a Job that validates
        fails in ``run`` only because of the data or the services' answers.
        """
        self.check_secrets()

    # running -------------------------------------------------------------------------------
    def runtime(self, *, progress: bool | None = False) -> Runtime:
        """The services of a run, as ``tdm run`` uses them."""
        from tdm.interpreter.runtime import Runtime

        changes: dict[str, Any] = {
            "secrets": self.secrets,
            "progress": progress,
            "alerters": self.alerters,
        }
        if self.state is not None:
            changes["state"] = self.state
        return Runtime.default().evolve(**changes)

    def runs(
        self,
        names: Sequence[str] = (),
        *,
        inputs: Mapping[str, InputValue] | None = None,
        executor: str | Executor | None = None,
        scheduler: str | None = None,
        max_workers: int | None = None,
        fail_fast: bool = False,
        progress: bool | None = False,
        runtime: Runtime | None = None,
        checkpoints: str | None = None,
        keep_checkpoints: bool = False,
        resume: str | None = None,
        drift: Literal["warn", "fail", "ignore"] | None = None,
        optimize: bool = True,
    ) -> Iterator[tuple[PipelineSpec, RunReport]]:
        """Run the named pipelines (all when ``names`` is empty) one after another.

        Secrets are checked first (except on Dask, whose workers resolve them through their
        own provider); one executor serves every pipeline. Yields each report as it is done.

        ``checkpoints`` (default: the file's ``checkpoints:``) keeps node outputs so that a
        failed run can be resumed; ``resume`` is a run id, or :data:`LAST_FAILED` for each
        pipeline's last failed run; ``drift`` overrides each pipeline's ``drift:`` policy;
        ``optimize=False`` runs each plan as written (no pushdown into reads).
        """
        import tdm
        from tdm.executors import from_cli

        chosen = self.select(names)
        frames = read_inputs(inputs or {})
        name = executor if executor is not None else self.executor
        made = from_cli(name, scheduler=scheduler, max_workers=max_workers) if isinstance(
            name, str
        ) else name  # fmt: skip
        if type(made).__name__ != "Dask":
            self.check_secrets()
        used = runtime if runtime is not None else self.runtime(progress=progress)
        where = checkpoints or self.project.checkpoints.get("url")
        if where:
            keep = keep_checkpoints or bool(self.project.checkpoints.get("keep", False))
            used = used.evolve(checkpoints=where, keep_checkpoints=keep)
        if resume is not None and len(chosen) > 1 and resume != LAST_FAILED:
            raise InputError("--resume RUN_ID resumes one pipeline: choose it with --pipeline NAME")
        with made:  # one connection (pool, cluster client) for every pipeline
            for spec in chosen:
                wanted = set(spec.pipeline.inputs()) | set(spec.pipeline.names())
                report = tdm.run(
                    spec.pipeline,
                    inputs={k: v for k, v in frames.items() if k in wanted},
                    params=self.project.params,
                    runtime=used,
                    executor=made,
                    fail_fast=fail_fast,
                    pipeline_id=spec.pipeline_id,
                    pipeline_name=spec.name,
                    resume=_resume_target(resume, spec, used),
                    drift=drift or spec.drift or "warn",
                    optimize=optimize,
                )
                yield spec, report

    def run(self, name: str | None = None, **options: Any) -> RunReport:
        """Run one pipeline (the only one when ``name`` is None), as ``tdm run`` does.

        Keyword options are those of :meth:`runs` (``inputs``, ``executor``, ``fail_fast``,
        ``progress``, ``runtime``, ...).
        """
        if name is None:
            self.project.pipeline()  # a clear error unless there is exactly one
        names = [name] if name is not None else self.names()
        ((_, report),) = list(self.runs(names, **options))
        return report

    # deploying -----------------------------------------------------------------------------
    def deploy(self, kind: Literal["argo", "cronjob"], **options: Any) -> Deployment:
        """Manifests that run this project's scheduled pipelines (see ``tdm deploy``).

        Options are those of :func:`tdm.config.deploy.deployment` (``file``, ``image``, ...).
        """
        from tdm.config.deploy import deployment

        options.setdefault("file", self.project.source or "pipelines.yml")
        return deployment(self.project, kind=kind, **options)


def load(
    source: str | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    settings: str | os.PathLike[str] | Literal[False] | None = None,
    state: tuple[str, str | None] | None = None,
) -> Job:
    """Load a YAML project into a :class:`Job`: its pipelines and services, built and checked.

    Args:
        source: a pipeline YAML file (or YAML text).
        params: values for ``${params.x}``.
        env: the environment for ``${env.X}`` (default: ``os.environ``).
        registry: the type registry (default: built-ins, aliases and entry points).
        settings: shared settings (alert managers, state, secrets, deploy) for every file that
            does not set its own; default ``$TDM_HOME/config.yml`` when it exists; False: none.
        state: ``(url, secret)`` of an audit store replacing the file's (``tdm run --state``).

    Raises:
        ConfigError: naming the file and line (the settings file's for its services).
    """
    registry = registry or default_registry()
    if isinstance(source, os.PathLike) or "\n" not in str(source):
        _project_paths(str(source))
    project = load_yaml(source, params=params, env=env, registry=registry)
    if settings is None:
        candidate = tdm_home() / "config.yml"
        settings = candidate if candidate.is_file() else False
    if settings is not False:
        project = _merge_settings(project, load_settings(settings, env=env))
    if state is not None:
        project = project.with_state(*state)
    built: list[tuple[Any, ComponentSpec]] = []
    store = None
    if project.state_manager is not None:
        store = build_service(project.state_manager, "state", registry)
        built.append((store, project.state_manager))
    alerters = []
    for comp in project.alert_managers:
        alerter = build_service(comp, "alert", registry)
        if type(alerter).__name__ != "NullAlerter":
            alerters.append(alerter)
            built.append((alerter, comp))
    return Job(
        project=project,
        secrets=project.secrets_provider(),
        state=store,
        alerters=tuple(alerters),
        services=tuple(built),
    )


def _resume_target(resume: str | None, spec: PipelineSpec, runtime: Runtime) -> str | None:
    """The run to resume: the one named, or the pipeline's last failed run."""
    if resume is None or resume != LAST_FAILED:
        return resume
    store = runtime.state
    failed = (
        []
        if store is None
        else store.runs(pipeline=spec.pipeline_id, status="FAILURE", limit=1, nodes=False)
    )
    if not failed:
        where = store.describe() if store is not None else "the audit trail"
        raise InputError(
            f"--resume: pipeline {spec.name!r} has no failed run in {where} to resume; "
            "run it without --resume"
        )
    return str(failed[0].run_id)


def read_inputs(inputs: Mapping[str, InputValue]) -> dict[str, Frame]:
    """Frames for ``input`` pipes: frames as given, paths read as CSV or Parquet."""
    import pandas as pd

    frames: dict[str, Frame] = {}
    for name, value in inputs.items():
        if isinstance(value, pd.DataFrame):
            frames[name] = value
            continue
        path = str(value)
        if not Path(path).is_file():
            raise ConfigError(f"--input {name}: file {path!r} not found")
        try:
            frames[name] = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
        except Exception as exc:
            raise ConfigError(f"--input {name}: cannot read {path!r}: {exc}") from None
    return frames


def _needs(obj: Any) -> tuple[SecretNeed, ...]:
    """What ``obj`` (an effect, an alerter, a store) needs from secrets: keys, else sections."""
    method = getattr(obj, "secret_needs", None)
    if callable(method):
        return tuple(method())
    names = getattr(obj, "secret_names", None)
    if callable(names):
        return tuple(SecretNeed(n) for n in names())
    secret = getattr(obj, "secret", None)
    return (SecretNeed(secret),) if isinstance(secret, str) and secret else ()


def _project_paths(file: str) -> None:
    """Make the user's own pipe modules importable, as ``python -m`` would from the project."""
    candidates = [Path.cwd()]
    here = Path(file).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".tdm").is_dir():
            candidates.append(folder)
            break
    for folder in reversed(candidates):
        text = str(folder)
        if text not in sys.path:
            sys.path.insert(0, text)


def _merge_settings(project: Project, settings: Project) -> Project:
    return dataclasses.replace(
        project,
        alert_managers=project.alert_managers or settings.alert_managers,
        state_manager=project.state_manager or settings.state_manager,
        secrets={**settings.secrets, **project.secrets},
        secret_routes={**settings.secret_routes, **project.secret_routes},
        deploy={**settings.deploy, **project.deploy},
    )
