"""What a run remembers from earlier runs of its pipeline, and what it leaves for later ones.

The scheduler holds a :class:`RunMemory` only when a run needs one (an incremental source, a
resume, checkpoints, a drift policy), so an ordinary run pays one ``is None`` test per node.

* Incremental cursors: before an incremental source runs, its ``{cursor}`` is filled in from the
  audit store (or its ``initial`` value); after it ran, the new cursor is read off its frame.
  The new cursors are committed to the store only when the whole run succeeded, i.e. after
  every write published, and before the run's audit record is written.
* The previous successful run of the pipeline (its id is given to steps in ``RunContext``).
* Checkpoints (:mod:`tdm.interpreter.resume`): finished nodes' outputs are saved; a resumed
  run restores them instead of running the nodes.
* Schema drift (:mod:`tdm.interpreter.drift`): sources' schemas against the last success.

Effects and core know nothing of this: a source gets its cursor as a filled-in request.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from tdm._types import Frame
from tdm.core.incremental import Incremental, next_cursor
from tdm.core.pipe import Op, PipeError
from tdm.core.pipeline import Pipeline
from tdm.effects.checkpoints import CheckpointStore
from tdm.effects.secrets import scrub
from tdm.errors import InputError
from tdm.interpreter.compiled import _compiled
from tdm.interpreter.drift import schema_changes
from tdm.interpreter.report import RunReport, Status
from tdm.interpreter.resume import Resume
from tdm.interpreter.runtime import Runtime

if TYPE_CHECKING:  # the audit store (sqlite3) loads only when a run has one
    from tdm.effects.state import RunRecord, StateStore

__all__ = ["Remembered", "RunMemory", "has_incremental", "incremental_of", "memory_for", "recall"]

log = logging.getLogger("tdm.run")


FILES: Final = "files"
"""The cursor kind of an incremental file read: the files read so far, path -> version."""


def incremental_of(op: Op) -> Incremental | str | None:
    """The cursor spec of a node: an :class:`Incremental` for a REST source, :data:`FILES` for
    an incremental file read, None for every other node."""
    spec = getattr(op, "incremental", None)
    if isinstance(spec, Incremental):
        return spec
    return FILES if spec is True else None


class Remembered:
    """What the store knows about a pipeline before a run: last success and cursors."""

    __slots__ = ("cursors", "previous", "previous_run_id", "store")

    def __init__(
        self,
        store: StateStore | None,
        previous: RunRecord | None,
        cursors: Mapping[str, Any],
    ) -> None:
        self.store = store
        self.previous = previous
        self.previous_run_id = previous.run_id if previous is not None else None
        self.cursors = dict(cursors)


def recall(
    runtime: Runtime, pipeline_id: str, *, cursors: bool, schemas: bool = False
) -> Remembered:
    """Read the pipeline's last successful run (and its cursors when ``cursors``).

    A store that cannot be read leaves a run without memory for cursors: that is an error
    (the run would re-read everything, or worse, skip), so it is raised, not logged.
    """
    state = runtime.state
    if state is None:
        if cursors:
            raise InputError(
                "an incremental source keeps its cursor in the audit store, and this runtime "
                "has none: pass tdm.Runtime(state=tdm.state.sqlite()) (or files/memory)"
            )
        return Remembered(None, None, {})
    from tdm.effects.state import StateStore

    if not isinstance(state, StateStore):  # the audit hook says what is wrong with it
        return Remembered(None, None, {})
    store = state.using(runtime.secrets)
    previous = None
    try:
        if schemas:
            previous = store.last_schemas(pipeline_id)
        else:
            last = store.runs(pipeline=pipeline_id, status="SUCCESS", limit=1, nodes=False)
            previous = last[0] if last else None
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
    """The per-run side of cursors and checkpoints (see the module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        remembered: Remembered,
        resume: Resume | None = None,
        keep_checkpoints: bool = False,
    ) -> None:
        plan = pipeline.plan
        self.remembered = remembered
        self.resume = resume
        self.keep_checkpoints = keep_checkpoints
        self.specs: dict[int, Incremental | str] = {}
        for i, node in enumerate(plan.nodes if has_incremental(pipeline) else ()):
            spec = incremental_of(node.op)
            if spec is not None:
                self.specs[i] = spec
        self.names = plan.names
        self.pending: dict[str, Any] = {}
        self.problems: list[str] = []
        self.drift_policy: str = "ignore"
        self.baseline: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.kept: dict[int, frozenset[str]] = {}
        self.drift: list[str] = []

    def watch_drift(self, pipeline: Pipeline, policy: str) -> None:
        """Compare the sources' schemas with the previous successful run's, per ``policy``."""
        previous = self.remembered.previous
        if policy == "ignore" or previous is None:
            return
        self.drift_policy = policy
        plan = pipeline.plan
        roots = _compiled(pipeline).roots  # the sources: nodes without parents
        before = previous.node_schemas([plan.names[i] for i in roots])
        for i in roots:
            shape = before.get(plan.names[i])
            if shape is not None and shape[0]:
                columns, dtypes = shape
                baseline = (columns, dtypes or ("?",) * len(columns))
                keep = getattr(plan.nodes[i].op, "keep_columns", None)
                if keep is not None:  # a pruned read: only the columns it reads are compared
                    self.kept[i] = frozenset(keep)
                    baseline = _only(baseline, self.kept[i])
                self.baseline[i] = baseline

    def check_drift(self, i: int, columns: Any, dtypes: Any) -> PipeError | None:
        """Node ``i``'s schema against the baseline: recorded (warn) or an error (fail)."""
        before = self.baseline.get(i)
        if before is None or columns is None or len(columns) == 0:
            return None  # nothing read (an incremental source with nothing new): no schema
        after = (
            tuple(str(c) for c in columns),
            tuple(str(d) for d in dtypes) if dtypes is not None else ("?",) * len(columns),
        )
        if i in self.kept:
            after = _only(after, self.kept[i])
        changes = schema_changes(before, after)
        if not changes:
            return None
        name = self.names[i]
        since = self.remembered.previous_run_id
        text = f"{name}: {', '.join(changes)} (since run {since})"
        self.drift.append(text)
        if self.drift_policy == "fail":
            return PipeError(
                name,
                f"schema drift: {', '.join(changes)} since the last successful run {since}; "
                "nothing was written (drift='fail'); adapt the pipeline, or run with "
                "drift='warn' to accept the new schema",
            )
        log.warning("schema drift in %s", text, extra={"event": "schema_drift", "node": name})
        return None

    def cursor(self, i: int) -> Any:
        """The cursor node ``i`` starts from: the stored one, else its ``initial``."""
        name = self.names[i]
        stored = self.remembered.cursors.get(name)
        if stored is not None:
            return stored
        spec = self.specs[i]
        return spec.initial if isinstance(spec, Incremental) else {}

    def prepare(self, i: int, op: Op) -> Op:
        """The op to run for node ``i``: an incremental source gets its cursor filled in."""
        if i not in self.specs:
            return op
        fill = getattr(op, "with_cursor", None)
        if fill is None:
            raise TypeError(f"{type(op).__name__} cannot take an incremental cursor")
        filled: Op = fill(self.cursor(i))
        return filled

    def drift_only(self) -> bool:
        """Whether this run's memory only compares source schemas (no cursors, no resume)."""
        return self.resume is None and not self.specs

    def wants(self, i: int) -> bool:
        """Whether node ``i`` is looked at after it ran."""
        return self.resume is not None or i in self.specs or i in self.baseline

    def needs_frame(self, i: int) -> bool:
        """Whether node ``i``'s frame is needed after it ran (not just its schema)."""
        return self.resume is not None or i in self.specs

    def restores(self, i: int) -> bool:
        """Whether node ``i`` comes from its checkpoint instead of running."""
        return self.resume is not None and self.resume.restorable[i]

    def restore(self, i: int) -> Frame | None:
        """Node ``i``'s checkpointed output, if anything needs it (None: nothing does)."""
        assert self.resume is not None
        if not (self.resume.needed[i] or i in self.specs):
            return None
        frame = self.resume.load(i)
        if i in self.specs:
            self._advance(i, frame)
        return frame

    def observe(self, i: int, frame: Frame) -> PipeError | None:
        """After node ``i`` ran: note its cursor, keep its checkpoint. An error if the cursor
        column is missing."""
        if i in self.specs:
            error = self._advance(i, frame)
            if error is not None:
                return error
        if self.resume is not None:
            try:
                self.resume.save(i, frame)
            except Exception as exc:  # a resume would re-run this node: worse, not wrong
                text = scrub(
                    f"checkpoint of {self.names[i]!r} not saved to {self.resume.store.url}: "
                    f"{type(exc).__name__}: {exc}"
                )
                log.warning("%s", text)
                self.problems.append(text)
        return None

    def _advance(self, i: int, frame: Frame) -> PipeError | None:
        spec = self.specs[i]
        name = self.names[i]
        if not isinstance(spec, Incremental):  # files: add the ones this run read
            read = frame.attrs.get("source_versions") or {}
            self.pending[name] = {**dict(self.cursor(i)), **read}
            return None
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
        """After the run: commit the new cursors if it succeeded (a failed commit fails the
        run), then drop the pipeline's checkpoints unless they are kept."""
        report.hook_errors.extend(self.problems)
        report.drift = list(self.drift)
        if report.status is not Status.SUCCESS:
            return
        if self.pending:
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
        if self.resume is not None and not self.keep_checkpoints:
            try:
                self.resume.clear()
            except Exception as exc:
                text = scrub(f"checkpoints of {report.pipeline_id} not removed: {exc}")
                log.warning("%s", text)
                report.hook_errors.append(text)


