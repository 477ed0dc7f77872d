"""``tdm.run``: the effects interpreter that executes a pipeline and reports on it."""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
from returns.result import Success

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.inputs import Input
from tdm.core.pipe import Op, Pipe, PipeError, Skip
from tdm.core.pipeline import ARGUMENT, Pipeline
from tdm.core.pushdown import optimize as optimized
from tdm.effects.logging import RUN_CONTEXT
from tdm.effects.secrets import scrub
from tdm.errors import DefinitionError, InputError
from tdm.interpreter.drift import check_policy
from tdm.interpreter.executors import (
    _WALL_OFFSET,
    Executor,
    NodeOutcome,
    NodeTask,
    Sequential,
    _Done,
    dtypes_of,
    execute,
    failure_of,
    resolve,
)
from tdm.interpreter.hooks import Hook, overrides
from tdm.interpreter.memory import RunMemory, memory_for
from tdm.interpreter.observe import AlertHook, LoggingHook, StateHook
from tdm.interpreter.progress import progress_hook
from tdm.interpreter.report import NodeMap, NodeReport, RunReport, Status
from tdm.interpreter.runtime import Runtime

__all__ = ["run"]

log = logging.getLogger("tdm.run")


def run(
    pipeline: Pipeline | Op,
    *,
    inputs: Mapping[str, Frame] | None = None,
    params: Mapping[str, Any] | None = None,
    runtime: Runtime | None = None,
    executor: str | Executor = "sequential",
    fail_fast: bool = False,
    max_workers: int | None = None,
    pipeline_id: str | None = None,
    job_id: str | None = None,
    run_id: str | None = None,
    pipeline_name: str | None = None,
    resume: RunReport | str | None = None,
    drift: str = "warn",
    optimize: bool = True,
) -> RunReport:
    """Run ``pipeline``: perform its effects, call its steps, and report on every node.

    Args:
        pipeline: the pipeline (or a single source effect) to run.
        inputs: frames by name for ``tdm.inputs.frame(name)`` nodes; a name may also replace
            any other node (a source, say) by its name. A source-free pipeline's argument is
            called ``"input"``.
        params: user parameters, visible to steps through their ``RunContext``.
        runtime: the services to use (default: ``Runtime.default()``).
        executor: ``"sequential"``, ``"threads"`` or an :class:`Executor` instance.
        fail_fast: stop starting new nodes after the first failure.
        max_workers: thread count for ``executor="threads"``.
        pipeline_id / job_id / run_id: identifiers for the audit trail (generated if omitted).
        pipeline_name: a human name for logs, the audit trail and alerts (default: the
            pipeline id if given, else the output node names).
        resume: a failed run (its RunReport or run id) to resume: nodes whose output is in the
            runtime's checkpoints are restored from there (no request, no write repeated), the
            others run. Needs ``Runtime(checkpoints=...)`` for both runs and the same
            pipeline id (a report's is used when ``pipeline_id`` is not given).
        drift: what a change in a source's schema (a new, missing or retyped column) since
            the last successful run of the pipeline does: ``"warn"`` (default; reported in
            ``report.drift``, the logs, alerts and the audit trail), ``"fail"`` (the source
            fails before anything is written) or ``"ignore"``.
        optimize: push column pruning and parquet row-group filters into file reads
            (:mod:`tdm.core.pushdown`; ``pipeline.explain()`` shows what); ``False`` runs
            the plan exactly as written. The outputs are the same either way.

    Returns:
        A :class:`RunReport`. A failing node never raises here: it is reported as FAILURE and
        its descendants as SKIPPED. Bad arguments (unknown inputs) raise ``InputError``.

    >>> import pandas as pd, tdm
    >>> @tdm.transform
    ... def double(df):
    ...     return df * 2
    >>> report = tdm.run(tdm.inputs.frame("x") >> double(), inputs={"x": pd.DataFrame({"a": [2]})})
    >>> report.status, report.output["a"].tolist()
    (<Status.SUCCESS: 'SUCCESS'>, [4])
    """
    return _scheduler_for(
        pipeline,
        inputs=inputs,
        params=params,
        runtime=runtime,
        executor=executor,
        fail_fast=fail_fast,
        max_workers=max_workers,
        pipeline_id=pipeline_id,
        job_id=job_id,
        run_id=run_id,
        pipeline_name=pipeline_name,
        resume=resume,
        drift=drift,
        optimize=optimize,
    ).run()


