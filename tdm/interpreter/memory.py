"""What a run remembers from earlier runs of its pipeline, and what it leaves for later ones.

The scheduler holds a :class:`RunMemory` only when a run needs one (an incremental source, a
resume, checkpoints, a drift policy), so an ordinary run pays one ``is None`` test per node.

* Incremental cursors: before an incremental source runs, its ``{cursor}`` is filled in from the
  audit store (or its ``initial`` value); after it ran, the new cursor is read off its frame.
  The new cursors are committed to the store only when the whole run succeeded, i.e. after
  every write published, and before the run's audit record is written.
* The previous successful run of the pipeline (its id is given to steps in ``RunContext``).

Effects and core know nothing of this: a source gets its cursor as a filled-in request.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from tdm._types import Frame
from tdm.core.incremental import Incremental, next_cursor
from tdm.core.pipe import Op, PipeError
from tdm.core.pipeline import Pipeline
from tdm.effects.secrets import scrub
from tdm.effects.state import StateStore
from tdm.interpreter.report import RunReport, Status
from tdm.interpreter.runtime import Runtime

__all__ = ["Remembered", "RunMemory", "has_incremental", "incremental_of", "memory_for", "recall"]

log = logging.getLogger("tdm.run")


def incremental_of(op: Op) -> Incremental | None:
    """The cursor spec of a node (None for every node that is not an incremental source)."""
    spec = getattr(op, "incremental", None)
    return spec if isinstance(spec, Incremental) else None


class Remembered:
    """What the store knows about a pipeline before a run: last success and cursors."""

    __slots__ = ("cursors", "previous_run_id", "store")

    def __init__(
        self, store: StateStore | None, previous_run_id: str | None, cursors: Mapping[str, Any]
    ) -> None:
        self.store = store
        self.previous_run_id = previous_run_id
        self.cursors = dict(cursors)


def recall(runtime: Runtime, pipeline_id: str, *, cursors: bool) -> Remembered:
    """Read the pipeline's last successful run (and its cursors when ``cursors``).

    A store that cannot be read leaves a run without memory for cursors: that is an error
    (the run would re-read everything, or worse, skip), so it is raised, not logged.
    """
    state = runtime.state
    if state is None:
        if cursors:
            from tdm.errors import InputError

            raise InputError(
                "an incremental source keeps its cursor in the audit store, and this runtime "
                "has none: pass tdm.Runtime(state=tdm.state.sqlite()) (or files/memory)"
            )
        return Remembered(None, None, {})
    store = state.using(runtime.secrets)
    previous = None
    try:
        last = store.runs(pipeline=pipeline_id, status="SUCCESS", limit=1, nodes=False)
        previous = last[0].run_id if last else None
    except Exception as exc:  # history is a convenience for steps; the run goes on
        log.warning(
            "could not read the last successful run of %s from %s: %s",
            pipeline_id, store.describe(), scrub(str(exc)),
        )  # fmt: skip
    values: dict[str, Any] = {}
    if cursors:
        values = {node: rec.value for node, rec in store.cursors(pipeline_id).items()}
    return Remembered(store, previous, values)


class RunMemory:
    """The per-run side of incremental loading (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, remembered: Remembered) -> None:
        plan = pipeline.plan
        self.remembered = remembered
        self.specs: dict[int, Incremental] = {}
        for i, node in enumerate(plan.nodes):
            spec = incremental_of(node.op)
            if spec is not None:
                self.specs[i] = spec
        self.names = plan.names
        self.pending: dict[str, Any] = {}

    def cursor(self, i: int) -> Any:
        """The cursor node ``i`` starts from: the stored one, else its ``initial``."""
        name = self.names[i]
        stored = self.remembered.cursors.get(name)
        return stored if stored is not None else self.specs[i].initial

    def prepare(self, i: int, op: Op) -> Op:
        """The op to run for node ``i``: an incremental source gets its cursor filled in."""
        if i not in self.specs:
            return op
        fill = getattr(op, "with_cursor", None)
        if fill is None:
            raise TypeError(f"{type(op).__name__} cannot take an incremental cursor")
        filled: Op = fill(self.cursor(i))
        return filled

    def wants(self, i: int) -> bool:
        """Whether node ``i``'s frame is needed after it ran."""
        return i in self.specs

    def observe(self, i: int, frame: Frame) -> PipeError | None:
        """Note the cursor node ``i``'s frame reached (committed later); an error if the column
        is missing."""
        spec = self.specs.get(i)
        if spec is None:
            return None
        name = self.names[i]
        if spec.cursor not in frame.columns:
            if len(frame.index) == 0:  # nothing new: no column to read, cursor stays
                self.pending[name] = self.cursor(i)
                return None
            return PipeError(
                name,
                f"incremental cursor column {spec.cursor!r} is not in the records; "
                f"columns are: {', '.join(map(str, frame.columns[:12]))}",
            )
        self.pending[name] = next_cursor(spec, frame[spec.cursor].tolist(), self.cursor(i))
        return None

    def finish(self, report: RunReport, when: str) -> None:
        """Commit the new cursors if the run succeeded; a failed commit fails the run."""
        if not self.pending or report.status is not Status.SUCCESS:
            return
        store = self.remembered.store
        assert store is not None  # recall() refused a run with cursors and no store
        try:
            store.commit_cursors(report.pipeline_id, report.run_id, self.pending, at=when)
        except Exception as exc:
            report.status = Status.FAILURE
            report.error = scrub(
                f"the run's writes published, but its cursors were not saved to "
                f"{store.describe()}: {type(exc).__name__}: {exc}; the next run reads the "
                "same records again (idempotent writes such as mode='upsert' absorb that)"
            )
            return
        report.cursors = dict(self.pending)


_INCREMENTAL: weakref.WeakKeyDictionary[Pipeline, bool] = weakref.WeakKeyDictionary()


def has_incremental(pipeline: Pipeline) -> bool:
    """Whether any node of ``pipeline`` is an incremental source (computed once per value)."""
    found = _INCREMENTAL.get(pipeline)
    if found is None:
        found = any(incremental_of(n.op) is not None for n in pipeline.plan.nodes)
        _INCREMENTAL[pipeline] = found
    return found


def memory_for(
    pipeline: Pipeline, runtime: Runtime, pipeline_id: str
) -> tuple[Remembered, RunMemory | None]:
    """What the store remembers of ``pipeline_id``, and the run's memory if it needs one."""
    cursors = has_incremental(pipeline)
    remembered = recall(runtime, pipeline_id, cursors=cursors)
    return remembered, (RunMemory(pipeline, remembered) if cursors else None)
