"""The web app behind ``tdm ui``: read-only pages over an audit store (Starlette + uvicorn).

Only GET requests are served. Pages carry a Content-Security-Policy that forbids every
script, so even a string that slipped past escaping could not run. Bound to a loopback
address, the app answers only requests addressed to a loopback host name (a web page on
another site cannot reach it through DNS rebinding); bound anywhere else it needs a token,
which it then checks on every request (``?token=`` once, kept in a same-site cookie, or an
``Authorization: Bearer`` header).
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tdm.effects.secrets import scrub
from tdm.effects.state import StateStore
from tdm.errors import InputError
from tdm.ui.pages import Links, RunsQuery, document, pipeline_section, run_section, runs_section

__all__ = ["check_bind", "create_app", "is_loopback", "serve", "where"]

log = logging.getLogger("tdm.ui")

COOKIE: Final = "tdm_ui_token"
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``.

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "10.1.2.3")]
    [True, True, True, False, False]
    """
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token (an :class:`InputError` that says why)."""
    if not is_loopback(host) and not token:
        raise InputError(
            f"tdm ui would serve the audit trail to the network on {host}; give --token "
            "(or $TDM_UI_TOKEN) so every request must carry it, or bind 127.0.0.1"
        )


def _links() -> Links:
    return Links(
        run=lambda run_id: f"/run?{urlencode({'id': run_id})}",
        pipeline=lambda pid: f"/pipeline?{urlencode({'id': pid})}",
    )


def where(store: StateStore) -> str:
    """Which store is shown, without credentials a URL may carry.

    >>> from tdm.effects.state import FileStore
    >>> where(FileStore("s3://user:pw@bucket/audit"))
    'files:s3://***@bucket/audit'
    """
    text = scrub(store.describe())
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        text = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text


def _nav(store: StateStore) -> str:
    return f'<a href="/">runs</a><span class="muted">{html.escape(where(store))}</span>'


def create_app(
    store: StateStore, *, token: str | None = None, loopback_only: bool = True
) -> Starlette:
    """The read-only app over ``store``; ``token`` (if given) is required on every request.

    ``loopback_only`` answers only requests whose Host is a loopback name (set it when the
    server is bound to a loopback address).
    """
    links = _links()

    def page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(document(title, body, nav=_nav(store)), status_code=status)

    def guarded(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            host = (request.headers.get("host") or "").rsplit(":", 1)[0].lower()
            if request.headers.get("host", "").startswith("["):
                host = request.headers["host"].split("]", 1)[0] + "]"
            if loopback_only and host not in _LOOPBACK_NAMES:
                return _with_headers(Response("unknown host", status_code=421))
            if token:
                given = request.query_params.get("token")
                if given is not None and hmac.compare_digest(given.encode(), token.encode()):
                    rest = {k: v for k, v in request.query_params.items() if k != "token"}
                    target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                    answer = RedirectResponse(target, status_code=303)
                    answer.set_cookie(COOKIE, quote(token), httponly=True, samesite="strict")
                    return _with_headers(answer)
                auth = request.headers.get("authorization", "")
                bearer = auth[7:] if auth.lower().startswith("bearer ") else None
                cookie = request.cookies.get(COOKIE)
                candidates = [c for c in (bearer, cookie) if c is not None]
                if not any(
                    hmac.compare_digest(c.encode(), quote(token).encode())
                    or hmac.compare_digest(c.encode(), token.encode())
                    for c in candidates
                ):
                    return _with_headers(
                        HTMLResponse(
                            document(
                                "token required",
                                "<h1>Token required</h1><p>Open this page with "
                                "<code>?token=…</code> (the value given to "
                                "<code>tdm ui --token</code>).</p>",
                            ),
                            status_code=401,
                        )
                    )
            try:
                return _with_headers(endpoint(request))
            except Exception as exc:  # a broken store: say so, never a traceback
                log.error("tdm ui: %s: %s", type(exc).__name__, scrub(str(exc)))
                return _with_headers(
                    page(
                        "error",
                        "<h1>Cannot read the audit store</h1>"
                        f'<p class="err">{_esc(f"{type(exc).__name__}: {scrub(str(exc))}")}'
                        "</p>",
                        500,
                    )
                )

        return handle

    def runs(request: Request) -> Response:
        query = RunsQuery.parse(request.query_params)
        status = 400 if query.problems else 200
        return page("tdm runs", runs_section(store, query, links), status)

    def run(request: Request) -> Response:
        run_id = request.query_params.get("id", "")
        try:
            record = store.get(run_id)
        except KeyError:
            return page("not found", f"<h1>No run {_esc(run_id)}</h1>", 404)
        name = record.pipeline_name or record.pipeline_id
        return page(f"{name} run {run_id[:12]}", run_section(record, links))

    def pipeline(request: Request) -> Response:
        pid = request.query_params.get("id", "")
        return page(f"pipeline {pid}", pipeline_section(store, pid, links))

    return Starlette(
        routes=[
            Route("/", guarded(runs), methods=["GET"]),
            Route("/run", guarded(run), methods=["GET"]),
            Route("/pipeline", guarded(pipeline), methods=["GET"]),
        ]
    )


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _with_headers(response: Response) -> Response:
    for key, value in _HEADERS.items():
        response.headers[key] = value
    return response


def serve(
    store: StateStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    echo: Callable[[str], Any] = print,
) -> None:
    """Serve the run browser until interrupted; ``echo`` gets its URL once it listens.

    ``port=0`` picks a free port. A non-loopback ``host`` needs a ``token``.
    """
    import uvicorn

    check_bind(host, token)
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InputError(f"tdm ui cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(64)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    app = create_app(store, token=token, loopback_only=is_loopback(host))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    echo(f"tdm ui: http://{shown}:{bound}/ (reading {where(store)}; Ctrl+C stops)")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
