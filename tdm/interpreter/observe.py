"""The observers every run gets from its runtime: logs, the audit trail and alerts.

* :class:`LoggingHook` binds the run context for log records and logs the run (INFO), each
  effect node (INFO), each pure step (DEBUG), failures (ERROR) and skips (INFO). It builds
  nothing unless its logger is enabled for the record's level.
* :class:`AlertHook` sends one alert per failed run to each alerter (and on success or
  recovery when asked); a failed alert is logged and kept in ``report.hook_errors``.
* :class:`StateHook` writes the run's audit record (retried), even for failed or interrupted
  runs; if the store stays down, the record is logged in full at ERROR and the failure is kept
  in ``report.hook_errors``. The run's output and status are never affected.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from tdm.core.context import RunContext
from tdm.core.pipeline import Pipeline
from tdm.effects.logging import bind_run, unbind
from tdm.effects.secrets import scrub
from tdm.interpreter.hooks import Hook
from tdm.interpreter.report import NodeMap, NodeReport, RunReport, Status
from tdm.interpreter.runtime import Runtime

if TYPE_CHECKING:  # alerts (ssl) and the audit store (sqlite3) load when a run uses them
    from tdm.effects.alerts import Alert, Kind
    from tdm.effects.state import RunRecord

__all__ = [
    "AlertHook",
    "LoggingHook",
    "NodeLoggingHook",
    "StateHook",
    "build_alert",
    "run_record",
]

log = logging.getLogger("tdm.run")
audit_log = logging.getLogger("tdm.audit")
alert_log = logging.getLogger("tdm.alerts")

_DEBUG, _INFO, _ERROR = logging.DEBUG, logging.INFO, logging.ERROR


def _version() -> str:
    import tdm

    return str(getattr(tdm, "__version__", "unknown"))


_HOST: list[str] = []


def _host() -> str:
    if not _HOST:
        _HOST.append(socket.gethostname())
    return _HOST[0]


def _iso_dt(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def _rows(report: RunReport) -> tuple[int | None, int | None]:
    """Rows read by source nodes and written by output nodes (pull/push stats)."""
    nodes = report.nodes
    layout = nodes.layout_of_records() if isinstance(nodes, NodeMap) else None
    if layout is not None:
        records = list(nodes.values())
        read = (records[i].rows_out for i in layout.roots)
        sources = [r for r in read if r is not None]
    else:
        sources = [n.rows_out for n in nodes.values() if not n.parents and n.rows_out is not None]
    outs = [
        dict.__getitem__(nodes, o).rows_out
        for o in report.output_names
        if dict.__getitem__(nodes, o).rows_out is not None
    ]
    return (sum(sources) if sources else None), (sum(o for o in outs if o is not None) or None)


def _log_node(level: int, node: NodeReport) -> None:
    extra = {
        "event": "node_finished",
        "node": node.name,
        "kind": node.kind,
        "status": str(node.status),
        "duration_s": node.duration_s,
        "rows_in": node.rows_in,
        "rows_out": node.rows_out,
    }
    if node.error is not None:
        extra["error"] = scrub(node.error.message)
        log.log(level, "node %s %s: %s", node.name, node.status, extra["error"], extra=extra)
    else:
        log.log(level, "node %s %s", node.name, node.status, extra=extra)


class LoggingHook(Hook):
    """Logs the run to ``tdm.run`` and binds the run context for every record logged meanwhile.

    This class logs failed nodes at the end of the run; :class:`NodeLoggingHook` (chosen by
    :meth:`for_level` when INFO is enabled) logs every node as it finishes instead. So when
    logging is quiet, a run pays nothing per node.
    """

    __slots__ = ("_token",)
    live_nodes = False

    def __init__(self) -> None:
        self._token: Any = None

    @staticmethod
    def for_level() -> LoggingHook:
        """The hook suited to the ``tdm.run`` logger's current level."""
        return NodeLoggingHook() if log.isEnabledFor(_INFO) else LoggingHook()

    def before_run(self, *, run: RunContext, report: RunReport, **_: Any) -> None:
        self._token = bind_run(run)
        if log.isEnabledFor(_INFO):
            log.info(
                "run %s of %s started: %d nodes on %s",
                run.run_id, report.pipeline_name, len(report.nodes), report.executor,
                extra={"event": "run_started", "status": "RUNNING",
                       "pipeline_name": report.pipeline_name},
            )  # fmt: skip

    def after_run(self, *, report: RunReport, **_: Any) -> None:
        try:
            if not self.live_nodes and log.isEnabledFor(_ERROR):
                for node in report.failed:
                    _log_node(_ERROR, node)
            level = _INFO if report.ok else _ERROR
            if log.isEnabledFor(level):
                rows_in, rows_out = _rows(report)
                log.log(
                    level,
                    "%s",
                    scrub(report.summary()),
                    extra={
                        "event": "run_finished",
                        "status": str(report.status),
                        "duration_s": report.duration_s,
                        "rows_in": rows_in,
                        "rows_out": rows_out,
                        "pipeline_name": report.pipeline_name,
                    },
                )
        finally:
            if self._token is not None:
                unbind(self._token)
                self._token = None


