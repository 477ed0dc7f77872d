"""REST sources: ``rest.get`` reads an endpoint (every page of it) into a frame, and
``rest.fetch_each`` calls an endpoint once per input row, concurrently.

Nothing is fetched when these are built: they return pipeline values that ``tdm.run`` performs.
Credentials come from a named secret (``secret="AirWatch"`` is a section of
``~/.tdm/secrets.yml`` or ``TDM_SECRET__AIRWATCH__<KEY>`` variables); pipelines hold only the
secret's *name* and the *keys* to read from it.

>>> from tdm import rest
>>> devices = rest.get("https://mdm.example.com/api/mdm/devices/search",
...                    records="Devices", paginate=rest.page_number(size=500, total="Total"),
...                    auth=rest.basic(), headers={"aw-tenant-code": rest.secret_field("code")},
...                    secret="AirWatch")
>>> security = devices >> rest.fetch_each(
...     "https://mdm.example.com/api/mdm/devices/{Uuid}/security", records="SecurityInfo",
...     concurrency=32, on_status={404: "skip"}, include_parent=["Uuid"], secret="AirWatch")
>>> security.names()
('get_devices_search', 'fetch_devices_security')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from tdm.core.incremental import Incremental
from tdm.core.pipeline import Pipeline
from tdm.core.rest import (
    ApiKey,
    Auth,
    Basic,
    Bearer,
    Cursor,
    FetchEach,
    HttpGet,
    LinkHeader,
    NextUrl,
    NoPagination,
    OAuth2ClientCredentials,
    OffsetLimit,
    PageNumber,
    Pagination,
    Pairs,
    RedirectPolicy,
    RetryPolicy,
    SecretField,
    StatusPolicy,
    freeze_json,
)
from tdm.errors import DefinitionError

__all__ = [
    "RetryPolicy",
    "SecretField",
    "api_key",
    "basic",
    "bearer",
    "cursor",
    "fetch_each",
    "get",
    "link_header",
    "next_url",
    "no_retry",
    "none",
    "oauth2_client_credentials",
    "offset_limit",
    "page_number",
    "retry",
    "secret_field",
]

_DEFAULT_RETRY = RetryPolicy()

ParamValue = str | int | float | bool | SecretField


_WHOLE_SECRET = re.compile(r"\$\{secrets\.([A-Za-z0-9_\-]+)\}")


def _pairs(values: Mapping[str, ParamValue] | None, what: str) -> Pairs:
    if values is None:
        return ()
    if not isinstance(values, Mapping):
        raise DefinitionError(
            f"{what}= must be a mapping of names to values, got {type(values).__name__}"
        )
    out: list[tuple[str, str | SecretField]] = []
    for key, value in values.items():
        whole = _WHOLE_SECRET.fullmatch(value) if isinstance(value, str) else None
        if isinstance(value, SecretField):
            out.append((str(key), value))
        elif whole is not None:  # YAML's "${secrets.code}" is rest.secret_field("code")
            out.append((str(key), SecretField(whole.group(1))))
        elif isinstance(value, bool):
            out.append((str(key), "true" if value else "false"))
        elif isinstance(value, str | int | float):
            out.append((str(key), str(value)))
        else:
            raise DefinitionError(
                f"{what}[{key!r}] must be a string, a number or rest.secret_field(...), "
                f"got {type(value).__name__}"
            )
    return tuple(out)


def _retry(value: RetryPolicy | Mapping[str, Any] | int | None) -> RetryPolicy:
    if isinstance(value, Mapping):
        return retry(**value)
    if value is None:
        return RetryPolicy(attempts=1)
    if isinstance(value, bool):
        raise DefinitionError("retry= takes rest.retry(...), a number of attempts, or None")
    if isinstance(value, int):
        return RetryPolicy(attempts=value)
    if isinstance(value, RetryPolicy):
        return value
    raise DefinitionError(
        f"retry= takes rest.retry(...), an int or None, got {type(value).__name__}"
    )


def _request_fields(
    method: str,
    params: Mapping[str, ParamValue] | None,
    headers: Mapping[str, ParamValue] | None,
    records: str | None,
    auth: Auth | Mapping[str, Any] | str | None,
    secret: str | None,
    timeout: float,
    retry: RetryPolicy | Mapping[str, Any] | int | None,
    rate_limit: float | None,
    flatten: bool,
    verify: bool,
    redirects: RedirectPolicy,
    label: str | None,
) -> dict[str, Any]:
    """The fields ``get`` and ``fetch_each`` share, normalised once for both."""
    return {
        "method": method.upper() if isinstance(method, str) else method,
        "params": _pairs(params, "params"),
        "headers": _pairs(headers, "headers"),
        "records": records,
        "auth": _from_config("auth", auth),
        "secret": secret,
        "timeout": timeout,
        "retry": _retry(retry),
        "rate_limit": rate_limit,
        "flatten": flatten,
        "verify": verify,
        "redirects": redirects,
        "label": label,
    }


def _incremental(value: Incremental | Mapping[str, Any] | None) -> Incremental | None:
    """An :class:`Incremental` from itself or its YAML form ``{cursor: ..., initial: ...}``."""
    if value is None or isinstance(value, Incremental):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"cursor", "initial", "last_value"})
        if unknown or "cursor" not in value or "initial" not in value:
            raise ValueError(
                "incremental takes {cursor: <column>, initial: <first value>"
                f"[, last_value: max|min]}}, got keys {sorted(value)}"
            )
        return Incremental(value["cursor"], value["initial"], value.get("last_value", "max"))
    raise ValueError(
        f"incremental= takes tdm.incremental('column', initial=...), got {type(value).__name__}"
    )


def get(
    url: str,
    *,
    method: str = "GET",
    params: Mapping[str, ParamValue] | None = None,
    headers: Mapping[str, ParamValue] | None = None,
    json: Any = None,
    body: str | bytes | None = None,
    records: str | None = None,
    paginate: Pagination | Mapping[str, Any] | str | None = None,
    auth: Auth | Mapping[str, Any] | str | None = None,
    secret: str | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | Mapping[str, Any] | int | None = _DEFAULT_RETRY,
    rate_limit: float | None = None,
    flatten: bool = True,
    verify: bool = True,
    redirects: RedirectPolicy = "same-origin",
    label: str | None = None,
    incremental: Incremental | Mapping[str, Any] | None = None,
    expect_total: str | None = None,
) -> Pipeline:
    """A source that calls ``url`` (every page of it) and returns the records as a frame.

    Args:
        url: an absolute http(s) URL (no credentials in it: use ``auth=`` and ``secret=``).
        method: the HTTP method (a search endpoint may want ``"POST"``).
        params / headers: query parameters and headers; a value may be
            ``rest.secret_field("key")`` to read it from the secret at run time.
        json / body: a JSON request body (may hold ``secret_field`` values) or a raw one.
        records: where the records are in the JSON body: a key (``"Devices"``) or a dotted
            path (``"data.items"``). None: the body itself (a list is many rows; an object, one).
        paginate: ``rest.page_number(...)``, ``offset_limit``, ``cursor``, ``next_url``,
            ``link_header`` or ``none()`` (the default).
        auth: ``rest.basic()``, ``bearer()``, ``api_key(...)`` or
            ``oauth2_client_credentials(...)``; their values come from ``secret``.
        secret: the name of the secret that ``auth`` and ``secret_field`` values read.
        timeout: seconds allowed for each request (connect, read, write).
        retry: ``rest.retry(...)``, a number of attempts, or None for no retries. The default
            makes up to 5 attempts (the first try and up to 4 retries) on 429, 5xx and
            connection errors (exponential backoff with jitter, honouring ``Retry-After``),
            within 120 s; the final error says how many attempts were made and over how long.
        rate_limit: the most requests per second (None: no limit).
        flatten: flatten nested objects into ``parent_child`` columns (False: keep dicts).
        verify: check TLS certificates; turn off only for a source you trust.
        redirects: ``"same-origin"`` (the default) follows redirects within the URL's origin
            (scheme, host, port) and fails on one to another origin, naming both;
            ``"any"`` follows those too, but without any credential (no auth, no header or
            query value filled from a secret).
        label: the node's name in the pipeline.
        incremental: ``tdm.incremental("updated_at", initial=...)`` (or the YAML form
            ``{cursor: updated_at, initial: ...}``): ask only for records after the cursor the
            last successful run reached; the URL, a param or the body holds ``{cursor}``.
        expect_total: a completeness check: where the server states the number of records,
            ``"header:X-Total-Count"`` (a response header of the first page) or
            ``"body:meta.total"`` (a path in its JSON body). The node fails when the records
            read differ from it (pages lost or duplicated while paging).

    >>> from tdm import rest
    >>> p = rest.get("https://api.example.com/v1/items", records="data",
    ...              paginate=rest.offset_limit(limit=200, total="total"))
    >>> p.names()
    ('get_items',)
    >>> print(p.plan.descriptions[0])
    rest.get('https://api.example.com/v1/items', records='data', paginate=offset_limit)
    """
    return Pipeline.of(
        HttpGet(
            url,
            json=freeze_json(json),
            body=body,
            paginate=_from_config("paginate", paginate) or NoPagination(),
            incremental=_incremental(incremental),
            expect_total=expect_total,
            **_request_fields(
                method,
                params,
                headers,
                records,
                auth,
                secret,
                timeout,
                retry,
                rate_limit,
                flatten,
                verify,
                redirects,
                label,
            ),
        )
    )


def fetch_each(
    template: str,
    *,
    method: str = "GET",
    params: Mapping[str, ParamValue] | None = None,
    headers: Mapping[str, ParamValue] | None = None,
    records: str | None = None,
    concurrency: int = 16,
    on_status: Mapping[int, StatusPolicy] | None = None,
    include_parent: Iterable[str] | None = None,
    secret: str | None = None,
    auth: Auth | Mapping[str, Any] | str | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | Mapping[str, Any] | int | None = _DEFAULT_RETRY,
    rate_limit: float | None = None,
    flatten: bool = True,
    verify: bool = True,
    redirects: RedirectPolicy = "same-origin",
    label: str | None = None,
) -> FetchEach:
    """One request per row of the input frame; the records of all responses as one frame.

    ``template`` (and string values of ``params``/``headers``) name input columns in braces:
    ``"https://api.example.com/devices/{Uuid}/security"``. Values are URL-encoded into the path.
    Requests run ``concurrency`` at a time (sharing ``rate_limit``); the output keeps the
    input's row order.

    Args:
        records: where the records are in each JSON response (see :func:`get`).
        concurrency: the most requests in flight at once.
        on_status: what to do with a status instead of failing the node: ``"skip"`` (the row
            gives no records; a warning says how many rows were skipped), ``"empty"`` (the
            same, silently: an expected absence) or ``"fail"``. E.g. ``{404: "skip"}``.
        include_parent: input columns copied onto every result row (default: the columns the
            templates use; ``[]`` for none). A response column with the same name is renamed
            ``<name>_response``.
        secret, auth, timeout, retry, rate_limit, flatten, verify, redirects, label: as in
            :func:`get`.

    >>> from tdm import rest
    >>> step = rest.fetch_each("https://api.example.com/users/{user_id}/orders",
    ...                        records="orders", concurrency=8, on_status={404: "empty"})
    >>> step.columns(), step.parent_columns()
    (('user_id',), ('user_id',))
    """
    if on_status is not None and not isinstance(on_status, Mapping):
        raise DefinitionError('on_status= must be a mapping like {404: "skip"}')
    if isinstance(include_parent, str):
        include_parent = [include_parent]
    return FetchEach(
        template,
        concurrency=concurrency,
        on_status=tuple(sorted((on_status or {}).items())),
        include_parent=None if include_parent is None else tuple(include_parent),
        **_request_fields(
            method,
            params,
            headers,
            records,
            auth,
            secret,
            timeout,
            retry,
            rate_limit,
            flatten,
            verify,
            redirects,
            label,
        ),
    )


# ---- pagination ------------------------------------------------------------------------------
def page_number(
    size: int | None = None,
    *,
    param: str = "page",
    size_param: str | None = "per_page",
    start: int = 1,
    total: str | None = None,
    total_pages: str | None = None,
    max_pages: int | None = None,
    concurrency: int = 8,
) -> PageNumber:
    """Pages ``?page=start, start+1, ...`` (with ``size_param=size`` when ``size`` is given).

    With ``total`` (a path to the number of items in the body) or ``total_pages``, the first
    response says how many pages there are and the rest are fetched ``concurrency`` at a time;
    otherwise pages are read until one comes back empty.

    >>> page_number(size=500, total="Total", start=0, size_param="pagesize").start
    0
    """
    if size is not None and (not isinstance(size, int) or size < 1):
        raise DefinitionError(f"page size must be a positive integer, got {size!r}")
    _positive(concurrency, "concurrency")
    return PageNumber(param, start, size, size_param, total, total_pages, max_pages, concurrency)


def offset_limit(
    limit: int = 100,
    *,
    offset_param: str = "offset",
    limit_param: str = "limit",
    start: int = 0,
    total: str | None = None,
    max_pages: int | None = None,
    concurrency: int = 8,
) -> OffsetLimit:
    """Pages ``?offset=0&limit=L``, ``?offset=L&limit=L``, ... until ``total`` or an empty page.

    >>> offset_limit(limit=200, total="meta.total").total
    'meta.total'
    """
    _positive(limit, "limit")
    _positive(concurrency, "concurrency")
    return OffsetLimit(limit, offset_param, limit_param, start, total, max_pages, concurrency)


def cursor(
    path: str = "next_cursor",
    *,
    param: str = "cursor",
    limit: int | None = None,
    limit_param: str = "limit",
    max_pages: int | None = None,
) -> Cursor:
    """Follows an opaque cursor: read at ``path`` in each body, sent back as ``?param=``.

    Stops when the cursor is missing, null or empty (or a page is empty).

    >>> cursor("meta.next", param="after").param
    'after'
    """
    return Cursor(path, param, limit, limit_param, max_pages)


def next_url(path: str = "next", *, max_pages: int | None = None) -> NextUrl:
    """Follows the next page's URL found at ``path`` in each body (absolute or relative).

    >>> next_url("links.next").path
    'links.next'
    """
    return NextUrl(path, max_pages)


def link_header(rel: str = "next", *, max_pages: int | None = None) -> LinkHeader:
    """Follows the RFC 5988 ``Link: <url>; rel="next"`` response header (GitHub style).

    >>> link_header().rel
    'next'
    """
    return LinkHeader(rel, max_pages)


def none() -> NoPagination:
    """No pagination: one request.

    >>> none()
    NoPagination()
    """
    return NoPagination()


# ---- auth -----------------------------------------------------------------------------------
def basic(
    username: str = "username", password: str = "password", *, secret: str | None = None
) -> Basic:
    """HTTP Basic auth from the secret's ``username`` and ``password`` keys (names of keys).

    >>> basic()
    Basic(username_key='username', password_key='password', secret=None)
    """
    return Basic(username, password, secret)


def bearer(token: str = "token", *, secret: str | None = None) -> Bearer:
    """``Authorization: Bearer ...`` with the secret's ``token`` key.

    >>> bearer("access_token").token_key
    'access_token'
    """
    return Bearer(token, secret)


def api_key(
    *,
    header: str | None = None,
    query: str | None = None,
    key: str = "api_key",
    prefix: str = "",
    secret: str | None = None,
) -> ApiKey:
    """An API key (the secret's ``key`` key) in a header or a query parameter: pass one.

    >>> api_key(header="X-Api-Key").header, api_key(query="apikey").query
    ('X-Api-Key', 'apikey')
    """
    return ApiKey(header, query, key, prefix, secret)


def oauth2_client_credentials(
    token_url: str,
    *,
    scope: str | None = None,
    audience: str | None = None,
    client_id: str = "client_id",
    client_secret: str = "client_secret",
    send_as: Literal["body", "basic"] = "body",
    secret: str | None = None,
) -> OAuth2ClientCredentials:
    """OAuth2 client credentials: a token from ``token_url`` (cached, refreshed before it
    expires and when a request is answered 401). ``client_id``/``client_secret`` are key names.

    >>> oauth2_client_credentials("https://login.example.com/oauth/token", scope="read").scope
    'read'
    """
    return OAuth2ClientCredentials(
        token_url, scope, audience, client_id, client_secret, send_as, secret
    )


def secret_field(key: str, *, secret: str | None = None) -> SecretField:
    """A header, query or JSON value read from key ``key`` of the secret at run time.

    >>> secret_field("code")
    SecretField(key='code', secret=None)
    """
    return SecretField(key, secret)


# ---- retries --------------------------------------------------------------------------------
def retry(
    attempts: int = 5,
    *,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    jitter: float = 0.5,
    deadline: float = 120.0,
    max_retry_after: float = 60.0,
    statuses: Iterable[int] | None = None,
) -> RetryPolicy:
    """A retry policy: up to ``attempts`` tries in all (the first one and ``attempts - 1``
    retries) within ``deadline`` seconds, waiting
    ``backoff * 2**n`` (+ up to ``jitter``) or the server's ``Retry-After`` (capped).

    >>> retry(3, deadline=10).attempts
    3
    """
    return RetryPolicy(
        attempts,
        backoff,
        max_backoff,
        jitter,
        deadline,
        max_retry_after,
        None if statuses is None else tuple(sorted(statuses)),
    )


def no_retry() -> RetryPolicy:
    """Never retry.

    >>> no_retry().attempts
    1
    """
    return RetryPolicy(attempts=1)


_CONFIG_FACTORIES: dict[str, dict[str, str]] = {
    "paginate": {
        "page_number": "page_number",
        "offset_limit": "offset_limit",
        "cursor": "cursor",
        "next_url": "next_url",
        "link_header": "link_header",
        "link": "link_header",
        "none": "none",
    },
    "auth": {
        "basic": "basic",
        "bearer": "bearer",
        "api_key": "api_key",
        "oauth2_client_credentials": "oauth2_client_credentials",
        "oauth2": "oauth2_client_credentials",
    },
}


def _from_config(what: str, value: Any) -> Any:
    """``paginate=`` / ``auth=`` given as a name or ``{type: name, ...}`` (YAML) -> the value.

    >>> p = _from_config("paginate", {"type": "page_number", "size": 100, "total": "Total"})
    >>> p == page_number(size=100, total="Total")
    True
    >>> _from_config("auth", "basic") == basic()
    True
    """
    if value is None or not isinstance(value, Mapping | str):
        return value
    options = {"type": value} if isinstance(value, str) else dict(value)
    kind = str(options.pop("type", "")).lower().replace("-", "_")
    known = _CONFIG_FACTORIES[what]
    if kind not in known:
        raise DefinitionError(
            f"{what}: unknown type {kind!r}; use one of {', '.join(sorted(known))} "
            f"(e.g. {what}: {{type: {next(iter(known))}}})"
        )
    factory = globals()[known[kind]]
    try:
        return factory(**options)
    except TypeError as exc:
        raise DefinitionError(f"{what}: {kind}: {exc}") from None


def _positive(value: int, what: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise DefinitionError(f"{what} must be a positive integer, got {value!r}")
