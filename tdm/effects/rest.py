"""Handlers for REST effects (``HttpGet`` from ``rest.get``, ``FetchEach`` from
``rest.fetch_each``): pagination, fan-out over rows, records into frames.

Requests go through :mod:`tdm.effects.http` (one call: retries, rate limit, redaction).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import pandas as pd

from tdm._types import Frame
from tdm.core.rest import (
    Cursor,
    FetchEach,
    FrozenJson,
    HttpGet,
    LinkHeader,
    NextUrl,
    NoPagination,
    OffsetLimit,
    PageNumber,
    SecretField,
    redact_url,
    template_fields,
)
from tdm.effects.dispatch import EffectEnv, handle
from tdm.effects.http import _Call, _render, _Request, _run, _workers, log
from tdm.effects.http_auth import prepare_auth
from tdm.effects.http_transport import Reply
from tdm.errors import EffectError

__all__: list[str] = []


# ---------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------
_MISSING = object()


def _lookup(body: Any, path: str) -> Any:
    node = body
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif (
            isinstance(node, list)
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _records(
    body: Any, path: str | None, where: Callable[[], str], node: str, strict: bool
) -> list[Any]:
    """The records at ``path`` of ``body``; ``where()`` names the request in an error."""
    if body is None:
        return []
    value = body
    if path:
        value = _lookup(body, path)
        if value is _MISSING:
            if not strict:
                return []
            keys = ", ".join(map(repr, list(body)[:20])) if isinstance(body, Mapping) else ""
            shown = where()
            raise EffectError(
                f"the response of {shown} has no {path!r}"
                + (
                    f" (its top-level keys: {keys})"
                    if keys
                    else f" (it is a {type(body).__name__})"
                )
                + "; fix records=",
                node=node,
                uri=shown,
            )
    if value is None:
        return []
    if isinstance(value, list):
        return [v if isinstance(v, Mapping) else {"value": v} for v in value]
    if isinstance(value, Mapping):
        return [value]
    return [{"value": value}]


def _frame(records: list[Any], flatten: bool) -> Frame:
    if not records:
        return pd.DataFrame()
    if flatten:
        return pd.json_normalize(records, sep="_")
    return pd.DataFrame.from_records(records)


def _thaw(value: Any, call: _Call) -> Any:
    if isinstance(value, FrozenJson):
        return {k: _thaw(v, call) for k, v in value.items}
    if isinstance(value, tuple):
        return [_thaw(v, call) for v in value]
    if isinstance(value, SecretField | str):
        return call.value(value)
    return value


def _number(body: Any, path: str | None, where: str, node: str) -> int | None:
    if path is None:
        return None
    value = _lookup(body, path) if body is not None else _MISSING
    if value is _MISSING or value is None:
        raise EffectError(
            f"the first page of {where} has no number at {path!r}; fix paginate=(total=...)",
            node=node,
            uri=where,
        )
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise EffectError(
            f"the first page of {where} has {value!r} at {path!r}, not a number",
            node=node,
            uri=where,
        ) from None


# ---------------------------------------------------------------------------------------------
# rest.get
# ---------------------------------------------------------------------------------------------
class _Pages:
    """Reads every page of an ``HttpGet`` on the private loop."""

    def __init__(self, effect: HttpGet, call: _Call) -> None:
        self.effect = effect
        self.call = call
        self.params = {k: call.value(v) for k, v in effect.params}
        self.headers = {"Accept": "application/json"}
        self.headers.update({k: call.value(v) for k, v in effect.headers})
        self.json = _thaw(effect.json, call) if effect.json is not None else None
        body = effect.body
        self.content = call.value(body).encode() if isinstance(body, str) else body
        self.origin = _origin(effect.url)

    def request(self, url: str, params: Mapping[str, str] | None = None) -> _Request:
        merged = self.params if params is None else {**self.params, **params}
        return _Request(self.effect.method, url, merged, self.headers, self.json, self.content)

    async def fetch(self, request: _Request, strict: bool) -> tuple[list[Any], Any, Reply]:
        response = await self.call.send(request)
        if response.status_code >= 400:
            raise self.call.status_error(request, response)
        body = self.call.body(request, response)

        def where() -> str:
            return self.call.shown(request.url, request.params)

        recs = _records(body, self.effect.records, where, self.call.node, strict)
        return recs, body, response

    async def run(self) -> list[Any]:
        p = self.effect.paginate
        async with self.call.connected():
            first = self.request(self.effect.url, self._first_params())
            recs, body, response = await self.fetch(first, strict=True)
            expected = self._stated_total(first, body, response)
            if isinstance(p, NoPagination):
                out = recs
            elif isinstance(p, PageNumber | OffsetLimit):
                out = await self._numbered(p, recs, body, first)
            else:
                out = await self._chained(p, recs, body, response, first)
        if expected is not None and len(out) != expected:
            raise EffectError(
                f"{self.call.shown(self.effect.url)}: read {len(out)} records but the server "
                f"states {expected} ({self.effect.expect_total}); pages were lost or repeated "
                "while paging (records changing during the read, or a paginate= setting that "
                "does not match the API)",
                node=self.call.node,
                uri=self.call.shown(self.effect.url),
            )
        return out

    def _stated_total(self, request: _Request, body: Any, response: Reply) -> int | None:
        """The record count the server states, for ``expect_total=``."""
        spec = self.effect.expect_total
        if spec is None:
            return None
        where, _, name = spec.partition(":")
        shown = self.call.shown(request.url, request.params)
        if where == "header":
            raw = response.header(name)
            if raw is None or not raw.strip().isdigit():
                raise EffectError(
                    f"{shown}: expect_total={spec!r} but the response has "
                    + ("no such header" if raw is None else f"{name}: {raw!r}, not a number")
                    + f"; its headers are {', '.join(response.header_names())}",
                    node=self.call.node,
                    uri=shown,
                )
            return int(raw)
        value = _lookup(body, name) if body is not None else _MISSING
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            keys = ", ".join(map(str, body)) if isinstance(body, dict) else type(body).__name__
            raise EffectError(
                f"{shown}: expect_total={spec!r} but the body has no record count at {name!r} "
                f"(top-level keys: {keys})",
                node=self.call.node,
                uri=shown,
            )
        return int(value)

    def _first_params(self) -> dict[str, str]:
        p = self.effect.paginate
        if isinstance(p, PageNumber):
            out = {p.param: str(p.start)}
            if p.size is not None and p.size_param:
                out[p.size_param] = str(p.size)
            return out
        if isinstance(p, OffsetLimit):
            return {p.offset_param: str(p.start), p.limit_param: str(p.limit)}
        if isinstance(p, Cursor) and p.limit is not None:
            return {p.limit_param: str(p.limit)}
        return {}

    def _page_params(self, p: PageNumber | OffsetLimit, k: int) -> dict[str, str]:
        """Query parameters of the ``k``-th page (0 = the first)."""
        if isinstance(p, PageNumber):
            out = {p.param: str(p.start + k)}
            if p.size is not None and p.size_param:
                out[p.size_param] = str(p.size)
            return out
        return {p.offset_param: str(p.start + k * p.limit), p.limit_param: str(p.limit)}

    async def _numbered(
        self,
        p: PageNumber | OffsetLimit,
        first: list[Any],
        body: Any,
        request: _Request,
    ) -> list[Any]:
        node, where = self.call.node, self.call.shown(request.url, request.params)
        pages: int | None = None
        total = _number(body, p.total, where, node)
        if isinstance(p, PageNumber):
            total_pages = _number(body, p.total_pages, where, node)
            if total_pages is not None:
                pages = total_pages
            elif total is not None:
                size = p.size or len(first)
                pages = math.ceil(total / size) if size else 1
        elif total is not None:
            pages = math.ceil(max(total - p.start, 0) / p.limit)
        limit = p.max_pages
        if pages is not None:
            pages = max(pages, 1) if limit is None else min(max(pages, 1), limit)
            results: list[list[Any]] = [first] + [[] for _ in range(pages - 1)]

            async def one(i: int) -> None:
                req = self.request(self.effect.url, self._page_params(p, i + 1))
                results[i + 1] = (await self.fetch(req, strict=False))[0]

            if pages > 1:
                await _workers(p.concurrency, one, pages - 1)
            return [r for page in results for r in page]
        # No total: read pages until one comes back empty.
        out, k, recs = list(first), 1, first
        while recs and (limit is None or k < limit):
            req = self.request(self.effect.url, self._page_params(p, k))
            recs = (await self.fetch(req, strict=False))[0]
            out += recs
            k += 1
        return out

    async def _chained(
        self,
        p: Cursor | NextUrl | LinkHeader | Any,
        first: list[Any],
        body: Any,
        response: Reply,
        request: _Request,
    ) -> list[Any]:
        out, recs, seen, k = list(first), first, set(), 1
        while recs and (p.max_pages is None or k < p.max_pages):
            if isinstance(p, Cursor):
                cursor = _lookup(body, p.path) if body is not None else None
                if cursor is _MISSING or cursor in (None, "", False):
                    break
                marker = str(cursor)
                params = {p.param: marker}
                if p.limit is not None:
                    params[p.limit_param] = str(p.limit)
                request = self.request(self.effect.url, params)
            else:
                if isinstance(p, NextUrl):
                    link = _lookup(body, p.path) if body is not None else None
                    link = None if link is _MISSING else link
                else:
                    link = response.links.get(p.rel, {}).get("url")
                if not link or not isinstance(link, str):
                    break
                marker = urljoin(response.url, link)
                self._check_origin(marker)
                # The next URL carries its own query; only auth parameters are added.
                request = _Request(
                    self.effect.method, marker, {}, self.headers, self.json, self.content
                )
            if marker in seen:
                raise EffectError(
                    f"pagination of {self.call.shown(self.effect.url)} loops: the server sent "
                    f"the same {'cursor' if isinstance(p, Cursor) else 'next URL'} twice; "
                    "set max_pages= or check the paginate= path",
                    node=self.call.node,
                )
            seen.add(marker)
            recs, body, response = await self.fetch(request, strict=False)
            out += recs
            k += 1
        return out

    def _check_origin(self, url: str) -> None:
        credentials = self.effect.auth is not None or any(
            isinstance(v, SecretField) for _, v in self.effect.headers + self.effect.params
        )
        if credentials and _origin(url) != self.origin:
            raise EffectError(
                f"the next page's URL {self.call.shown(url)} is on another host than "
                f"{self.call.shown(self.effect.url)}; tdm does not send credentials there",
                node=self.call.node,
                uri=self.call.shown(url),
            )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


@handle.register
def _get(effect: HttpGet, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    call = _Call(effect, env)
    prepare_auth(call)
    started = time.perf_counter()
    records = _run(_Pages(effect, call).run())
    log.debug(
        "%s: %d records in %d requests, %.2f s",
        env.node,
        len(records),
        call.requests,
        time.perf_counter() - started,
    )
    return _frame(records, effect.flatten)


# ---------------------------------------------------------------------------------------------
# rest.fetch_each
# ---------------------------------------------------------------------------------------------


def _is_null(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays: not a scalar null
        return False


@handle.register
def _fetch_each(effect: FetchEach, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    (frame,) = frames
    columns = effect.columns()
    parent_cols = effect.parent_columns()
    missing = [c for c in dict.fromkeys(columns + parent_cols) if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns[:30])) or "none"
        raise EffectError(
            f"fetch_each {redact_url(effect.template)!r} needs column(s) "
            f"{', '.join(map(repr, missing))}, which the input frame lacks (its columns: "
            f"{available}); fix the template or include_parent=, or rename the column upstream",
            node=env.node,
        )
    rows = frame[list(columns)].to_dict("records") if columns else [{} for _ in range(len(frame))]
    for i, row in enumerate(rows):
        for name, value in row.items():
            if _is_null(value):
                raise EffectError(
                    f"row {frame.index[i]!r} has no value in column {name!r}, which "
                    f"{redact_url(effect.template)!r} needs; drop or fill such rows first",
                    node=env.node,
                )
    call = _Call(effect, env)
    prepare_auth(call)
    fixed_headers = {"Accept": "application/json"}
    templated_headers: list[tuple[str, str]] = []
    for k, v in effect.headers:
        if isinstance(v, str) and template_fields(v):
            templated_headers.append((k, v))
        else:
            fixed_headers[k] = call.value(v)
    fixed_params: dict[str, str] = {}
    templated_params: list[tuple[str, str]] = []
    for k, v in effect.params:
        if isinstance(v, str) and template_fields(v):
            templated_params.append((k, v))
        else:
            fixed_params[k] = call.value(v)

    def build(row: Mapping[Any, Any]) -> _Request:
        params = fixed_params
        if templated_params:
            params = {**params, **{k: call.value(v, row) for k, v in templated_params}}
        headers = fixed_headers
        if templated_headers:
            headers = {**headers, **{k: call.value(v, row) for k, v in templated_headers}}
        return _Request(effect.method, _render(effect.template, row, True), params, headers)

    requests = [build(row) for row in rows]
    results: list[list[Any]] = [[] for _ in rows]
    outcomes: dict[str, list[str]] = {"skip": [], "empty": []}

    async def one(i: int) -> None:
        request = requests[i]
        response = await call.send(request)
        status = response.status_code
        if status >= 400:
            policy = effect.status_policy(status) or "fail"
            if policy == "fail":
                raise call.status_error(request, response, f" (row {frame.index[i]!r})")
            outcomes[policy].append(f"{status} {call.shown(request.url, request.params)}")
            return
        body = call.body(request, response)

        def where() -> str:
            return call.shown(request.url, request.params)

        results[i] = _records(body, effect.records, where, env.node, strict=True)

    async def fan_out() -> None:
        workers = min(effect.concurrency, len(requests))
        async with call.connected():
            await _workers(workers, one, len(requests))

    started = time.perf_counter()
    if requests:
        _run(fan_out())
    if outcomes["skip"]:
        skipped = outcomes["skip"]
        log.warning(
            "%s: skipped %d of %d rows (on_status 'skip'), e.g. %s",
            env.node,
            len(skipped),
            len(rows),
            "; ".join(skipped[:3]),
        )
    log.debug(
        "%s: %d requests for %d rows in %.2f s (%d answered with an 'empty' status)",
        env.node,
        call.requests,
        len(rows),
        time.perf_counter() - started,
        len(outcomes["empty"]),
    )
    return _assemble(frame, results, parent_cols, effect.flatten)


def _assemble(
    frame: Frame, results: Sequence[list[Any]], parent_cols: Sequence[str], flatten: bool
) -> Frame:
    owners = [i for i, recs in enumerate(results) for _ in recs]
    records = [r for recs in results for r in recs]
    data = _frame(records, flatten)
    parents = frame[list(parent_cols)].iloc[owners].reset_index(drop=True)
    if data.empty and not len(data.columns):
        return parents
    clash = {c: f"{c}_response" for c in data.columns if c in parents.columns}
    if clash:
        data = data.rename(columns=clash)
    return pd.concat([parents, data.reset_index(drop=True)], axis=1)