class NodeLoggingHook(LoggingHook):
    """:class:`LoggingHook` that also logs each node when it finishes: effect nodes and skips
    at INFO, pure steps at DEBUG, failures at ERROR (nothing is built for a disabled level)."""

    __slots__ = ("_steps", "ignores_step_success")
    live_nodes = True

    def __init__(self) -> None:
        super().__init__()
        self._steps = log.isEnabledFor(_DEBUG)
        # Read by the scheduler, which then does not call this hook for a pure step's success.
        self.ignores_step_success = not self._steps

    def after_node(self, *, node: NodeReport, **_: Any) -> None:
        status = node.status
        if status is Status.SUCCESS:
            if node.kind != "effect" and not self._steps:
                return
            level = _INFO if node.kind == "effect" else _DEBUG
        elif status is Status.FAILURE:
            level = _ERROR
        else:
            level = _INFO
        if log.isEnabledFor(level):
            _log_node(level, node)


_PLANS: weakref.WeakKeyDictionary[Pipeline, str] = weakref.WeakKeyDictionary()
_PLANS_LOCK = threading.Lock()


def _plan_text(pipeline: Pipeline) -> str:
    text = _PLANS.get(pipeline)
    if text is None:
        text = pipeline.to_text()
        with _PLANS_LOCK:
            _PLANS[pipeline] = text
    return text


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


_STATUS_TEXT: Final = {status: status.value for status in Status}


def _node_table(
    report: RunReport,
) -> tuple[dict[str, list[Any]], dict[str, dict[str, list[str]]]]:
    """The nodes column by column, and each distinct output schema once (cheap for 1000s).

    Each column is one list read from the records (no object per node); the columns a
    pipeline's runs share (names, kinds, parents) come from the report's :class:`NodeLayout`,
    encoded once per pipeline.
    """
    from tdm.effects.state.records import EncodedColumn

    nodes = list(report.nodes.values())
    # One list per field, no tuple per node: 10,000s of them would wake the garbage collector.
    prints, schemas = _schemas([n.column_index for n in nodes], [n.column_dtypes for n in nodes])
    table: dict[str, list[Any]] = {}
    layout = report.nodes.layout_of_records() if isinstance(report.nodes, NodeMap) else None
    if layout is None:
        position = {n.name: i for i, n in enumerate(nodes)}
        table["name"] = [n.name for n in nodes]
        table["kind"] = [n.kind for n in nodes]
        parents = [[position[p] for p in n.parents if p in position] for n in nodes]
    else:
        encoded = layout.encoded
        if not encoded:
            encoded.update(
                name=EncodedColumn(layout.names).json,
                kind=EncodedColumn(layout.kinds).json,
                parents=EncodedColumn(layout.parents).json,
            )
        table["name"] = EncodedColumn(layout.names, encoded["name"])
        table["kind"] = EncodedColumn(layout.kinds, encoded["kind"])
        parents = EncodedColumn(layout.parents, encoded["parents"])  # lists shared, read-only
    statuses = [n.status for n in nodes]
    table["status"] = _column(list(map(_STATUS_TEXT.__getitem__, statuses)))
    table["start_us"] = [None if (t := n.start) is None else int(t * 1e6) for n in nodes]
    table["stop_us"] = [None if (t := n.stop) is None else int(t * 1e6) for n in nodes]
    table["duration_us"] = [None if (t := n.duration_s) is None else int(t * 1e6) for n in nodes]
    table["rows_in"] = _column([n.rows_in for n in nodes])
    table["rows_out"] = _column([n.rows_out for n in nodes])
    table["schema"] = _column(prints)
    errors: list[Any] = [n.error for n in nodes]
    if errors.count(None) != len(errors):
        errors = [None if e is None else e.message for e in errors]
    table["error"] = errors
    table["parents"] = parents
    if report.resumed_from is not None:
        table["restored"] = [n.restored for n in nodes]
    return table, schemas


