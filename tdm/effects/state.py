"""The audit trail: one record per run (and per node), kept by a state store.

A store is not restorable pipeline state: it is the history of what ran, when, how it ended
and how many rows went where. Three stores share one interface (:class:`StateStore`):

* :class:`SQLiteStore`: the embedded default, ``$TDM_HOME/state.db`` (WAL mode, safe for
  concurrent runs on one machine); a run is inserted as RUNNING when it starts and completed
  when it ends, so a killed process leaves a visible RUNNING row.
* :class:`FileStore`: any fsspec URL (local folder, ``s3://``, ``az://``, ``memory://``); each
  finished run is one new JSON Lines object, never rewritten, so object stores need no locks.
* :class:`MemoryStore`: in-process, for tests and notebooks.

Mapping from the original tdm's state record: ``start_time``/``stop_time`` are ``started_at``/
``finished_at`` (ISO 8601 UTC), ``status`` is the plain text ``SUCCESS``/``FAILURE``,
``flow_model`` is ``plan`` (each node with its description, under its consumers), ``meta_state``
is ``params``, ``host``, ``executor`` and ``hook_errors``, ``pull_stats`` are the source nodes'
rows/columns/schema (and the run's ``rows_in``), ``push_stats`` the output nodes' (the run's
``rows_out``), ``name`` is ``pipeline_name`` and ``version`` is ``tdm_version``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Self

from tdm.effects.secrets import SecretsProvider, default_secrets, known_values, scrub, tdm_home
from tdm.errors import StateError

__all__ = [
    "CursorRecord",
    "FileStore",
    "MemoryStore",
    "NodeRecord",
    "RunRecord",
    "SQLiteStore",
    "StateStore",
    "schema_fingerprint",
    "shared_sqlite",
]

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


class StateStore:
    """Where audit records go. Subclasses implement :meth:`record` and :meth:`runs`.

    Stores are plain values (picklable, no open connection held) so a ``Runtime`` holding one
    can travel to another process.
    """

    def begin(self, run: RunRecord) -> None:
        """Note that ``run`` started (status RUNNING). Optional: the default does nothing."""

    def record(self, run: RunRecord) -> None:
        """Store the final record of ``run`` (replacing its start record, if any)."""
        raise NotImplementedError

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        nodes: bool = True,
        offset: int = 0,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> list[RunRecord]:
        """Records, newest first; ``pipeline`` matches the pipeline id or name.

        ``offset`` skips that many of the selected runs (with ``limit``: one page);
        ``since`` (inclusive) and ``until`` (exclusive) bound the start time (ISO 8601 text,
        a date such as ``"2026-11-29"``, or an aware datetime). ``nodes=False`` leaves out
        the node table and the plan (cheaper for lists).
        """
        raise NotImplementedError

    def count(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> int:
        """How many runs :meth:`runs` would select with the same filters and no limit."""
        return len(
            self.runs(pipeline=pipeline, status=status, since=since, until=until, nodes=False)
        )

    def pipelines(self) -> list[tuple[str, str]]:
        """Every pipeline with a recorded run, as ``(pipeline_id, pipeline_name)``, sorted."""
        seen = {(r.pipeline_id, r.pipeline_name) for r in self.runs(nodes=False)}
        return sorted(seen)

    def get(self, run_id: str) -> RunRecord:
        """The record of one run; ``KeyError`` naming the run if it is not there."""
        for run in self.runs():
            if run.run_id == run_id:
                return run
        raise KeyError(f"no run {run_id!r} in {self.describe()}")

    def using(self, secrets: SecretsProvider | None) -> Self:
        """This store, resolving its secret (if any) through ``secrets``."""
        return self

    # Memory across runs: per (pipeline id, node), a JSON value (an incremental cursor, the
    # files a source has read) with the run that stored it. Written only after a run succeeded.
    def cursors(self, pipeline_id: str) -> dict[str, CursorRecord]:
        """The values stored for ``pipeline_id``'s nodes, by node name."""
        raise NotImplementedError(f"{type(self).__name__} keeps no cursors")

    def commit_cursors(
        self, pipeline_id: str, run_id: str, values: Mapping[str, Any], *, at: str
    ) -> None:
        """Store ``values`` (node -> JSON value) for ``pipeline_id`` at once, all or none."""
        raise NotImplementedError(f"{type(self).__name__} keeps no cursors")

    def reset_cursors(self, pipeline_id: str, node: str | None = None) -> list[str]:
        """Forget the values of ``pipeline_id`` (one node, or all); the nodes forgotten."""
        raise NotImplementedError(f"{type(self).__name__} keeps no cursors")

    def describe(self) -> str:
        """Where records go (for messages and alerts; never a secret)."""
        return type(self).__name__


