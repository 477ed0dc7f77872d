"""The parts of a REST description: secret fields, frozen JSON bodies, the retry policy,
auth schemes and pagination styles. Frozen, picklable values that hold no credential.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

from tdm.core.incremental import fill_cursor
from tdm.core.rest_urls import SENSITIVE_PARAMS, _check_url
from tdm.errors import DefinitionError

__all__ = [
    "ApiKey",
    "Auth",
    "Basic",
    "Bearer",
    "Cursor",
    "FrozenJson",
    "LinkHeader",
    "NextUrl",
    "NoPagination",
    "OAuth2ClientCredentials",
    "OffsetLimit",
    "PageNumber",
    "Pagination",
    "RetryPolicy",
    "SecretField",
    "Value",
    "freeze_json",
]


@dataclass(frozen=True, slots=True)
class SecretField:
    """A reference to one key of a secret, used as a header, query or body value.

    ``secret`` names the secret section; None means the effect's own ``secret=``.

    >>> SecretField("code")
    SecretField(key='code', secret=None)
    >>> str(SecretField("code", "AirWatch"))
    '<secret AirWatch.code>'
    """

    key: str
    secret: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise DefinitionError(f"a secret field needs a non-empty key name, got {self.key!r}")

    def __str__(self) -> str:
        return f"<secret {self.secret or ''}{'.' if self.secret else ''}{self.key}>"


Value: TypeAlias = "str | SecretField"
"""A header or query value: a literal string (may be a ``{column}`` template) or a secret key."""


@dataclass(frozen=True, slots=True)
class FrozenJson:
    """A hashable JSON object: ``items`` are (key, frozen value) pairs. See :func:`freeze_json`."""

    items: tuple[tuple[str, Any], ...]


def freeze_json(value: Any) -> Any:
    """A hashable, picklable copy of a JSON-like value (dicts -> FrozenJson, lists -> tuples).

    >>> freeze_json({"b": [1, 2], "a": None})
    FrozenJson(items=(('a', None), ('b', (1, 2))))
    """
    if isinstance(value, Mapping):
        pairs = [(str(k), freeze_json(v)) for k, v in value.items()]
        return FrozenJson(tuple(sorted(pairs, key=lambda kv: kv[0])))
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    if isinstance(value, str | int | float | bool | SecretField | FrozenJson) or value is None:
        return value
    raise DefinitionError(
        f"json= values must be JSON-like (dict, list, str, number, bool, None or "
        f"rest.secret_field(...)), got {type(value).__name__}: {value!r}"
    )


# ---------------------------------------------------------------------------------------------
# retries
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how often to retry a request (429, 5xx, connection errors and timeouts).

    Attributes:
        attempts: the most tries of one request, the first included (1 = never retry).
        backoff: the first wait in seconds; doubles each retry (exponential), plus jitter.
        max_backoff: the longest single wait.
        jitter: up to this many seconds added at random to each wait.
        deadline: the most seconds spent on one request, waits included.
        max_retry_after: the longest ``Retry-After`` honoured; longer ones are capped to it.
        statuses: the HTTP statuses retried (None: 429 and every 5xx except 501 and 505).
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    deadline: float = 120.0
    max_retry_after: float = 60.0
    statuses: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise DefinitionError(f"retry attempts must be an integer >= 1, got {self.attempts!r}")
        for field_name in ("backoff", "max_backoff", "jitter", "deadline", "max_retry_after"):
            value = getattr(self, field_name)
            if not isinstance(value, int | float) or value < 0 or math.isnan(value):
                raise DefinitionError(f"retry {field_name} must be a number >= 0, got {value!r}")

    def retries_status(self, status: int) -> bool:
        """Whether a response with ``status`` is retried."""
        if self.statuses is not None:
            return status in self.statuses
        return status == 429 or (500 <= status <= 599 and status not in (501, 505))


# ---------------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Auth:
    """Base of auth descriptions. ``secret`` overrides the effect's secret name."""

    kind: ClassVar[str] = "auth"


@dataclass(frozen=True, slots=True)
class Basic(Auth):
    """HTTP Basic auth with the secret's ``username`` and ``password`` keys."""

    username_key: str = "username"
    password_key: str = "password"
    secret: str | None = None
    kind: ClassVar[str] = "basic"


@dataclass(frozen=True, slots=True)
class Bearer(Auth):
    """``Authorization: Bearer <token>`` with the secret's ``token`` key."""

    token_key: str = "token"
    secret: str | None = None
    kind: ClassVar[str] = "bearer"


