"""``tdm ui`` and ``tdm report --html`` from the command line; the report in a browser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.effects.state import StateStore
from tests.ui.conftest import shot
from tests.ui.fill import HOSTILE, Filled

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="tdm")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _db(store: StateStore) -> str:
    return str(store.path)  # type: ignore[attr-defined]


def test_ui_refuses_a_network_bind_without_a_token(store: StateStore) -> None:
    code, out, err = invoke("ui", "--state", _db(store), "--host", "0.0.0.0", "--port", "0")
    assert code == 2 and out == ""
    assert "give --token" in err and "Traceback" not in err


def test_ui_and_report_name_a_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    for command in (["ui"], ["report", "--html", str(tmp_path / "r.html")]):
        code, _, err = invoke(*command, "--state", str(missing))
        assert code == 2 and "no such audit database" in err and str(missing) in err
        assert not missing.exists()
    assert not (tmp_path / "r.html").exists()


def test_ui_prints_its_url_and_serves_the_pages(store: StateStore, filled: Filled) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tdm", "ui", "--state", _db(store), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("tdm ui: http://127.0.0.1:"), line
        url = line.split()[2]
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "tdm ui did not answer"
                time.sleep(0.1)
        assert page.status_code == 200 and filled.failed in page.text
    finally:
        proc.terminate()
        proc.wait(10)


def test_report_of_one_run_is_one_self_contained_file(
    store: StateStore, filled: Filled, tmp_path: Path, page: Any
) -> None:
    out = tmp_path / "run.html"
    code, said, err = invoke(
        "report", "--html", str(out), "--run", filled.failed, "--state", _db(store)
    )
    assert code == 0, err
    assert said.strip() == f"wrote {out}"
    text = out.read_text()
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    page.goto(out.as_uri())
    assert (
        page.locator('svg.dag g.node[data-name="check_eu"]').get_attribute("data-status")
        == "FAILURE"
    )
    assert page.locator("svg.gantt rect.bar").count() >= 4
    page.locator(".failed-nodes a").click()
    assert "negative amount" in page.locator("tr.node-row:target").inner_text()
    shot(page, "report-run")


def test_report_of_a_pipeline_links_to_its_runs_inside_the_file(
    store: StateStore, filled: Filled, tmp_path: Path, page: Any
) -> None:
    out = tmp_path / "pipeline.html"
    code, _, err = invoke(
        "report", "--html", str(out), "--pipeline", "Orders daily", "--state", _db(store)
    )
    assert code == 0, err
    page.goto(out.as_uri())
    assert page.locator(".success-rate b").inner_text() == "80%"
    assert page.locator("section.run-detail").count() == 5
    page.locator(f'tr.run[data-run-id="{filled.failed}"] a.run-link').first.click()
    assert page.evaluate("location.hash") == f"#run-{filled.failed}"
    section = page.locator(f"#run-{filled.failed}")
    assert "check_eu" in section.locator(".failed-nodes").inner_text()


def test_report_of_everything_escapes_names(
    store: StateStore, filled: Filled, tmp_path: Path
) -> None:
    out = tmp_path / "all.html"
    code, _, err = invoke("report", "--html", str(out), "--state", _db(store))
    assert code == 0, err
    text = out.read_text()
    assert HOSTILE not in text and "&lt;script&gt;" in text
    assert text.count('class="run-detail"') == 7


def test_report_of_an_unknown_run_is_bad_input(store: StateStore, tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    code, _, err = invoke("report", "--html", str(out), "--run", "nope", "--state", _db(store))
    assert code == 2 and "no run 'nope'" in err
    assert not out.exists()
    code, _, err = invoke("report", "--html", str(out), "--run", "a", "--pipeline", "b")
    assert code == 2 and "not both" in err


def test_run_report_embeds_its_page_for_notebooks() -> None:
    import pandas as pd

    from tests.ui.fill import hostile_step

    report = tdm.run(
        tdm.inputs.frame("x") >> hostile_step().named(HOSTILE),
        inputs={"x": pd.DataFrame({"a": [1]})},
        runtime=tdm.Runtime(state=tdm.state.memory()),
    )
    page = report.to_html()
    assert 'class="dag"' in page and 'class="gantt"' in page and HOSTILE not in page
    shown = report._repr_html_()
    assert "<iframe" in shown and "sandbox" in shown and HOSTILE not in shown
