"""REST effect descriptions: frozen, picklable values saying which HTTP calls to make.

Nothing here performs I/O (the handlers live in ``tdm.effects.rest``). Credentials are never
held: auth descriptions and :class:`SecretField` values name *keys of a secret*, resolved inside
the handler. The public factories are in :mod:`tdm.rest`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tdm.core.effect import Effect, SecretNeed
from tdm.core.incremental import CURSOR, Incremental, fill_cursor
from tdm.errors import DefinitionError

__all__ = [
    "ApiKey",
    "Auth",
    "Basic",
    "Bearer",
    "Cursor",
    "FetchEach",
    "FrozenJson",
    "HttpGet",
    "LinkHeader",
    "NextUrl",
    "NoPagination",
    "OAuth2ClientCredentials",
    "OffsetLimit",
    "PageNumber",
    "Pagination",
    "RetryPolicy",
    "SecretField",
    "StatusPolicy",
    "Value",
    "freeze_json",
    "redact_url",
    "secret_refs",
    "template_fields",
]

RedirectPolicy: TypeAlias = Literal["same-origin", "any"]
REDIRECT_POLICIES: tuple[str, ...] = ("same-origin", "any")
StatusPolicy: TypeAlias = Literal["fail", "skip", "empty"]
STATUS_POLICIES: tuple[str, ...] = ("fail", "skip", "empty")

# Query parameters whose values are credentials: redacted from every URL tdm shows.
SENSITIVE_PARAMS: frozenset[str] = frozenset(
    {
        "access_token", "api_key", "apikey", "api-key", "auth", "client_secret", "code",
        "id_token", "key", "pass", "passwd", "password", "pwd", "refresh_token", "secret",
        "sig", "signature", "token", "x-api-key",
    }
)  # fmt: skip


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


# ---------------------------------------------------------------------------------------------
# the effects
# ---------------------------------------------------------------------------------------------
Pairs: TypeAlias = tuple[tuple[str, "str | SecretField"], ...]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class _RestOptions(Effect):
    """Fields shared by :class:`HttpGet` and :class:`FetchEach` (keyword-only)."""

    method: str = "GET"
    params: Pairs = ()
    headers: Pairs = ()
    records: str | None = None
    auth: Auth | None = None
    secret: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    rate_limit: float | None = None
    flatten: bool = True
    verify: bool = True
    redirects: RedirectPolicy = "same-origin"

    def _check_common(self) -> None:
        if self.redirects not in REDIRECT_POLICIES:
            raise DefinitionError(
                f"redirects must be 'same-origin' (follow redirects within the request's origin "
                f"only) or 'any' (follow others too, without credentials), got {self.redirects!r}"
            )
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise DefinitionError(f"method must be an HTTP method like 'GET', got {self.method!r}")
        if not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise DefinitionError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")
        if self.rate_limit is not None and (
            not isinstance(self.rate_limit, int | float) or self.rate_limit <= 0
        ):
            raise DefinitionError(
                f"rate_limit is requests per second and must be > 0, got {self.rate_limit!r}"
            )
        needs_secret = self.auth is not None and getattr(self.auth, "secret", None) is None
        fields = [v for _, v in self.params + self.headers if isinstance(v, SecretField)]
        needs_secret = needs_secret or any(f.secret is None for f in fields)
        texts = [v for _, v in self.params + self.headers if isinstance(v, str)]
        needs_secret = needs_secret or any(SECRET_REF.search(t) for t in texts)
        if needs_secret and self.secret is None:
            raise DefinitionError(
                "auth= and rest.secret_field(...) read keys of a named secret: pass "
                "secret='<name of a section in ~/.tdm/secrets.yml>'"
            )

    def secret_names(self) -> tuple[str, ...]:
        """Every secret section this effect reads (names only)."""
        names: list[str | None] = [self.secret]
        if self.auth is not None and getattr(self.auth, "secret", None):
            names.append(self.auth.secret)  # type: ignore[attr-defined]
        names += [v.secret for _, v in self.params + self.headers if isinstance(v, SecretField)]
        return tuple(dict.fromkeys(n for n in names if n))

    def secret_needs(self) -> tuple[SecretNeed, ...]:
        """The secret keys this effect reads: auth keys, secret fields, ``${secrets.key}``.

        Names only, never values.

        >>> HttpGet("https://h.test/x", params=(("t", "${secrets.tenant}"),),
        ...         secret="Api").secret_needs()
        (SecretNeed(section='Api', any_of=('tenant',), ignore_case=False),)
        """
        needs: list[tuple[str, str]] = []
        auth = self.auth
        if auth is not None:
            section = getattr(auth, "secret", None) or self.secret
            keys = [
                getattr(auth, attr)
                for attr in ("username_key", "password_key", "token_key", "key")
                if isinstance(getattr(auth, attr, None), str)
            ]
            if isinstance(auth, OAuth2ClientCredentials):
                keys = [auth.client_id_key, auth.client_secret_key]
            needs += [(section, k) for k in keys if section]
        texts: list[str] = []
        values = [v for _, v in self.params + self.headers] + _strings(getattr(self, "json", None))
        for value in values:
            if isinstance(value, SecretField):
                section = value.secret or self.secret
                if section:
                    needs.append((section, value.key))
            else:
                texts.append(value)
        body = getattr(self, "body", None)
        if isinstance(body, str):
            texts.append(body)
        if self.secret:
            needs += [(self.secret, key) for text in texts for key in secret_refs(text)]
        out: dict[str, list[str]] = {name: [] for name in self.secret_names()}
        for section, key in needs:
            out.setdefault(section, [])
            if key not in out[section]:
                out[section].append(key)
        return tuple(
            need
            for section, keys in out.items()
            for need in ([SecretNeed(section, (k,)) for k in keys] or [SecretNeed(section)])
        )

    def __repr__(self) -> str:
        import dataclasses

        head = "url" if isinstance(self, HttpGet) else "template"
        parts = [repr(redact_url(getattr(self, head)))]
        for f in dataclasses.fields(self):
            if f.name in (head, "label"):
                continue
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if value == default:
                continue
            if f.name == "headers":
                value = tuple((k, _redact_header(k, v)) for k, v in value)
            parts.append(f"{f.name}={value!r}")
        if self.label is not None:
            parts.append(f"label={self.label!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def details(self) -> list[str]:
        """What ``--dry-run`` and ``tdm graph`` show under the node: the query as it will be
        encoded, headers, pagination and page size, timeout and retry policy (credentials as
        ``***``, secret fields by key name)."""
        from urllib.parse import quote_plus

        lines: list[str] = []
        if self.params:
            encoded = []
            for k, v in self.params:
                shown = _shown_value(k, v)
                literal = isinstance(v, str) and shown == v  # placeholders stay readable
                value = quote_plus(shown, safe="{}") if literal else shown
                encoded.append(f"{quote_plus(k)}={value}")
            lines.append(f"params: {'&'.join(encoded)}")
        if self.headers:
            items = ", ".join(f"{k}: {_shown_value(k, v)}" for k, v in self.headers)
            lines.append(f"headers: {items}")
        paginate = getattr(self, "paginate", None)
        if paginate is not None and paginate.kind != "none":
            fields = [
                f"{f.name}={getattr(paginate, f.name)!r}"
                for f in dataclasses.fields(paginate)
                if getattr(paginate, f.name) != f.default
            ]
            lines.append(f"paginate: {paginate.kind}({', '.join(fields)})")
        r = self.retry
        retries = (
            "never retried"
            if r.attempts == 1
            else f"up to {r.attempts} attempts ({r.attempts - 1} retries) within {r.deadline:g} s, "
            f"backoff {r.backoff:g} s doubling to {r.max_backoff:g} s"
        )
        lines.append(f"timeout: {self.timeout:g} s per request; retry: {retries}")
        if self.rate_limit is not None:
            lines.append(f"rate limit: {self.rate_limit:g} requests/s")
        return lines

    def _options_text(self) -> str:
        parts = []
        if self.method != "GET":
            parts.append(f"method={self.method!r}")
        if self.records:
            parts.append(f"records={self.records!r}")
        if self.auth is not None:
            parts.append(f"auth={self.auth.kind}")
        if self.secret:
            parts.append(f"secret={self.secret!r}")
        if not self.verify:
            parts.append("verify=False")
        if self.redirects != "same-origin":
            parts.append(f"redirects={self.redirects!r}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class HttpGet(_RestOptions):
    """A REST source: one request (or one per page) turned into a frame. See ``tdm.rest.get``.

    >>> HttpGet("https://api.example.com/v1/devices?api_key=abc", records="Devices").describe()
    "rest.get('https://api.example.com/v1/devices?api_key=***', records='Devices')"
    """

    url: str = field(kw_only=False)
    json: Any = None
    body: str | bytes | None = None
    paginate: Pagination = NoPagination()
    incremental: Incremental | None = None
    expect_total: str | None = None
    arity: ClassVar[int] = 0  # type: ignore[misc]

    def __post_init__(self) -> None:
        _check_url(self.url, "url")
        self._check_common()
        if self.json is not None and self.body is not None:
            raise DefinitionError("pass json= or body=, not both")
        if self.expect_total is not None:
            where, _, name = str(self.expect_total).partition(":")
            if where not in ("header", "body") or not name:
                raise DefinitionError(
                    f"expect_total={self.expect_total!r}: say where the server states the "
                    "total, e.g. 'header:X-Total-Count' or 'body:meta.total'"
                )
        if self.incremental is not None:
            if not isinstance(self.incremental, Incremental):
                raise DefinitionError(
                    "incremental= takes tdm.incremental('column', initial=...), got "
                    f"{type(self.incremental).__name__}"
                )
            if not self._cursor_places():
                raise DefinitionError(
                    f"incremental= needs a {CURSOR} placeholder in the URL, a param value or "
                    f"the body of {redact_url(self.url)!r}, e.g. "
                    "params={'updated_since': '{cursor}'}"
                )

    def _cursor_places(self) -> list[str]:
        places = ["url"] if CURSOR in self.url else []
        places += [f"params[{k}]" for k, v in self.params if isinstance(v, str) and CURSOR in v]
        if isinstance(self.body, str) and CURSOR in self.body:
            places.append("body")
        if self.json is not None and CURSOR in repr(self.json):
            places.append("json")
        return places

    def with_cursor(self, value: Any) -> HttpGet:
        """This request with ``{cursor}`` filled in by ``value`` (and no cursor left to fill).

        >>> get = HttpGet("https://x.test/items", params=(("since", "{cursor}"),),
        ...               incremental=Incremental("ts", "2024"))
        >>> get.with_cursor("2025").params
        (('since', '2025'),)
        """
        params = tuple(
            (k, fill_cursor(v, value) if isinstance(v, str) else v) for k, v in self.params
        )
        body = fill_cursor(self.body, value) if isinstance(self.body, str) else self.body
        json = _fill_json(self.json, value) if self.json is not None else None
        return dataclasses.replace(
            self,
            url=fill_cursor(self.url, value, in_url=True),
            params=params,
            body=body,
            json=json,
            incremental=None,
        )

    def default_name(self) -> str:
        return "get_" + _slug(self.url)

    def describe(self) -> str:
        extra = self._options_text()
        if self.paginate.kind != "none":
            extra = (extra + ", " if extra else "") + f"paginate={self.paginate.kind}"
        if self.incremental is not None:
            extra = (extra + ", " if extra else "") + self.incremental.describe()
        if self.expect_total is not None:
            extra = (extra + ", " if extra else "") + f"expect_total={self.expect_total!r}"
        return f"rest.get({redact_url(self.url)!r}{', ' + extra if extra else ''})"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class FetchEach(_RestOptions):
    """One request per input row, the URL templated from its columns. See ``tdm.rest.fetch_each``.

    >>> FetchEach("https://api.example.com/devices/{Uuid}/security").describe()
    "rest.fetch_each('https://api.example.com/devices/{Uuid}/security', concurrency=16)"
    >>> FetchEach("https://x.test/{Uuid}", params=(("v", "{Ver}"),)).columns()
    ('Uuid', 'Ver')
    """

    template: str = field(kw_only=False)
    concurrency: int = 16
    on_status: tuple[tuple[int, StatusPolicy], ...] = ()
    include_parent: tuple[str, ...] | None = None
    arity: ClassVar[int] = 1  # type: ignore[misc]

    def __post_init__(self) -> None:
        _check_url(self.template, "template", templated=True)
        self._check_common()
        if not isinstance(self.concurrency, int) or not 1 <= self.concurrency <= 1024:
            raise DefinitionError(
                f"concurrency must be an integer in [1, 1024], got {self.concurrency!r}"
            )
        for code, policy in self.on_status:
            if not isinstance(code, int) or not 100 <= code <= 599:
                raise DefinitionError(f"on_status keys must be HTTP status codes, got {code!r}")
            if policy not in STATUS_POLICIES:
                raise DefinitionError(
                    f"on_status[{code}] must be one of {', '.join(STATUS_POLICIES)}, got {policy!r}"
                )
        self.columns()  # a malformed template fails now, not at run time

    def columns(self) -> tuple[str, ...]:
        """The input columns the URL, query and header templates read."""
        names = list(template_fields(self.template))
        for _, value in self.params + self.headers:
            if isinstance(value, str):
                names += template_fields(value)
        return tuple(dict.fromkeys(names))

    def parent_columns(self) -> tuple[str, ...]:
        """The input columns attached to every result row (default: the templated ones)."""
        return self.include_parent if self.include_parent is not None else self.columns()

    def status_policy(self, status: int) -> StatusPolicy | None:
        for code, policy in self.on_status:
            if code == status:
                return policy
        return None

    def default_name(self) -> str:
        return "fetch_" + _slug(self.template)

    def describe(self) -> str:
        extra = self._options_text()
        extra = (extra + ", " if extra else "") + f"concurrency={self.concurrency}"
        return f"rest.fetch_each({redact_url(self.template)!r}, {extra})"


# ---------------------------------------------------------------------------------------------
# helpers (pure)
# ---------------------------------------------------------------------------------------------
_FORMATTER = string.Formatter()


SECRET_REF = re.compile(r"\$\{secrets\.([A-Za-z0-9_.\-]+)\}")
"""``${secrets.key}`` in a header, query or body text (YAML style): filled in by the handler."""


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


def secret_refs(text: str) -> list[str]:
    """The secret keys a text refers to as ``${secrets.key}``.

    >>> secret_refs("Basic ${secrets.key}")
    ['key']
    """
    return SECRET_REF.findall(text)


def template_fields(text: str) -> list[str]:
    """The column names a ``{column}`` template reads (``{{`` escapes a brace); the
    ``${secrets.key}`` references are not columns.

    >>> template_fields("https://x.test/devices/{Uuid}/apps?since={Since:%Y}")
    ['Uuid', 'Since']
    >>> template_fields("Basic ${secrets.key} for {Uuid}")
    ['Uuid']
    """
    try:
        parsed = list(_FORMATTER.parse(SECRET_REF.sub("", text)))
    except ValueError as exc:
        raise DefinitionError(
            f"malformed template {text!r}: {exc}; write {{{{ for a literal brace"
        ) from None
    names = []
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if not field_name or field_name.isdigit():
            raise DefinitionError(
                f"template {text!r} has a positional field {{{field_name}}}; "
                "name a column instead, e.g. {Uuid}"
            )
        names.append(field_name)
    return names


def _check_url(url: str, what: str, templated: bool = False) -> None:
    if not isinstance(url, str) or not url:
        raise DefinitionError(f"{what} must be a non-empty URL string, got {url!r}")
    probe = re.sub(r"\{[^{}]*\}", "x", url) if templated else url
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DefinitionError(
            f"{what} must be an absolute http(s) URL like 'https://api.example.com/v1/items', "
            f"got {redact_url(url)!r}"
        )
    if SECRET_REF.search(url):
        raise DefinitionError(
            f"{what} {url!r} refers to a secret; put ${{secrets...}} in params= or headers= "
            "(or use auth=), never in the URL itself"
        )
    if parts.password is not None:
        raise DefinitionError(
            f"{what} {redact_url(url)!r} carries a password; keep credentials out of URLs: "
            "put them in a secret and pass auth=rest.basic(), secret='<name>'"
        )


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


def _slug(url: str) -> str:
    path = urlsplit(re.sub(r"\{[^{}]*\}", "", url)).path
    segments = [s for s in path.split("/") if s and s not in ("api", "v1", "v2", "v3")]
    text = "_".join(segments[-2:]) or (urlsplit(url).hostname or "api")
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower() or "api"


def redact_url(url: str, extra: frozenset[str] | set[str] = frozenset()) -> str:
    """``url`` with credentials replaced by ``***``: userinfo passwords and the values of query
    parameters such as api_key, token, access_token, password (plus ``extra`` names).

    >>> redact_url("https://bob:pw@h.test/a?api_key=123&page=2&Token=x")
    'https://***@h.test/a?api_key=***&page=2&Token=***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        # A bare user name may be a token (https://TOKEN@host): hide all of the userinfo.
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        names = {n.lower() for n in extra} | SENSITIVE_PARAMS
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in names for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() in names else v) for k, v in pairs], safe="*{}"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
