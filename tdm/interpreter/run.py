"""``tdm.run``: the effects interpreter that executes a pipeline and reports on it."""

from __future__ import annotations

import logging
import uuid
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.inputs import Input
from tdm.core.pipe import Op, PipeError
from tdm.core.pipeline import ARGUMENT, Pipeline
from tdm.effects.secrets import scrub
from tdm.errors import DefinitionError, InputError
from tdm.interpreter.drift import check_policy
from tdm.interpreter.executors import Executor, NodeOutcome, NodeTask, dtypes_of, resolve
from tdm.interpreter.hooks import Hook, overrides
from tdm.interpreter.memory import RunMemory, memory_for
from tdm.interpreter.observe import AlertHook, LoggingHook, StateHook
from tdm.interpreter.progress import progress_hook
from tdm.interpreter.report import NodeReport, RunReport, Status
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
    nodes = {
        name: NodeReport(name, kind, description, parents)
        for name, kind, description, parents in _report_rows(pipeline)
    }
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


def _check_inputs(pipeline: Pipeline, inputs: dict[str, Frame]) -> dict[str, Frame]:
    plan = pipeline.plan
    names = set(plan.names)
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
    missing = [
        plan.names[i]
        for i, node in enumerate(plan.nodes)
        if (isinstance(node.op, Input) or node.op is ARGUMENT) and plan.names[i] not in inputs
    ]
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
        self.records = list(report.nodes.values())  # in plan order
        self.children = self.plan.children
        self.waiting = [len(ps) for ps in self.plan.parents]
        self.unsubmitted = list(self.plan.consumers)
        self.retained = [False] * n
        for i in self.plan.outputs:
            self.retained[i] = True
        for i, name in enumerate(self.plan.names):
            if name in supplied:
                self.retained[i] = True
        self.handles: dict[int, Any] = {}
        self.stopping = False
        self.first_error: str | None = None

    def run(self) -> RunReport:
        report, hooks = self.report, self.hooks
        interrupted: BaseException | None = None
        try:
            self.executor.open()
            try:
                self._call("before_run", pipeline=self.pipeline)
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
        for p in parents:
            if self.unsubmitted[p] == 0 and not self.retained[p]:
                del self.handles[p]  # released: its last consumer has it now
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
                    self.records[i].error = PipeError(
                        plan.names[i], scrub(f"could not fetch: {exc}")
                    )
                    if self.first_error is None:
                        self.first_error = str(self.records[i].error)

    def _finish(self) -> None:
        report = self.report
        self.handles.clear()
        failed = any(r.status is Status.FAILURE for r in self.records)
        if failed or report.status is Status.FAILURE:
            report.status = Status.FAILURE
            report.error = self.first_error or "a node failed"
        else:
            report.status = Status.SUCCESS
        report.finished_at = self.runtime.clock()