def _column(values: list[Any]) -> list[Any]:
    """``values`` with their JSON text when a few distinct values repeat (statuses, schemas,
    row counts): each distinct value is encoded once. Values are text, ints or None (no
    bools, which would be taken for 1 and 0)."""
    from tdm.effects.state.records import EncodedColumn, dumps

    distinct = dict.fromkeys(values)
    if len(distinct) > 32:
        return values
    text = {v: dumps(v) for v in distinct}
    return EncodedColumn(values, "[" + ",".join(map(text.__getitem__, values)) + "]")


def _schemas(
    indexes: Sequence[Any], dtypes: Sequence[Any]
) -> tuple[list[str | None], dict[str, dict[str, list[str]]]]:
    """Each node's schema fingerprint, and each distinct schema once."""
    from tdm.effects.state import schema_fingerprint

    # Steps that keep the schema share one column Index and identical dtype objects: the key
    # (index identity, dtype objects' addresses) finds them without formatting anything.
    cache: dict[tuple[int, bytes | None], str] = {}
    schemas: dict[str, dict[str, list[str]]] = {}
    prints: list[str | None] = []
    last_index: Any = None
    last_raw: Any = None
    last_key: bytes | None = None
    last_fp: str | None = None
    for index, raw in zip(indexes, dtypes, strict=True):
        if index is None:
            prints.append(None)
            continue
        if index is last_index and raw is last_raw and raw is not None:
            prints.append(last_fp)  # the very same schema objects as the node before
            continue
        marker = raw.tobytes() if raw is not None else None
        if index is last_index and marker == last_key and marker is not None:
            prints.append(last_fp)
            last_raw = raw
            continue
        key = (id(index), marker)
        fp = cache.get(key)
        if fp is None:
            names = [str(c) for c in index]
            types = [str(d) for d in raw] if raw is not None else []
            fp = cache[key] = schema_fingerprint(names, types if raw is not None else None)
            schemas[fp] = {"columns": names, "dtypes": types}
        prints.append(fp)
        last_index, last_raw, last_key, last_fp = index, raw, marker, fp
    return prints, schemas


def run_record(report: RunReport, pipeline: Pipeline | None, *, final: bool = True) -> RunRecord:
    """The audit record of a run from its report (secrets scrubbed)."""
    from tdm.effects.state import RunRecord, redact

    rows_in, rows_out = _rows(report) if final else (None, None)
    table, schemas = _node_table(report) if final else ({}, {})
    record = RunRecord(
        run_id=report.run_id,
        pipeline_id=report.pipeline_id,
        status=str(report.status),
        started_at=_iso_dt(report.started_at) or "",
        job_id=report.job_id,
        pipeline_name=report.pipeline_name,
        tdm_version=_version(),
        finished_at=_iso_dt(report.finished_at) if final else None,
        duration_s=report.duration_s if final else None,
        error=report.error,
        executor=report.executor,
        host=_host(),
        params=_jsonable(dict(report.params)),
        plan=_plan_text(pipeline) if pipeline is not None else "",
        rows_in=rows_in,
        rows_out=rows_out,
        hook_errors=tuple(report.hook_errors),
        node_table=table,
        schemas=schemas,
        resumed_from=report.resumed_from,
        drift=tuple(report.drift),
    )
    return redact(record)