def _when_text(value: str | datetime | None) -> str | None:
    """A bound on ``started_at`` as comparable text (records keep ISO 8601 UTC)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError(f"give an aware datetime (e.g. with tzinfo=UTC), got {value!r}")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _matches(
    run: RunRecord,
    pipeline: str | None,
    status: str | None,
    since: str | None = None,
    until: str | None = None,
) -> bool:
    if pipeline is not None and pipeline not in (run.pipeline_id, run.pipeline_name):
        return False
    if since is not None and run.started_at < since:
        return False
    if until is not None and run.started_at >= until:
        return False
    return status is None or run.status == status.upper()


def _json_copy(value: Any) -> Any:
    """``value`` as a store gives it back (a JSON round trip: no shared mutable state)."""
    return json.loads(json.dumps(value, default=str))


def _page(found: list[RunRecord], offset: int, limit: int | None) -> list[RunRecord]:
    end = None if limit is None else offset + limit
    return found[offset:end]


class MemoryStore(StateStore):
    """Records kept in this process (tests, notebooks).

    >>> store = MemoryStore()
    >>> store.record(RunRecord("r1", "p", "SUCCESS", "2026-01-01T00:00:00+00:00"))
    >>> [r.run_id for r in store.runs()]
    ['r1']
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._cursors: dict[str, dict[str, CursorRecord]] = {}
        self._lock = threading.Lock()

    def begin(self, run: RunRecord) -> None:
        with self._lock:
            self._runs.setdefault(run.run_id, run)

    def record(self, run: RunRecord) -> None:
        with self._lock:
            self._runs.pop(run.run_id, None)
            self._runs[run.run_id] = run

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        nodes: bool = True,
        offset: int = 0,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> list[RunRecord]:
        low, high = _when_text(since), _when_text(until)
        with self._lock:
            found = [r for r in self._runs.values() if _matches(r, pipeline, status, low, high)]
        found.sort(key=lambda r: r.started_at, reverse=True)
        return _page(found, offset, limit)

    def cursors(self, pipeline_id: str) -> dict[str, CursorRecord]:
        with self._lock:
            return dict(self._cursors.get(pipeline_id, {}))

    def commit_cursors(
        self, pipeline_id: str, run_id: str, values: Mapping[str, Any], *, at: str
    ) -> None:
        stored = {
            n: CursorRecord(pipeline_id, n, _json_copy(v), run_id, at) for n, v in values.items()
        }
        with self._lock:
            self._cursors.setdefault(pipeline_id, {}).update(stored)

    def reset_cursors(self, pipeline_id: str, node: str | None = None) -> list[str]:
        with self._lock:
            known = self._cursors.get(pipeline_id, {})
            gone = [n for n in known if node is None or n == node]
            for name in gone:
                del known[name]
            return gone

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"_runs": dict(self._runs), "_cursors": dict(self._cursors)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._runs = state["_runs"]
        self._cursors = state.get("_cursors", {})
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "memory"

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._runs)} runs>)"


