"""Audit records: one :class:`RunRecord` per run, its :class:`NodeRecord` rows, cursors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tdm.effects.secrets import known_values, scrub

SCHEMA_VERSION: Final = 1


def schema_fingerprint(columns: Iterable[Any], dtypes: Iterable[Any] | None) -> str:
    """A short stable hash of column names and dtypes (equal schemas, equal fingerprints).

    >>> schema_fingerprint(["a", "b"], ["int64", "float64"])
    '68c60b4f5321'
    >>> schema_fingerprint(["a", "b"], ["int64", "float64"]) == schema_fingerprint(["a"], ["int64"])
    False
    """
    names = [str(c) for c in columns]
    types = [str(d) for d in dtypes] if dtypes is not None else ["?"] * len(names)
    text = "\x1f".join(f"{n}\x1e{t}" for n, t in zip(names, types, strict=False))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def dumps(value: Any) -> str:
    """``value`` as the compact JSON the stores write (UTF-8 text kept, not escaped).

    A node table's :class:`EncodedColumn` values are written from their own text.

    >>> dumps({"name": EncodedColumn(["a", "é"]), "rows": [1, None]})
    '{"name":["a","é"],"rows":[1,null]}'
    """
    if isinstance(value, dict) and any(type(v) is EncodedColumn for v in value.values()):
        parts = [
            f"{_dumps(str(k))}:{v.json if type(v) is EncodedColumn else _dumps(v)}"
            for k, v in value.items()
        ]
        return "{" + ",".join(parts) + "}"
    return _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


class EncodedColumn(list[Any]):
    """A node-table column that carries its JSON text (what :func:`dumps` makes of its
    values): the columns every run of a pipeline repeats (names, kinds, parents) are encoded
    once per pipeline, not once per run. Treat it as read-only, like the rest of a record.
    """

    __slots__ = ("json",)

    def __init__(self, values: Iterable[Any] = (), text: str | None = None) -> None:
        super().__init__(values)
        self.json: str = _dumps(self) if text is None else text


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """The audit record of one node in one run."""

    name: str
    kind: str
    status: str
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    columns: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    schema: str | None = None
    error: str | None = None
    parents: tuple[str, ...] | None = None
    restored: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "columns": list(self.columns) if self.columns is not None else None,
            "dtypes": list(self.dtypes) if self.dtypes is not None else None,
            "schema": self.schema,
            "error": self.error,
            "parents": list(self.parents) if self.parents is not None else None,
            "restored": self.restored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeRecord:
        """The record back from :meth:`as_dict` (unknown keys are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("columns", "dtypes", "parents"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


NODE_FIELDS: Final = (
    "name", "kind", "status", "start_us", "stop_us", "duration_us", "rows_in", "rows_out",
    "schema", "error", "parents",
)  # fmt: skip
"""The columns of :attr:`RunRecord.node_table`. Times are integers of microseconds (epoch
microseconds for ``start_us``/``stop_us``): exact, and several times cheaper to encode than
floats for runs of thousands of nodes. ``parents`` holds each node's parents as positions in
the table (records written before it was added have no such column)."""


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="microseconds")


def _seconds(us: int | None) -> float | None:
    return None if us is None else us / 1e6


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The audit record of one run: identity, timing, outcome, plan and per-node records.

    Nodes are kept column by column in :attr:`node_table` (one list per field of
    :data:`NODE_FIELDS`, cheap to build and to store for thousands of nodes); :attr:`nodes`
    gives them as :class:`NodeRecord` values. Output schemas are kept once each in
    :attr:`schemas` (fingerprint -> ``{"columns": [...], "dtypes": [...]}``).

    Every text field has been scrubbed of known secret values before it reaches a store.
    """

    run_id: str
    pipeline_id: str
    status: str
    started_at: str
    job_id: str = ""
    pipeline_name: str = ""
    tdm_version: str = ""
    finished_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    executor: str = ""
    host: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    plan: str = ""
    rows_in: int | None = None
    rows_out: int | None = None
    hook_errors: tuple[str, ...] = ()
    node_table: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    schemas: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    nodes_total: int | None = None
    """How many nodes the run had (kept apart from :attr:`node_table` so that a listing
    without the nodes still counts them; None in records written before it existed)."""
    nodes_failed: int | None = None
    """How many of them failed."""
    resumed_from: str | None = None
    """The run this one resumed (``tdm.run(resume=...)``), if any."""
    drift: tuple[str, ...] = ()
    """Schema changes against the previous successful run of the pipeline."""

    def __post_init__(self) -> None:
        statuses = self.node_table.get("status") if self.node_table else None
        if statuses is not None:  # the table, when present, is the truth
            if self.nodes_total is None:
                object.__setattr__(self, "nodes_total", len(statuses))
            if self.nodes_failed is None:
                failed = sum(1 for st in statuses if st == "FAILURE")
                object.__setattr__(self, "nodes_failed", failed)

    @property
    def nodes(self) -> tuple[NodeRecord, ...]:
        """One record per node, in execution order."""
        table = self.node_table
        if not table or not table.get("name"):
            return ()
        names = table["name"]
        links = table.get("parents")
        out = []
        restored = table.get("restored") or [False] * len(names)
        for i in range(len(names)):
            fp = table["schema"][i]
            shape = self.schemas.get(fp) if fp is not None else None
            out.append(
                NodeRecord(
                    name=table["name"][i],
                    kind=table["kind"][i],
                    status=table["status"][i],
                    started_at=_iso(table["start_us"][i]),
                    finished_at=_iso(table["stop_us"][i]),
                    duration_s=_seconds(table["duration_us"][i]),
                    rows_in=table["rows_in"][i],
                    rows_out=table["rows_out"][i],
                    columns=tuple(shape["columns"]) if shape is not None else None,
                    dtypes=tuple(shape["dtypes"]) if shape is not None else None,
                    schema=fp,
                    error=table["error"][i],
                    parents=None if links is None else tuple(names[p] for p in links[i]),
                    restored=bool(restored[i]),
                )
            )
        return tuple(out)

    def node_schemas(
        self, names: Iterable[str]
    ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]]:
        """``(columns, dtypes)`` of the named nodes that recorded a schema, without building
        every :class:`NodeRecord` (a drift check needs a run's few sources, not its nodes).

        >>> run = RunRecord("r", "p", "SUCCESS", "2026-01-01T00:00:00+00:00",
        ...     node_table={"name": ["a", "b"], "schema": ["f1", None]},
        ...     schemas={"f1": {"columns": ["x"], "dtypes": ["int64"]}})
        >>> run.node_schemas(["a", "b", "c"])
        {'a': (('x',), ('int64',))}
        """
        table = self.node_table
        if not table or not table.get("name"):
            return {}
        position = {name: i for i, name in enumerate(table["name"])}
        out: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {}
        for name in names:
            i = position.get(name)
            fp = None if i is None else table["schema"][i]
            shape = self.schemas.get(fp) if fp is not None else None
            if shape is not None:
                dtypes = shape.get("dtypes")
                out[name] = (tuple(shape["columns"]), None if dtypes is None else tuple(dtypes))
        return out

    @property
    def node_count(self) -> int:
        """How many nodes the run had."""
        if self.nodes_total is not None:
            return self.nodes_total
        return len(self.node_table.get("name") or ())

    @property
    def failed_nodes(self) -> list[NodeRecord]:
        """The nodes that failed."""
        return [n for n in self.nodes if n.status == "FAILURE"]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (nodes included, column by column)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["params"] = dict(self.params)
        out["hook_errors"] = list(self.hook_errors)
        out["node_table"] = {k: list(v) for k, v in self.node_table.items()}
        out["schemas"] = {k: dict(v) for k, v in self.schemas.items()}
        out["drift"] = list(self.drift)
        return out

    def to_json(self) -> str:
        """One line of JSON (what the file store writes)."""
        return json.dumps(self.as_dict(), ensure_ascii=False, default=str, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """The record back from :meth:`as_dict` (unknown keys are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["hook_errors"] = tuple(data.get("hook_errors") or ())
        kwargs["params"] = dict(data.get("params") or {})
        kwargs["node_table"] = dict(data.get("node_table") or {})
        kwargs["schemas"] = dict(data.get("schemas") or {})
        kwargs["drift"] = tuple(data.get("drift") or ())
        return cls(**kwargs)

    def summary_row(self) -> dict[str, Any]:
        """The run as one flat row (what ``tdm.history`` shows)."""
        return {
            "run_id": self.run_id,
            "pipeline_id": self.pipeline_id,
            "pipeline_name": self.pipeline_name,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "nodes": self.node_count,
            "failed": self.nodes_failed or 0,
            "error": self.error,
            "resumed_from": self.resumed_from,
            "drift": "; ".join(self.drift) or None,
            "job_id": self.job_id,
            "executor": self.executor,
            "host": self.host,
            "tdm_version": self.tdm_version,
        }


@dataclass(frozen=True, slots=True)
class CursorRecord:
    """What a store remembers for one node of one pipeline between runs."""

    pipeline_id: str
    node: str
    value: Any
    run_id: str
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "pipeline_id": self.pipeline_id,
            "node": self.node,
            "value": self.value,
            "run_id": self.run_id,
            "updated_at": self.updated_at,
        }


def redact(record: RunRecord) -> RunRecord:
    """``record`` with every known secret value scrubbed from every text field.

    Scrubbed field by field (a value with characters that JSON escapes would not match the
    serialized text); a no-op while no secret has been revealed in this process.
    """
    if not known_values():
        return record
    return RunRecord.from_dict(_scrub_tree(record.as_dict()))


def _scrub_tree(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub(str(k)): _scrub_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_tree(v) for v in value]
    return value
