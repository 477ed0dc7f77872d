"""The wire under REST effects: aiohttp by default, httpx over an injected transport or a proxy.

Whichever sends, a server sees the same request bodies, and tdm's redirect policy holds.
"""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

import tdm
from tdm import rest
from tdm.effects.secrets import MappingSecrets
from tests.servers.fixtures import FakeApi, RequestInfo

WIRES = ["default", "httpx transport"]


def _runtime(wire: str, **secrets: dict[str, str]) -> tdm.Runtime:
    transport = httpx.AsyncHTTPTransport() if wire == "httpx transport" else None
    return tdm.Runtime(http=transport, secrets=MappingSecrets(secrets))


def _seen(req: RequestInfo) -> dict[str, Any]:
    return {
        "method": req.method,
        "type": req.headers.get("content-type"),
        "body": req.text,
        "query": req.query,
    }


@pytest.mark.parametrize("wire", WIRES)
def test_bodies_reach_the_server_as_httpx_encodes_them(fresh_fake_api: FakeApi, wire: str) -> None:
    api = fresh_fake_api
    api.route("/seen", _seen, methods=["POST", "PUT"])
    frames = []
    for kwargs in (
        {"json": {"q": ["a", "é"], "n": 1}},
        {"body": "raw text"},
        {"body": "a=1", "headers": {"Content-Type": "text/csv"}},
    ):
        source = rest.get(api.url + "/seen", method="post", params={"x": "1 2"}, **kwargs)
        report = tdm.run(source, runtime=_runtime(wire))
        assert report.ok, report.error
        frames.append(report.output)
    seen = pd.concat(frames, ignore_index=True).to_dict("records")
    assert [(r["type"], r["body"]) for r in seen] == [
        ("application/json", '{"n":1,"q":["a","é"]}'),
        (None, "raw text"),
        ("text/csv", "a=1"),
    ]
    assert all(r["query_x"] == "1 2" and r["method"] == "POST" for r in seen)


@pytest.mark.parametrize("wire", WIRES)
def test_statuses_headers_and_timeouts_read_the_same(fresh_fake_api: FakeApi, wire: str) -> None:
    api = fresh_fake_api
    report = tdm.run(rest.get(api.url + "/status/418", retry=None), runtime=_runtime(wire))
    assert not report.ok and "418 i'm a teapot" in str(report.error).lower()
    api.latency_s = 1.0
    report = tdm.run(rest.get(api.url + "/health", timeout=0.1, retry=None), runtime=_runtime(wire))
    assert not report.ok and "ReadTimeout" in str(report.error)


def test_an_injected_transport_follows_tdm_s_redirect_policy() -> None:
    """httpx never follows a redirect by itself: same origin keeps the credentials, another
    origin is refused by default and gets none with ``redirects="any"``."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        if request.url.path == "/old":
            return httpx.Response(302, headers={"Location": "/new"})
        if request.url.path == "/away":
            return httpx.Response(302, headers={"Location": "https://elsewhere.test/data"})
        return httpx.Response(200, json={"data": [{"at": str(request.url)}]})

    runtime = tdm.Runtime(
        http=httpx.MockTransport(handler), secrets=MappingSecrets({"Api": {"token": "tok-123"}})
    )

    def get(path: str, **extra: Any) -> tdm.RunReport:
        source = rest.get(
            "https://api.test" + path, records="data", auth=rest.bearer(), secret="Api", **extra
        )
        return tdm.run(source, runtime=runtime)

    report = get("/old")
    assert report.ok and report.output["at"].tolist() == ["https://api.test/new"]
    assert seen == [
        ("https://api.test/old", "Bearer tok-123"),
        ("https://api.test/new", "Bearer tok-123"),
    ]
    seen.clear()
    report = get("/away")
    assert not report.ok and "another origin" in str(report.error)
    assert seen == [("https://api.test/away", "Bearer tok-123")]
    seen.clear()
    report = get("/away", redirects="any")
    assert report.ok and report.output["at"].tolist() == ["https://elsewhere.test/data"]
    assert seen[1] == ("https://elsewhere.test/data", None)


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy for plain HTTP: records the absolute URL, fetches it, relays it."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(self.path, timeout=10) as answer:
            body = answer.read()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.headers["Content-Type"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Proxy,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_proxy_named_in_the_environment_is_used(
    fresh_fake_api: FakeApi, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = proxy
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    paginate = rest.page_number(size=50, total="total")
    source = rest.get(
        fresh_fake_api.url + "/items/page", records="data", paginate=paginate, retry=None
    )
    report = tdm.run(source, runtime=tdm.Runtime())
    assert report.ok, report.error
    assert len(report.output) == fresh_fake_api.total
    assert len(seen) == -(-fresh_fake_api.total // 50)  # every page went through the proxy
    assert all(s.startswith(fresh_fake_api.url + "/items/page?") for s in seen)
