"""One HTTP call of a REST handler: the event loop, retries, rate limit, redaction, errors.

The REST handlers (:mod:`tdm.effects.rest`) build requests and read records; this module sends
them (with auth from :mod:`tdm.effects.http_auth`, over a wire from
:mod:`tdm.effects.http_transport`). These modules are the only place tdm imports httpx, aiohttp
and tenacity.

Design (why it is fast): every handler call runs one coroutine on a private event loop that
lives in a daemon thread of its own, so it works the same when called from a plain script, a
worker thread of the ``threads`` executor, a Dask worker, or a notebook whose thread already
runs a loop. Fan-out uses ``concurrency`` worker tasks sharing the call's one wire
(:mod:`tdm.effects.http_transport`: aiohttp by default, httpx when the runtime injects a
transport). Workers take rows in order from a shared iterator and write results by position, so
the output is deterministic. A rate limit and OAuth2 tokens are shared by all workers of one call.

Secrets are revealed only while building requests; every URL shown in a message or a log line
(ours and httpx's own) has its credentials redacted, and known secret values are scrubbed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from tdm.core.rest import ApiKey, SecretField, redact_url
from tdm.core.rest import _RestOptions as RestOptions
from tdm.core.rest_urls import SECRET_REF
from tdm.effects import redirects
from tdm.effects.dispatch import EffectEnv
from tdm.effects.http_errors import (
    StatusError,
    _excerpt,
    _is_retryable,
    _Retryable,
    _sensitive_param,
    _transport_errors,
    redact_text,
    retry_after_seconds,
    sensitive_params,
)
from tdm.effects.http_transport import Reply, Wire, encode_body, open_wire, with_params
from tdm.effects.secrets import Secret, scrub
from tdm.errors import EffectError, SecretNotFoundError

if TYPE_CHECKING:
    from tdm.effects.http_auth import _OAuth2

# The client libraries and tenacity are imported on first use, so `import tdm` stays light.

__all__ = ["StatusError", "redact_text", "retry_after_seconds"]

log = logging.getLogger("tdm.rest")

_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------
# the private event loop
# ---------------------------------------------------------------------------------------------
class _Loop:
    lock = threading.Lock()
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None
    pid: int | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls.lock:
            alive = cls.thread is not None and cls.thread.is_alive()
            if cls.loop is None or cls.pid != os.getpid() or not alive:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tdm-http", daemon=True)
                thread.start()
                cls.loop, cls.thread, cls.pid = loop, thread, os.getpid()
            return cls.loop


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on the private loop and wait for it (from any thread, loop or not)."""
    loop = _Loop.get()
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


# ---------------------------------------------------------------------------------------------
# one call of a handler: secrets, clients, auth, retries, rate limit
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Request:
    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None