class StateHook(Hook):
    """Writes each run's audit record to the runtime's state store."""

    def __init__(self, runtime: Runtime, *, attempts: int = 3, wait_s: float = 0.05) -> None:
        from tdm.effects.state import StateStore

        store = runtime.state
        if not isinstance(store, StateStore):
            raise TypeError(
                "Runtime(state=...) takes a store such as tdm.state.sqlite(), "
                f"tdm.state.files(url) or tdm.state.memory(), got {type(store).__name__}"
            )
        self.store: StateStore = store.using(runtime.secrets)
        self.attempts = attempts
        self.wait_s = wait_s

    def _policy(self) -> Any:
        from tenacity import Retrying, stop_after_attempt, wait_exponential

        return Retrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=wait_exponential(multiplier=self.wait_s, max=2.0),
            reraise=True,
        )

    def before_run(self, *, pipeline: Pipeline, report: RunReport, **_: Any) -> None:
        try:
            self.store.begin(run_record(report, pipeline, final=False))
        except Exception as exc:  # the final record will be retried; never stop the run here
            audit_log.warning(
                "audit store %s could not record the start of run %s: %s: %s",
                self.store.describe(), report.run_id, type(exc).__name__, scrub(str(exc)),
            )  # fmt: skip

    def after_run(self, *, pipeline: Pipeline, report: RunReport, **_: Any) -> None:
        from tdm.effects.retrying import retried

        record = run_record(report, pipeline)
        try:
            retried(lambda: self.store.record(record), self._policy, lambda _: self.attempts > 1)
        except Exception as exc:
            where = self.store.describe()
            cause = f"{type(exc).__name__}: {scrub(str(exc))}"
            audit_log.error(
                "AUDIT RECORD NOT SAVED: %s failed %d time(s) for run %s (%s); the record "
                "follows so it can be replayed: %s",
                where, self.attempts, report.run_id, cause, record.to_json(),
                extra={"event": "audit_failed", "status": str(report.status)},
            )  # fmt: skip
            report.audit_saved = False
            report.hook_errors.append(
                f"audit record of run {report.run_id} not saved to {where} after "
                f"{self.attempts} attempt(s): {cause} (the record is in the ERROR log)"
            )
            return
        report.audit_saved = True


_LAST_STATUS: dict[str, str] = {}
_LAST_LOCK: Final = threading.Lock()


def build_alert(kind: Kind, report: RunReport, *, audit: str) -> Alert:
    """The alert for ``report`` (one line per failed node; no secret, no traceback)."""
    from tdm.effects.alerts import Alert

    failed = tuple(
        f"{n.name}: {scrub(n.error.message) if n.error else 'failed'}" for n in report.failed
    )
    skipped = sum(1 for n in report.nodes.values() if n.status is Status.SKIPPED)
    return Alert(
        kind=kind,
        status=str(report.status),
        pipeline_id=report.pipeline_id,
        pipeline_name=report.pipeline_name,
        run_id=report.run_id,
        job_id=report.job_id,
        failed=failed,
        error=scrub(report.error) if report.error else None,
        duration_s=report.duration_s,
        started_at=_iso_dt(report.started_at) or "",
        audit=audit,
        host=_host(),
        nodes=len(report.nodes),
        skipped=skipped,
        drift=tuple(scrub(d) for d in report.drift),
    )


class AlertHook(Hook):
    """Sends alerts after a run: once per failed run to every alerter that wants failures."""

    def __init__(self, runtime: Runtime) -> None:
        from tdm.effects.alerts import build_alerters

        build_alerters(runtime.alerters)  # a wrong item is a clear error before the run
        self.runtime = runtime

    def _previous_status(self, report: RunReport) -> str | None:
        store = self.runtime.state
        if store is not None:
            try:
                for run in store.using(self.runtime.secrets).runs(
                    pipeline=report.pipeline_id, limit=5, nodes=False
                ):
                    if run.run_id != report.run_id and run.status in ("SUCCESS", "FAILURE"):
                        return run.status
                return None
            except Exception as exc:
                alert_log.warning(
                    "could not read the previous run of %s from %s: %s",
                    report.pipeline_id, store.describe(), exc,
                )  # fmt: skip
        with _LAST_LOCK:
            return _LAST_STATUS.get(report.pipeline_id)

    def after_run(self, *, report: RunReport, **_: Any) -> None:
        alerters = list(self.runtime.alerters)
        kinds: list[Kind] = []
        if not report.ok:
            kinds = ["failure"]
        elif any(a.on_recovery for a in alerters) and self._previous_status(report) == "FAILURE":
            kinds = ["recovery"]
        else:
            kinds = ["success"]
        with _LAST_LOCK:
            _LAST_STATUS[report.pipeline_id] = str(report.status)
        kind = kinds[0]
        chosen = [a for a in alerters if a.wants(kind)]
        if not chosen:
            return
        store = self.runtime.state
        audit = store.describe() if store is not None else "no audit store configured"
        alert = build_alert(kind, report, audit=audit)
        for alerter in chosen:
            try:
                alerter.send(alert, secrets=self.runtime.secrets)
            except Exception as exc:
                text = scrub(f"alert via {alerter.describe()} failed: {exc}")
                report.hook_errors.append(text)
                alert_log.error(
                    "%s", text, extra={"event": "alert_failed", "status": str(report.status)}
                )
            else:
                alert_log.info(
                    "%s alert sent via %s", kind, alerter.describe(),
                    extra={"event": "alert_sent", "status": str(report.status)},
                )  # fmt: skip