_INCREMENTAL: weakref.WeakKeyDictionary[Pipeline, bool] = weakref.WeakKeyDictionary()


def _only(
    schema: tuple[Sequence[str], Sequence[str]], keep: frozenset[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    pairs = [(c, d) for c, d in zip(*schema, strict=False) if c in keep]
    return tuple(c for c, _ in pairs), tuple(d for _, d in pairs)


def has_incremental(pipeline: Pipeline) -> bool:
    """Whether any node of ``pipeline`` is an incremental source (computed once per value)."""
    found = _INCREMENTAL.get(pipeline)
    if found is None:
        found = any(incremental_of(n.op) is not None for n in pipeline.plan.nodes)
        _INCREMENTAL[pipeline] = found
    return found


def memory_for(
    pipeline: Pipeline,
    runtime: Runtime,
    pipeline_id: str,
    run_id: str,
    supplied: Mapping[str, Frame],
    resume: str | None = None,
    drift: str = "warn",
) -> tuple[Remembered, RunMemory | None]:
    """What the store remembers of ``pipeline_id``, and the run's memory if it needs one."""
    cursors = has_incremental(pipeline)
    remembered = recall(runtime, pipeline_id, cursors=cursors, schemas=drift != "ignore")
    store = checkpoint_store(runtime)
    if resume is not None and store is None:
        raise InputError(
            "resume= restores finished nodes from checkpoints, and this runtime keeps none: "
            "pass tdm.Runtime(checkpoints='file:///var/tdm/ckpt') (any fsspec URL) to the run "
            "that may fail and to its resume (tdm run --checkpoints URL)"
        )
    checkpoints = None
    if store is not None:
        checkpoints = Resume(pipeline, store, pipeline_id, run_id, supplied, resume)
    watch = drift != "ignore" and remembered.previous is not None
    if not cursors and checkpoints is None and not watch:
        return remembered, None
    keep = bool(runtime.keep_checkpoints)
    memory = RunMemory(pipeline, remembered, checkpoints, keep)
    memory.watch_drift(pipeline, drift)
    return remembered, memory


def checkpoint_store(runtime: Runtime) -> CheckpointStore | None:
    """The runtime's checkpoint location as a store (None: no checkpoints)."""
    where = runtime.checkpoints
    if where is None:
        return None
    store = where if isinstance(where, CheckpointStore) else CheckpointStore(str(where))
    return store.using(runtime.secrets)