_DDL: Final = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    pipeline_name TEXT NOT NULL,
    tdm_version TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    error TEXT,
    executor TEXT,
    host TEXT,
    rows_in INTEGER,
    rows_out INTEGER,
    params TEXT NOT NULL,
    plan TEXT NOT NULL,
    hook_errors TEXT NOT NULL,
    node_table TEXT NOT NULL,
    schemas TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    nodes_total INTEGER,
    nodes_failed INTEGER,
    resumed_from TEXT,
    drift TEXT
);
CREATE INDEX IF NOT EXISTS runs_pipeline ON runs (pipeline_id, started_at);
CREATE INDEX IF NOT EXISTS runs_name ON runs (pipeline_name, started_at);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at);
CREATE INDEX IF NOT EXISTS runs_names ON runs (pipeline_name, pipeline_id);
CREATE TABLE IF NOT EXISTS cursors (
    pipeline_id TEXT NOT NULL,
    node TEXT NOT NULL,
    value TEXT NOT NULL,
    run_id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, node)
);
"""

_RUN_COLUMNS: Final = (
    "run_id", "job_id", "pipeline_id", "pipeline_name", "tdm_version", "status", "started_at",
    "finished_at", "duration_s", "error", "executor", "host", "rows_in", "rows_out", "params",
    "plan", "hook_errors", "node_table", "schemas", "schema_version", "nodes_total",
    "nodes_failed", "resumed_from", "drift",
)  # fmt: skip
_LIGHT: Final = tuple(c for c in _RUN_COLUMNS if c not in ("node_table", "schemas", "plan"))


_COUNTED: Final = {
    "nodes_total": "COALESCE(nodes_total, json_array_length(node_table, '$.name'))",
    "nodes_failed": "COALESCE(nodes_failed, (SELECT count(*) FROM json_each(node_table, "
    "'$.status') WHERE value = 'FAILURE'))",
}
"""Rows written before the counts were kept: count them from the node table, in SQL."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _run_row(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id, run.job_id, run.pipeline_id, run.pipeline_name, run.tdm_version, run.status,
        run.started_at, run.finished_at, run.duration_s, run.error, run.executor, run.host,
        run.rows_in, run.rows_out, _dumps(dict(run.params)), run.plan,
        _dumps(list(run.hook_errors)), _dumps(run.node_table), _dumps(run.schemas),
        run.schema_version, run.nodes_total, run.nodes_failed, run.resumed_from,
        _dumps(list(run.drift)),
    )  # fmt: skip


_ADDED_COLUMNS: Final = {
    "nodes_total": "INTEGER",
    "nodes_failed": "INTEGER",
    "resumed_from": "TEXT",
    "drift": "TEXT",
}
"""Columns added after the first release: a database made before them gets them on open."""