def _scheduler_for(
    pipeline: Pipeline | Op,
    *,
    inputs: Mapping[str, Frame] | None,
    params: Mapping[str, Any] | None,
    runtime: Runtime | None,
    executor: str | Executor,
    fail_fast: bool,
    max_workers: int | None,
    pipeline_id: str | None,
    job_id: str | None,
    run_id: str | None,
    pipeline_name: str | None = None,
    resume: RunReport | str | None = None,
    drift: str = "warn",
    optimize: bool = False,
) -> _Scheduler:
    """Everything ``run`` sets up before the first node (shared with ``run_partitions``)."""
    if isinstance(pipeline, Op):
        pipeline = Pipeline.of(pipeline)
    if not isinstance(pipeline, Pipeline):
        raise DefinitionError(
            f"tdm.run expects a Pipeline, got {type(pipeline).__name__}; "
            "build one with >> or tdm.pipe(...)"
        )
    runtime = runtime if runtime is not None else Runtime.default()
    plan = pipeline.plan
    supplied = _check_inputs(pipeline, dict(inputs or {}))
    rid = run_id or uuid.uuid4().hex
    if pipeline_id is None and isinstance(resume, RunReport):
        pipeline_id = resume.pipeline_id
    pid = pipeline_id or pipeline.fingerprint()
    shown = pipeline  # the pipeline as written: names, report rows, identity
    if optimize:
        pipeline = optimized(pipeline)
    origin = _origin_of(resume)
    remembered, memory = memory_for(
        pipeline, runtime, pid, rid, supplied, origin, check_policy(drift)
    )
    context = RunContext(
        started_at=runtime.clock(),
        run_id=rid,
        job_id=job_id or rid,
        pipeline_id=pid,
        params=dict(params or {}),
        previous_run_id=remembered.previous_run_id,
        cursors=remembered.cursors,
        resumed_from=origin,
    )
    chosen = resolve(executor, max_workers=max_workers)
    nodes = NodeMap(
        {
            name: NodeReport(name, kind, description, parents)
            for name, kind, description, parents in _report_rows(shown)
        },
        ambiguous=plan.ambiguous_names(),
    )
    report = RunReport(
        run_id=context.run_id,
        job_id=context.job_id,
        pipeline_id=context.pipeline_id,
        started_at=context.started_at,
        nodes=nodes,
        output_names=tuple(plan.names[i] for i in plan.outputs),
        params=context.params,
        executor=chosen.name,
        pipeline_name=pipeline_name
        or pipeline_id
        or ", ".join(plan.names[i] for i in plan.outputs),
        resumed_from=origin,
    )
    hooks = _Hooks(list(runtime.hooks) + _service_hooks(runtime))
    scheduler = _Scheduler(pipeline, context, runtime, chosen, supplied, report, hooks, fail_fast)
    scheduler.memory = memory
    return scheduler


def _origin_of(resume: RunReport | str | None) -> str | None:
    if resume is None or isinstance(resume, str):
        return resume
    if isinstance(resume, RunReport):
        return resume.run_id
    raise InputError(
        f"resume= takes the RunReport of a failed run or its run id, got {type(resume).__name__}"
    )


_ROWS: weakref.WeakKeyDictionary[Pipeline, list[tuple[str, str, str, tuple[str, ...]]]] = (
    weakref.WeakKeyDictionary()
)


