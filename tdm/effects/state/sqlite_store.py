"""The embedded default audit store: a SQLite file in WAL mode."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from tdm.effects.secrets import tdm_home
from tdm.effects.state.records import (
    CursorRecord,
    RunRecord,
    dumps,
)
from tdm.effects.state.store import StateStore, _when_text
from tdm.errors import StateError

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


_dumps: Final = dumps


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
        self._recent: dict[str, RunRecord] = {}
        self._recent_lock = threading.Lock()

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
        self._remember_schemas(run)

    _RECENT_MAX: Final = 16

    def _remember_schemas(self, run: RunRecord) -> None:
        """Keep what :meth:`last_schemas` reads of a successful run this store just wrote:
        the next run of the pipeline finds it by run id instead of decoding its node table."""
        table = run.node_table
        if run.status != "SUCCESS" or not table or "schema" not in table:
            return
        lite = RunRecord(
            run.run_id, run.pipeline_id, run.status, run.started_at,
            node_table={"name": table["name"], "schema": table["schema"]},
            schemas=run.schemas,
        )  # fmt: skip
        with self._recent_lock:
            self._recent.pop(run.run_id, None)
            self._recent[run.run_id] = lite
            while len(self._recent) > self._RECENT_MAX:
                del self._recent[next(iter(self._recent))]

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

    def last_schemas(self, pipeline_id: str) -> RunRecord | None:
        # Only the node names and schema fingerprints, extracted in SQL: decoding a whole
        # node table would cost a run of thousands of nodes a few microseconds per node.
        with self._reading():
            where, args = _where(self._connect(), pipeline_id, "SUCCESS", None, None)
        if self._recent:  # the last run may be one this store wrote: its id says which
            order = " ORDER BY started_at DESC, rowid DESC LIMIT 1"
            last = self._read(f"SELECT run_id FROM runs{where}{order}", args).fetchone()
            if last is None:
                return None
            with self._recent_lock:
                known = self._recent.get(last[0])
            if known is not None:
                return known
        sql = (
            "SELECT run_id, pipeline_id, status, started_at, json_extract(node_table, '$.name'),"
            f" json_extract(node_table, '$.schema'), schemas FROM runs{where}"
            " ORDER BY started_at DESC, rowid DESC LIMIT 1"
        )
        row = self._read(sql, args).fetchone()
        if row is None:
            return None
        run_id, pipeline, status, started_at, names, prints, schemas = row
        table = {"name": json.loads(names or "[]"), "schema": json.loads(prints or "[]")}
        return RunRecord(
            run_id, pipeline, status, started_at, node_table=table, schemas=json.loads(schemas)
        )

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
        self._recent = {}
        self._recent_lock = threading.Lock()

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


def is_sqlite_path(url: str) -> bool:
    """Whether a ``--state`` location names a local SQLite file rather than a folder URL.

    >>> is_sqlite_path("audit.db"), is_sqlite_path("s3://bucket/audit.db")
    (True, False)
    """
    return url.endswith((".db", ".sqlite", ".sqlite3")) and "://" not in url


def _run_from_row(columns: Sequence[str], row: Sequence[Any]) -> RunRecord:
    values = dict(zip(columns, row, strict=True))
    for key in ("params", "node_table", "schemas"):
        if key in values:
            values[key] = json.loads(values[key])
    values["hook_errors"] = tuple(json.loads(values["hook_errors"]))
    values["drift"] = tuple(json.loads(values.get("drift") or "[]"))
    return RunRecord(**values)
