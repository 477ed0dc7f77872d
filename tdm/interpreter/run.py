"""``tdm.run``: the effects interpreter that executes a pipeline and reports on it."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.inputs import Input
from tdm.core.pipe import Op
from tdm.core.pipeline import ARGUMENT, Pipeline
from tdm.core.pushdown import optimize as optimized
from tdm.errors import DefinitionError, InputError
from tdm.interpreter.drift import check_policy
from tdm.interpreter.executors import (
    Executor,
    resolve,
)
from tdm.interpreter.hooks import Hook
from tdm.interpreter.memory import memory_for
from tdm.interpreter.observe import AlertHook, LoggingHook, StateHook
from tdm.interpreter.progress import progress_hook
from tdm.interpreter.report import NodeLayout, NodeMap, NodeReport, RunReport
from tdm.interpreter.runtime import Runtime
from tdm.interpreter.scheduler import _Hooks, _Scheduler

__all__ = ["run"]


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
        optimize: push column pruning and a following filter's conditions into CSV and
            parquet reads (:mod:`tdm.core.pushdown`; ``pipeline.explain()`` shows what);
            ``False`` runs the plan exactly as written. The outputs are the same either way.

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
    rows, ambiguous, layout = _report_rows(shown)
    nodes = NodeMap(
        {
            name: NodeReport(name, kind, description, parents)
            for name, kind, description, parents in rows
        },
        ambiguous=ambiguous,
        layout=layout,
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


_Rows = list[tuple[str, str, str, tuple[str, ...]]]
_ROWS: weakref.WeakKeyDictionary[Pipeline, tuple[_Rows, dict[str, tuple[str, ...]], NodeLayout]] = (
    weakref.WeakKeyDictionary()
)


def _report_rows(pipeline: Pipeline) -> tuple[_Rows, dict[str, tuple[str, ...]], NodeLayout]:
    """Per node: name, kind, description, parent names; the ambiguous auto-names; the
    layout every run of the pipeline shares (computed once per pipeline value)."""
    cached = _ROWS.get(pipeline)
    if cached is None:
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
        cached = _ROWS[pipeline] = (rows, plan.ambiguous_names(), NodeLayout.of(rows))
    return cached


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