class _RateLimiter:
    """Spaces request starts ``1/rate`` seconds apart across all workers of one call."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _key(section: Mapping[str, Secret], key: str, name: str | None) -> Secret:
    try:
        return section[key]
    except KeyError:
        keys = ", ".join(sorted(section)) or "none"
        raise SecretNotFoundError(
            f"secret {name!r} has no key {key!r} (its keys: {keys}); add it, or name another "
            "key in the auth / rest.secret_field(...)"
        ) from None


class _Call:
    """State of one handler call: resolved secrets, auth, limiter, retry policy."""

    def __init__(self, effect: RestOptions, env: EffectEnv) -> None:
        self.effect = effect
        self.node = env.node
        self.sections: dict[str, Mapping[str, Secret]] = {
            name: env.secret(name) for name in effect.secret_names()
        }
        self.transport = env.runtime.http
        self.wire: Wire | None = None
        self.limiter = _RateLimiter(effect.rate_limit) if effect.rate_limit else None
        self.timeout = effect.timeout
        self.auth_headers: dict[str, str] = {}
        self.auth_params: dict[str, str] = {}
        self.oauth: _OAuth2 | None = None
        self.requests = 0
        self.credential_headers, self.credential_params = _credential_names(effect)
        auth = effect.auth
        if isinstance(auth, ApiKey) and auth.query:
            _sensitive_param(auth.query)
        if not effect.verify:
            log.warning(
                "%s: TLS certificate verification is OFF for this source (verify=False)",
                self.node,
            )

    def secret_of(self, auth: Any) -> str | None:
        return getattr(auth, "secret", None) or self.effect.secret

    def section(self, name: str | None) -> Mapping[str, Secret]:
        if name is None:  # guarded at construction; kept for a clear message
            raise SecretNotFoundError("this source reads a secret key but names no secret=")
        return self.sections[name]

    def value(self, value: str | SecretField, row: Mapping[Any, Any] | None = None) -> str:
        """A header/query/body value: a secret field, ``${secrets.key}`` references filled in,
        and (with a ``row``) ``{column}`` templates rendered."""
        if isinstance(value, SecretField):
            name = value.secret or self.effect.secret
            return _key(self.section(name), value.key, name).reveal()
        if "${secrets." not in value:
            return value if row is None else _render(value, row, False)
        name = self.effect.secret
        out: list[str] = []
        for i, piece in enumerate(SECRET_REF.split(value)):
            if i % 2:
                out.append(_key(self.section(name), piece, name).reveal())
            else:
                out.append(piece if row is None else _render(piece, row, False))
        return "".join(out)

    @asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        """Open the call's wire (inside its event loop) for the block; close it after."""
        wire = open_wire(transport=self.transport, verify=self.effect.verify, timeout=self.timeout)
        self.wire = wire
        try:
            yield
        finally:
            self.wire = None
            await wire.aclose()

    def shown(self, url: str, params: Mapping[str, str] | None = None) -> str:
        return redact_url(with_params(url, params), sensitive_params())

    def _pause(self, exc: BaseException | None, failed: int) -> float:
        """Seconds to wait after the ``failed``-th failed attempt: Retry-After, else backoff."""
        policy = self.effect.retry
        if isinstance(exc, _Retryable):
            after = retry_after_seconds(exc.response.header("Retry-After"))
            if after is not None:
                after = min(after, policy.max_retry_after)
                return after + random.uniform(0, min(policy.jitter, after * 0.1))
        base = min(policy.max_backoff, policy.backoff * 2.0 ** (failed - 1))
        return float(base + random.uniform(0, policy.jitter))

    async def send(
        self,
        request: _Request,
        *,
        form: Mapping[str, str] | None = None,
        with_auth: bool = True,
    ) -> Reply:
        """Send ``request`` with auth, the rate limit and the retry policy; any final status.

        The first attempt runs outside tenacity (the common case costs nothing extra); after a
        retryable failure, tenacity drives the remaining attempts within the deadline.
        """
        policy = self.effect.retry
        started = time.monotonic()
        attempts = 1
        failure: BaseException
        try:
            response = await self._once(request, form, with_auth)
            if policy.attempts == 1 or not policy.retries_status(response.status_code):
                return response
            failure = _Retryable(response)
        except _transport_errors() as exc:
            if policy.attempts == 1:
                raise self._gave_up(request, exc, attempts, started) from None
            failure = exc
        pause = self._pause(failure, 1)
        if time.monotonic() - started + pause >= policy.deadline:
            return self._last(request, failure, attempts, started)
        await asyncio.sleep(pause)

        from tenacity import (
            AsyncRetrying,
            retry_if_exception,
            stop_after_attempt,
            stop_before_delay,
        )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts - 1)
            | stop_before_delay(policy.deadline - (time.monotonic() - started)),
            wait=lambda state: self._pause(
                state.outcome.exception() if state.outcome is not None else None,
                state.attempt_number + 1,
            ),
            retry=retry_if_exception(_is_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    response = await self._once(request, form, with_auth)
                    if policy.retries_status(response.status_code):
                        if attempts < policy.attempts:
                            raise _Retryable(response)
                        return self._last(request, _Retryable(response), attempts, started)
                    return response
        except Exception as exc:
            if not _is_retryable(exc):
                raise
            return self._last(request, exc, attempts, started)
        raise AssertionError("unreachable")  # pragma: no cover

    def _last(
        self, request: _Request, failure: BaseException, attempts: int, started: float
    ) -> Reply:
        """Out of attempts or time: the last response (the caller reports it) or an error."""
        if isinstance(failure, _Retryable):
            # the status error says how hard we tried
            failure.response.attempts = attempts
            failure.response.elapsed = time.monotonic() - started
            return failure.response
        raise self._gave_up(request, failure, attempts, started) from None

    def _gave_up(
        self, request: _Request, exc: BaseException, attempts: int, started: float
    ) -> EffectError:
        elapsed = time.monotonic() - started
        shown = self.shown(request.url, request.params)
        return EffectError(
            f"{request.method} {shown} failed after {attempts} attempt"
            f"{'s' if attempts != 1 else ''} in {elapsed:.1f} s: {type(exc).__name__}: "
            f"{redact_text(str(exc)) or 'no detail'}; check that the server is reachable, "
            "or raise timeout= / retry=",
            node=self.node,
            uri=shown,
        )

    async def _once(
        self, request: _Request, form: Mapping[str, str] | None, with_auth: bool
    ) -> Reply:
        params, headers = request.params, request.headers
        token: Secret | None = None
        if with_auth:
            if self.auth_params:
                params = {**params, **self.auth_params}
            if self.auth_headers or self.oauth is not None:
                headers = {**headers, **self.auth_headers}
            if self.oauth is not None:
                token = await self.oauth.get()
                headers["Authorization"] = f"Bearer {token.reveal()}"
        response = await self._request(request, params, headers, form)
        if response.status_code == 401 and self.oauth is not None and with_auth:
            # The token may have been revoked or expired early: one fresh token, one resend.
            token = await self.oauth.refresh(stale=token)
            headers["Authorization"] = f"Bearer {token.reveal()}"
            response = await self._request(request, params, headers, form)
        return response

    async def _request(
        self,
        request: _Request,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        form: Mapping[str, str] | None,
    ) -> Reply:
        began = time.perf_counter()
        # Merged into the URL's own query (a next-page link keeps its parameters).
        url = with_params(request.url, params)
        response = await self._hop(
            request.method, url, headers, request.json, request.content, form
        )
        if response.status_code in redirects.REDIRECT_STATUSES:
            response = await self._follow(request, response, params, headers, form)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %s %s -> %d in %.0f ms",
                self.node,
                request.method,
                self.shown(request.url, request.params),
                response.status_code,
                (time.perf_counter() - began) * 1000,
            )
        return response

    async def _hop(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json_body: Any,
        content: bytes | None,
        form: Mapping[str, str] | None,
    ) -> Reply:
        """Send one request on the wire, after the rate limit."""
        if self.limiter is not None:
            await self.limiter.acquire()
        self.requests += 1
        body, kind = encode_body(json_body, content, form)
        if kind is not None and not any(k.lower() == "content-type" for k in headers):
            headers = {**headers, "Content-Type": kind}
        assert self.wire is not None, "send() outside connected()"
        return await self.wire.send(method, url, headers, body)

    async def _follow(
        self,
        request: _Request,
        response: Reply,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        form: Mapping[str, str] | None,
    ) -> Reply:
        """Follow the redirects of ``response`` hop by hop: within the request's origin with
        every credential; to another origin only with ``redirects="any"`` and then without
        any (see :mod:`tdm.effects.redirects`)."""
        start = response.url
        method, trusted = request.method, True
        json_body, content, data = request.json, request.content, form
        for _ in range(redirects.MAX_REDIRECTS):
            location = response.header("location")
            if response.status_code not in redirects.REDIRECT_STATUSES or location is None:
                return response
            status = response.status_code
            url = redirects.target(response.url, location)
            method, keep_body = redirects.redirect_method(method, status)
            if not keep_body:
                json_body = content = data = None
            if trusted and not redirects.same_origin(start, url):
                if self.effect.redirects != "any":
                    raise self._cross_origin(request, status, start, url)
                trusted = False
            if trusted:
                secret_params = {
                    k: v for k, v in params.items() if k.lower() in self.credential_params
                }
                hop = with_params(url, secret_params)
                hop_headers = dict(headers)
            else:
                if _holds_secret(_body_text(json_body, content, data)):
                    raise EffectError(
                        f"{request.method} {self.shown(request.url)} was redirected ({status}) "
                        f"to another origin, {redirects.show_origin(url)}, with a request body "
                        "that holds a secret; tdm does not send it there. Call that URL "
                        "directly, with its own credentials",
                        node=self.node,
                        uri=self.shown(request.url),
                    )
                hop = redirects.strip_query(url, self.credential_params, _holds_secret)
                hop_headers = redirects.without(headers, self.credential_headers, _holds_secret)
            response = await self._hop(method, hop, hop_headers, json_body, content, data)
        raise EffectError(
            f"{request.method} {self.shown(request.url)} was redirected more than "
            f"{redirects.MAX_REDIRECTS} times; check the URL (the server may redirect in a loop)",
            node=self.node,
            uri=self.shown(request.url),
        )

    def _cross_origin(self, request: _Request, status: int, start: str, url: str) -> EffectError:
        here, there = redirects.show_origin(start), redirects.show_origin(url)
        return EffectError(
            redact_text(
                f"{request.method} {self.shown(request.url)} was redirected ({status}) from "
                f"{here} to another origin, {there}; tdm follows redirects within the "
                "request's origin only, so that credentials never reach another host. Use "
                f"the new URL on {there} directly, or pass redirects='any' to follow such "
                "redirects without any credential"
            ),
            node=self.node,
            uri=self.shown(request.url),
        )

    def status_error(self, request: _Request, response: Reply, what: str = "") -> StatusError:
        status = response.status_code
        shown = self.shown(request.url, request.params)
        if status in (401, 403):
            hint = "check the credentials in secret " + repr(self.effect.secret) + " and auth="
        elif status == 404:
            hint = "check the URL" + (" or pass on_status={404: 'skip'}" if what else "")
        elif status == 429 or status >= 500:
            hint = "the server kept failing; retry later or raise retry= / rate_limit="
        else:
            hint = "check the request's parameters"
        attempts = response.attempts
        tried = ""
        if attempts is not None:
            elapsed = response.elapsed
            tried = f" after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s"
        return StatusError(
            f"{request.method} {shown} answered {status} {response.reason_phrase}{tried}"
            f"{what}{_excerpt(response)}; {hint}",
            status=status,
            node=self.node,
            uri=shown,
        )

    def body(self, request: _Request, response: Reply) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.header("content-type") or "unknown"
            raise EffectError(
                f"{request.method} {self.shown(request.url, request.params)} answered "
                f"{kind}, not JSON{_excerpt(response, 80)}",
                node=self.node,
                uri=self.shown(request.url),
            ) from None