def _migrate(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")


def _private_file(path: Path) -> None:
    """Create ``path`` (and missing parent folders) readable by its owner only: 0600 for the
    file, 0700 for every folder made here. SQLite gives the ``-wal`` and ``-shm`` files the
    database file's permissions. Existing files and folders are left as they are."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # it exists, or cannot be made: SQLite opens it or says why it cannot
        return
    os.close(fd)
    os.chmod(path, 0o600)


def _where(
    conn: sqlite3.Connection,
    pipeline: str | None,
    status: str | None,
    since: str | datetime | None,
    until: str | datetime | None,
) -> tuple[str, list[Any]]:
    """A WHERE clause (the indexes on pipeline, status and start time serve it) and its args."""
    where: list[str] = []
    args: list[Any] = []
    if pipeline is not None:
        # One indexed condition when it means the same: "pipeline_id = ? OR pipeline_name = ?"
        # makes SQLite read and sort every run of the pipeline to return one page of them.
        by_id, by_name = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE pipeline_id = ?), "
            "EXISTS (SELECT 1 FROM runs WHERE pipeline_name = ? AND pipeline_id != ?)",
            (pipeline, pipeline, pipeline),
        ).fetchone()
        if by_id and by_name:
            where.append("(pipeline_id = ? OR pipeline_name = ?)")
            args += [pipeline, pipeline]
        else:
            where.append("pipeline_id = ?" if by_id else "pipeline_name = ?")
            args.append(pipeline)
    if status is not None:
        where.append("status = ?")
        args.append(status.upper())
    low, high = _when_text(since), _when_text(until)
    if low is not None:
        where.append("started_at >= ?")
        args.append(low)
    if high is not None:
        where.append("started_at < ?")
        args.append(high)
    return (" WHERE " + " AND ".join(where) if where else ""), args


class SQLiteStore(StateStore):
    """Audit records in a SQLite database (WAL mode), safe under concurrent runs.

    Each operation opens its own short-lived connection, so a store can be shared by threads
    and processes and pickled. Table ``runs`` has one row per run; its ``node_table`` column
    holds the nodes as JSON, column by column (SQLite's ``json_each`` can query them).

    >>> import tempfile, pathlib
    >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "state.db")
    >>> store.record(RunRecord("r1", "p", "SUCCESS", "2026-01-01T00:00:00+00:00"))
    >>> store.get("r1").status
    'SUCCESS'
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser() if path is not None else tdm_home() / "state.db"
        self.timeout = timeout
        self._ready = False
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (kept open: closing the last one checkpoints the WAL)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if not self._ready:
            _private_file(self.path)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            if not self._ready:
                # WAL lets readers and one writer work at once; the mode persists in the file.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_DDL)
                _migrate(conn)
                self._ready = True
            # In WAL mode NORMAL never corrupts the file; a power cut may lose the last runs.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's store is freed)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    def begin(self, run: RunRecord) -> None:
        conn = self._connect()
        columns = ", ".join(_RUN_COLUMNS)
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        conn.execute(f"INSERT OR IGNORE INTO runs ({columns}) VALUES ({marks})", _run_row(run))

    def record(self, run: RunRecord) -> None:
        conn = self._connect()
        columns = ", ".join(_RUN_COLUMNS)
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        try:
            conn.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})", _run_row(run))
        except BaseException:
            self.close()  # a retry starts from a fresh connection
            raise

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        nodes: bool = True,
        offset: int = 0,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> list[RunRecord]:
        with self._reading():
            where, args = _where(self._connect(), pipeline, status, since, until)
        wanted = _RUN_COLUMNS if nodes else _LIGHT
        sql = f"SELECT {', '.join(_COUNTED.get(c, c) for c in wanted)} FROM runs{where}"
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else int(limit), int(offset)]
        found = self._read(sql, args).fetchall()
        return [_run_from_row(wanted, row) for row in found]

    def _read(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        """Run a query (its cursor)."""
        with self._reading():
            return self._connect().execute(sql, args)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A file that is not a readable audit database is a clear StateError."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StateError(
                f"cannot read the audit store {self.describe()}: {exc}; it is not a readable "
                "tdm audit database (corrupt, another kind of file, or in a folder where "
                "SQLite cannot create its -wal/-shm files): move it aside (the next run "
                "starts a new one) or point --state at the right file"
            ) from None

    def count(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> int:
        with self._reading():
            where, args = _where(self._connect(), pipeline, status, since, until)
        row = self._read(f"SELECT count(*) FROM runs{where}", args).fetchone()
        return int(row[0])

    def pipelines(self) -> list[tuple[str, str]]:
        sql = "SELECT DISTINCT pipeline_id, pipeline_name FROM runs ORDER BY 1, 2"
        return [(str(a), str(b)) for a, b in self._read(sql, ()).fetchall()]

    def get(self, run_id: str) -> RunRecord:
        row = self._read(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.describe()}")
        return _run_from_row(_RUN_COLUMNS, row)

    def cursors(self, pipeline_id: str) -> dict[str, CursorRecord]:
        rows = (
            self._connect()
            .execute(
                "SELECT node, value, run_id, updated_at FROM cursors WHERE pipeline_id = ?",
                (pipeline_id,),
            )
            .fetchall()
        )
        return {
            node: CursorRecord(pipeline_id, node, json.loads(value), run_id, at)
            for node, value, run_id, at in rows
        }

    def commit_cursors(
        self, pipeline_id: str, run_id: str, values: Mapping[str, Any], *, at: str
    ) -> None:
        conn = self._connect()
        rows = [(pipeline_id, n, _dumps(v), run_id, at) for n, v in values.items()]
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.close()
            raise

    def reset_cursors(self, pipeline_id: str, node: str | None = None) -> list[str]:
        gone = [n for n in self.cursors(pipeline_id) if node is None or n == node]
        conn = self._connect()
        if node is None:
            conn.execute("DELETE FROM cursors WHERE pipeline_id = ?", (pipeline_id,))
        else:
            conn.execute(
                "DELETE FROM cursors WHERE pipeline_id = ? AND node = ?", (pipeline_id, node)
            )
        return gone

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.timeout, self._ready = state["path"], state["timeout"], False
        self._local = threading.local()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


_SHARED: OrderedDict[Path, SQLiteStore] = OrderedDict()
_SHARED_LOCK = threading.Lock()
_SHARED_MAX: Final = 8


def shared_sqlite(path: str | os.PathLike[str] | None = None) -> SQLiteStore:
    """One store per database file in this process (its connections stay open between runs)."""
    resolved = (Path(path).expanduser() if path is not None else tdm_home() / "state.db").resolve()
    with _SHARED_LOCK:
        store = _SHARED.get(resolved)
        if store is None:
            store = _SHARED[resolved] = SQLiteStore(resolved)
            while len(_SHARED) > _SHARED_MAX:
                _SHARED.popitem(last=False)
        else:
            _SHARED.move_to_end(resolved)
        return store


def _run_from_row(columns: Sequence[str], row: Sequence[Any]) -> RunRecord:
    values = dict(zip(columns, row, strict=True))
    for key in ("params", "node_table", "schemas"):
        if key in values:
            values[key] = json.loads(values[key])
    values["hook_errors"] = tuple(json.loads(values["hook_errors"]))
    values["drift"] = tuple(json.loads(values.get("drift") or "[]"))
    return RunRecord(**values)


_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "_"


# Original tdm secret keys, mapped onto fsspec storage options.
_OPTION_ALIASES: Final = {
    "access_key_id": "key",
    "aws_access_key_id": "key",
    "secret_access_key_id": "secret",
    "secret_access_key": "secret",
    "aws_secret_access_key": "secret",
    "session_token": "token",
    "aws_session_token": "token",
}


class FileStore(StateStore):
    """Audit records as JSON Lines objects under an fsspec URL; written once, never rewritten.

    Layout: ``<url>/runs/<pipeline_id>/<started_at>_<run_id>_<STATUS>.jsonl`` (one line: the
    run record with its nodes). Listing never needs to open an object to sort or to filter by
    pipeline id or status, and concatenating every object gives a JSON Lines file of all runs.

    Args:
        url: the folder, e.g. ``"s3://state-bucket/tdm"``, ``"az://state/tdm"``, ``"/var/tdm"``.
        secret: the name of a secret whose keys are storage options (``key``/``secret`` or the
            original ``access_key_id``/``secret_access_key_id``, ``connection_string``, ...).
        storage_options: options that are not secret (``{"endpoint_url": ...}``, say).

    >>> store = FileStore("memory://tdm-doctest/audit")
    >>> store.record(RunRecord("r1", "p", "SUCCESS", "2026-01-01T00:00:00+00:00"))
    >>> [r.run_id for r in store.runs(pipeline="p")]
    ['r1']
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        provider: SecretsProvider | None = None,
    ) -> None:
        if not url or not isinstance(url, str):
            raise ValueError(f"a file store needs a folder URL, got {url!r}")
        self.url = url.rstrip("/")
        self.secret = secret
        self.storage_options = dict(storage_options or {})
        self._provider = provider

    def using(self, secrets: SecretsProvider | None) -> Self:
        if secrets is None or self.secret is None:
            return self
        return type(self)(
            self.url, secret=self.secret, storage_options=self.storage_options, provider=secrets
        )

    def _fs(self) -> tuple[Any, str]:
        from fsspec.core import url_to_fs

        options: dict[str, Any] = dict(self.storage_options)
        if self.secret is not None:
            provider = self._provider if self._provider is not None else default_secrets()
            for key, value in provider.section(self.secret).items():
                options[_OPTION_ALIASES.get(key.lower(), key)] = value.reveal()
        fs, root = url_to_fs(self.url, **options)
        return fs, str(root).rstrip("/")

    def record(self, run: RunRecord) -> None:
        fs, root = self._fs()
        stamp = run.started_at.replace("-", "").replace(":", "").replace("+0000", "Z")
        stamp = _safe(stamp.replace("+", "p"))
        folder = f"{root}/runs/{_safe(run.pipeline_id)}"
        name = f"{stamp}_{_safe(run.run_id)}_{_safe(run.status)}.jsonl"
        data = (run.to_json() + "\n").encode()
        fs.makedirs(folder, exist_ok=True)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "file" in protocols:  # a reader must never see half a file: write, then rename
            tmp = f"{folder}/.{name}.tmp"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, f"{folder}/{name}")
        else:
            fs.pipe_file(f"{folder}/{name}", data)

    def _paths(self) -> tuple[Any, list[str]]:
        fs, root = self._fs()
        base = f"{root}/runs"
        if not fs.exists(base):
            return fs, []
        # Every folder, even when one is named after ``pipeline``: another pipeline's runs
        # may carry it as their name. Records are read newest first, only up to a page's end.
        found = fs.glob(f"{base}/*/*.jsonl")
        return fs, [str(p) for p in found]

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        nodes: bool = True,
        offset: int = 0,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> list[RunRecord]:
        low, high = _when_text(since), _when_text(until)
        fs, paths = self._paths()
        if status is not None:
            suffix = f"_{_safe(status.upper())}.jsonl"
            paths = [p for p in paths if p.endswith(suffix)]
        paths.sort(key=lambda p: p.rsplit("/", 1)[-1], reverse=True)
        # Object names start with the start time, so the newest come first: a page opens
        # only the objects up to its end.
        wanted = None if limit is None else offset + limit
        out: list[RunRecord] = []
        for path in paths:
            for line in fs.cat_file(path).decode().splitlines():
                if not line.strip():
                    continue
                run = RunRecord.from_dict(json.loads(line))
                if not nodes:
                    run = dataclasses.replace(run, node_table={}, schemas={}, plan="")
                if _matches(run, pipeline, status, low, high):
                    out.append(run)
            if wanted is not None and len(out) >= wanted:
                break
        out.sort(key=lambda r: r.started_at, reverse=True)
        return _page(out, offset, limit)

    def _cursor_path(self, pipeline_id: str) -> tuple[Any, str]:
        fs, root = self._fs()
        return fs, f"{root}/cursors/{_safe(pipeline_id)}.json"

    def cursors(self, pipeline_id: str) -> dict[str, CursorRecord]:
        fs, path = self._cursor_path(pipeline_id)
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path)
        if not fs.exists(path):
            return {}
        data = json.loads(fs.cat_file(path).decode())
        return {
            node: CursorRecord(pipeline_id, node, item["value"], item["run_id"], item["updated_at"])
            for node, item in data.items()
        }

    def _put_cursors(self, pipeline_id: str, records: Mapping[str, CursorRecord]) -> None:
        fs, path = self._cursor_path(pipeline_id)
        data = _dumps({n: r.as_dict() for n, r in records.items()}).encode()
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "file" in protocols:  # one object replaced at once: a reader sees old or new
            tmp = f"{path}.{os.getpid()}.tmp"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)
        else:  # object stores: a single PUT replaces the object atomically
            fs.pipe_file(path, data)

    def commit_cursors(
        self, pipeline_id: str, run_id: str, values: Mapping[str, Any], *, at: str
    ) -> None:
        records = self.cursors(pipeline_id)
        for node, value in values.items():
            records[node] = CursorRecord(pipeline_id, node, _json_copy(value), run_id, at)
        self._put_cursors(pipeline_id, records)

    def reset_cursors(self, pipeline_id: str, node: str | None = None) -> list[str]:
        records = self.cursors(pipeline_id)
        gone = [n for n in records if node is None or n == node]
        if gone:
            self._put_cursors(pipeline_id, {n: r for n, r in records.items() if n not in gone})
        return gone

    def describe(self) -> str:
        return f"files:{self.url}"

    def __repr__(self) -> str:
        secret = f", secret={self.secret!r}" if self.secret else ""
        return f"FileStore({self.url!r}{secret})"
