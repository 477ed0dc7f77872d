"""``load_yaml``: a YAML file (original tdm format) -> a :class:`~tdm.config.project.Project`.

Loading checks everything it can before anything runs, and every problem is one
``ConfigError`` naming the file, the line, the pipeline and the pipe, what is wrong and how to
fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tdm.config._yaml import LineDict, LineList, parse_yaml
from tdm.config.compat import translate
from tdm.config.project import ComponentSpec, PipelineSpec, PipeSpec, Project
from tdm.config.registry import FIRST_POSITIONAL, Kind, Registry, TypeEntry, default_registry
from tdm.core.effect import Effect, Input, SecretRef
from tdm.core.pipe import VARIADIC, Op, Pipe
from tdm.core.pipeline import Pipeline
from tdm.effects.secrets import PROVIDER_KINDS
from tdm.errors import ConfigError, TdmError

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
PIPELINE_KEYS = ("name", "pipeline_id", "schedule", "description", "pipes", "drift")
DRIFT_POLICIES = ("warn", "fail", "ignore")
PIPE_KEYS = ("name", "type", "config", "parents", "description")
COMPONENT_KEYS = ("name", "type", "config")
SECRETS_SETTINGS = ("order", "directory", "file", "env_prefix", "aws")
AWS_SETTINGS = ("region", "endpoint_url", "prefix", "profile")
DEPLOY_KEYS = (
    "image",
    "namespace",
    "workdir",
    "service_account",
    "image_pull_secrets",
    "env",
    "secrets_mount",
    "log_format",
)
TEXT_SOURCE = "<yaml text>"
"""What messages call YAML given as text rather than as a file."""
# Keys every original tdm pipe carried in its config; the run supplies them now.
IGNORED_PIPE_CONFIG = ("job_id", "pipeline_id", "pipe_id", "stats", "name")

SECRET_TYPES: dict[str, str] = {
    "yamlconfigreader": "default",
    "default": "default",
    "auto": "default",
    "file": "file",
    "yaml": "file",
    "secretsfile": "file",
    "env": "env",
    "environment": "env",
    "directory": "directory",
    "mounted": "directory",
    "kubernetes": "directory",
    "k8s": "directory",
    "aws": "aws",
    "awssecretsmanager": "aws",
    "awssecretconfigreader": "aws",
}


def load_yaml(
    source: str | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> Project:
    """Load a YAML file (or YAML text) into a :class:`~tdm.config.project.Project`.

    Args:
        source: a path to a ``.yml`` file, or the YAML text itself.
        params: values for ``${params.x}`` (they override the file's ``params:`` defaults).
        env: the environment for ``${env.X}`` (default: ``os.environ``).
        registry: the type registry (default: built-ins, aliases and entry points).

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
    text, file = _read(source)
    loader = _Loader(
        file=file or TEXT_SOURCE,
        params=dict(params or {}),
        env=env if env is not None else os.environ,
        registry=registry or default_registry(),
    )
    return loader.load(text)


def load_settings(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Project:
    """Load a settings file (``$TDM_HOME/config.yml``): alert managers, state, secrets, deploy.

    It has the top-level keys of a pipeline file except the pipelines themselves; the CLI uses
    its settings for every pipeline file that does not set its own.
    """
    text, file = _read(path)
    loader = _Loader(
        file=file,
        params={},
        env=env if env is not None else os.environ,
        registry=default_registry(),
    )
    return loader.load(text, settings_only=True)


def _read(source: str | os.PathLike[str]) -> tuple[str, str | None]:
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
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the file: {exc}", file=str(path)) from None
    if not isinstance(source, str):
        raise ConfigError(f"load_yaml expects a path or YAML text, got {type(source).__name__}")
    return source, None


_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_REFERENCE = re.compile(r"(params|env|secrets)\.([A-Za-z_][\w.\-]*)(?::-(.*))?", re.S)


class _Where:
    """A location for messages: file, line, pipeline and pipe."""

    __slots__ = ("file", "line", "pipe", "pipeline")

    def __init__(
        self,
        file: str | None,
        line: int | None,
        pipeline: str | None = None,
        pipe: str | None = None,
    ) -> None:
        self.file, self.line, self.pipeline, self.pipe = file, line, pipeline, pipe

    def at(self, line: int | None) -> _Where:
        return _Where(self.file, line if line is not None else self.line, self.pipeline, self.pipe)

    def error(self, message: str) -> ConfigError:
        parts = []
        if self.pipeline is not None:
            parts.append(f"pipeline {self.pipeline!r}")
        if self.pipe is not None:
            parts.append(f"pipe {self.pipe!r}")
        prefix = ", ".join(parts) + ": " if parts else ""
        return ConfigError(prefix + message, file=self.file, line=self.line)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"did you mean {', '.join(map(repr, close))}? " if close else ""


def _check_keys(node: LineDict, allowed: Sequence[str], what: str, where: _Where) -> None:
    for key in node:
        if key not in allowed:
            raise where.at(node.key_line(key)).error(
                f"unknown key {key!r} in {what}; {_suggest(str(key), allowed)}"
                f"allowed keys: {', '.join(allowed)}"
            )


def _type_name(value: Any) -> str:
    if isinstance(value, LineDict | dict):
        return "a mapping"
    if isinstance(value, LineList | list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


class _Loader:
    def __init__(
        self,
        *,
        file: str | None,
        params: dict[str, Any],
        env: Mapping[str, str],
        registry: Registry,
    ) -> None:
        self.file = file
        self.params = params
        self.env = env
        self.registry = registry
        self.routes: dict[str, tuple[str, int | None]] = {}

    # top level ------------------------------------------------------------------------------
    def load(self, text: str, *, settings_only: bool = False) -> Project:
        where = _Where(self.file, None)
        doc = parse_yaml(text, source=self.file)
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
        defaults = self._substitute(defaults, where.at(doc.key_line("params")), allow_params=False)
        self.params = {**defaults, **self.params}
        for key in list(doc):
            if key != "params":
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
        seen: dict[str, int | None] = {}
        for i, item in enumerate(raw):
            spec = self._pipeline(item, where.at(raw.item_line(i)))
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
            source=None if self.file == TEXT_SOURCE else self.file,
            checkpoints=checkpoints,
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
        if isinstance(value, LineDict):
            if isinstance(value.get("name"), str):
                value["name"] = self._substitute(
                    value["name"], where.at(value.key_line("name")), allow_params=allow_params
                )
            name = value.get("name")
            if isinstance(name, str):
                if "pipes" in value:
                    where = _Where(where.file, where.line, pipeline=name)
                elif "type" in value and where.pipeline is not None:
                    where = _Where(where.file, where.line, where.pipeline, name)
            for key in list(value):
                if key != "name":
                    value[key] = self._substitute(
                        value[key], where.at(value.key_line(key)), allow_params=allow_params
                    )
            return value
        if isinstance(value, LineList):
            for i in range(len(value)):
                value[i] = self._substitute(
                    value[i], where.at(value.item_line(i)), allow_params=allow_params
                )
            return value
        if isinstance(value, str) and "${" in value:
            return self._expand(value, where, allow_params)
        return value

    def _expand(self, text: str, where: _Where, allow_params: bool) -> Any:
        whole = _PLACEHOLDER.fullmatch(text)
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
        if ref is None:
            raise where.error(
                f"cannot substitute ${{{inner}}} in {text!r}; write ${{params.name}}, "
                "${env.NAME} or ${secrets.name} (and $${ for a literal ${)"
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

    # pipelines ------------------------------------------------------------------------------
    def _pipeline(self, item: Any, where: _Where) -> PipelineSpec:
        if not isinstance(item, LineDict):
            raise where.error(
                f"each pipeline must be a mapping with `name` and `pipes`, got {_type_name(item)}"
            )
        where = where.at(item.line)
        name = item.get("name")
        if not isinstance(name, str | int) or isinstance(name, bool) or not str(name).strip():
            raise where.at(item.key_line("name")).error(
                "a pipeline needs a `name` (a non-empty text): add `name: My Pipeline`"
            )
        name = str(name)
        where = _Where(self.file, item.line, pipeline=name)
        _check_keys(item, PIPELINE_KEYS, "a pipeline", where)
        pipeline_id = item.get("pipeline_id", _slugify(name))
        if not isinstance(pipeline_id, str | int) or not str(pipeline_id).strip():
            raise where.at(item.key_line("pipeline_id")).error(
                f"`pipeline_id` must be a non-empty text, got {_type_name(pipeline_id)}"
            )
        schedule = item.get("schedule")
        if schedule is not None and (
            not isinstance(schedule, str) or len(schedule.split()) not in (5, 6)
        ):
            raise where.at(item.key_line("schedule")).error(
                f"`schedule` must be a cron expression with 5 fields (minute hour day month "
                f'weekday), e.g. "20 * * * *", got {schedule!r}; quote it in YAML'
            )
        description = item.get("description")
        drift = item.get("drift")
        if drift is not None and drift not in DRIFT_POLICIES:
            raise where.at(item.key_line("drift")).error(
                f"`drift` must be one of {', '.join(DRIFT_POLICIES)} (what a schema change "
                f"against the last successful run does), got {drift!r}"
            )
        pipes = item.get("pipes")
        if not isinstance(pipes, LineList) or not pipes:
            raise where.at(item.key_line("pipes")).error(
                f"`pipes` must be a non-empty list of pipes (each with `name` and `type`), "
                f"got {_type_name(pipes)}"
            )
        declared = [self._pipe_decl(p, where.at(pipes.item_line(i))) for i, p in enumerate(pipes)]
        pipeline, specs = self._build(declared, where)
        secrets = tuple(sorted({s.secret for s in specs if s.secret}))
        return PipelineSpec(
            name=name,
            pipeline=pipeline,
            pipeline_id=str(pipeline_id),
            schedule=schedule,
            description=None if description is None else str(description),
            pipes=tuple(specs),
            secrets=secrets,
            file=self.file,
            line=item.line,
            drift=drift,
        )

    def _pipe_decl(self, raw: Any, where: _Where) -> _Decl:
        if not isinstance(raw, LineDict):
            raise where.error(
                "each pipe must be a mapping with `name`, `type` and `config`, "
                f"got {_type_name(raw)}"
            )
        where = where.at(raw.line)
        name = raw.get("name")
        if not isinstance(name, str | int) or isinstance(name, bool) or not str(name).strip():
            raise where.at(raw.key_line("name")).error(
                "a pipe needs a `name` (a non-empty text): add `name: My Step`"
            )
        name = str(name)
        where = _Where(self.file, raw.line, where.pipeline, name)
        _check_keys(raw, PIPE_KEYS, "a pipe", where)
        type_name = raw.get("type")
        if not isinstance(type_name, str) or not type_name.strip():
            raise where.at(raw.key_line("type")).error(
                "a pipe needs a `type`: a built-in such as rename_columns, or your own "
                "@tdm.transform function as package.module:factory"
            )
        config = raw.get("config", LineDict())
        if config is None:
            config = LineDict()
        if not isinstance(config, LineDict):
            raise where.at(raw.key_line("config")).error(
                f"`config` must be a mapping of settings, got {_type_name(config)}"
            )
        if config.line is None:
            config.line = raw.line
        parents_raw: Any = None
        parents_line = raw.line
        if "parents" in raw and "parents" in config:
            raise where.at(config.key_line("parents")).error(
                "`parents` is given twice (on the pipe and in its config); keep one"
            )
        if "parents" in raw:
            parents_raw, parents_line = raw["parents"], raw.key_line("parents")
        elif "parents" in config:
            parents_raw, parents_line = config.pop("parents"), config.key_line("parents")
        if parents_raw is None:
            parents: list[str] = []
        elif isinstance(parents_raw, str):
            parents = [parents_raw]
        elif isinstance(parents_raw, LineList) and all(
            isinstance(p, str | int) and not isinstance(p, bool) for p in parents_raw
        ):
            parents = [str(p) for p in parents_raw]
        else:
            raise where.at(parents_line).error(
                f"`parents` must be a list of pipe names, got {_type_name(parents_raw)}"
            )
        for p in parents:
            if parents.count(p) > 1:
                raise where.at(parents_line).error(
                    f"parent {p!r} is listed twice; list each parent once"
                )
        decl = _Decl(name, type_name.strip(), config, parents, parents_line, where)
        decl.type_line = raw.key_line("type")
        decl.config_line = raw.key_line("config") if "config" in raw else raw.line
        return decl

    def _build(self, declared: list[_Decl], where: _Where) -> tuple[Pipeline, list[PipeSpec]]:
        by_name: dict[str, _Decl] = {}
        for decl in declared:
            if decl.name in by_name:
                first = by_name[decl.name].where.line
                raise decl.where.error(
                    f"duplicate pipe name {decl.name!r} (first on line {first}); pipe names "
                    "must be unique within a pipeline: rename one, and update `parents`"
                )
            by_name[decl.name] = decl
        names = list(by_name)
        for decl in declared:
            for parent in decl.parents:
                if parent == decl.name:
                    raise decl.where.at(decl.parents_line).error(
                        "a pipe cannot be its own parent; name an earlier pipe in `parents`"
                    )
                if parent not in by_name:
                    raise decl.where.at(decl.parents_line).error(
                        f"unknown parent {parent!r}; {_suggest(parent, names)}parents must name "
                        f"pipes of the same pipeline ({', '.join(names)})"
                    )
        order = _topological(declared, by_name)
        built: dict[str, Pipeline] = {}
        specs: dict[str, PipeSpec] = {}
        consumed: set[str] = set()
        for decl in order:
            built[decl.name], specs[decl.name] = self._pipe(decl, [built[p] for p in decl.parents])
            consumed.update(decl.parents)
        leaves = [built[d.name] for d in declared if d.name not in consumed]
        try:
            pipeline = Pipeline.of(*leaves)
        except TdmError as exc:
            raise where.error(f"{exc}") from None
        return pipeline, [specs[d.name] for d in declared]

    # one pipe ---------------------------------------------------------------------------------
    def _pipe(self, decl: _Decl, parents: list[Pipeline]) -> tuple[Pipeline, PipeSpec]:
        where, config = decl.where, decl.config
        try:
            entry = self.registry.lookup(decl.type)
        except ConfigError as exc:
            raise where.at(decl.type_line).error(_bare(exc)) from None
        try:
            factory = self.registry.resolve(entry)
        except ConfigError as exc:
            raise where.at(decl.type_line).error(_bare(exc)) from None
        kwargs = {k: _plain(v) for k, v in config.items()}
        lines = dict(config.lines)
        for key in IGNORED_PIPE_CONFIG:
            kwargs.pop(key, None)
        secret = self._secret(kwargs, config, where)
        is_step = bool(getattr(factory, "__tdm_step__", False))
        sig = _signature(factory)
        if not is_step and sig is not None and _looks_like_plain_step(sig):
            raise where.error(
                f"{decl.type} is a plain function of a frame; decorate it with @tdm.transform "
                "so that YAML can configure it (its keyword parameters become `config` keys)"
            )
        args: tuple[Any, ...] = ()
        if entry.adapter is not None:
            try:
                args, kwargs = translate(entry.adapter, kwargs, node=decl.name)
            except ConfigError as exc:
                raise where.error(_bare(exc)) from None
        kwargs = _apply_renames(entry, sig, kwargs, lines)
        if "*" in kwargs:  # an original key mapped onto the factory's *args
            spread = kwargs.pop("*")
            args = (*args, *(spread if isinstance(spread, list | tuple) else [spread]))
        if sig is not None and not args:  # config keys naming positional-only parameters
            for param in sig.parameters.values():
                if param.kind is not param.POSITIONAL_ONLY or param.name not in kwargs:
                    break
                args = (*args, kwargs.pop(param.name))
        for key, value in entry.defaults.items():
            if key not in kwargs and sig is not None and _accepts(sig, key):
                kwargs[key] = value
        if secret is not None:
            if is_step or sig is None or not _accepts(sig, "secret"):
                raise where.at(config.key_line("secrets")).error(
                    f"{entry.name} is a pure step and takes no secrets; only readers, writers "
                    "and REST calls do: remove `secrets` from this pipe"
                )
            kwargs["secret"] = secret
        takes_label = not is_step and sig is not None and _accepts(sig, "label", explicit=True)
        if takes_label:
            kwargs["label"] = decl.name
        if sig is not None:
            self._check_call(decl, entry, factory, sig, args, kwargs, lines)
        try:
            made = factory(*args, **kwargs)
        except TdmError as exc:
            raise where.error(f"{entry.name}: {_bare(exc)}") from None
        except Exception as exc:
            raise where.error(
                f"{entry.name} rejected its config: {type(exc).__name__}: {exc}"
            ) from None
        pipeline = self._connect(decl, entry, made, parents)
        return pipeline, PipeSpec(decl.name, decl.type, tuple(decl.parents), secret, where.line)

    def _secret(self, kwargs: dict[str, Any], config: LineDict, where: _Where) -> str | None:
        raw = config.get("secrets") if "secrets" in kwargs else None
        kwargs.pop("secrets", None)
        direct = kwargs.pop("secret", None)
        if raw is not None and direct is not None:
            raise where.at(config.key_line("secret")).error(
                "both `secrets` and `secret` are given; keep one"
            )
        line = config.key_line("secrets" if raw is not None else "secret")
        where = where.at(line)
        if direct is not None:
            if isinstance(direct, str) and direct.strip():
                return direct
            raise where.error(f"`secret` must be a secret's name, got {_type_name(direct)}")
        if raw is None:
            return None
        if isinstance(raw, str) and raw.strip():
            return raw
        if not isinstance(raw, LineDict):
            raise where.error(
                "`secrets` must be {type: yamlconfigreader, name: SECTION}, "
                f"got {_type_name(raw)}"
            )
        _check_keys(raw, ("type", "name"), "`secrets`", where)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise where.at(raw.key_line("name")).error(
                "`secrets` needs a `name`: the section of secrets.yml (or the secret's name in "
                "its provider), e.g. secrets: {type: yamlconfigreader, name: AirWatch}"
            )
        kind_name = str(raw.get("type", "yamlconfigreader"))
        kind = SECRET_TYPES.get(re.sub(r"[\s_\-]", "", kind_name).lower())
        if kind is None:
            raise where.at(raw.key_line("type")).error(
                f"unknown secrets type {kind_name!r}; {_suggest(kind_name, list(SECRET_TYPES))}"
                f"use yamlconfigreader (the default order), file, env, directory or aws"
            )
        previous = self.routes.get(name)
        if previous is not None and previous[0] != kind:
            raise where.at(raw.key_line("type")).error(
                f"secret {name!r} is read from {previous[0]!r} on line {previous[1]} but from "
                f"{kind!r} here; use one secrets type per secret name"
            )
        self.routes[name] = (kind, where.line)
        return name

    def _check_call(
        self,
        decl: _Decl,
        entry: TypeEntry,
        factory: Callable[..., Any],
        sig: inspect.Signature,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        lines: Mapping[str, int],
    ) -> None:
        where, config = decl.where, decl.config
        params = sig.parameters
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        accepted = [
            n
            for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("label", "secret")
        ]
        if not has_var_kw:
            for key in kwargs:
                if key not in params:
                    raise where.at(lines.get(key, config.line)).error(
                        f"unknown config key {key!r} for {entry.name}; "
                        f"{_suggest(key, accepted)}accepted keys: {', '.join(accepted) or '(none)'}"
                    )
        try:
            sig.bind(*args, **kwargs)
        except TypeError:
            missing = [
                n
                for n, p in params.items()
                if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and n not in kwargs
            ][len(args) :]
            if missing:
                raise where.at(decl.config_line).error(
                    f"{entry.name} needs config {', '.join(repr(m) for m in missing)}: add "
                    f"{', '.join(f'{m}: ...' for m in missing)} under `config`"
                ) from None
            raise where.at(decl.config_line).error(
                f"{entry.name} cannot take this config; its parameters are {sig}"
            ) from None
        hints = _hints(factory)
        for key, value in kwargs.items():
            hint = hints.get(key)
            if hint is None or key in ("label", "secret"):
                continue
            if not _matches(value, hint):
                raise where.at(lines.get(key, config.line)).error(
                    f"config {key!r} of {entry.name} must be {_describe_type(hint)}, got "
                    f"{_type_name(value)}"
                )

    def _connect(
        self, decl: _Decl, entry: TypeEntry, made: Any, parents: list[Pipeline]
    ) -> Pipeline:
        where, n = decl.where, len(parents)
        if isinstance(made, Pipe):
            step = made.named(decl.name)
            if n == 0:
                raise where.error(
                    f"{entry.name} transforms frames, so it needs `parents` (config.parents: "
                    "[Earlier Pipe]); a pipeline starts with a reader or an input"
                )
            if step.arity != VARIADIC and step.arity != n:
                if step.arity == 1:
                    fix = "give it one parent, or combine parents first with join or union"
                else:
                    fix = f"give it exactly {step.arity} parents"
                raise where.at(decl.parents_line).error(
                    f"{entry.name} takes {step.arity} input(s) but has {n} parent(s); {fix}"
                )
            try:
                return parents[0] >> step if step.arity == 1 else step(*parents)
            except TdmError as exc:
                raise where.error(_bare(exc)) from None
        if isinstance(made, Effect):
            effect = made
            if not isinstance(made, Input) and made.label is None:
                effect = dataclasses.replace(made, label=decl.name)
            return self._attach(
                decl, entry, Pipeline.of(effect) if effect.arity == 0 else effect, parents
            )
        if isinstance(made, Pipeline):
            return self._attach(decl, entry, _relabel(made, decl.name), parents)
        if isinstance(made, Op):
            return self._attach(decl, entry, made, parents)
        raise where.error(
            f"{decl.type} returned {type(made).__name__}, not a step; a type must name a "
            "@tdm.transform function or a factory returning a step, an effect or a Pipeline"
        )

    def _attach(
        self, decl: _Decl, entry: TypeEntry, made: Pipeline | Op, parents: list[Pipeline]
    ) -> Pipeline:
        where = decl.where
        source_free = made.is_source_free if isinstance(made, Pipeline) else made.arity != 0
        if not source_free:
            if parents:
                raise where.at(decl.parents_line).error(
                    f"{entry.name} reads its own data and takes no parents; remove `parents` "
                    "(or use a step that consumes a frame)"
                )
            return made if isinstance(made, Pipeline) else Pipeline.of(made)
        if len(parents) != 1:
            raise where.at(decl.parents_line).error(
                f"{entry.name} consumes one frame but has {len(parents)} parent(s); "
                + ("add `parents: [Earlier Pipe]`" if not parents else "combine them first")
            )
        try:
            return parents[0] >> made
        except TdmError as exc:
            raise where.error(_bare(exc)) from None

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
            if isinstance(settings.get("url"), str) and isinstance(
                settings.get("keep", False), bool
            ):
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
        return _plain_dict(raw)


class _KeepType:
    pass


_KEEP = _KeepType()


class _Decl:
    __slots__ = (
        "config",
        "config_line",
        "name",
        "parents",
        "parents_line",
        "type",
        "type_line",
        "where",
    )

    def __init__(
        self,
        name: str,
        type_: str,
        config: LineDict,
        parents: list[str],
        parents_line: int | None,
        where: _Where,
    ) -> None:
        self.name, self.type, self.config = name, type_, config
        self.parents, self.parents_line, self.where = parents, parents_line, where
        self.type_line: int | None = where.line
        self.config_line: int | None = where.line


def _topological(declared: list[_Decl], by_name: Mapping[str, _Decl]) -> list[_Decl]:
    """Pipes in an order where parents come first (file order otherwise); cycles are errors."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    order: list[_Decl] = []
    for start in declared:
        if state.get(start.name) == 2:
            continue
        stack: list[tuple[_Decl, int]] = [(start, 0)]
        path: list[str] = [start.name]
        state[start.name] = 1
        while stack:
            decl, i = stack[-1]
            if i < len(decl.parents):
                stack[-1] = (decl, i + 1)
                parent = by_name[decl.parents[i]]
                if state.get(parent.name) == 1:
                    cycle = [*path[path.index(parent.name) :], parent.name]
                    raise parent.where.at(parent.parents_line).error(
                        f"the parents form a cycle: {' -> '.join(cycle)} (each pipe lists the "
                        "next as its parent); remove one of these parents so data flows one way"
                    )
                if state.get(parent.name) != 2:
                    state[parent.name] = 1
                    path.append(parent.name)
                    stack.append((parent, 0))
            else:
                stack.pop()
                path.pop()
                state[decl.name] = 2
                order.append(decl)
    return order


def _bare(exc: TdmError) -> str:
    text = str(exc)
    if isinstance(exc, ConfigError) and exc.file is not None:
        prefix = f"{exc.file}:{exc.line}: " if exc.line is not None else f"{exc.file}: "
        return text.removeprefix(prefix)
    return text


def _plain_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in value.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "pipeline"


def _relabel(pipeline: Pipeline, name: str) -> Pipeline:
    """Name a one-node source pipeline built by a factory that takes no ``label``."""
    nodes = pipeline.plan.nodes
    if len(nodes) == 1 and isinstance(nodes[0].op, Effect) and not isinstance(nodes[0].op, Input):
        op = nodes[0].op
        if op.label is None:
            return Pipeline.of(dataclasses.replace(op, label=name))
    return pipeline


def _signature(factory: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return None


def _accepts(sig: inspect.Signature, name: str, *, explicit: bool = False) -> bool:
    param = sig.parameters.get(name)
    if param is not None and param.kind is not inspect.Parameter.VAR_POSITIONAL:
        return True
    if explicit:
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _looks_like_plain_step(sig: inspect.Signature) -> bool:
    params = list(sig.parameters.values())
    if not params:
        return False
    first = params[0]
    ann = first.annotation
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", "")
    return (
        first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)
        and first.default is first.empty
        and ("DataFrame" in str(text) or text == "Frame" or first.name in ("df", "frame"))
    )


def _apply_renames(
    entry: TypeEntry,
    sig: inspect.Signature | None,
    kwargs: dict[str, Any],
    lines: dict[str, int],
) -> dict[str, Any]:
    if not entry.renames or sig is None:
        return kwargs
    out = dict(kwargs)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    named = {n for n, p in sig.parameters.items() if p.kind not in variadic}
    for old, candidates in entry.renames.items():
        if old not in out or (old in named and old in candidates):
            continue
        for candidate in candidates:
            if candidate == FIRST_POSITIONAL:
                first = next(iter(sig.parameters.values()), None)
                if first is None:
                    continue
                if first.kind is inspect.Parameter.VAR_POSITIONAL:
                    value = out.pop(old)
                    out["*"] = value
                    break
                candidate = first.name
            if isinstance(candidate, str) and candidate in named:
                out[candidate] = out.pop(old)
                if old in lines:
                    lines[candidate] = lines[old]
                break
    return out


def _hints(factory: Callable[..., Any]) -> dict[str, Any]:
    fn = getattr(factory, "__wrapped__", factory)
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: skip the checks rather than fail
        return {}


def _matches(value: Any, hint: Any) -> bool:
    """A lenient structural check of a YAML value against an annotation."""
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    container = origin or hint
    if container in (list, tuple, Sequence, typing.Sequence, set, frozenset):
        if not isinstance(value, list | tuple):
            return False
        inner = args[0] if args and not (container is tuple and len(args) != 2) else Any
        if container is tuple and len(args) >= 1 and args[-1] is not Ellipsis:
            pairs = zip(value, args, strict=False)
            return len(value) == len(args) and all(_matches(v, a) for v, a in pairs)
        return all(_matches(v, inner) for v in value)
    if container in (dict, Mapping, typing.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    return True


def _describe_type(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else None
    return text or str(hint).replace("typing.", "").replace("collections.abc.", "")


# `Effect`s name their node through `label`; `Input`s through their input name.
_ = SecretRef
