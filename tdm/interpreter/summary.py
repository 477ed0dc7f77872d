"""What ``tdm run --log-format json`` prints: one JSON document per invocation, JSON error lines.

A pod's log collector reads stdout and stderr line by line: with ``--log-format json`` the run
summary on stdout is one JSON document (a single line) and every error on stderr is one JSON
object per line, in the shape of tdm's JSON log records (``time``, ``level``, ``logger``,
``message``) plus ``error`` (the error's kind) and ``exit_code``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tdm.effects.secrets import scrub
from tdm.interpreter.report import RunReport, Status

__all__ = ["error_line", "run_document", "run_record"]


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run_record(name: str, report: RunReport, *, show: int = 0) -> dict[str, Any]:
    """One pipeline's run as a JSON-friendly dict (secrets scrubbed).

    ``show`` > 0 adds the first rows of each output frame as records.

    >>> import pandas as pd, tdm
    >>> report = tdm.run(tdm.inputs.frame("x"), inputs={"x": pd.DataFrame({"a": [1, 2]})},
    ...                  runtime=tdm.Runtime(state=tdm.state.memory()), pipeline_id="demo")
    >>> record = run_record("Demo", report, show=1)
    >>> record["status"], record["nodes"][0]["rows_out"], record["outputs"]
    ('SUCCESS', 2, {'x': [{'a': 1}]})
    """
    nodes = [
        {
            "name": node.name,
            "kind": node.kind,
            "status": str(node.status),
            "duration_s": node.duration_s,
            "rows_in": node.rows_in,
            "rows_out": node.rows_out,
            "error": scrub(str(node.error)) if node.error is not None else None,
        }
        for node in report.nodes.values()
    ]
    record: dict[str, Any] = {
        "pipeline": name,
        "pipeline_id": report.pipeline_id,
        "run_id": report.run_id,
        "job_id": report.job_id,
        "status": str(report.status),
        "started_at": _when(report.started_at),
        "finished_at": _when(report.finished_at),
        "duration_s": report.duration_s,
        "error": scrub(report.error) if report.error else None,
        "hook_errors": [scrub(e) for e in report.hook_errors],
        "nodes": nodes,
    }
    if show > 0:
        record["outputs"] = {
            out: json.loads(frame.head(show).to_json(orient="records", date_format="iso"))
            for out, frame in report.outputs.items()
        }
    return record


def run_document(records: Sequence[Mapping[str, Any]]) -> str:
    """The summary of every pipeline run by one ``tdm run``, as one line of JSON.

    >>> run_document([{"pipeline": "P", "status": "FAILURE"}])
    '{"status": "FAILURE", "pipelines": [{"pipeline": "P", "status": "FAILURE"}]}'
    """
    ok = all(r.get("status") == str(Status.SUCCESS) for r in records)
    status = str(Status.SUCCESS) if ok else str(Status.FAILURE)
    return json.dumps(
        {"status": status, "pipelines": [dict(r) for r in records]},
        ensure_ascii=False,
        default=str,
    )


def error_line(kind: str, message: str, *, exit_code: int, **fields: Any) -> str:
    """One error as a JSON log line (the message scrubbed of every known secret).

    >>> line = json.loads(error_line("ConfigError", "bad file", exit_code=2))
    >>> line["level"], line["error"], line["message"], line["exit_code"]
    ('ERROR', 'ConfigError', 'bad file', 2)
    """
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "ERROR",
        "logger": "tdm.cli",
        "message": scrub(message),
        "error": kind,
        "exit_code": exit_code,
        **{k: scrub(v) if isinstance(v, str) else v for k, v in fields.items()},
    }
    return json.dumps(record, ensure_ascii=False, default=str)
