"""rest.get and rest.fetch_each against the real fake REST API (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import rest
from tests.effects.rest_helpers import error, output, run
from tests.servers.fixtures import FakeApi, RequestInfo, free_port

IDS = list(range(230))


# ---- pagination -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "paginate", "requests"),
    [
        ("/items/page", rest.page_number(size=40, total="total"), 6),
        ("/items/page", rest.page_number(size=40, total_pages="total_pages"), 6),
        ("/items/page", rest.page_number(size=40), 7),  # until an empty page
        ("/items/offset", rest.offset_limit(limit=40, total="total"), 6),
        ("/items/offset", rest.offset_limit(limit=40), 7),
        ("/items/cursor", rest.cursor("next_cursor", limit=40), 6),
        ("/items/nexturl?per_page=40", rest.next_url("next"), 6),
    ],
)
def test_every_body_pagination_style_reads_every_item_once(
    fresh_fake_api: FakeApi, path: str, paginate: Any, requests: int
) -> None:
    df = output(rest.get(fresh_fake_api.url + path, records="data", paginate=paginate))
    assert df["id"].tolist() == IDS
    assert df.columns.tolist() == ["id", "name"]
    assert fresh_fake_api.count == requests


def test_link_header_pagination_follows_rel_next(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    df = output(
        rest.get(api.url + "/items/link", params={"per_page": 100}, paginate=rest.link_header())
    )
    assert df["id"].tolist() == IDS
    assert [r.query.get("page") for r in api.log] == [None, "2", "3"]
    assert all(r.query["per_page"] == "100" for r in api.log)


def test_page_number_with_total_fetches_remaining_pages_concurrently(
    fresh_fake_api: FakeApi,
) -> None:
    api = fresh_fake_api
    api.latency_s = 0.05
    paginate = rest.page_number(size=10, total="total", concurrency=6)
    df = output(rest.get(api.url + "/items/page", records="data", paginate=paginate))
    assert df["id"].tolist() == IDS  # page order kept
    assert api.count == 23
    assert 2 <= api.max_in_flight <= 6


def test_page_number_start_zero_and_custom_params(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api

    @api.route("/devices/search")
    def search(req: RequestInfo) -> Any:
        page, size = int(req.query["page"]), int(req.query["pagesize"])
        devices = [
            {"Uuid": f"u{i}", "Id": {"Value": i}}
            for i in range(page * size, min((page + 1) * size, 7))
        ]
        return {"Devices": devices, "Page": page, "PageSize": size, "Total": 7}

    paginate = rest.page_number(size=3, start=0, total="Total", size_param="pagesize")
    df = output(rest.get(api.url + "/devices/search", records="Devices", paginate=paginate))
    assert df["Uuid"].tolist() == [f"u{i}" for i in range(7)]
    assert df.columns.tolist() == ["Uuid", "Id_Value"]  # nested records flattened a_b style
    assert sorted(r.query["page"] for r in api.log) == ["0", "1", "2"]


def test_max_pages_bounds_a_pagination(fresh_fake_api: FakeApi) -> None:
    df = output(
        rest.get(
            fresh_fake_api.url + "/items/cursor",
            records="data",
            paginate=rest.cursor(limit=10, max_pages=3),
        )
    )
    assert df["id"].tolist() == list(range(30))


def test_a_looping_cursor_fails_clearly(fresh_fake_api: FakeApi) -> None:
    fresh_fake_api.route("/loop", lambda req: {"data": [{"a": 1}], "next_cursor": "same"})
    message = error(rest.get(fresh_fake_api.url + "/loop", records="data", paginate=rest.cursor()))
    assert "loops" in message and "max_pages" in message


def test_next_url_to_another_host_is_refused_when_credentials_are_sent(
    fresh_fake_api: FakeApi,
) -> None:
    fresh_fake_api.route(
        "/away", lambda req: {"data": [{"a": 1}], "next": "http://elsewhere.test/p2"}
    )
    pipeline = rest.get(
        fresh_fake_api.url + "/away",
        records="data",
        paginate=rest.next_url(),
        auth=rest.bearer(),
        secret="S",
    )
    message = error(pipeline, {"S": {"token": "tok-abcdef"}})
    assert "another host" in message and "elsewhere.test" in message


# ---- records ------------------------------------------------------------------------------------
def test_records_dotted_path_flatten_and_single_object(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.route(
        "/nested", lambda req: {"data": {"items": [{"a": {"b": 1, "c": {"d": 2}}, "e": [1, 2]}]}}
    )
    api.route("/one", lambda req: {"id": 7, "owner": {"name": "ann"}})
    df = output(rest.get(api.url + "/nested", records="data.items"))
    assert df.columns.tolist() == ["e", "a_b", "a_c_d"] or set(df.columns) == {"e", "a_b", "a_c_d"}
    assert df.loc[0, "a_c_d"] == 2
    raw = output(rest.get(api.url + "/nested", records="data.items", flatten=False))
    assert raw.loc[0, "a"] == {"b": 1, "c": {"d": 2}}
    one = output(rest.get(api.url + "/one"))
    assert one.to_dict("records") == [{"id": 7, "owner_name": "ann"}]


def test_missing_records_path_names_the_keys(fresh_fake_api: FakeApi) -> None:
    message = error(rest.get(fresh_fake_api.url + "/items/page", records="Devices"))
    assert "'Devices'" in message and "'data'" in message and "records=" in message
    assert "/items/page" in message


def test_post_with_json_body_and_params(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    pipeline = rest.get(
        api.url + "/echo",
        method="post",
        json={"q": ["a", "b"], "n": 1},
        params={"x": 1, "flag": True},
    )
    df = output(pipeline)
    assert df.loc[0, "method"] == "POST"
    assert df.loc[0, "json_q"] == ["a", "b"]
    assert api.requests[0].query == {"x": "1", "flag": "true"}


def test_non_json_response_is_a_clear_error(fresh_fake_api: FakeApi) -> None:
    fresh_fake_api.route("/text", lambda req: "hello, not json")
    message = error(rest.get(fresh_fake_api.url + "/text"))
    assert "not JSON" in message and "text/plain" in message


# ---- fetch_each ---------------------------------------------------------------------------------
def test_fetch_each_attaches_parent_columns_and_keeps_input_order(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api

    @api.route("/devices/{uuid}/security")
    async def security(req: RequestInfo) -> Any:
        n = int(req.path_params["uuid"].removeprefix("dev-"))
        await asyncio.sleep(0.002 * (10 - n))  # later rows answer first
        return {"SecurityInfo": [{"check": f"c{n}-{k}", "ok": k % 2 == 0} for k in range(n % 3)]}

    devices = pd.DataFrame(
        {
            "Uuid": [f"dev-{n}" for n in range(10)],
            "SerialNumber": [f"S{n}" for n in range(10)],
            "x": 0,
        }
    )
    step = rest.fetch_each(
        api.url + "/devices/{Uuid}/security",
        records="SecurityInfo",
        concurrency=4,
        include_parent=["Uuid", "SerialNumber"],
    )
    df = output(tdm.inputs.frame("devices") >> step, devices=devices)
    expected = [f"c{n}-{k}" for n in range(10) for k in range(n % 3)]
    assert df["check"].tolist() == expected
    assert df.columns.tolist() == ["Uuid", "SerialNumber", "check", "ok"]
    assert df.loc[df["check"] == "c5-1", "SerialNumber"].item() == "S5"


def test_fetch_each_templates_query_and_header_and_encodes_path(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.route(
        "/users/{name}",
        lambda req: {
            "name": req.path_params["name"],
            "v": req.query["v"],
            "h": req.headers["x-row"],
        },
    )
    frame = pd.DataFrame({"name": ["a b", "c?d&e=#"], "ver": [1.0, 2.0]})
    step = rest.fetch_each(
        api.url + "/users/{name}", params={"v": "{ver}"}, headers={"X-Row": "r-{name}"}
    )
    df = output(tdm.inputs.frame("x") >> step, x=frame)
    assert df["v"].tolist() == ["1", "2"]  # integral floats print as integers
    assert df["h"].tolist() == ["r-a b", "r-c?d&e=#"]
    # values are percent-encoded into the path: '?', '&', '#' do not break the URL
    assert df["name_response"].tolist() == ["a b", "c?d&e=#"]
    assert [r.query for r in api.log] == [{"v": "1"}, {"v": "2"}]


def test_fetch_each_missing_column_is_named(fresh_fake_api: FakeApi) -> None:
    step = rest.fetch_each(fresh_fake_api.url + "/items/{Uuid}")
    message = error(tdm.inputs.frame("x") >> step, x=pd.DataFrame({"uuid": [1]}))
    assert "'Uuid'" in message and "uuid" in message and "lacks" in message
    assert fresh_fake_api.count == 0


def test_fetch_each_null_value_is_named(fresh_fake_api: FakeApi) -> None:
    step = rest.fetch_each(fresh_fake_api.url + "/items/{id}")
    message = error(tdm.inputs.frame("x") >> step, x=pd.DataFrame({"id": [1.0, None]}))
    assert "row 1" in message and "'id'" in message


def test_fetch_each_status_policies(
    fresh_fake_api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    api = fresh_fake_api
    frame = pd.DataFrame({"id": [3, 9999, 5, 8888]})
    caplog.set_level(logging.WARNING, logger="tdm.rest")
    skipped = output(
        tdm.inputs.frame("x") >> rest.fetch_each(api.url + "/items/{id}", on_status={404: "skip"}),
        x=frame,
    )
    assert skipped["id"].tolist() == [3, 5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipped 2 of 4 rows" in w and "/items/9999" in w for w in warnings)

    caplog.clear()
    empty = output(
        tdm.inputs.frame("x") >> rest.fetch_each(api.url + "/items/{id}", on_status={404: "empty"}),
        x=frame,
    )
    assert empty["name"].tolist() == ["item-0003", "item-0005"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    message = error(tdm.inputs.frame("x") >> rest.fetch_each(api.url + "/items/{id}"), x=frame)
    assert "404" in message and "/items/9999" in message and "row 1" in message
    assert "on_status" in message


def test_fetch_each_no_results_keeps_parent_columns(fresh_fake_api: FakeApi) -> None:
    frame = pd.DataFrame({"id": [9999], "k": ["a"]})
    step = rest.fetch_each(
        fresh_fake_api.url + "/items/{id}", on_status={404: "empty"}, include_parent=["id", "k"]
    )
    df = output(tdm.inputs.frame("x") >> step, x=frame)
    assert df.empty and df.columns.tolist() == ["id", "k"]


def test_fetch_each_concurrency_is_bounded(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.latency_s = 0.03
    frame = pd.DataFrame({"id": range(60)})
    df = output(
        tdm.inputs.frame("x") >> rest.fetch_each(api.url + "/items/{id}", concurrency=6), x=frame
    )
    assert df["id"].tolist() == list(range(60))
    assert api.max_in_flight <= 6
    assert api.max_in_flight >= 3  # really concurrent (no timed assertion: the load varies)


def test_rate_limit_is_shared_by_the_fan_out(fresh_fake_api: FakeApi) -> None:
    frame = pd.DataFrame({"id": range(8)})
    step = rest.fetch_each(fresh_fake_api.url + "/items/{id}", concurrency=8, rate_limit=20)
    started = time.perf_counter()
    output(tdm.inputs.frame("x") >> step, x=frame)
    assert time.perf_counter() - started >= 7 / 20 * 0.95


# ---- retries and failures -----------------------------------------------------------------------
def test_retries_429_and_503_honouring_retry_after(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.fail_next(1, status=429, retry_after="1")
    api.fail_next(1, status=503, retry_after="0")
    started = time.perf_counter()
    df = output(
        rest.get(api.url + "/items/page", records="data", retry=rest.retry(4, backoff=0, jitter=0))
    )
    elapsed = time.perf_counter() - started
    assert len(df) == 50
    assert api.injected == 2 and api.count == 3
    assert elapsed >= 1.0  # waited as told by Retry-After: 1


def test_retry_after_http_date_is_honoured(fresh_fake_api: FakeApi) -> None:
    from email.utils import formatdate

    api = fresh_fake_api
    api.fail_next(1, status=503, retry_after=formatdate(time.time() + 2, usegmt=True))
    started = time.perf_counter()
    output(rest.get(api.url + "/health", retry=rest.retry(3, backoff=0, jitter=0)))
    assert time.perf_counter() - started >= 0.9
    assert api.count == 2


def test_long_retry_after_is_capped(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.fail_next(2, status=429, retry_after="3600")
    started = time.perf_counter()
    output(rest.get(api.url + "/health", retry=rest.retry(3, max_retry_after=0.1, jitter=0)))
    assert time.perf_counter() - started < 2
    assert api.count == 3


def test_exhausted_retries_report_the_last_status(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.fail_every(1, status=503)
    message = error(rest.get(api.url + "/health", retry=rest.retry(3, backoff=0, jitter=0)))
    assert api.count == 3
    assert "503" in message and "/health" in message
    assert "after 3 attempts in " in message  # how hard it tried, and for how long


def test_total_deadline_stops_retrying(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    api.fail_every(1, status=503, retry_after="0.2")
    started = time.perf_counter()
    message = error(rest.get(api.url + "/health", retry=rest.retry(100, deadline=0.7, jitter=0)))
    assert time.perf_counter() - started < 1.5
    assert 2 <= api.count <= 5 and "503" in message


def test_other_4xx_fail_at_once_naming_url_and_status(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    message = error(rest.get(api.url + "/status/403", params={"page": 2}))
    assert api.count == 1
    assert "/status/403?page=2" in message and "403 Forbidden" in message


def test_connection_errors_are_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}/nothing"
    message = error(rest.get(url, retry=rest.retry(2, backoff=0.01, jitter=0)))
    assert "ConnectError" in message and "2 attempts" in message and "/nothing" in message


def test_timeout(fresh_fake_api: FakeApi) -> None:
    fresh_fake_api.latency_s = 1.0
    message = error(rest.get(fresh_fake_api.url + "/health", timeout=0.1, retry=None))
    assert "ReadTimeout" in message and "1 attempt " in message


def test_handler_works_from_a_running_event_loop(fresh_fake_api: FakeApi) -> None:
    """Like a notebook cell: tdm.run is called from a thread whose loop is running."""

    async def cell() -> pd.DataFrame:
        return output(rest.get(fresh_fake_api.url + "/items/page", records="data"))

    assert len(asyncio.run(cell())) == 50


def test_runs_on_the_threads_executor(fresh_fake_api: FakeApi) -> None:
    a = rest.get(fresh_fake_api.url + "/items/page", records="data", label="a")
    b = rest.get(fresh_fake_api.url + "/items/offset", records="data", label="b")
    report = tdm.run(tdm.concat(a, b), executor="threads")
    assert report.ok, report.error
    assert len(report.output) == 100


def test_verify_false_warns(fresh_fake_api: FakeApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tdm.rest")
    report = run(rest.get(fresh_fake_api.url + "/health", verify=False))
    assert report.ok
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)


def test_params_merge_with_a_query_already_in_the_url(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    paginate = rest.page_number(size=100, total="total")
    df = output(rest.get(api.url + "/items/page?sort=asc", records="data", paginate=paginate))
    assert len(df) == 230
    assert all(r.query["sort"] == "asc" for r in api.log)
    assert sorted(r.query["page"] for r in api.log) == ["1", "2", "3"]


def test_fetch_each_on_an_empty_frame_makes_no_request(fresh_fake_api: FakeApi) -> None:
    step = rest.fetch_each(fresh_fake_api.url + "/items/{id}", include_parent=["id", "k"])
    df = output(
        tdm.inputs.frame("x") >> step, x=pd.DataFrame({"id": pd.Series([], dtype="int64"), "k": []})
    )
    assert df.columns.tolist() == ["id", "k"] and df.empty
    assert fresh_fake_api.count == 0