def _report_rows(pipeline: Pipeline) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Per node: name, kind, description, parent names (computed once per pipeline value)."""
    rows = _ROWS.get(pipeline)
    if rows is None:
        plan = pipeline.plan
        rows = [
            (
                plan.names[i],
                node.op.kind,
                plan.descriptions[i],
                tuple(plan.names[p] for p in plan.parents[i]),
            )
            for i, node in enumerate(plan.nodes)
        ]
        _ROWS[pipeline] = rows
    return rows


def _shape(frame: Any) -> tuple[Any, Any, Any]:
    """The objects that pandas replaces whenever a frame's rows, columns or dtypes change in
    place: its row index, its column index and its tuple of data blocks (kept, not their ids,
    so a freed object's address cannot be mistaken for it)."""
    return (frame.index, frame.columns, frame._mgr.blocks)


# Whether this pandas lays frames out in blocks; without them, statistics are always computed.
_BLOCKS = isinstance(getattr(getattr(pd.DataFrame(), "_mgr", None), "blocks", None), tuple)


class _Compiled:
    """A pipeline laid out once for the sequential loop: flat per-node arrays, no objects."""

    __slots__ = ("direct", "evaluate", "index", "no_copy", "ops", "roots", "waiting")

    def __init__(self, pipeline: Pipeline) -> None:
        plan = pipeline.plan
        self.ops: list[Op] = [node.op for node in plan.nodes]
        self.evaluate: list[Callable[..., Any] | None] = [
            op.evaluate if isinstance(op, Pipe) else None for op in self.ops
        ]
        # Built-in steps never mutate their input frames, so a frame shared with other
        # consumers needs no Copy-on-Write shallow copy for them. Not when they call user code
        # (a predicate, a callable expression): that code could.
        self.no_copy: list[bool] = [_builtin_without_callables(op) for op in self.ops]
        self.roots: list[int] = [i for i, ps in enumerate(plan.parents) if not ps]
        self.waiting: list[int] = [len(ps) for ps in plan.parents]
        self.index: dict[str, int] = {name: i for i, name in enumerate(plan.names)}
        # One-input steps without the run context whose evaluation is Pipe's own: the loop
        # calls their body directly (what Pipe.evaluate would do, minus its checks).
        self.direct: list[tuple[Any, ...] | None] = [
            (op.fn, op.call_args, op.call_kwargs, op)
            if isinstance(op, Pipe)
            and type(op).evaluate is Pipe.evaluate
            and op.arity == 1
            and not op.needs_context
            and len(plan.parents[i]) == 1
            else None
            for i, op in enumerate(self.ops)
        ]


def _builtin_without_callables(op: Op) -> bool:
    if not isinstance(op, Pipe):
        return False
    module = getattr(op.fn, "__module__", None) or ""
    if not module.startswith("tdm.transforms."):
        return False
    values = [*op.call_args, *op.call_kwargs.values()]
    while values:
        value = values.pop()
        if callable(value) and not isinstance(value, type):
            return False
        if isinstance(value, list | tuple | set | frozenset):
            values.extend(value)
        elif isinstance(value, Mapping):
            values.extend(value.values())
    return True


_COMPILED: weakref.WeakKeyDictionary[Pipeline, _Compiled] = weakref.WeakKeyDictionary()


def _compiled(pipeline: Pipeline) -> _Compiled:
    compiled = _COMPILED.get(pipeline)
    if compiled is None:
        compiled = _COMPILED[pipeline] = _Compiled(pipeline)
    return compiled


_NEEDED: weakref.WeakKeyDictionary[Pipeline, tuple[frozenset[str], list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _names_and_needed(pipeline: Pipeline) -> tuple[frozenset[str], list[str]]:
    """The pipeline's node names, and those of nodes that need a supplied frame (cached)."""
    cached = _NEEDED.get(pipeline)
    if cached is None:
        plan = pipeline.plan
        needed = [
            plan.names[i]
            for i, node in enumerate(plan.nodes)
            if isinstance(node.op, Input) or node.op is ARGUMENT
        ]
        cached = _NEEDED[pipeline] = (frozenset(plan.names), needed)
    return cached


def _check_inputs(pipeline: Pipeline, inputs: dict[str, Frame]) -> dict[str, Frame]:
    plan = pipeline.plan
    names, needed = _names_and_needed(pipeline)
    unknown = sorted(set(inputs) - names)
    if unknown:
        wanted = pipeline.inputs() or pipeline.sources()
        raise InputError(
            f"inputs= names {', '.join(map(repr, unknown))}, which the pipeline does not have; "
            f"its inputs are: {', '.join(wanted) or '(none)'} "
            f"(any node name may be supplied too: {', '.join(plan.names[:8])}"
            f"{', ...' if len(plan.names) > 8 else ''})"
        )
    for name, frame in inputs.items():
        if not isinstance(frame, pd.DataFrame):
            raise InputError(
                f"inputs[{name!r}] is a {type(frame).__name__}; supply a pandas DataFrame"
            )
    missing = [name for name in needed if name not in inputs]
    if missing:
        example = ", ".join(f"{m!r}: frame" for m in missing)
        raise InputError(
            f"the pipeline needs input frame(s) {', '.join(map(repr, missing))}; "
            f"pass tdm.run(pipeline, inputs={{{example}}})"
        )
    return inputs


def _service_hooks(runtime: Runtime) -> list[Hook]:
    """Hooks that the runtime's services contribute: logs, progress, alerts, audit trail.

    Alerts go before the audit record so that a failed alert is recorded in it.
    """
    hooks: list[Hook] = [LoggingHook.for_level()]
    progress = progress_hook(runtime.progress)
    if progress is not None:
        hooks.append(progress)
    if runtime.alerters:
        hooks.append(AlertHook(runtime))
    if runtime.state is not None:
        hooks.append(StateHook(runtime))
    return hooks


class _Hooks:
    """Calls hooks; only the ones that override a method are called for it."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.all = list(hooks)
        self.by_method = {
            m: [h for h in hooks if overrides(h, m)]
            for m in ("before_run", "before_node", "after_node", "after_run")
        }

        # Bound once: after_node runs for every node, so the lookup is not repeated per call.
        self.bound = {m: [getattr(h, m) for h in hs] for m, hs in self.by_method.items()}

    def call(self, method: str, **kwargs: Any) -> None:
        for bound in self.bound[method]:
            bound(**kwargs)

    def call_safely(self, method: str, report: RunReport, **kwargs: Any) -> None:
        for hook in self.by_method[method]:
            try:
                getattr(hook, method)(report=report, **kwargs)
            except Exception as exc:  # an observer must never hide the run's own result
                text = f"{type(hook).__name__}.{method} raised {type(exc).__name__}: {exc}"
                report.hook_errors.append(text)
                log.error("hook failed: %s", text)


class _HookFailed(Exception):
    def __init__(self, where: str, cause: BaseException) -> None:
        self.where = where
        self.cause = cause
        super().__init__(f"{where} raised {type(cause).__name__}: {cause}")


class _Scheduler:
    """Hands ready nodes to the executor and records what happens to each one."""

    max_in_flight: int | None = None
    """At most this many nodes handed to the executor at once (None: no limit)."""
    collect_outputs = True
    """Bring the output nodes' frames to the caller (``report.outputs``)."""
    memory: RunMemory | None = None
    """Cursors, checkpoints, drift: set only for a run that needs them."""

    def __init__(
        self,
        pipeline: Pipeline,
        context: RunContext,
        runtime: Runtime,
        executor: Executor,
        supplied: dict[str, Frame],
        report: RunReport,
        hooks: _Hooks,
        fail_fast: bool,
    ) -> None:
        self.pipeline = pipeline
        self.plan = pipeline.plan
        self.context = context
        self.runtime = runtime
        self.executor = executor
        self.supplied = supplied
        self.report = report
        self.hooks = hooks
        self.fail_fast = fail_fast
        n = len(self.plan.nodes)
        compiled = _compiled(pipeline)
        self.records = list(report.nodes.values())  # in plan order
        self.children = self.plan.children
        self.waiting = list(compiled.waiting)
        self.unsubmitted = list(self.plan.consumers)
        self.retained = [False] * n
        for i in self.plan.outputs:
            self.retained[i] = True
        for name in supplied:
            self.retained[compiled.index[name]] = True
        self.handles: dict[int, Any] = {}
        self.inline_frames: list[Any] = []
        self.stopping = False
        self.failed = False
        self.first_error: str | None = None

    def run(self) -> RunReport:
        report, hooks = self.report, self.hooks
        interrupted: BaseException | None = None
        try:
            self.executor.open()
            try:
                self._call("before_run", pipeline=self.pipeline)
                # A run with memory (cursors, checkpoints, drift) takes the general loop,
                # where its hooks are; the lean inline loop stays free of them.
                memory = self.memory
                lean = self.max_in_flight is None and (memory is None or memory.drift_only())
                if type(self.executor) is Sequential and lean:
                    self._loop_inline()
                else:
                    self._loop()
                if self.collect_outputs:  # while the executor is open: it may hold them
                    self._collect_outputs()
            finally:
                self.executor.close()
        except _HookFailed as exc:
            self._abort(f"{exc}; the run was stopped")
        except BaseException as exc:  # KeyboardInterrupt, SystemExit, a bug in an executor
            interrupted = exc
            self._abort(f"run interrupted by {type(exc).__name__}: {exc}".rstrip(": "))
        self._finish()
        if self.memory is not None:
            self.memory.finish(report, self.runtime.clock().isoformat())
        hooks.call_safely("after_run", report, run=self.context, pipeline=self.pipeline)
        if interrupted is not None and not isinstance(interrupted, Exception):
            raise interrupted
        return report

    def _loop(self) -> None:
        plan, executor = self.plan, self.executor
        ready: deque[int] = deque(i for i, ps in enumerate(plan.parents) if not ps)
        running: dict[Any, int] = {}
        limit = self.max_in_flight
        while ready or running:
            while ready and (limit is None or len(running) < limit):
                i = ready.popleft()
                if self._settle_without_running(i, ready):
                    continue
                handle = self._submit(i)
                if executor.inline:  # already ran: record it before starting anything else
                    self._record(i, executor.outcome(handle), handle, ready)
                    continue
                running[handle] = i
            if not running:
                continue
            for handle in executor.completed(list(running)):
                i = running.pop(handle)
                self._record(i, executor.outcome(handle), handle, ready)
            if self.stopping:
                for handle, i in list(running.items()):
                    if executor.cancel(handle):
                        del running[handle]
                        self._skip(i, "not started: fail_fast stopped the run", ready)

    def _loop_inline(self) -> None:
        """The sequential executor's loop, in one function: the same order, records, hooks and
        Copy-on-Write isolation as :meth:`_loop`, without a task, handle or outcome object per
        node. Frames live in a flat list and are dropped after their last consumer."""
        plan, compiled = self.plan, _compiled(self.pipeline)
        names, parents_of, children = plan.names, plan.parents, self.children
        ops, evaluators, no_copy = compiled.ops, compiled.evaluate, compiled.no_copy
        direct = compiled.direct
        records, waiting = self.records, self.waiting
        unsubmitted, retained = self.unsubmitted, self.retained
        frames: list[Any] = [None] * len(ops)
        self.inline_frames = frames
        supplied, context, runtime = self.supplied, self.context, self.runtime
        before_node = bool(self.hooks.bound["before_node"])
        after_hooks = self.hooks.bound["after_node"]
        after_node = bool(after_hooks)
        report = self.report
        call = self._call
        memory = self.memory
        watched = memory.baseline if memory is not None else {}  # sources checked for drift

        def after(record: NodeReport) -> None:
            try:
                for hook in after_hooks:
                    hook(run=context, report=report, node=record)
            except Exception as exc:
                raise _HookFailed("hook after_node", exc) from exc

        success, failure, running = Status.SUCCESS, Status.FAILURE, Status.RUNNING
        clock, offset, set_context, reset_context = (
            time.perf_counter, _WALL_OFFSET, RUN_CONTEXT.set, RUN_CONTEXT.reset
        )  # fmt: skip
        dataframe = pd.DataFrame
        ready: deque[int] = deque(compiled.roots)
        pop, push = ready.popleft, ready.append
        while ready:
            i = pop()
            record = records[i]
            ps = parents_of[i]
            reason = None
            for p in ps:
                if records[p].status is not success:
                    reason = f"skipped because parent {names[p]!r} {records[p].status.lower()}"
                    break
            if reason is None and self.stopping:
                reason = "not started: fail_fast stopped the run"
            if reason is not None:
                record.status = Status.SKIPPED
                record.error = PipeError(record.name, reason)
                for p in ps:
                    unsubmitted[p] -= 1
                    if unsubmitted[p] == 0 and not retained[p]:
                        frames[p] = None
                if after_node:
                    after(record)
                for child in children[i]:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        push(child)
                continue
            name = names[i]
            if supplied and name in supplied:
                frame = supplied[name]
                record.supplied = True
                record.status = success
                record.rows_out, record.column_index = len(frame.index), frame.columns
                record.column_dtypes = dtypes_of(frame)
                record.error = None
                frames[i] = frame  # a supplied node is always retained
                if i in watched and self._drifted(i, record):
                    self.failed = True
                    self.first_error = self.first_error or str(record.error)
                if after_node:
                    after(record)
                for child in children[i]:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        push(child)
                continue
            # the parents' frames, a shallow copy where another consumer still holds one
            copy_free = no_copy[i]
            args: list[Any] = []
            rows_in = 0
            for p in ps:
                frame = frames[p]
                unsubmitted[p] -= 1
                if unsubmitted[p] > 0 or retained[p]:
                    if not copy_free:
                        frame = frame.copy(deep=False)
                else:
                    frames[p] = None  # released: its last consumer has it now
                rows_in += records[p].rows_out or 0  # a (copy of the) parent's frame: its rows
                args.append(frame)
            record.status = running
            if before_node:
                call("before_node", node=record)
            error: PipeError | None = None
            evaluate = evaluators[i]
            if evaluate is not None:
                call_direct = direct[i]
                shape = _shape(args[0]) if len(args) == 1 and _BLOCKS else None
                token = set_context((context, name))  # log records carry the run's ids
                began = clock()
                try:
                    if call_direct is not None:
                        fn, call_args, call_kwargs, step = call_direct
                        try:
                            result: Any = fn(args[0], *call_args, **call_kwargs)
                        except Exception as exc:  # the step's error value, as evaluate makes it
                            result = step.raised(exc, (args[0],))
                        else:
                            if not isinstance(result, dataframe):
                                result = step.settle(result, (args[0],))
                    else:
                        result = evaluate(tuple(args), context)
                finally:
                    reset_context(token)
                duration = clock() - began
                out: Any
                if isinstance(result, dataframe):
                    out = result
                elif isinstance(result, Success):
                    out = result.unwrap()
                else:
                    out, error = None, failure_of(result, name)
                start = began + offset
                record.start, record.stop, record.duration_s = start, start + duration, duration
                record.rows_in = rows_in
                if error is None:
                    if copy_free and any(out is a for a in args):
                        for p in ps:  # a built-in handed back a shared input: isolate it
                            if out is frames[p]:
                                out = out.copy(deep=False)
                                break
                    record.status = success
                    if (
                        shape is not None
                        and out is args[0]
                        and out.index is shape[0]
                        and out.columns is shape[1]
                        and out._mgr.blocks is shape[2]
                    ):
                        # the same, unchanged frame: the parent's statistics still hold
                        parent = records[ps[0]]
                        record.rows_out = parent.rows_out
                        record.column_index = parent.column_index
                        record.column_dtypes = parent.column_dtypes
                    else:
                        record.rows_out = len(out.index)
                        record.column_index = out.columns
                        record.column_dtypes = dtypes_of(out)
                    if unsubmitted[i] or retained[i]:
                        frames[i] = out
                else:
                    record.status = Status.SKIPPED if isinstance(error, Skip) else failure
                    record.error = error  # a fresh record: no rows, columns or dtypes
            else:
                outcome = execute(
                    NodeTask(i, name, ops[i], context, ()), tuple(args), runtime, supplied
                )
                record.status = outcome.status
                record.start, record.stop = outcome.start, outcome.stop
                record.duration_s, record.rows_in = outcome.duration_s, outcome.rows_in
                record.rows_out, record.column_index = outcome.rows_out, outcome.columns
                record.column_dtypes = outcome.dtypes
                record.error = error = outcome.error
                if outcome.status is success and (unsubmitted[i] or retained[i]):
                    frames[i] = outcome.frame
            if i in watched and record.status is success and self._drifted(i, record):
                error, frames[i] = record.error, None
            if record.status is failure:
                self.failed = True
                if self.first_error is None and error is not None:
                    self.first_error = str(error)
                if self.fail_fast:
                    self.stopping = True
            if after_node:
                after(record)
            for child in children[i]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    push(child)
        for i in plan.outputs:  # what _collect_outputs reads
            if frames[i] is not None:
                self.handles[i] = _Done(
                    NodeOutcome(success, frames[i], None, 0.0, 0.0, 0.0, 0, None, None)
                )

    def _drifted(self, i: int, record: NodeReport) -> bool:
        """The lean loop's drift check of source ``i``: True when it failed the node
        (``drift='fail'``: nothing else starts, so nothing is written)."""
        assert self.memory is not None
        error = self.memory.check_drift(i, record.column_index, record.column_dtypes)
        if error is None:
            return False
        self.stopping = True
        record.status, record.error = Status.FAILURE, error
        record.rows_out = record.column_index = record.column_dtypes = None
        return True

    def _settle_without_running(self, i: int, ready: deque[int]) -> bool:
        """Skip a node whose parents did not all succeed, or use a supplied frame."""
        plan, records = self.plan, self.records
        for p in plan.parents[i]:
            if records[p].status is not Status.SUCCESS:
                why = records[p].status.lower()
                self._skip(i, f"skipped because parent {plan.names[p]!r} {why}", ready)
                return True
        if self.stopping:
            self._skip(i, "not started: fail_fast stopped the run", ready)
            return True
        if self.memory is not None and self.memory.restores(i):
            self._restore(i, ready)
            return True
        if not self.supplied:
            return False
        name = plan.names[i]
        if name in self.supplied:
            frame = self.supplied[name]
            outcome = NodeOutcome(
                Status.SUCCESS, frame, None, 0.0, 0.0, 0.0, 0, len(frame), frame.columns,
                dtypes_of(frame),
            )  # fmt: skip
            record = self.records[i]
            record.supplied = True
            handle = self.executor.done_handle(outcome)
            self._record(i, outcome, handle, ready)
            return True
        return False

    def _restore(self, i: int, ready: deque[int]) -> None:
        """Node ``i`` from its checkpoint (a resumed run): SUCCESS, restored, not run."""
        assert self.memory is not None
        record = self.records[i]
        record.restored = True
        try:
            frame = self.memory.restore(i)
        except Exception as exc:
            error = PipeError(record.name, scrub(f"checkpoint could not be read: {exc}"))
            outcome = NodeOutcome(Status.FAILURE, None, error, 0.0, 0.0, 0.0, 0, None, None)
            self._record(i, outcome, self.executor.done_handle(outcome), ready)
            return
        if frame is None:  # nothing downstream runs: no need to read it
            outcome = NodeOutcome(Status.SUCCESS, None, None, 0.0, 0.0, 0.0, 0, None, None)
        else:
            outcome = NodeOutcome(
                Status.SUCCESS, frame, None, 0.0, 0.0, 0.0, 0, len(frame), frame.columns,
                dtypes_of(frame),
            )  # fmt: skip
        self._record(i, outcome, self.executor.done_handle(outcome), ready)

    def _submit(self, i: int) -> Any:
        plan, unsubmitted, retained = self.plan, self.unsubmitted, self.retained
        parents = plan.parents[i]
        share = []
        for p in parents:
            unsubmitted[p] -= 1
            share.append(unsubmitted[p] > 0 or retained[p])
        op = plan.nodes[i].op
        if self.memory is not None:
            op = self.memory.prepare(i, op)
        task = NodeTask(i, plan.names[i], op, self.context, tuple(share))
        record = self.records[i]
        record.status = Status.RUNNING
        self._call("before_node", node=record)
        handle = self.executor.submit(
            task, [self.handles[p] for p in parents], self.runtime, self.supplied
        )
        for p in parents:  # a parent may appear twice (a self-join): pop, not del
            if self.unsubmitted[p] == 0 and not self.retained[p]:
                self.handles.pop(p, None)  # released: its last consumer has it now
        return handle

    def _record(self, i: int, outcome: NodeOutcome, handle: Any, ready: deque[int]) -> None:
        if (
            self.memory is not None
            and outcome.status is Status.SUCCESS
            and not self.records[i].restored
        ):
            outcome = self._remember(i, outcome, handle)
        record = self.records[i]
        record.status = outcome.status
        if not record.supplied:
            record.start, record.stop = outcome.start, outcome.stop
            record.duration_s = outcome.duration_s
            record.rows_in = outcome.rows_in
        record.rows_out, record.column_index = outcome.rows_out, outcome.columns
        record.column_dtypes = outcome.dtypes
        record.error = outcome.error
        if outcome.status is Status.SUCCESS and (self.unsubmitted[i] or self.retained[i]):
            self.handles[i] = handle
        if outcome.status is Status.FAILURE:
            self.failed = True
            if self.first_error is None and outcome.error is not None:
                self.first_error = str(outcome.error)
            if self.fail_fast:
                self.stopping = True
        self._call("after_node", node=record)
        self._release_children(i, ready)

    def _remember(self, i: int, outcome: NodeOutcome, handle: Any) -> NodeOutcome:
        memory = self.memory
        assert memory is not None
        if not memory.wants(i):
            return outcome
        error = memory.check_drift(i, outcome.columns, outcome.dtypes)
        if error is not None:
            self.stopping = True  # drift='fail': nothing else starts, so nothing is written
        elif memory.needs_frame(i):
            frame = outcome.frame if outcome.frame is not None else self.executor.fetch(handle)
            error = memory.observe(i, frame)
        if error is None:
            return outcome
        return NodeOutcome(
            Status.FAILURE, None, error, outcome.start, outcome.stop, outcome.duration_s,
            outcome.rows_in, None, None,
        )  # fmt: skip

    def _skip(self, i: int, reason: str, ready: deque[int]) -> None:
        record = self.records[i]
        record.status = Status.SKIPPED
        record.error = PipeError(record.name, reason)
        for p in self.plan.parents[i]:
            self.unsubmitted[p] -= 1
            if self.unsubmitted[p] == 0 and not self.retained[p]:
                self.handles.pop(p, None)
        self._call("after_node", node=record)
        self._release_children(i, ready)

    def _release_children(self, i: int, ready: deque[int]) -> None:
        for child in self.children[i]:
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                ready.append(child)

    def _call(self, method: str, **kwargs: Any) -> None:
        bound = self.hooks.bound[method]
        if not bound:
            return
        try:
            for hook in bound:
                hook(run=self.context, report=self.report, **kwargs)
        except Exception as exc:
            raise _HookFailed(f"hook {method}", exc) from exc

    def _abort(self, reason: str) -> None:
        reason = scrub(reason)  # a hook's or an interrupt's text may quote a secret
        if self.first_error is None:
            self.first_error = reason
        for record in self.records:
            if record.status in (Status.QUEUED, Status.RUNNING):
                record.status = Status.SKIPPED
                record.error = PipeError(record.name, reason)
        self.report.status = Status.FAILURE

    def _collect_outputs(self) -> None:
        report, plan = self.report, self.plan
        for i in plan.outputs:
            if self.records[i].status is Status.SUCCESS and i in self.handles:
                try:
                    report.outputs[plan.names[i]] = self.executor.fetch(self.handles[i])
                except Exception as exc:  # a lost worker, say: report it, keep the rest
                    self.records[i].status = Status.FAILURE
                    self.failed = True
                    self.records[i].error = PipeError(
                        plan.names[i], scrub(f"could not fetch: {exc}")
                    )
                    if self.first_error is None:
                        self.first_error = str(self.records[i].error)

    def _finish(self) -> None:
        report = self.report
        self.handles.clear()
        self.inline_frames = []
        if self.failed or report.status is Status.FAILURE:
            report.status = Status.FAILURE
            report.error = self.first_error or "a node failed"
        else:
            report.status = Status.SUCCESS
        report.finished_at = self.runtime.clock()
