"""JSON logging: run context on every record, scrubbing, levels, configuration."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pandas as pd
import pytest

import tdm
from tests.observability.conftest import PLANTED, LeakySource, boom, chatty, identity, secrets
from tests.servers.fixtures import FakeApi


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_records_carry_the_run_context_and_node(
    log_stream: io.StringIO, orders: pd.DataFrame
) -> None:
    p = tdm.inputs.frame("orders") >> chatty() >> identity()
    report = tdm.run(
        p,
        inputs={"orders": orders},
        runtime=tdm.Runtime(),
        run_id="r-ctx",
        pipeline_id="orders-pipe",
        job_id="job-1",
    )
    assert report.ok
    records = lines(log_stream)
    user = [r for r in records if r["logger"] == "user.step"]
    assert len(user) == 1
    assert user[0]["message"] == "processing 3 rows"
    assert (user[0]["run_id"], user[0]["job_id"], user[0]["pipeline_id"], user[0]["node"]) == (
        "r-ctx",
        "job-1",
        "orders-pipe",
        "chatty",
    )
    assert user[0]["module"] == "conftest" and user[0]["function"] == "chatty"
    events = [r.get("event") for r in records if r["logger"] == "tdm.run"]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    done = [r for r in records if r.get("event") == "node_finished"]
    assert {r["node"] for r in done} == {"orders", "chatty", "identity"}
    ident = next(r for r in done if r["node"] == "identity")
    assert ident["status"] == "SUCCESS" and ident["rows_in"] == 3 and ident["rows_out"] == 3
    assert ident["level"] == "DEBUG" and isinstance(ident["duration_s"], float)
    finished = records[-1]
    assert finished["event"] == "run_finished" and finished["run_id"] == "r-ctx"
    assert finished["rows_in"] == 3 and finished["rows_out"] == 3
    # outside the run, no context leaks onto records
    logging.getLogger("user.after").warning("later")
    assert "run_id" not in lines(log_stream)[-1]


def test_context_reaches_worker_threads(log_stream: io.StringIO, orders: pd.DataFrame) -> None:
    src = tdm.inputs.frame("orders")
    p = tdm.Pipeline.of(src >> chatty().named("a"), src >> chatty().named("b"))
    tdm.run(p, inputs={"orders": orders}, runtime=tdm.Runtime(), executor="threads", run_id="r-thr")
    user = [r for r in lines(log_stream) if r["logger"] == "user.step"]
    assert sorted(r["node"] for r in user) == ["a", "b"]
    assert {r["run_id"] for r in user} == {"r-thr"}
    assert all(str(r["thread"]).startswith("tdm-node") for r in user)


def test_failures_are_logged_even_when_info_is_off(orders: pd.DataFrame) -> None:
    stream = io.StringIO()
    handler = tdm.logging.configure("WARNING", "json", stream, logger="tdm")
    try:
        report = tdm.run(
            tdm.inputs.frame("orders") >> boom(),
            inputs={"orders": orders},
            runtime=tdm.Runtime(),
            run_id="r-fail",
        )
    finally:
        logging.getLogger("tdm").removeHandler(handler)
        logging.getLogger("tdm").setLevel(logging.NOTSET)
    assert not report.ok
    records = lines(stream)
    assert [r["level"] for r in records] == ["ERROR", "ERROR"]
    node, run = records
    assert node["node"] == "boom" and "text in row 7" in str(node["error"])
    assert run["event"] == "run_finished" and run["status"] == "FAILURE"


def test_planted_secret_appears_in_no_log_line(log_stream: io.StringIO) -> None:
    p = LeakySource() >> identity()
    report = tdm.run(p, runtime=tdm.Runtime(secrets=secrets()), params={"token": PLANTED})
    assert not report.ok
    try:
        raise RuntimeError(f"wrapped {PLANTED}")
    except RuntimeError:
        logging.getLogger("user").exception("failed with %s", PLANTED, extra={"detail": PLANTED})
    text = log_stream.getvalue()
    assert PLANTED not in text
    assert "calling the API with token ***" in text
    assert "server rejected token ***" in text
    last = lines(log_stream)[-1]
    assert last["detail"] == "***" and "wrapped ***" in str(last["exception"])


def test_text_format(orders: pd.DataFrame) -> None:
    stream = io.StringIO()
    handler = tdm.logging.configure("INFO", "text", stream, logger="tdm")
    try:
        tdm.run(
            tdm.inputs.frame("orders") >> identity(),
            inputs={"orders": orders},
            runtime=tdm.Runtime(),
            run_id="r-text",
        )
    finally:
        logging.getLogger("tdm").removeHandler(handler)
        logging.getLogger("tdm").setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert "INFO    tdm.run [run=r-text] run r-text of identity started" in text
    assert "[run=r-text node=orders] node orders SUCCESS" in text


def test_configure_replaces_its_own_handler_and_validates() -> None:
    target = logging.getLogger("tdm.test-configure")
    first = tdm.logging.configure("INFO", "json", io.StringIO(), logger="tdm.test-configure")
    second = tdm.logging.configure("DEBUG", "json", io.StringIO(), logger="tdm.test-configure")
    assert target.handlers == [second] and first not in target.handlers
    assert target.level == logging.DEBUG
    target.removeHandler(second)
    with pytest.raises(ValueError, match="unknown log format 'xml'; use 'json' or 'text'"):
        tdm.logging.configure("INFO", "xml", logger="tdm.test-configure")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        tdm.logging.configure("LOUD", logger="tdm.test-configure")


def test_importing_tdm_leaves_existing_loggers_alone() -> None:
    code = (
        "import logging; pre = logging.getLogger('pre.existing'); import tdm; "
        "print(pre.disabled, logging.getLoggerClass() is logging.Logger, logging.root.handlers)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True []"


def test_info_logs_run_and_node_events_not_one_record_per_request(
    fresh_fake_api: FakeApi,
) -> None:
    stream = io.StringIO()
    handler = tdm.logging.configure("INFO", "json", stream)
    try:
        p = tdm.rest.get(fresh_fake_api.url + "/items/page?per_page=40", records="data",
                         paginate=tdm.rest.page_number(size=40))  # fmt: skip
        report = tdm.run(p, runtime=tdm.Runtime())
        assert report.ok and fresh_fake_api.count > 1
        records = lines(stream)
        assert {r["logger"] for r in records} == {"tdm.run"}
        assert next(r["event"] for r in records if "event" in r) == "run_started"
        # DEBUG shows the client's records again; INFO quiets them once more.
        tdm.logging.configure("DEBUG", "json", stream)
        assert logging.getLogger("httpx").isEnabledFor(logging.INFO)
        tdm.logging.configure("INFO", "json", stream)
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    finally:
        logging.getLogger().removeHandler(handler)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
