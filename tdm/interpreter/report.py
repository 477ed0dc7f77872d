"""What a run produced: per-node records and the overall :class:`RunReport`."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pandas as pd

from tdm._types import Frame
from tdm.core.pipe import PipeError
from tdm.errors import RunError

__all__ = ["NodeLayout", "NodeMap", "NodeReport", "RunReport", "Status"]


class Status(StrEnum):
    """Status of a node or a run."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"


class NodeMap(dict[str, "NodeReport"]):
    """``report.nodes``: node records by unique name, refusing ambiguous auto-names.

    A step used twice without ``.named(...)`` gets ``name`` and ``name_2``; ``nodes["name"]``
    then fails and lists both instead of silently meaning the first one.
    """

    __slots__ = ("ambiguous", "layout")

    def __init__(
        self,
        records: Mapping[str, NodeReport] = {},
        *,
        ambiguous: Mapping[str, tuple[str, ...]] | None = None,
        layout: NodeLayout | None = None,
    ) -> None:
        super().__init__(records)
        self.ambiguous: Mapping[str, tuple[str, ...]] = ambiguous or {}
        self.layout = layout
        """What every run of the same pipeline shares about these records (set by
        ``tdm.run``); observers use it instead of reading it from each record."""

    def layout_of_records(self) -> NodeLayout | None:
        """:attr:`layout` if it still describes these records (same names, same order)."""
        layout = self.layout
        if layout is None or len(layout.names) != len(self) or list(self) != layout.names:
            return None
        return layout

    def __getitem__(self, name: str) -> NodeReport:
        if self.ambiguous and name in self.ambiguous:
            names = ", ".join(repr(n) for n in self.ambiguous[name])
            raise KeyError(
                f"{name!r} is ambiguous: {len(self.ambiguous[name])} steps were auto-named from "
                f"it ({names}); use one of those names, or give the steps names with "
                ".named('...')"
            )
        return super().__getitem__(name)

    def exact(self, name: str) -> NodeReport:
        """The record of the node whose unique name is ``name`` (no ambiguity check)."""
        return dict.__getitem__(self, name)


class NodeLayout:
    """The per-pipeline part of a run's node records, computed once per pipeline value:
    names, kinds and parents as positions (what the audit trail's node table repeats for
    every run), and a cache of their encodings for the audit store.

    >>> layout = NodeLayout.of([("x", "argument", "x", ()), ("f", "pipe", "f()", ("x",))])
    >>> layout.parents, layout.roots
    ([[], [0]], (0,))
    """

    __slots__ = ("encoded", "kinds", "names", "parents", "roots")

    def __init__(
        self, names: list[str], kinds: list[str], parents: list[list[int]], roots: tuple[int, ...]
    ) -> None:
        self.names = names
        self.kinds = kinds
        self.parents = parents
        self.roots = roots
        self.encoded: dict[str, str] = {}

    @classmethod
    def of(cls, rows: Sequence[tuple[str, str, str, tuple[str, ...]]]) -> NodeLayout:
        """The layout of report rows ``(name, kind, description, parent names)``."""
        position = {name: i for i, (name, *_) in enumerate(rows)}
        parents = [[position[p] for p in ps if p in position] for _, _, _, ps in rows]
        return cls(
            [name for name, *_ in rows],
            [kind for _, kind, _, _ in rows],
            parents,
            tuple(i for i, (*_, ps) in enumerate(rows) if not ps),
        )


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(slots=True)
class NodeReport:
    """The record of one node in one run (updated live while the run goes on).

    Attributes:
        name: the node's unique name in the pipeline.
        kind: ``"pipe"``, ``"effect"`` or ``"argument"``.
        description: the step or effect as text (never a secret).
        parents: names of the parent nodes.
        status: QUEUED, RUNNING, SUCCESS, FAILURE or SKIPPED.
        start / stop: epoch seconds (see ``started_at`` / ``finished_at`` for datetimes).
        duration_s: seconds spent in the node's body or handler.
        rows_in / rows_out: rows of the input frames (summed) and of the output frame.
        column_index: the output frame's columns (see ``columns`` for names).
        column_dtypes: the output frame's dtypes, one per column (see ``dtypes``).
        error: the failure, or the reason for a skip.
        supplied: whether the frame came from ``tdm.run(inputs=...)`` instead of the node.
        restored: whether the output came from a checkpoint (a resumed run) instead of the
            node running.
    """

    name: str
    kind: str
    description: str
    parents: tuple[str, ...] = ()
    status: Status = Status.QUEUED
    start: float | None = None
    stop: float | None = None
    duration_s: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    column_index: Any = None
    error: PipeError | None = None
    supplied: bool = False
    column_dtypes: Any = None
    restored: bool = False

    @property
    def dtypes(self) -> tuple[str, ...] | None:
        """The output frame's dtypes as text, one per column (None without a frame)."""
        if self.column_dtypes is None:
            return None
        return tuple(str(d) for d in self.column_dtypes)

    @property
    def columns(self) -> tuple[str, ...] | None:
        """The output frame's column names (None when the node produced no frame)."""
        if self.column_index is None:
            return None
        return tuple(str(c) for c in self.column_index)

    @property
    def started_at(self) -> datetime | None:
        """When the node started, timezone-aware UTC."""
        return _when(self.start)

    @property
    def finished_at(self) -> datetime | None:
        """When the node finished, timezone-aware UTC."""
        return _when(self.stop)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of this record."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "parents": list(self.parents),
            "status": str(self.status),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "columns": list(self.columns) if self.columns is not None else None,
            "error": self.error.message if self.error else None,
            "restored": self.restored,
        }


