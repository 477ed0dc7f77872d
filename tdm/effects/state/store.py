"""The :class:`StateStore` interface and the in-process :class:`MemoryStore`."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self

from tdm.effects.secrets import SecretsProvider
from tdm.effects.state.records import (
    CursorRecord,
    RunRecord,
)


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

    def last_schemas(self, pipeline_id: str) -> RunRecord | None:
        """The pipeline's last successful run, with at least each node's name and schema in
        its node table: what a drift check compares (stores may leave the rest out)."""
        found = self.runs(pipeline=pipeline_id, status="SUCCESS", limit=1, nodes=True)
        return found[0] if found else None

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
