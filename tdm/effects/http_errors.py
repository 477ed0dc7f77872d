"""What REST calls show and raise: redacted text (also in the client libraries' own log
records), the errors of a call, and what is worth a retry.

Every URL shown in a message or a log line has its credentials redacted, and known secret
values are scrubbed (:func:`redact_text`).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time

from tdm.core.rest import redact_url
from tdm.effects.http_transport import Reply, loggers
from tdm.effects.secrets import scrub
from tdm.errors import EffectError

__all__ = ["StatusError", "redact_text", "retry_after_seconds"]

# ---------------------------------------------------------------------------------------------
# redaction, also applied to the client libraries' own log records
# ---------------------------------------------------------------------------------------------
# Query parameter names that api_key(query=...) auths use; replaced whole (never mutated) so
# that readers on other threads always see a consistent value.
_extra_sensitive: frozenset[str] = frozenset()
_URL_IN_TEXT = re.compile(r"""https?://[^\s"'<>]+""")


def redact_text(text: str) -> str:
    """``text`` with credentials removed from every URL in it and known secrets scrubbed.

    >>> redact_text("GET https://h.test/x?token=abc failed")
    'GET https://h.test/x?token=*** failed'
    """
    extra = _extra_sensitive
    return scrub(_URL_IN_TEXT.sub(lambda m: redact_url(m.group(0), extra), text))


def sensitive_params() -> frozenset[str]:
    """The query parameter names ``api_key(query=...)`` auths added to the redacted ones."""
    return _extra_sensitive


def _sensitive_param(name: str) -> None:
    global _extra_sensitive
    if name.lower() not in _extra_sensitive:
        _extra_sensitive = _extra_sensitive | {name.lower()}


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix; leave it alone
            return True
        record.msg, record.args = redact_text(message), ()
        return True


_FILTER = _RedactingFilter()
for _name in loggers():
    _logger = logging.getLogger(_name)
    if _FILTER not in _logger.filters:
        _logger.addFilter(_FILTER)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
class _Retryable(Exception):
    """A response whose status the retry policy retries."""

    def __init__(self, response: Reply) -> None:
        super().__init__(response.status_code)
        self.response = response


class StatusError(EffectError):
    """A request was answered with an error status (after any retries)."""

    def __init__(self, message: str, *, status: int, node: str, uri: str) -> None:
        super().__init__(message, node=node, uri=uri)
        self.status = status


_ERRORS: list[tuple[type[Exception], ...]] = []


def _transport_errors() -> tuple[type[Exception], ...]:
    """httpx's errors worth a retry: timeouts, network errors, broken responses."""
    if not _ERRORS:
        import httpx

        _ERRORS.append((httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))
    return _ERRORS[0]


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_Retryable, *_transport_errors()))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    >>> retry_after_seconds("3"), retry_after_seconds("soon"), retry_after_seconds(None)
    (3.0, None, None)
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _excerpt(response: Reply, limit: int = 200) -> str:
    try:
        text = response.text
    except Exception:
        return ""
    # Redact the whole body first: cut first, a secret echoed across the cut would survive
    # as a prefix that no longer matches the known value.
    text = " ".join(redact_text(text).split())
    if not text:
        return ""
    return ": " + text[:limit] + ("..." if len(text) > limit else "")
