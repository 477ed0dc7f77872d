"""How the requests of one REST call reach the server: the wire under :mod:`tdm.effects.http`.

Two wires answer the same small interface (:class:`Wire`): ``send(method, url, headers, body)``
returns a :class:`Reply` holding the whole body.

* :class:`AiohttpWire`, the default: one ``aiohttp.ClientSession`` per call, shared by all its
  workers. Measured on the fan-out benchmark (``benchmarks/rest_fanout.py``), httpx's own request
  path costs ≈ 1.2 ms of client CPU per request (its anyio locks, per-request objects and URL
  model), httpx's API over an aiohttp transport ≈ 0.7 ms, aiohttp alone ≈ 0.3 ms.
* :class:`HttpxWire`: an ``httpx.AsyncClient``, used when the runtime injects an httpx transport
  (``Runtime.http``: it always wins) and when proxy environment variables are set (httpx honours
  them exactly as before; aiohttp would also read ``~/.netrc``).

Either way tdm follows redirects itself (:mod:`tdm.effects.redirects`), encodes bodies the way
httpx does (compact JSON, URL-encoded forms), and errors are httpx's exception types, so
messages and retry decisions do not depend on the wire.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import re
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

if TYPE_CHECKING:
    import httpx

__all__ = ["AiohttpWire", "HttpxWire", "Reply", "Wire", "encode_body", "with_params"]


class Reply:
    """A response with its whole body read: the part of ``httpx.Response`` tdm uses."""

    __slots__ = ("attempts", "content", "elapsed", "headers", "reason_phrase", "status_code", "url")

    def __init__(
        self,
        status_code: int,
        reason_phrase: str,
        headers: Mapping[str, str],
        url: str,
        content: bytes,
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.url = url
        self.content = content
        self.attempts: int | None = None  # set when retries ran out: the error says so
        self.elapsed = 0.0

    def header(self, name: str) -> str | None:
        """The value of header ``name``; repeated headers joined with ``", "`` (like httpx)."""
        getall = getattr(self.headers, "getall", None)
        if getall is not None:
            values = getall(name, ())
            return ", ".join(values) if values else None
        return self.headers.get(name)

    def header_names(self) -> list[str]:
        return sorted({name.lower() for name in self.headers})

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        """The body decoded with the charset the server named (else UTF-8), like httpx."""
        return self.content.decode(_charset(self.header("content-type")), errors="replace")

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header by ``rel`` (else by URL), parsed as ``httpx.Response.links``.

        >>> Reply(200, "OK", {"link": '<https://a.test/?p=2>; rel="next"'}, "", b"").links
        {'next': {'url': 'https://a.test/?p=2', 'rel': 'next'}}
        """
        header = self.header("link")
        if header is None:
            return {}
        return {(link.get("rel") or link["url"]): link for link in _parse_links(header)}


def _charset(content_type: str | None) -> str:
    if content_type:
        for part in content_type.split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset":
                name = value.strip().strip("'\"")
                try:
                    return codecs.lookup(name).name
                except LookupError:
                    break
    return "utf-8"


def _parse_links(value: str) -> list[dict[str, str]]:
    links: list[dict[str, str]] = []
    junk = " '\""
    value = value.strip(junk)
    if not value:
        return links
    for val in re.split(", *<", value):
        url, _, params = val.partition(";")
        link = {"url": url.strip("<> '\"")}
        for param in params.split(";") if params else ():
            key, sep, text = param.partition("=")
            if not sep or "=" in text:
                break
            link[key.strip(junk)] = text.strip(junk)
        links.append(link)
    return links


