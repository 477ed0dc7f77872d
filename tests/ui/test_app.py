"""The web app's contract over HTTP (a real uvicorn server): read-only, token, host, pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

import tdm
from tdm.effects.state import RunRecord, StateStore
from tdm.errors import InputError
from tdm.ui.app import check_bind, create_app
from tests.ui.conftest import AppServer

TOKEN = "s3cret-ui-token"


@pytest.fixture(scope="module")
def many() -> StateStore:
    store = tdm.state.memory()
    for i in range(120):
        store.record(
            RunRecord(
                f"run{i:04d}", "bulk", "SUCCESS", f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}+00:00"
            )
        )
    return store


@pytest.fixture(scope="module")
def open_app(many: StateStore) -> Iterator[str]:
    server = AppServer(create_app(many))
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def token_app(many: StateStore) -> Iterator[str]:
    server = AppServer(create_app(many, token=TOKEN, loopback_only=False))
    yield server.url
    server.stop()


def _ids(text: str) -> list[str]:
    return re.findall(r'data-run-id="([^"]+)"', text)


def test_the_runs_page_is_paged_on_the_server(open_app: str) -> None:
    first = httpx.get(open_app)
    assert first.status_code == 200
    assert _ids(first.text) == [f"run{i:04d}" for i in range(119, 69, -1)]
    assert "1\u201350 of 120 runs" in first.text and "page 1 of 3" in first.text
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = httpx.get(open_app.rstrip("/") + older.group(1).replace("&amp;", "&"))
    assert _ids(second.text) == [f"run{i:04d}" for i in range(69, 19, -1)]
    last = httpx.get(open_app, params={"page": 99})  # past the end: the last page
    assert _ids(last.text) == [f"run{i:04d}" for i in range(19, -1, -1)]


def test_read_only_and_locked_down(open_app: str) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert httpx.request(method, open_app).status_code == 405
    answer = httpx.get(open_app)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert "<script" not in answer.text


def test_a_loopback_server_refuses_other_host_names(open_app: str) -> None:
    # a page on another site that rebinds its name to 127.0.0.1 sends its own Host
    assert httpx.get(open_app, headers={"Host": "evil.example:80"}).status_code == 421
    assert httpx.get(open_app.replace("127.0.0.1", "localhost")).status_code == 200


def test_a_token_is_needed_on_every_request(token_app: str) -> None:
    assert httpx.get(token_app).status_code == 401
    assert httpx.get(token_app + "run?id=run0001").status_code == 401
    assert httpx.get(token_app, params={"token": "wrong"}).status_code == 401
    assert TOKEN not in httpx.get(token_app).text
    bearer = httpx.get(token_app, headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200 and "run0119" in bearer.text
    with httpx.Client(base_url=token_app) as client:
        hop = client.get("/pipeline", params={"id": "bulk", "token": TOKEN})
        assert hop.status_code == 303 and hop.headers["location"] == "/pipeline?id=bulk"
        assert "httponly" in hop.headers["set-cookie"].lower()
        assert client.get("/pipeline", params={"id": "bulk"}).status_code == 200


def test_a_network_bind_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(InputError, match="--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(InputError, match="--token"):
        check_bind("192.0.2.7", "")


def test_unknown_run_and_pipeline(open_app: str) -> None:
    missing = httpx.get(open_app + "run", params={"id": "<nope>"})
    assert missing.status_code == 404 and "&lt;nope&gt;" in missing.text
    empty = httpx.get(open_app + "pipeline", params={"id": "none"})
    assert empty.status_code == 200 and "No runs recorded" in empty.text


def test_a_file_store_is_browsed_too(tmp_path: object) -> None:
    store = tdm.state.files("memory://ui-app-files/audit")
    import pandas as pd

    report = tdm.run(
        tdm.inputs.frame("x"),
        inputs={"x": pd.DataFrame({"a": [1, 2]})},
        runtime=tdm.Runtime(state=store),
        pipeline_id="filed",
    )
    server = AppServer(create_app(store))
    try:
        page = httpx.get(server.url)
        assert _ids(page.text) == [report.run_id]
        detail = httpx.get(server.url + "run", params={"id": report.run_id})
        assert detail.status_code == 200 and 'class="dag"' in detail.text
    finally:
        server.stop()


def test_fields_that_newer_records_carry_show_when_present() -> None:
    """Records from a newer tdm (resumed runs, drift, restored nodes) show what they have."""
    import dataclasses

    from tdm.ui.pages import run_section, runs_table
    from tdm.ui.report import _links

    store = tdm.state.memory()
    import pandas as pd

    tdm.run(tdm.inputs.frame("a"), inputs={"a": pd.DataFrame({"x": [1]})},
            runtime=tdm.Runtime(state=store))  # fmt: skip
    base = store.runs()[0]
    table = {**base.node_table, "restored": [n.name == "a" for n in base.nodes]}
    newer = dataclasses.replace(
        base, resumed_from="origin-run-1", drift=("a: column y added",), node_table=table
    )
    links = _links({"origin-run-1"})
    page = run_section(newer, links)
    assert 'href="#run-origin-run-1"' in page and "origin-run-1" in page
    assert "a: column y added" in page and "restored" in page
    assert 'href="#run-origin-run-1"' in runs_table([newer], links)
    plain = run_section(base, links)
    assert "resumed from" not in plain and "schema drift" not in plain


def test_the_graph_does_not_depend_on_the_order_nodes_were_recorded_in() -> None:
    import pandas as pd

    from tdm.ui.model import node_views
    from tdm.ui.svg import dag_svg
    from tests.ui.fill import orders_pipeline

    store = tdm.state.memory()
    frame = pd.DataFrame({"id": [1, 2], "amount": [1.0, 2.0]})
    tdm.run(orders_pipeline(), inputs={"orders": frame}, runtime=tdm.Runtime(state=store))
    run = store.runs()[0]
    table = run.node_table
    backwards = {k: list(reversed(v)) for k, v in table.items()}
    last = len(table["name"]) - 1
    backwards["parents"] = [[last - p for p in ps] for ps in backwards["parents"]]
    import dataclasses

    reordered = dataclasses.replace(run, node_table=backwards)
    assert {n.name: n.parents for n in reordered.nodes} == {n.name: n.parents for n in run.nodes}
    for record in (run, reordered):
        svg = dag_svg(node_views(record))
        assert svg.count('class="edge"') == 7, svg
        x = {
            name: float(
                re.search(rf'data-name="{name}"[^>]*>.*?<rect x="([\d.]+)"', svg, re.S).group(1)
            )
            for name in ("orders", "enrich_eu", "check_eu", "concat", "tax_all")
        }
        assert x["orders"] < x["enrich_eu"] < x["check_eu"] < x["concat"] < x["tax_all"]
