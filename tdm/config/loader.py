"""``load_yaml``: a YAML file (original tdm format) -> a :class:`~tdm.config.project.Project`.

Loading checks everything it can before anything runs, and every problem is one
``ConfigError`` naming the file, the line, the pipeline and the pipe, what is wrong and how to
fix it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tdm.config._where import _bare, _check_keys, _plain_dict, _suggest, _type_name, _Where
from tdm.config._yaml import (
    LineDict,
    LineList,
    YamlLimits,
    check_size,
    gc_paused,
    parse_yaml,
)
from tdm.config.deploy_settings import DEPLOY_KEYS, SettingError, parse_settings
from tdm.config.pipes import PipelineBuilder
from tdm.config.project import ComponentSpec, PipelineSpec, Project
from tdm.config.registry import Kind, Registry, default_registry
from tdm.config.secret_refs import secret_name
from tdm.effects.secret_routing import PROVIDER_KINDS
from tdm.errors import ConfigError

__all__ = ["load_settings", "load_yaml"]

TOP_KEYS = (
    "version",
    "params",
    "pipelines",
    "pipeline_drivers",
    "alert_managers",
    "state_manager",
    "secrets",
    "deploy",
    "checkpoints",
)
COMPONENT_KEYS = ("name", "type", "config")
SECRETS_SETTINGS = ("order", "directory", "file", "env_prefix", "aws")
AWS_SETTINGS = ("region", "endpoint_url", "prefix", "profile")
TEXT_SOURCE = "<yaml text>"
"""What messages call YAML given as text rather than as a file."""


def load_yaml(
    source: str | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    limits: YamlLimits | None = None,
) -> Project:
    """Load a YAML file (or YAML text) into a :class:`~tdm.config.project.Project`.

    Args:
        source: a path to a ``.yml`` file, or the YAML text itself.
        params: values for ``${params.x}`` (they override the file's ``params:`` defaults).
        env: the environment for ``${env.X}`` (default: ``os.environ``).
        registry: the type registry (default: built-ins, aliases and entry points).
        limits: size, depth and alias limits (default: :meth:`YamlLimits.from_env`, which
            reads ``TDM_YAML_MAX_BYTES`` and friends from ``env``).

    Raises:
        ConfigError: with file, line, pipeline and pipe, what is wrong and how to fix it.

    >>> project = load_yaml('''
    ... pipelines:
    ...   - name: Totals
    ...     pipes:
    ...       - {name: left, type: input}
    ...       - {name: right, type: input}
    ...       - name: Joined
    ...         type: join
    ...         config: {parents: [left, right], on: id}
    ... ''')
    >>> import tdm
    >>> expected = tdm.join(on="id").named("Joined")(tdm.inputs.frame("left"),
    ...                                               tdm.inputs.frame("right"))
    >>> project.pipeline("Totals") == expected
    True
    """
    env = env if env is not None else os.environ
    limits = limits if limits is not None else YamlLimits.from_env(env)
    text, file = _read(source, limits)
    loader = _Loader(
        file=file or TEXT_SOURCE,
        params=dict(params or {}),
        env=env,
        registry=registry or default_registry(),
        limits=limits,
    )
    with gc_paused():  # tens of thousands of pipes allocate much and free nothing
        return loader.load(text)


def load_settings(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Project:
    """Load a settings file (``$TDM_HOME/config.yml``): alert managers, state, secrets, deploy.

    It has the top-level keys of a pipeline file except the pipelines themselves; the CLI uses
    its settings for every pipeline file that does not set its own.
    """
    env = env if env is not None else os.environ
    limits = YamlLimits.from_env(env)
    text, file = _read(path, limits)
    loader = _Loader(
        file=file,
        params={},
        env=env,
        registry=default_registry(),
        limits=limits,
    )
    return loader.load(text, settings_only=True)


def _read(source: str | os.PathLike[str], limits: YamlLimits) -> tuple[str, str | None]:
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")
    ):
        path = Path(source)
        if not path.exists():
            raise ConfigError(
                f"file {str(path)!r} not found (working directory {os.getcwd()}); check the path"
            )
        if path.is_dir():
            raise ConfigError(f"{str(path)!r} is a directory; pass a pipeline YAML file")
        try:
            check_size(path.stat().st_size, source=str(path), limits=limits)
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the file: {exc}", file=str(path)) from None
    if not isinstance(source, str):
        raise ConfigError(f"load_yaml expects a path or YAML text, got {type(source).__name__}")
    return source, None


_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_REFERENCE = re.compile(r"(params|env|secrets)\.([A-Za-z_][\w.\-]*)(?::-(.*))?", re.S)


class _Loader:
    def __init__(
        self,
        *,
        file: str | None,
        params: dict[str, Any],
        env: Mapping[str, str],
        registry: Registry,
        limits: YamlLimits,
    ) -> None:
        self.limits = limits
        self._substituted: set[int] = set()
        self.file = file
        self.params = params
        self.env = env
        self.registry = registry
        self.routes: dict[str, tuple[str, int | None]] = {}

    # top level ------------------------------------------------------------------------------
    def load(self, text: str, *, settings_only: bool = False) -> Project:
        where = _Where(self.file, None)
        doc = parse_yaml(text, source=self.file, limits=self.limits)
        if doc is None:
            raise where.at(1).error(
                "the file is empty; declare `pipelines:` with at least one pipeline"
            )
        if not isinstance(doc, LineDict):
            raise where.at(1).error(
                f"the top level must be a mapping with `pipelines:`, got {_type_name(doc)}"
            )
        where = where.at(doc.line)
        _check_keys(doc, TOP_KEYS, "the top level", where)
        self._version(doc, where)
        defaults = doc.get("params") or LineDict()
        if not isinstance(defaults, LineDict):
            raise where.at(doc.key_line("params")).error(
                f"`params` must be a mapping of names to default values, got {_type_name(defaults)}"
            )
        if doc.placeholders:  # else the file has no ${...} anywhere: nothing to walk
            defaults = self._substitute(
                defaults, where.at(doc.key_line("params")), allow_params=False
            )
        self.params = {**defaults, **self.params}
        for key in list(doc):
            if key != "params" and doc.placeholders:
                doc[key] = self._substitute(doc[key], where.at(doc.key_line(key)))
        if "pipelines" in doc and "pipeline_drivers" in doc:
            raise where.at(doc.key_line("pipeline_drivers")).error(
                "both `pipelines` and `pipeline_drivers` are present; keep one (`pipelines` is "
                "the current name, `pipeline_drivers` the original one)"
            )
        key = "pipelines" if "pipelines" in doc else "pipeline_drivers"
        if settings_only:
            if key in doc:
                raise where.at(doc.key_line(key)).error(
                    "a settings file (config.yml) holds alert_managers, state_manager, secrets "
                    "and deploy; move the pipelines to their own file"
                )
            doc[key] = LineList()
        elif key not in doc:
            raise where.error("no `pipelines:` key; declare at least one pipeline under it")
        raw = doc[key]
        if not isinstance(raw, LineList) or (not raw and not settings_only):
            raise where.at(doc.key_line(key)).error(
                f"`{key}` must be a non-empty list of pipelines (each with `name` and `pipes`), "
                f"got {_type_name(raw)}"
            )
        pipelines: list[PipelineSpec] = []
        builder = PipelineBuilder(file=self.file, registry=self.registry, routes=self.routes)
        seen: dict[str, int | None] = {}
        for i, item in enumerate(raw):
            spec = builder.pipeline(item, where.at(raw.item_line(i)))
            if spec.name in seen:
                raise where.at(spec.line).error(
                    f"duplicate pipeline name {spec.name!r} (first on line {seen[spec.name]}); "
                    "pipeline names must be unique: rename one"
                )
            seen[spec.name] = spec.line
            pipelines.append(spec)
        ids = [p.pipeline_id for p in pipelines]
        for pid in ids:
            if ids.count(pid) > 1:
                dup = next(p for p in pipelines[ids.index(pid) + 1 :] if p.pipeline_id == pid)
                raise where.at(dup.line).error(
                    f"duplicate pipeline_id {pid!r}; each pipeline needs its own pipeline_id "
                    "(the audit trail tells runs apart by it)"
                )
        alerts = self._alert_managers(doc, where)
        state = self._state_manager(doc, where)
        secrets = self._secrets_settings(doc, where)
        deploy = self._deploy(doc, where)
        checkpoints = self._checkpoints(doc, where)
        return Project(
            pipelines=tuple(pipelines),
            alert_managers=alerts,
            state_manager=state,
            params=dict(self.params),
            secrets=secrets,
            secret_routes={name: kind for name, (kind, _) in self.routes.items()},
            deploy=deploy,
            checkpoints=checkpoints,
            source=None if self.file == TEXT_SOURCE else self.file,
        )

    def _version(self, doc: LineDict, where: _Where) -> None:
        if "version" not in doc:
            return
        version = doc["version"]
        if str(version).lower().lstrip("v") not in ("1", "1.0"):
            raise where.at(doc.key_line("version")).error(
                f"unsupported version {version!r}; this tdm reads version 1 (write `version: 1`)"
            )

    # substitution ---------------------------------------------------------------------------
    def _substitute(self, value: Any, where: _Where, *, allow_params: bool = True) -> Any:
        return self._walk(value, where.line, where.pipeline, where.pipe, allow_params)

    def _walk(
        self,
        value: Any,
        line: int | None,
        pipeline: str | None,
        pipe: str | None,
        allow_params: bool,
    ) -> Any:
        # Visits every value of the file, so the location is carried as plain values and made
        # into a _Where only for a placeholder.
        if isinstance(value, str):
            if "${" in value:
                where = _Where(self.file, line, pipeline, pipe)
                return self._expand(value, where, allow_params)
            return value
        if not isinstance(value, (LineDict, LineList)):
            return value
        if id(value) in self._substituted:  # one value behind several aliases: once
            return value
        self._substituted.add(id(value))
        if isinstance(value, LineDict):
            name = value.get("name")
            if isinstance(name, str):
                name = value["name"] = self._walk(
                    name, _or(value.key_line("name"), line), pipeline, pipe, allow_params
                )
            if isinstance(name, str):
                if "pipes" in value:
                    pipeline, pipe = name, None
                elif "type" in value and pipeline is not None:
                    pipe = name
            for key, item in list(value.items()):
                if key != "name" and _may_substitute(item):
                    value[key] = self._walk(
                        item, _or(value.key_line(key), line), pipeline, pipe, allow_params
                    )
            return value
        for i, item in enumerate(value):
            if _may_substitute(item):
                value[i] = self._walk(
                    item, _or(value.item_line(i), line), pipeline, pipe, allow_params
                )
        return value

    def _expand(self, text: str, where: _Where, allow_params: bool) -> Any:
        whole = _PLACEHOLDER.fullmatch(text)
        if whole is not None and (whole.group(1) or "").startswith("file:"):
            from tdm.config.data_files import DataFileProblem, load_data_file

            source = None if self.file == TEXT_SOURCE else self.file
            try:
                return load_data_file(whole.group(1)[len("file:") :], source)
            except DataFileProblem as exc:
                raise where.error(str(exc)) from None
        if whole is not None and whole.group(0) != "$${":
            found = self._lookup(whole.group(1), text, where, allow_params)
            return text if found is _KEEP else found

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            found = self._lookup(match.group(1), text, where, allow_params)
            return match.group(0) if found is _KEEP else str(found)

        return _PLACEHOLDER.sub(replace, text)

    def _lookup(self, inner: str, text: str, where: _Where, allow_params: bool) -> Any:
        ref = _REFERENCE.fullmatch(inner.strip())
        if ref is None and inner.startswith("file:"):
            raise where.error(
                f"${{{inner}}} must be the whole value (it loads a mapping or list), e.g. "
                f"`column_map: ${{{inner}}}`"
            )
        if ref is None:
            raise where.error(
                f"cannot substitute ${{{inner}}} in {text!r}; write ${{params.name}}, "
                "${env.NAME}, ${secrets.name} or ${file:NAME.json} (and $${ for a literal ${)"
            )
        space, name, default = ref.group(1), ref.group(2), ref.group(3)
        if space == "secrets":
            return _KEEP  # resolved by the effect's handler at run time, never here
        if space == "env":
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            raise where.error(
                f"environment variable {name!r} is not set (used as ${{env.{name}}}); set it, "
                f"or give a default: ${{env.{name}:-value}}"
            )
        if not allow_params:
            raise where.error(
                f"${{params.{name}}} cannot be used inside `params:` itself; use a literal value"
            )
        if name in self.params:
            return self.params[name]
        if default is not None:
            return default
        known = sorted(self.params)
        raise where.error(
            f"parameter {name!r} has no value (used as ${{params.{name}}}); "
            f"{_suggest(name, known)}pass --param {name}=VALUE, add it under `params:` with "
            f"a default, or write ${{params.{name}:-default}}"
            + (f" (known parameters: {', '.join(known)})" if known else "")
        )

    def _secret(self, kwargs: dict[str, Any], config: LineDict, where: _Where) -> str | None:
        return secret_name(kwargs, config, where, self.routes)

    # services -----------------------------------------------------------------------------
    def _component(self, raw: Any, kind: Kind, where: _Where, what: str) -> ComponentSpec:
        if not isinstance(raw, LineDict):
            raise where.error(f"{what} must be a mapping with `type` and `config`")
        where = where.at(raw.line)
        _check_keys(raw, COMPONENT_KEYS, what, where)
        type_name = raw.get("type")
        if not isinstance(type_name, str) or not type_name.strip():
            raise where.at(raw.key_line("type")).error(f"{what} needs a `type`")
        try:
            entry = self.registry.lookup(type_name, kind)
            if entry.origin == "dotted path":
                self.registry.resolve(entry)  # imports it and checks it is a tdm factory
        except ConfigError as exc:
            raise where.at(raw.key_line("type")).error(_bare(exc)) from None
        config = raw.get("config") or LineDict()
        if not isinstance(config, LineDict):
            raise where.at(raw.key_line("config")).error(
                f"`config` of {what} must be a mapping, got {_type_name(config)}"
            )
        settings = dict(config)
        settings.pop("name", None)
        secret = self._secret(settings, config, where)
        if secret is not None:
            settings["secret"] = secret
        name = str(raw.get("name") or type_name)
        return ComponentSpec(
            name=name,
            type=type_name,
            target=entry.target,
            config=settings,
            defaults=dict(entry.defaults),
            renames=dict(entry.renames),
            file=self.file,
            line=raw.line,
            lines=dict(config.lines),
        )

    def _alert_managers(self, doc: LineDict, where: _Where) -> tuple[ComponentSpec, ...]:
        raw = doc.get("alert_managers")
        if raw is None:
            return ()
        if not isinstance(raw, LineList):
            raise where.at(doc.key_line("alert_managers")).error(
                f"`alert_managers` must be a list, got {_type_name(raw)}"
            )
        out = [
            self._component(item, "alert", where.at(raw.item_line(i)), "an alert manager")
            for i, item in enumerate(raw)
        ]
        names = [c.name for c in out]
        for comp in out:
            if names.count(comp.name) > 1:
                raise where.at(comp.line).error(
                    f"duplicate alert manager name {comp.name!r}; give each a unique `name`"
                )
        return tuple(out)

    def _state_manager(self, doc: LineDict, where: _Where) -> ComponentSpec | None:
        raw = doc.get("state_manager")
        if raw is None:
            return None
        return self._component(
            raw, "state", where.at(doc.key_line("state_manager")), "the state manager"
        )

    def _secrets_settings(self, doc: LineDict, where: _Where) -> dict[str, Any]:
        raw = doc.get("secrets")
        if raw is None:
            return {}
        where = where.at(doc.key_line("secrets"))
        if not isinstance(raw, LineDict):
            raise where.error(
                "`secrets` settings must be a mapping (order, directory, file, env_prefix, aws)"
            )
        _check_keys(raw, SECRETS_SETTINGS, "`secrets` settings", where)
        settings = _plain_dict(raw)
        order = raw.get("order")
        if order is not None:
            if not isinstance(order, LineList) or not order:
                raise where.at(raw.key_line("order")).error(
                    f"`secrets.order` must be a list of providers ({', '.join(PROVIDER_KINDS)})"
                )
            for kind in order:
                if kind not in PROVIDER_KINDS:
                    raise where.at(raw.key_line("order")).error(
                        f"unknown secrets provider {kind!r} in `secrets.order`; "
                        f"{_suggest(str(kind), PROVIDER_KINDS)}use {', '.join(PROVIDER_KINDS)}"
                    )
        aws = raw.get("aws")
        if aws is not None:
            if not isinstance(aws, LineDict):
                raise where.at(raw.key_line("aws")).error("`secrets.aws` must be a mapping")
            _check_keys(aws, AWS_SETTINGS, "`secrets.aws`", where)
        return settings

    def _checkpoints(self, doc: LineDict, where: _Where) -> dict[str, Any]:
        raw = doc.get("checkpoints")
        if raw is None:
            return {}
        where = where.at(doc.key_line("checkpoints"))
        if isinstance(raw, str) and raw.strip():
            return {"url": raw}
        if isinstance(raw, LineDict):
            _check_keys(raw, ("url", "keep"), "`checkpoints`", where)
            settings = _plain_dict(raw)
            url, keep = settings.get("url"), settings.get("keep", False)
            if isinstance(url, str) and isinstance(keep, bool):
                return settings
        raise where.error(
            "`checkpoints` is a folder URL for resumable runs (checkpoints: "
            "file:///var/tdm/ckpt) or {url: ..., keep: true|false}"
        )

    def _deploy(self, doc: LineDict, where: _Where) -> dict[str, Any]:
        raw = doc.get("deploy")
        if raw is None:
            return {}
        where = where.at(doc.key_line("deploy"))
        if not isinstance(raw, LineDict):
            raise where.error(f"`deploy` must be a mapping ({', '.join(DEPLOY_KEYS)})")
        _check_keys(raw, DEPLOY_KEYS, "`deploy`", where)
        settings = _plain_dict(raw)
        try:
            parse_settings(settings)
        except SettingError as exc:
            raise where.at(raw.key_line(exc.key)).error(str(exc)) from None
        return settings


def _or(line: int | None, default: int | None) -> int | None:
    return default if line is None else line


def _may_substitute(value: Any) -> bool:
    """Whether ``_substitute`` could change ``value`` (most values of a file it cannot)."""
    if isinstance(value, str):
        return "${" in value
    return isinstance(value, (LineDict, LineList))


class _KeepType:
    pass


_KEEP = _KeepType()
