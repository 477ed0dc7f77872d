"""REST effect descriptions: frozen, picklable values saying which HTTP calls to make.

Nothing here performs I/O (the handlers live in ``tdm.effects.rest``). Credentials are never
held: auth descriptions and :class:`SecretField` values name *keys of a secret*, resolved inside
the handler. The public factories are in :mod:`tdm.rest`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

from tdm.core.effect import Effect, SecretNeed
from tdm.core.incremental import CURSOR, Incremental, fill_cursor
from tdm.core.rest_parts import (
    ApiKey,
    Auth,
    Basic,
    Bearer,
    Cursor,
    FrozenJson,
    LinkHeader,
    NextUrl,
    NoPagination,
    OAuth2ClientCredentials,
    OffsetLimit,
    PageNumber,
    Pagination,
    RetryPolicy,
    SecretField,
    Value,
    _fill_json,
    _redact_header,
    _shown_value,
    _strings,
    freeze_json,
)
from tdm.core.rest_urls import (
    SECRET_REF,
    _check_url,
    _slug,
    redact_url,
    secret_refs,
    template_fields,
)
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
