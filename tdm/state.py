"""The audit trail: where every run's record goes, and how to read it back.

Every run (successful, failed or interrupted) writes a :class:`RunRecord` with one
:class:`NodeRecord` per node to the runtime's state store. ``tdm.run(p)`` with no runtime uses
:func:`sqlite` under ``$TDM_HOME`` (default ``~/.tdm/state.db``)::

    rt = tdm.Runtime.default().evolve(state=tdm.state.files("s3://audit/tdm", secret="S3"))
    tdm.run(pipeline, runtime=rt)
    tdm.history(pipeline="device-inventory", status="FAILURE", store=rt.state)

A store that cannot be written to never changes a run's output or status: the write is
retried, then the record is logged in full at ERROR (logger ``tdm.audit``) and the failure is
listed in ``report.hook_errors``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tdm.effects.state import (
    FileStore,
    MemoryStore,
    NodeRecord,
    RunRecord,
    SQLiteStore,
    StateStore,
    schema_fingerprint,
    shared_sqlite,
)
from tdm.effects.state.sqlite_store import is_sqlite_path
from tdm.errors import InputError

__all__ = [
    "FileStore",
    "MemoryStore",
    "NodeRecord",
    "RunRecord",
    "SQLiteStore",
    "StateStore",
    "diff",
    "files",
    "history",
    "memory",
    "open_url",
    "reset",
    "schema_fingerprint",
    "show",
    "sqlite",
]


def sqlite(path: str | os.PathLike[str] | None = None) -> SQLiteStore:
    """The embedded store: a SQLite file (default ``$TDM_HOME/state.db``), WAL mode.

    Safe for concurrent runs on one machine (threads or processes). The original
    ``sqlitestatemanager``.

    >>> import tempfile, os
    >>> store = sqlite(os.path.join(tempfile.mkdtemp(), "audit.db"))
    >>> store.describe().endswith("audit.db")
    True
    """
    return shared_sqlite(path)


def files(
    url: str, secret: str | None = None, *, storage_options: Mapping[str, Any] | None = None
) -> FileStore:
    """A store on any fsspec URL: one JSON Lines object per run, never rewritten.

    Works on object stores without locks (the original S3/Azure state managers). ``secret``
    names a secret whose keys are storage options (``key``/``secret``, the original
    ``access_key_id``/``secret_access_key_id``, ``connection_string``, ...).

    >>> import tdm
    >>> store = files("memory://doctest-audit")
    >>> report = tdm.run(tdm.inputs.frame("x"), inputs={"x": pd.DataFrame({"a": [1]})},
    ...                  runtime=tdm.Runtime(state=store))
    >>> [r.status for r in store.runs()]
    ['SUCCESS']
    """
    return FileStore(url, secret=secret, storage_options=storage_options)


def open_url(url: str | None, secret: str | None = None, *, must_exist: bool = False) -> StateStore:
    """The audit store at ``url``, as ``tdm history --state URL`` reads it.

    A local ``*.db`` path is a SQLite store (``must_exist``: it must be there already), any
    other URL a :func:`files` store whose credentials are the keys of the secret ``secret``;
    None is the default store (``$TDM_HOME/state.db``).

    >>> open_url("memory://doctest-open").describe()
    'files:memory://doctest-open'
    >>> open_url("missing.db", must_exist=True)
    Traceback (most recent call last):
    tdm.errors.InputError: --state missing.db: no such audit database (a *.db file)
    """
    if url is None:
        return _default_store(None)
    is_db = is_sqlite_path(url)
    if is_db and must_exist and not Path(url).expanduser().is_file():
        raise InputError(f"--state {url}: no such audit database (a *.db file)")
    return sqlite(url) if is_db else files(url, secret=secret)


def memory() -> MemoryStore:
    """A store in this process (tests, notebooks).

    >>> import tdm
    >>> store = memory()
    >>> _ = tdm.run(tdm.inputs.frame("x"), inputs={"x": pd.DataFrame({"a": [1, 2]})},
    ...             runtime=tdm.Runtime(state=store), pipeline_id="demo")
    >>> run = store.runs()[0]
    >>> run.pipeline_id, run.status, run.nodes[0].rows_out
    ('demo', 'SUCCESS', 2)
    """
    return MemoryStore()


_HISTORY_COLUMNS = [
    "run_id", "pipeline_id", "pipeline_name", "status", "started_at", "finished_at",
    "duration_s", "rows_in", "rows_out", "nodes", "failed", "error", "resumed_from", "drift",
    "job_id", "executor", "host", "tdm_version",
]  # fmt: skip
_NODE_COLUMNS = [
    "run_id", "pipeline_id", "node", "kind", "status", "started_at", "finished_at",
    "duration_s", "rows_in", "rows_out", "columns", "schema", "error", "restored",
]  # fmt: skip


def history(
    pipeline: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = 20,
    nodes: bool = False,
    store: StateStore | None = None,
) -> pd.DataFrame:
    """Past runs, newest first, as a DataFrame (one row per run, or per node).

    Args:
        pipeline: only runs of this pipeline (its id or its name).
        status: only runs with this status (``"FAILURE"``, ``"SUCCESS"``, ``"RUNNING"``).
        limit: at most this many runs (None: all).
        nodes: one row per node of the selected runs instead of one per run.
        store: where to read (default: the embedded SQLite store under ``$TDM_HOME``).

    >>> import tdm
    >>> _ = tdm.run(tdm.inputs.frame("x"), inputs={"x": pd.DataFrame({"a": [1]})},
    ...             pipeline_id="demo")
    >>> tdm.history(pipeline="demo")[["pipeline_id", "status", "rows_out"]]
      pipeline_id   status  rows_out
    0        demo  SUCCESS         1
    """
    if store is None:
        from tdm.interpreter.runtime import Runtime

        store = Runtime.default().state
        assert store is not None
    runs = store.runs(pipeline=pipeline, status=status, limit=limit, nodes=nodes)
    if nodes:
        rows = [
            {
                "run_id": r.run_id,
                "pipeline_id": r.pipeline_id,
                "node": n.name,
                "kind": n.kind,
                "status": n.status,
                "started_at": n.started_at,
                "finished_at": n.finished_at,
                "duration_s": n.duration_s,
                "rows_in": n.rows_in,
                "rows_out": n.rows_out,
                "columns": list(n.columns) if n.columns is not None else None,
                "schema": n.schema,
                "error": n.error,
                "restored": n.restored,
            }
            for r in runs
            for n in r.nodes
        ]
        frame = pd.DataFrame(rows, columns=_NODE_COLUMNS)
    else:
        frame = pd.DataFrame([r.summary_row() for r in runs], columns=_HISTORY_COLUMNS)
    for col in ("started_at", "finished_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    for col in ("rows_in", "rows_out"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _default_store(store: StateStore | None) -> StateStore:
    if store is not None:
        return store
    from tdm.interpreter.runtime import Runtime

    found = Runtime.default().state
    assert found is not None
    return found


def show(pipeline: str, *, store: StateStore | None = None) -> pd.DataFrame:
    """What the store remembers between runs of ``pipeline`` (its id): one row per node.

    Columns: ``node``, ``value`` (an incremental cursor, say), ``run_id`` (the successful run
    that stored it) and ``updated_at``.

    >>> import tdm
    >>> store = memory()
    >>> store.commit_cursors("orders", "r1", {"read_orders": "2024-05-01"}, at="2024-05-02")
    >>> tdm.state.show("orders", store=store)[["node", "value", "run_id"]]
              node       value run_id
    0  read_orders  2024-05-01     r1
    """
    records = _default_store(store).cursors(pipeline)
    rows = [r.as_dict() for _, r in sorted(records.items())]
    return pd.DataFrame(rows, columns=["node", "value", "run_id", "updated_at"])


def reset(pipeline: str, *, node: str | None = None, store: StateStore | None = None) -> list[str]:
    """Forget what ``pipeline`` remembers (one ``node``, or all): its next run starts afresh.

    Returns the nodes reset; a ``KeyError`` if ``node`` has nothing stored.

    >>> store = memory()
    >>> store.commit_cursors("orders", "r1", {"read_orders": "2024-05-01"}, at="2024-05-02")
    >>> reset("orders", store=store)
    ['read_orders']
    """
    target = _default_store(store)
    gone = target.reset_cursors(pipeline, node)
    if node is not None and not gone:
        known = ", ".join(sorted(target.cursors(pipeline))) or "none"
        raise KeyError(
            f"no cursor for node {node!r} of pipeline {pipeline!r} in {target.describe()} "
            f"(nodes with one: {known})"
        )
    return gone


def diff(run_a: str, run_b: str, *, store: StateStore | None = None) -> pd.DataFrame:
    """Schema and row-count differences per node between two runs (``tdm history --diff``).

    One row per difference: ``node``, ``change`` (``schema``, ``rows``, ``added``,
    ``removed``), ``detail``, ``rows_a``, ``rows_b``. A ``KeyError`` names a missing run.
    """
    from tdm.interpreter.drift import diff_runs

    source = _default_store(store)
    return diff_runs(source.get(run_a), source.get(run_b))