def with_params(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` merged into its query (a parameter of the same name is replaced).

    >>> with_params("https://h.test/x?sort=asc&page=1", {"page": "2", "q": "a b"})
    'https://h.test/x?sort=asc&page=2&q=a+b'
    """
    if not params:
        return url
    import yarl

    return str(yarl.URL(url).update_query(dict(params)))


def encode_body(
    json_body: Any, content: bytes | None, form: Mapping[str, str] | None
) -> tuple[bytes | None, str | None]:
    """A request body and its content type, encoded as httpx encodes ``json=``/``data=``.

    >>> encode_body({"a": [1, "é"]}, None, None)
    (b'{"a":[1,"\\xc3\\xa9"]}', 'application/json')
    >>> encode_body(None, None, {"grant_type": "client_credentials"})
    (b'grant_type=client_credentials', 'application/x-www-form-urlencoded')
    """
    if content is not None:
        return content, None
    if form:
        return urlencode(form, doseq=True).encode(), "application/x-www-form-urlencoded"
    if json_body is not None:
        text = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode(), "application/json"
    return None, None


class Wire(Protocol):
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Reply: ...

    async def aclose(self) -> None: ...


_SSL: dict[bool, ssl.SSLContext] = {}


def ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per process and setting (loading CA certificates costs milliseconds);
    httpx's, so ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured whichever wire sends."""
    ctx = _SSL.get(verify)
    if ctx is None:
        import httpx

        ctx = _SSL[verify] = httpx.create_ssl_context(verify=verify)
    return ctx


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def proxies_configured() -> bool:
    """Whether the environment names a proxy (then httpx sends, as it always did)."""
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in _PROXY_VARIABLES)


# ---------------------------------------------------------------------------------------------
# aiohttp
# ---------------------------------------------------------------------------------------------
class AiohttpWire:
    """One aiohttp session for all workers of a call; made inside the running loop."""

    def __init__(self, *, verify: bool, timeout: float) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context(verify), limit=0),
            # httpx's Timeout(t): t to connect (a pooled connection is immediate), t per read.
            timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout),
            # httpx's client accepts cookies from IP-address hosts as well
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            trust_env=False,
            auto_decompress=True,
        )
        self.errors = _aiohttp_errors()

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Reply:
        try:
            async with self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                # a raw body goes without a Content-Type unless the caller set one, as in httpx
                skip_auto_headers=_NO_CONTENT_TYPE if body is not None else None,
            ) as response:
                content = await response.read()
                return Reply(
                    response.status,
                    response.reason or "",
                    response.headers,
                    str(response.url),
                    content,
                )
        except self.errors as exc:
            raise _as_httpx(exc) from exc

    async def aclose(self) -> None:
        await self.session.close()


_NO_CONTENT_TYPE = ("Content-Type",)
_AIOHTTP_ERRORS: list[tuple[type[BaseException], ...]] = []


def _aiohttp_errors() -> tuple[type[BaseException], ...]:
    if not _AIOHTTP_ERRORS:
        import aiohttp

        _AIOHTTP_ERRORS.append((aiohttp.ClientError, asyncio.TimeoutError))
    return _AIOHTTP_ERRORS[0]


def _as_httpx(exc: BaseException) -> Exception:
    """The httpx error that stands for an aiohttp one (what retries and messages go by)."""
    import aiohttp
    import httpx

    message = str(exc) or type(exc).__name__
    made: type[httpx.HTTPError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        made = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        made = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        made = httpx.ConnectError  # refused, unresolvable, TLS verification failed
    elif isinstance(exc, aiohttp.InvalidURL):
        made = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        made = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ClientResponseError):
        made = httpx.RemoteProtocolError  # a response that is not valid HTTP
    elif isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError):
        made = httpx.ReadError
    else:
        made = httpx.TransportError
    return made(message)


# ---------------------------------------------------------------------------------------------
# httpx
# ---------------------------------------------------------------------------------------------
class HttpxWire:
    """httpx clients over the runtime's transport, or over httpx's own pools.

    Without an injected transport each worker task gets a client (and a pool) of its own:
    httpx's pool is CPU-bound when one client serves many concurrent requests
    (encode/httpx#3215; measured ≈ 5 ms per request at 32 workers, ≈ 1.2 ms with one pool per
    worker). An injected transport is one object whatever the client, so one client serves.
    """

    def __init__(
        self, *, transport: httpx.AsyncBaseTransport | None, verify: bool, timeout: float
    ) -> None:
        self.transport = transport
        self.verify = verify
        self.timeout = timeout
        self.clients: dict[asyncio.Task[Any] | None, httpx.AsyncClient] = {}

    def _client(self) -> httpx.AsyncClient:
        task = asyncio.current_task() if self.transport is None else None
        client = self.clients.get(task)
        if client is None:
            import httpx

            if self.transport is not None:
                client = httpx.AsyncClient(
                    transport=_borrowed(self.transport),
                    timeout=self.timeout,
                    follow_redirects=False,
                )
            else:  # one request in flight per worker: a small pool is plenty
                client = httpx.AsyncClient(
                    verify=ssl_context(self.verify),
                    timeout=self.timeout,
                    limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
                    follow_redirects=False,
                )
            self.clients[task] = client
        return client

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Reply:
        response = await self._client().request(method, url, headers=headers, content=body)
        return Reply(
            response.status_code,
            response.reason_phrase,
            response.headers,
            str(response.url),
            response.content,
        )

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.aclose()


_BORROWED: list[type[Any]] = []


def _borrowed(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """``transport`` for one client, which must not close it: its owner (the Runtime) does."""
    if not _BORROWED:
        import httpx

        class Borrowed(httpx.AsyncBaseTransport):
            def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
                self.inner = inner

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return await self.inner.handle_async_request(request)

            async def aclose(self) -> None:
                return None

        _BORROWED.append(Borrowed)
    made: httpx.AsyncBaseTransport = _BORROWED[0](transport)
    return made


def open_wire(*, transport: httpx.AsyncBaseTransport | None, verify: bool, timeout: float) -> Wire:
    """The wire for one call (inside its event loop): see the module docstring for the choice."""
    if transport is not None or proxies_configured():
        return HttpxWire(transport=transport, verify=verify, timeout=timeout)
    return AiohttpWire(verify=verify, timeout=timeout)


def loggers() -> tuple[str, ...]:
    """The client libraries' loggers, whose records tdm redacts."""
    return ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
            "httpcore.proxy", "hpack", "aiohttp", "aiohttp.client", "aiohttp.internal")  # fmt: skip
