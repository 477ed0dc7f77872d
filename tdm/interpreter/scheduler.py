"""The scheduler of one run: ready nodes to the executor, outcomes into the report, hooks.

Two loops share one set of semantics (pinned by ``tests/interpreter/test_lean_loop.py``): the
general loop (any executor: tasks, handles, outcomes) and the sequential executor's lean loop
over a :mod:`compiled <tdm.interpreter.compiled>` plan.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import pandas as pd
from returns.result import Success

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.pipe import PipeError, Skip
from tdm.core.pipeline import Pipeline
from tdm.effects.logging import RUN_CONTEXT
from tdm.effects.secrets import scrub
from tdm.interpreter.compiled import _BLOCKS, _compiled, _shape
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
)
from tdm.interpreter.hooks import Hook, overrides
from tdm.interpreter.memory import RunMemory
from tdm.interpreter.report import NodeReport, RunReport, Status
from tdm.interpreter.runtime import Runtime

log = logging.getLogger("tdm.run")


def _ignores_step_success(hook: Hook) -> bool:
    return bool(getattr(hook, "ignores_step_success", False))


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
        # The after_node hooks that want a pure step's success (NodeLoggingHook below DEBUG
        # does not): a chain of 1,000s of steps calls no hook that would return at once.
        self.after_step_success = [
            h.after_node for h in self.by_method["after_node"] if not _ignores_step_success(h)
        ]

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
        step_hooks = self.hooks.after_step_success
        quiet_steps = len(step_hooks) < len(after_hooks)
        report = self.report
        call = self._call
        memory = self.memory
        watched = memory.baseline if memory is not None else {}  # sources checked for drift

        def after(record: NodeReport, hooks: list[Any] = after_hooks) -> None:
            try:
                for hook in hooks:
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
                if quiet_steps and record.status is success and record.kind != "effect":
                    if step_hooks:
                        after(record, step_hooks)
                else:
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