@dataclass(slots=True)
class RunReport:
    """The outcome of ``tdm.run``: overall status, per-node records, output frames.

    Attributes:
        run_id / job_id / pipeline_id: identifiers of this run.
        status: SUCCESS when no node failed, otherwise FAILURE.
        started_at / finished_at: timezone-aware UTC datetimes.
        nodes: records by node name, in execution order.
        outputs: frames of the pipeline's output nodes, by name.
        error: a one-line summary of what failed, or None.
        params: the user parameters of the run.
        executor: the executor's name.
        pipeline_name: a human name for the pipeline (audit trail, alerts, logs).
        hook_errors: what observers (audit store, alerters, user hooks) failed to do.
        cursors: the incremental cursors this run committed, by node (empty if none or if
            the run failed: then the cursors stay where they were).
        resumed_from: the run this one resumed, if any.
        drift: schema changes against the previous successful run (see ``tdm.run(drift=)``).
        audit_saved: whether the run's audit record was saved: True, False (the reason is in
            ``hook_errors``), or None when the runtime has no audit store.
    """

    run_id: str
    job_id: str
    pipeline_id: str
    started_at: datetime
    nodes: dict[str, NodeReport]
    status: Status = Status.RUNNING
    finished_at: datetime | None = None
    outputs: dict[str, Frame] = field(default_factory=dict)
    output_names: tuple[str, ...] = ()
    error: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    executor: str = "sequential"
    hook_errors: list[str] = field(default_factory=list)
    pipeline_name: str = ""
    cursors: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    drift: list[str] = field(default_factory=list)
    audit_saved: bool | None = None

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status is Status.SUCCESS

    @property
    def duration_s(self) -> float | None:
        """Wall time of the run in seconds."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def output(self) -> Frame:
        """The frame of the single output node; a clear error if there is none or several."""
        if len(self.output_names) != 1:
            raise RunError(
                f"this run has {len(self.output_names)} outputs "
                f"({', '.join(self.output_names)}); use report.outputs['name']",
                run_id=self.run_id,
            )
        name = self.output_names[0]
        if name not in self.outputs:
            node = self.nodes.exact(name) if isinstance(self.nodes, NodeMap) else self.nodes[name]
            why = f": {self.error}" if self.error else ""
            raise RunError(
                f"output {name!r} was not produced (status {node.status}){why}; "
                "see report.nodes or report.to_frame()",
                run_id=self.run_id,
            )
        return self.outputs[name]

    @property
    def restored(self) -> list[str]:
        """The nodes restored from checkpoints (a resumed run)."""
        return [n.name for n in self.nodes.values() if n.restored]

    @property
    def failed(self) -> list[NodeReport]:
        """The nodes that failed."""
        return [n for n in self.nodes.values() if n.status is Status.FAILURE]

    def raise_for_status(self) -> RunReport:
        """Raise :class:`~tdm.errors.RunError` if the run failed; return self otherwise."""
        if not self.ok:
            raise RunError(f"run {self.run_id} failed: {self.error}", run_id=self.run_id)
        return self

    def to_frame(self) -> pd.DataFrame:
        """One row per node: status, timings, rows and errors."""
        rows = [n.as_dict() for n in self.nodes.values()]
        columns = [
            "name", "kind", "status", "started_at", "finished_at", "duration_s",
            "rows_in", "rows_out", "error", "description",
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=columns)
        for col in ("started_at", "finished_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        return frame

    def summary(self, *, errors: bool = True) -> str:
        """A short human summary of the run (``errors=False``: without the error text)."""
        statuses = [n.status for n in self.nodes.values()]
        counts = {str(s): statuses.count(s) for s in dict.fromkeys(statuses)}  # seen order
        parts = ", ".join(f"{v} {k.lower()}" for k, v in counts.items())
        took = f" in {self.duration_s:.3f}s" if self.duration_s is not None else ""
        text = f"run {self.run_id} {self.status}{took}: {parts}"
        return text + (f"; {self.error}" if self.error and errors else "")

    def __repr__(self) -> str:
        return f"<RunReport {self.summary()}>"

    def _repr_html_(self) -> str:
        colour = {"SUCCESS": "#2e7d32", "FAILURE": "#c62828", "SKIPPED": "#9e9e9e"}
        rows = []
        for n in self.nodes.values():
            c = colour.get(str(n.status), "#555")
            dur = f"{n.duration_s * 1000:.1f} ms" if n.duration_s is not None else ""
            err = html.escape(n.error.message) if n.error else ""
            rows.append(
                f"<tr><td>{html.escape(n.name)}</td>"
                f"<td style='color:{c};font-weight:bold'>{n.status}</td>"
                f"<td>{dur}</td><td>{'' if n.rows_in is None else n.rows_in}</td>"
                f"<td>{'' if n.rows_out is None else n.rows_out}</td><td>{err}</td></tr>"
            )
        head = html.escape(self.summary(errors=False))  # the table below shows each error
        page = html.escape(self.to_html(), quote=True)
        return (
            f"<div><b>{head}</b><div>{self.to_svg()}</div><table><thead><tr><th>node</th><th>status</th>"
            "<th>duration</th><th>rows in</th><th>rows out</th><th>error</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            "<details><summary>run page: graph and timeline</summary>"
            f'<iframe title="run page" sandbox srcdoc="{page}" '
            'style="width:100%;height:640px;border:1px solid #ddd"></iframe></details></div>'
        )

    def to_svg(self) -> str:
        """The run's DAG as inline SVG, each node coloured by its status (errors scrubbed)."""
        from tdm.interpreter.observe import run_record
        from tdm.ui.model import node_views
        from tdm.ui.svg import dag_svg

        return dag_svg(node_views(run_record(self, None)))

    def to_html(self) -> str:
        """This run's page from the run browser (graph, nodes, timeline) as one
        self-contained HTML document, secrets scrubbed; ``_repr_html_`` embeds it."""
        from tdm.interpreter.observe import run_record
        from tdm.ui.report import record_html

        return record_html(run_record(self, None))