@dataclass(frozen=True, slots=True)
class ApiKey(Auth):
    """An API key from the secret's ``key`` key, sent as a header or as a query parameter."""

    header: str | None = None
    query: str | None = None
    key: str = "api_key"
    prefix: str = ""
    secret: str | None = None
    kind: ClassVar[str] = "api_key"

    def __post_init__(self) -> None:
        if (self.header is None) == (self.query is None):
            raise DefinitionError(
                "rest.api_key needs exactly one of header='X-Api-Key' or query='api_key'"
            )


@dataclass(frozen=True, slots=True)
class OAuth2ClientCredentials(Auth):
    """OAuth2 client-credentials grant: a token from ``token_url``, refreshed when it expires.

    ``client_id_key``/``client_secret_key`` name keys of the secret; ``send_as`` is ``"body"``
    (form fields) or ``"basic"`` (HTTP Basic to the token endpoint).
    """

    token_url: str
    scope: str | None = None
    audience: str | None = None
    client_id_key: str = "client_id"
    client_secret_key: str = "client_secret"
    send_as: Literal["body", "basic"] = "body"
    secret: str | None = None
    kind: ClassVar[str] = "oauth2"

    def __post_init__(self) -> None:
        _check_url(self.token_url, "token_url")
        if self.send_as not in ("body", "basic"):
            raise DefinitionError(f"send_as must be 'body' or 'basic', got {self.send_as!r}")


# ---------------------------------------------------------------------------------------------
# pagination
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pagination:
    """Base of pagination strategies."""

    kind: ClassVar[str] = "none"


@dataclass(frozen=True, slots=True)
class NoPagination(Pagination):
    """One request, one response."""


@dataclass(frozen=True, slots=True)
class PageNumber(Pagination):
    """``?page=N`` pages from ``start``; stops at ``total`` (items) / ``total_pages`` or an
    empty page. With a total, the remaining pages are fetched concurrently."""

    param: str = "page"
    start: int = 1
    size: int | None = None
    size_param: str | None = "per_page"
    total: str | None = None
    total_pages: str | None = None
    max_pages: int | None = None
    concurrency: int = 8
    kind: ClassVar[str] = "page_number"


@dataclass(frozen=True, slots=True)
class OffsetLimit(Pagination):
    """``?offset=N&limit=L`` pages; stops at ``total`` (then concurrent) or an empty page."""

    limit: int = 100
    offset_param: str = "offset"
    limit_param: str = "limit"
    start: int = 0
    total: str | None = None
    max_pages: int | None = None
    concurrency: int = 8
    kind: ClassVar[str] = "offset_limit"


@dataclass(frozen=True, slots=True)
class Cursor(Pagination):
    """An opaque cursor read from the body at ``path`` and sent back as ``param``."""

    path: str = "next_cursor"
    param: str = "cursor"
    limit: int | None = None
    limit_param: str = "limit"
    max_pages: int | None = None
    kind: ClassVar[str] = "cursor"


@dataclass(frozen=True, slots=True)
class NextUrl(Pagination):
    """The next page's URL read from the body at ``path`` (absolute or relative)."""

    path: str = "next"
    max_pages: int | None = None
    kind: ClassVar[str] = "next_url"


@dataclass(frozen=True, slots=True)
class LinkHeader(Pagination):
    """The next page's URL from the RFC 5988 ``Link`` header (``rel="next"``)."""

    rel: str = "next"
    max_pages: int | None = None
    kind: ClassVar[str] = "link_header"


def _strings(value: Any) -> list[str | SecretField]:
    """Every string and secret field inside a frozen JSON value."""
    if isinstance(value, str | SecretField):
        return [value]
    if isinstance(value, FrozenJson):
        return [s for _, v in value.items for s in _strings(v)]
    if isinstance(value, tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _fill_json(value: Any, cursor: Any) -> Any:
    if isinstance(value, str):
        return fill_cursor(value, cursor)
    if isinstance(value, FrozenJson):
        return FrozenJson(tuple((k, _fill_json(v, cursor)) for k, v in value.items))
    if isinstance(value, tuple):
        return tuple(_fill_json(v, cursor) for v in value)
    return value


_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"}
)


def _redact_header(name: str, value: str | SecretField) -> str | SecretField:
    if isinstance(value, str) and name.lower() in _SENSITIVE_HEADERS:
        return "***"
    return value


def _shown_value(name: str, value: str | SecretField) -> str:
    if isinstance(value, SecretField):
        return str(value)
    if name.lower() in SENSITIVE_PARAMS or name.lower() in _SENSITIVE_HEADERS:
        return "***"
    if "${secrets." in value:
        return re.sub(r"\$\{secrets\.([^}]*)\}", r"<secret \1>", value)
    return value