def _credential_names(effect: RestOptions) -> tuple[frozenset[str], frozenset[str]]:
    """The (lower-case) names of the headers and query parameters of ``effect`` that carry a
    credential: those of its auth and those filled from a secret."""
    headers: set[str] = set()
    params: set[str] = set()
    for names, pairs in ((headers, effect.headers), (params, effect.params)):
        for name, value in pairs:
            if isinstance(value, SecretField) or SECRET_REF.search(value):
                names.add(name.lower())
    auth = effect.auth
    if isinstance(auth, ApiKey):
        (headers if auth.header else params).add((auth.header or auth.query or "").lower())
    if auth is not None:
        headers.add("authorization")
    return frozenset(headers), frozenset(params)


def _holds_secret(text: str) -> bool:
    return bool(text) and scrub(text) != text


def _body_text(json_body: Any, content: bytes | None, form: Mapping[str, str] | None) -> str:
    """The text of a request body, to check it for secret values."""
    import json

    parts = [json.dumps(json_body, default=str) if json_body is not None else ""]
    parts.append(content.decode("utf-8", "replace") if content else "")
    parts += [f"{k}={v}" for k, v in (form or {}).items()]
    return "\n".join(parts)


async def _workers(count: int, work: Callable[[int], Awaitable[None]], n: int) -> None:
    """Run ``work(i)`` for ``i`` in ``range(n)`` on ``count`` workers; the first failure
    cancels the rest."""
    positions: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for i in positions:
            await work(i)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(count, n)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_FORMATTER = __import__("string").Formatter()


def _render(template: str, row: Mapping[Any, Any], quote_values: bool) -> str:
    out: list[str] = []
    for literal, field_name, spec, conversion in _FORMATTER.parse(template):
        out.append(literal)
        if field_name is None:
            continue
        value = row[field_name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if conversion:
            value = _FORMATTER.convert_field(value, conversion)
        text = format(value, spec or "")
        out.append(quote(text, safe="") if quote_values else text)
    return "".join(out)
