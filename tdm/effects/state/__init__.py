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

from tdm.effects.state.file_store import FileStore
from tdm.effects.state.records import (
    SCHEMA_VERSION,
    CursorRecord,
    NodeRecord,
    RunRecord,
    redact,
    schema_fingerprint,
)
from tdm.effects.state.sqlite_store import SQLiteStore, shared_sqlite
from tdm.effects.state.store import MemoryStore, StateStore

__all__ = [
    "SCHEMA_VERSION",
    "CursorRecord",
    "FileStore",
    "MemoryStore",
    "NodeRecord",
    "RunRecord",
    "SQLiteStore",
    "StateStore",
    "redact",
    "schema_fingerprint",
    "shared_sqlite",
]
