"""What the pages show, read defensively from audit records.

Records written by older or newer versions of tdm differ: a field may be missing (parents of
nodes, counts, links between a resumed run and its origin) or new. Everything here asks a
record for what it has and shows what is there; nothing assumes a field exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from tdm.effects.secrets import REDACTED, scrub
from tdm.effects.state import NodeRecord, RunRecord

__all__ = [
    "NodeView",
    "SchemaChange",
    "day_bounds",
    "drift",
    "duration_text",
    "node_views",
    "param_items",
    "resumed_from",
    "schema_changes",
    "time_text",
]

_SECRETISH: Final = re.compile(r"pass|secret|token|key|credential|auth|cookie", re.IGNORECASE)

_RESUME_FIELDS: Final = ("resumed_from", "resumed_from_run", "resume_of", "origin_run_id")


def resumed_from(run: RunRecord) -> str | None:
    """The run this one resumed, when the record says so (newer records only).

    >>> resumed_from(RunRecord("r2", "p", "SUCCESS", "2026-01-01T00:00:00+00:00")) is None
    True
    """
    for name in _RESUME_FIELDS:
        value = getattr(run, name, None)
        if value:
            return str(value)
    return None


def param_items(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's parameters as text, values of secret-looking names hidden.

    >>> param_items({"day": "2026-01-01", "api_token": "abc"})
    [('day', '2026-01-01'), ('api_token', '***')]
    """
    out = []
    for key, value in params.items():
        text = REDACTED if _SECRETISH.search(str(key)) else scrub(str(value))
        out.append((scrub(str(key)), text))
    return out


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time from a record (None when missing or unreadable)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def time_text(text: str | None) -> str:
    """A record's time for people: ``2026-11-29 22:36:35 UTC``.

    >>> time_text("2026-11-29T22:36:35.123456+00:00")
    '2026-11-29 22:36:35 UTC'
    >>> time_text(None)
    ''
    """
    when = parse_time(text)
    if when is None:
        return text or ""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_text(seconds: float | None) -> str:
    """A duration for people.

    >>> [duration_text(s) for s in (None, 0.0123, 3.21, 125.0, 7322.0)]
    ['', '12 ms', '3.21 s', '2 min 5 s', '2 h 2 min']
    """
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def day_bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """Store bounds for a date filter: ``since`` from its day's start, ``until`` through its day.

    ``ValueError`` names the field that is not a ``YYYY-MM-DD`` date.

    >>> day_bounds("2026-11-01", "2026-11-29")
    ('2026-11-01T00:00:00.000000+00:00', '2026-11-30T00:00:00.000000+00:00')
    """

    def parse(name: str, text: str | None) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} must be a date like 2026-11-29, got {text!r}") from None

    low, high = parse("from", since), parse("to", until)

    def stamp(day: date) -> str:
        return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(timespec="microseconds")

    return (
        stamp(low) if low else None,
        stamp(high + timedelta(days=1)) if high else None,
    )


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node of a run, as the run page shows it."""

    index: int
    name: str
    kind: str
    status: str
    description: str
    parents: tuple[int, ...] | None
    start: datetime | None
    stop: datetime | None
    duration_s: float | None
    rows_in: int | None
    rows_out: int | None
    columns: tuple[str, ...] | None
    dtypes: tuple[str, ...] | None
    schema: str | None
    error: str | None
    restored: bool = False
    """Taken from a checkpoint instead of run (records of resumed runs only)."""


def drift(run: RunRecord) -> tuple[str, ...]:
    """The schema drift the run noted, when the record has it (newer records only)."""
    found = getattr(run, "drift", None) or ()
    return tuple(scrub(str(d)) for d in found)


def _descriptions(plan: str, names: Sequence[str]) -> dict[str, str]:
    """Each node's description from the plan text (``<tree prefix>name: description`` lines)."""
    wanted = set(names)
    found: dict[str, str] = {}
    for line in plan.splitlines():
        # the tree prefix is made of these characters only; try each place the label may start
        for start in range(len(line)):
            rest = line[start:]
            name, sep, desc = rest.partition(": ")
            if sep and name in wanted and name not in found:
                found[name] = desc
                break
            if line[start] not in "|`- ":
                break
    return found


def node_views(run: RunRecord) -> list[NodeView]:
    """The run's nodes, in execution order, with parents as positions (None if unrecorded)."""
    records: Sequence[NodeRecord] = run.nodes
    names = [n.name for n in records]
    position = {name: i for i, name in enumerate(names)}
    described = _descriptions(run.plan or "", names)
    out = []
    for i, n in enumerate(records):
        parents = getattr(n, "parents", None)
        out.append(
            NodeView(
                index=i,
                name=n.name,
                kind=n.kind or "",
                status=n.status or "",
                description=scrub(described.get(n.name, "")),
                parents=(
                    None
                    if parents is None
                    else tuple(position[p] for p in parents if p in position)
                ),
                start=parse_time(n.started_at),
                stop=parse_time(n.finished_at),
                duration_s=n.duration_s,
                rows_in=n.rows_in,
                rows_out=n.rows_out,
                columns=n.columns,
                dtypes=n.dtypes,
                schema=n.schema,
                error=scrub(n.error) if n.error else None,
                restored=bool(getattr(n, "restored", False)),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """Nodes whose output schema changed the same way since the previous run of the pipeline."""

    run_id: str
    previous_run_id: str
    started_at: str
    nodes: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    retyped: tuple[str, ...]


def _shape(run: RunRecord) -> dict[str, tuple[str | None, dict[str, str]]]:
    out: dict[str, tuple[str | None, dict[str, str]]] = {}
    for n in run.nodes:
        if n.schema is None:
            continue
        types = dict(zip(n.columns or (), n.dtypes or (), strict=False))
        out[n.name] = (n.schema, types)
    return out


def _diff(
    old: dict[str, str], new: dict[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    return (
        tuple(c for c in new if c not in old),
        tuple(c for c in old if c not in new),
        tuple(f"{c}: {old[c]} -> {t}" for c, t in new.items() if c in old and old[c] != t),
    )


def schema_changes(runs: Iterable[RunRecord]) -> list[SchemaChange]:
    """Schema changes between consecutive runs (newest first); nodes that changed the same
    way in the same run are one change.

    ``runs`` are records of one pipeline with their nodes, in any order.
    """
    ordered = sorted(runs, key=lambda r: r.started_at)
    changes: list[SchemaChange] = []
    previous: RunRecord | None = None
    before: dict[str, tuple[str | None, dict[str, str]]] = {}
    for run in ordered:
        now = _shape(run)
        if previous is not None:
            grouped: dict[tuple[tuple[str, ...], ...], list[str]] = {}
            for node, (fp, types) in now.items():
                old = before.get(node)
                if old is not None and old[0] != fp:
                    grouped.setdefault(_diff(old[1], types), []).append(node)
            for (added, removed, retyped), nodes in grouped.items():
                changes.append(
                    SchemaChange(
                        run_id=run.run_id,
                        previous_run_id=previous.run_id,
                        started_at=run.started_at,
                        nodes=tuple(nodes),
                        added=added,
                        removed=removed,
                        retyped=retyped,
                    )
                )
        if now:
            previous, before = run, now
    changes.reverse()
    return changes
