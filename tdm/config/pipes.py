"""Building one pipeline of a YAML file: its pipes through the registry, parents, checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tdm.config._where import (
    _bare,
    _check_keys,
    _plain,
    _slugify,
    _suggest,
    _type_name,
    _Where,
)
from tdm.config._yaml import LineDict, LineList
from tdm.config.calls import (
    _accepts,
    _apply_renames,
    _looks_like_plain_step,
    _signature,
    check_call,
)
from tdm.config.compat import translate
from tdm.config.deploy_settings import schedule_problem
from tdm.config.project import PipelineSpec, PipeSpec
from tdm.config.registry import Registry, TypeEntry
from tdm.config.secret_refs import secret_name
from tdm.core.effect import Effect
from tdm.core.inputs import Input
from tdm.core.pipe import VARIADIC, Op, Pipe
from tdm.core.pipeline import Pipeline
from tdm.errors import ConfigError, TdmError

__all__ = ["PipelineBuilder"]

PIPELINE_KEYS = ("name", "pipeline_id", "schedule", "description", "pipes", "drift")
DRIFT_POLICIES = ("warn", "fail", "ignore")
PIPE_KEYS = ("name", "type", "config", "parents", "after", "description")
# Keys every original tdm pipe carried in its config; the run supplies them now.
IGNORED_PIPE_CONFIG = ("job_id", "pipeline_id", "pipe_id", "stats", "name")


class PipelineBuilder:
    """Builds the pipelines of one file; ``routes`` collects which provider reads each secret."""

    def __init__(
        self, *, file: str | None, registry: Registry, routes: dict[str, tuple[str, int | None]]
    ) -> None:
        self.file = file
        self.registry = registry
        self.routes = routes
        # type name -> (entry, factory): a file names a few types many times
        self._factories: dict[str, tuple[TypeEntry, Callable[..., Any]]] = {}

    # pipelines ------------------------------------------------------------------------------
    def pipeline(self, item: Any, where: _Where) -> PipelineSpec:
        """One entry of ``pipelines:``, built and checked."""
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
        problem = None if schedule is None else schedule_problem(schedule)
        if problem:
            raise where.at(item.key_line("schedule")).error(problem)
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
        decl.after, decl.after_line = self._after(raw, config, where)
        decl.type_line = raw.key_line("type")
        decl.config_line = raw.key_line("config") if "config" in raw else raw.line
        return decl

    def _after(
        self, raw: LineDict, config: LineDict, where: _Where
    ) -> tuple[str | None, int | None]:
        """``after: Pipe Name`` (on the pipe or in its config): wait for that pipe's success."""
        if "after" in raw and "after" in config:
            raise where.at(config.key_line("after")).error(
                "`after` is given twice (on the pipe and in its config); keep one"
            )
        if "after" in raw:
            value, line = raw["after"], raw.key_line("after")
        elif "after" in config:
            value, line = config.pop("after"), config.key_line("after")
        else:
            return None, None
        if isinstance(value, LineList) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise where.at(line).error(
                f"`after` must name one pipe of this pipeline (e.g. after: Write Devices), "
                f"got {_type_name(value)}"
            )
        return str(value), line

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
            if decl.after is not None and decl.after not in by_name:
                raise decl.where.at(decl.after_line).error(
                    f"`after` names an unknown pipe {decl.after!r}; "
                    f"{_suggest(decl.after, names)}name a pipe of the same pipeline "
                    f"({', '.join(names)})"
                )
            if decl.after == decl.name:
                raise decl.where.at(decl.after_line).error(
                    "a pipe cannot wait for itself; name the pipe it must run after"
                )
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
            after = built[decl.after] if decl.after is not None else None
            parents = [built[p] for p in decl.parents]
            built[decl.name], specs[decl.name] = self._pipe(decl, parents, after)
            consumed.update(decl.deps)
        leaves = [built[d.name] for d in declared if d.name not in consumed]
        try:
            pipeline = Pipeline.of(*leaves)
        except TdmError as exc:
            raise where.error(f"{exc}") from None
        return pipeline, [specs[d.name] for d in declared]

    # one pipe ---------------------------------------------------------------------------------
    def _pipe(
        self, decl: _Decl, parents: list[Pipeline], after: Pipeline | None = None
    ) -> tuple[Pipeline, PipeSpec]:
        where, config = decl.where, decl.config
        entry, factory = self._factory(decl)
        kwargs = {k: _plain(v) for k, v in config.items()}
        lines = dict(config.lines)
        sig = _signature(factory)
        for key in IGNORED_PIPE_CONFIG:
            kwargs.pop(key, None)
        secret = self._secret(kwargs, config, where)
        is_step = bool(getattr(factory, "__tdm_step__", False))
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
            if "secrets" in kwargs:  # the original shape: `secrets` inside the writer/reader
                nested = config.get("writer", config.get("reader"))
                line = nested.line if isinstance(nested, LineDict) else config.line
                if secret is not None:
                    raise where.at(line).error(
                        "`secrets` is given on the pipe and inside its writer/reader; keep one"
                    )
                raw = kwargs["secrets"]
                block = LineDict({"secrets": LineDict(raw) if isinstance(raw, dict) else raw})
                block.line = line
                if isinstance(block["secrets"], LineDict):
                    block["secrets"].line = line
                secret = self._secret(kwargs, block, where)
        kwargs = _apply_renames(entry, sig, kwargs, lines)
        if entry.target == "tdm.transforms:when":
            for key in ("then", "otherwise"):
                if key in config:
                    kwargs[key] = self._branch(decl, key, config[key])
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
        if after is not None:
            if is_step or sig is None or not _accepts(sig, "after", explicit=True):
                raise where.at(decl.after_line).error(
                    f"{entry.name} does not wait for other pipes; `after` is for readers "
                    "(e.g. a read-back of a file written earlier in the run)"
                )
            kwargs["after"] = after
        takes_label = not is_step and sig is not None and _accepts(sig, "label", explicit=True)
        if takes_label:
            kwargs["label"] = decl.name
        if sig is not None:
            check_call(
                where,
                entry.name,
                factory,
                sig,
                args,
                kwargs,
                lines,
                key_line=config.line,
                config_line=decl.config_line,
            )
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

    def _factory(self, decl: _Decl) -> tuple[TypeEntry, Callable[..., Any]]:
        """The registry entry of the pipe's type and its factory (checked and imported once)."""
        found = self._factories.get(decl.type)
        if found is not None:
            return found
        try:
            entry = self.registry.lookup(decl.type)
            factory = self.registry.resolve(entry)
        except ConfigError as exc:
            raise decl.where.at(decl.type_line).error(_bare(exc)) from None
        self._factories[decl.type] = entry, factory
        return entry, factory

    def _branch(self, decl: _Decl, key: str, value: Any) -> Pipe | Pipeline | None:
        """``then:`` / ``otherwise:`` of ``when``: a step ``{type, config}`` or a list of them,
        built by the same registry as pipes (so the same trust rules apply)."""
        from tdm.core.pipeline import pipe

        where = decl.where.at(decl.config.key_line(key))
        if value is None:
            return None
        items = value if isinstance(value, LineList) else [value]
        current = pipe()
        for i, item in enumerate(items):
            if not isinstance(item, LineDict) or "type" not in item:
                raise where.error(
                    f"`{key}` holds steps: {{type: assign, config: {{...}}}} or a list of them, "
                    f"got {_type_name(item)}"
                )
            if "parents" in item or (
                isinstance(item.get("config"), LineDict) and "parents" in item["config"]
            ):
                raise where.error(f"a step in `{key}` takes the frame of `when`: remove `parents`")
            if "name" not in item:
                item["name"] = f"{decl.name} / {key} {i + 1}"
            sub = self._pipe_decl(item, where)
            sub.anonymous = True
            current, _ = self._pipe(sub, [current])
        steps = [n.op for n in current.plan.nodes if isinstance(n.op, Pipe)]
        if len(items) == 1 and len(steps) == 1:
            return steps[0]  # one step is the step itself, as in Python: then=assign(...)
        return current

    def _connect(
        self, decl: _Decl, entry: TypeEntry, made: Any, parents: list[Pipeline]
    ) -> Pipeline:
        where, n = decl.where, len(parents)
        if isinstance(made, Pipe):
            step = made if decl.anonymous else made.named(decl.name)
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

    def _secret(self, kwargs: dict[str, Any], config: LineDict, where: _Where) -> str | None:
        return secret_name(kwargs, config, where, self.routes)


class _Decl:
    __slots__ = (
        "after",
        "after_line",
        "anonymous",
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
        self.anonymous = False  # a step inside `when`: keeps its own name
        self.after: str | None = None
        self.after_line: int | None = None

    @property
    def deps(self) -> list[str]:
        """The pipes that must run first: its parents, and the one named by ``after``."""
        return self.parents if self.after is None else [*self.parents, self.after]


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
            if i < len(decl.deps):
                stack[-1] = (decl, i + 1)
                parent = by_name[decl.deps[i]]
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


def _relabel(pipeline: Pipeline, name: str) -> Pipeline:
    """Name a one-node source pipeline built by a factory that takes no ``label``."""
    nodes = pipeline.plan.nodes
    if len(nodes) == 1 and isinstance(nodes[0].op, Effect) and not isinstance(nodes[0].op, Input):
        op = nodes[0].op
        if op.label is None:
            return Pipeline.of(dataclasses.replace(op, label=name))
    return pipeline
