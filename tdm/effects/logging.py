"""Structured logging: a JSON formatter, the run context carried by ``contextvars``, and a
filter that scrubs every known secret value from every record.

Nothing here runs at import time: importing tdm installs no handler and changes no level. The
CLI and :func:`configure` attach one handler; everything else is opt-in.

The run context (``pipeline_id``, ``job_id``, ``run_id`` and the current ``node``) is set by
the interpreter while a run is going on, so any record logged from inside a step or a handler
(``logging.getLogger(__name__).info(...)``) carries it, on every executor thread.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import IO, Any, Final, Literal

from tdm.core.context import RunContext
from tdm.effects.secrets import known_values, scrub

__all__ = [
    "ContextFilter",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "bind_run",
    "configure",
    "current",
    "run_scope",
]

_CURRENT: ContextVar[tuple[RunContext | None, str | None] | None] = ContextVar(
    "tdm_run", default=None
)
RUN_CONTEXT: Final = _CURRENT
"""The run context variable: ``(RunContext | None, node name | None)`` or None (hot paths
set it directly; everyone else uses :func:`run_scope` or :func:`bind_run`)."""

CONTEXT_FIELDS: Final = ("pipeline_id", "job_id", "run_id", "node")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}


def current() -> dict[str, str]:
    """The run context of the calling code: ``pipeline_id``, ``job_id``, ``run_id``, ``node``.

    Empty outside a run.

    >>> current()
    {}
    """
    value = _CURRENT.get()
    if value is None:
        return {}
    context, node = value
    out: dict[str, str] = {}
    if context is not None:
        out["pipeline_id"] = context.pipeline_id
        out["job_id"] = context.job_id
        out["run_id"] = context.run_id
    if node is not None:
        out["node"] = node
    return out


def bind_run(
    context: RunContext | None, node: str | None = None
) -> Token[tuple[RunContext | None, str | None] | None]:
    """Make ``context`` (and ``node``) the current run context; reset it with the token."""
    return _CURRENT.set((context, node))


def unbind(token: Token[tuple[RunContext | None, str | None] | None]) -> None:
    """Restore the run context that was current before :func:`bind_run`."""
    _CURRENT.reset(token)


@contextmanager
def run_scope(context: RunContext | None, node: str | None = None) -> Iterator[None]:
    """Within the block, log records carry ``context``'s ids (and ``node``).

    >>> from datetime import datetime, timezone
    >>> ctx = RunContext(started_at=datetime.now(timezone.utc), run_id="r1", pipeline_id="p")
    >>> with run_scope(ctx, "load"):
    ...     current()
    {'pipeline_id': 'p', 'job_id': 'r1', 'run_id': 'r1', 'node': 'load'}
    """
    token = bind_run(context, node)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Adds the run context (``pipeline_id``, ``job_id``, ``run_id``, ``node``) to each record.

    Fields passed explicitly with ``extra=`` win. Attach it to a handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        value = _CURRENT.get()
        if value is None:
            return True
        context, node = value
        attrs = record.__dict__
        if context is not None:
            attrs.setdefault("pipeline_id", context.pipeline_id)
            attrs.setdefault("job_id", context.job_id)
            attrs.setdefault("run_id", context.run_id)
        if node is not None:
            attrs.setdefault("node", node)
        return True


class SecretFilter(logging.Filter):
    """Replaces every known secret value by ``***`` in a record's message, arguments,
    exception and stack text, and in string fields given with ``extra=``.

    Attach it to every handler that may see tdm's records (:func:`configure` does).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not known_values():
            return True
        message = record.getMessage()
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        attrs = record.__dict__
        for key, value in list(attrs.items()):
            if key not in _STANDARD and isinstance(value, str):
                attrs[key] = scrub(value)
        return True


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line.

    Fields: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the run context
    (``pipeline_id``, ``job_id``, ``run_id``, ``node``) when there is one, every ``extra=``
    field (``status``, ``duration_s``, ``rows_in``, ``rows_out``, ...), then ``module``,
    ``function``, ``line``, ``thread``, ``process`` and ``exception`` (traceback text).

    >>> import logging
    >>> r = logging.LogRecord("tdm.run", logging.INFO, "f.py", 3, "rows: %d", (5,), None)
    >>> r.created = 0.0
    >>> line = json.loads(JsonFormatter().format(r))
    >>> line["time"], line["level"], line["logger"], line["message"], line["line"]
    ('1970-01-01T00:00:00.000+00:00', 'INFO', 'tdm.run', 'rows: 5', 3)
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        attrs = record.__dict__
        value = _CURRENT.get()
        if value is not None and "run_id" not in attrs:
            ContextFilter().filter(record)
        for key, item in attrs.items():
            if key not in _STANDARD:
                out[key] = _jsonable(item)
        out["module"] = record.module
        out["function"] = record.funcName
        out["line"] = record.lineno
        out["thread"] = record.threadName
        out["process"] = record.process
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines: time, level, logger, ``[run=… node=…]``, message, then extras.

    >>> import logging
    >>> r = logging.LogRecord("tdm.run", logging.INFO, "f.py", 3, "done", None, None)
    >>> r.created, r.msecs, r.rows_out = 0.0, 0.0, 5
    >>> TextFormatter().format(r)
    '1970-01-01T00:00:00.000+00:00 INFO    tdm.run done rows_out=5'
    """

    def format(self, record: logging.LogRecord) -> str:
        attrs = record.__dict__
        value = _CURRENT.get()
        if value is not None and "run_id" not in attrs:
            ContextFilter().filter(record)
        where = " ".join(
            f"{k if k != 'run_id' else 'run'}={attrs[k]}"
            for k in ("run_id", "node")
            if attrs.get(k) is not None
        )
        extras = " ".join(
            f"{k}={v}"
            for k, v in attrs.items()
            if k not in _STANDARD and k not in CONTEXT_FIELDS and k != "event"
        )
        line = f"{_iso(record.created)} {record.levelname:<7} {record.name}"
        if where:
            line += f" [{where}]"
        line += f" {record.getMessage()}"
        if extras:
            line += f" {extras}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


_FORMATS: Final = ("json", "text")


def configure(
    level: int | str = "INFO",
    fmt: Literal["json", "text"] = "json",
    stream: IO[str] | None = None,
    *,
    logger: str = "",
) -> logging.Handler:
    """Send log records (the root logger's by default) to ``stream`` as JSON or text lines.

    Installs one handler with the run-context and secret-scrubbing filters and sets the
    logger's level. Calling it again replaces the handler it installed before; other
    handlers and loggers are left alone (nothing is disabled), except that below DEBUG the
    HTTP client's one record per request (``httpx``, ``httpcore``) is raised to WARNING when
    its level was not set: at INFO tdm logs its own run and node events, not every request.

    Args:
        level: ``"DEBUG"``, ``"INFO"`` (default), ``"WARNING"``, ``"ERROR"`` or a number. At
            INFO tdm logs each run, each effect node (reads, writes, REST calls) and every
            failure; DEBUG adds every pure step.
        fmt: ``"json"`` (one object per line) or ``"text"``.
        stream: where to write (default: ``sys.stderr``).
        logger: the logger to attach to (``""``: the root, so your own steps' records get the
            run context too; ``"tdm"``: only tdm's records).

    Returns:
        The installed handler (``logging.getLogger(logger).removeHandler(h)`` undoes it).

    >>> import io, logging, tdm
    >>> out = io.StringIO()
    >>> handler = tdm.logging.configure("INFO", "json", out, logger="tdm.example")
    >>> logging.getLogger("tdm.example").info("hello %s", "world")
    >>> '"message": "hello world"' in out.getvalue()
    True
    >>> logging.getLogger("tdm.example").removeHandler(handler)
    """
    if fmt not in _FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use 'json' or 'text'")
    numeric = _level(level)
    target = logging.getLogger(logger)
    for old in list(target.handlers):
        if getattr(old, "_tdm_handler", False):
            target.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._tdm_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretFilter())
    handler.setLevel(numeric)
    target.addHandler(handler)
    target.setLevel(numeric)
    _quiet_request_loggers(numeric)
    return handler


_REQUEST_LOGGERS: Final = ("httpx", "httpcore")
_quieted: set[str] = set()


def _quiet_request_loggers(level: int) -> None:
    """WARNING for the HTTP client's per-request loggers unless ``level`` is DEBUG (or a user
    set their level); undone when a later call asks for DEBUG."""
    for name in _REQUEST_LOGGERS:
        lg = logging.getLogger(name)
        if level <= logging.DEBUG:
            if name in _quieted:
                lg.setLevel(logging.NOTSET)
                _quieted.discard(name)
        elif lg.level == logging.NOTSET or name in _quieted:
            lg.setLevel(max(level, logging.WARNING))
            _quieted.add(name)


def _level(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        numeric = logging.getLevelNamesMapping().get(level.strip().upper())
        if numeric is not None:
            return numeric
    raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
