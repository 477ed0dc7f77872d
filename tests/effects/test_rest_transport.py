"""``Runtime.http``: the httpx transport REST handlers really send their requests through."""

from __future__ import annotations

import httpx
import pandas as pd

import tdm
from tdm import rest
from tdm.effects.secrets import MappingSecrets


def test_a_mock_transport_serves_rest_get_and_fetch_each_in_process() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        if request.url.path == "/devices":
            return httpx.Response(200, json={"Devices": [{"Uuid": "a"}, {"Uuid": "b"}]})
        uuid = request.url.path.split("/")[2]
        return httpx.Response(200, json={"Items": [{"state": f"ok-{uuid}"}]})

    devices = rest.get(
        "https://mdm.example.test/devices",
        records="Devices",
        auth=rest.bearer(),
        secret="MDM",
    )
    pipeline = devices >> rest.fetch_each(
        "https://mdm.example.test/devices/{Uuid}/security", records="Items", concurrency=2
    )
    runtime = tdm.Runtime(
        http=httpx.MockTransport(handler), secrets=MappingSecrets({"MDM": {"token": "t-1"}})
    )
    report = tdm.run(pipeline, runtime=runtime)
    assert report.ok, report.error
    assert report.output.to_dict("records") == [
        {"Uuid": "a", "state": "ok-a"},
        {"Uuid": "b", "state": "ok-b"},
    ]
    assert seen[0] == ("https://mdm.example.test/devices", "Bearer t-1")
    assert sorted(url for url, _ in seen[1:]) == [
        "https://mdm.example.test/devices/a/security",
        "https://mdm.example.test/devices/b/security",
    ]


class _ToLocal(httpx.AsyncBaseTransport):
    """A custom transport: requests for api.example.test go to a real local server."""

    def __init__(self, base: str) -> None:
        self.base = httpx.URL(base)
        self.inner = httpx.AsyncHTTPTransport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        request.url = request.url.copy_with(
            scheme=self.base.scheme, host=self.base.host, port=self.base.port
        )
        return await self.inner.handle_async_request(request)


def test_a_custom_transport_reaches_a_real_local_server(fake_api: object) -> None:
    transport = _ToLocal(fake_api.url)  # type: ignore[attr-defined]
    source = rest.get(
        "https://api.example.test/items/page",
        records="data",
        paginate=rest.page_number(size=50, total="total"),
    )
    report = tdm.run(source, runtime=tdm.Runtime(http=transport))
    assert report.ok, report.error
    total = fake_api.total  # type: ignore[attr-defined]
    assert report.output["id"].tolist() == list(range(total))
    assert set(transport.hosts) == {"api.example.test"}
    assert len(transport.hosts) == -(-total // 50)  # one request per page, all through it
    # tdm never closes a transport it was given: the same one serves the next run.
    again = tdm.run(source, runtime=tdm.Runtime(http=transport))
    assert again.ok and len(again.output) == total
    assert isinstance(report.output, pd.DataFrame)
