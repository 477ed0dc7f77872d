"""The run browser in a real headless Chromium, over an audit store filled by real runs."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import shot
from tests.ui.fill import HOSTILE, HOSTILE_ERROR, Filled

RED, GREEN = "rgb(198, 40, 40)", "rgb(46, 125, 50)"


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box


def test_from_the_run_list_to_the_failed_node_and_its_error(
    page: Any, app_url: str, filled: Filled
) -> None:
    page.goto(app_url)
    rows = page.locator("tr.run")
    assert rows.count() == 7  # newest first
    assert rows.first.get_attribute("data-run-id") == filled.hostile
    assert rows.last.get_attribute("data-run-id") == filled.successes[0]
    badge = page.locator(f'tr.run[data-run-id="{filled.failed}"] .status')
    assert badge.inner_text() == "FAILURE"
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    ok_badge = page.locator(f'tr.run[data-run-id="{filled.successes[0]}"] .status')
    assert ok_badge.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
    failed_row = page.locator(f'tr.run[data-run-id="{filled.failed}"]')
    assert "negative amount" in failed_row.inner_text()
    assert "ms" in failed_row.locator("td").nth(4).inner_text()  # duration
    shot(page, "runs")

    failed_row.locator("a.run-link").click()
    page.wait_for_url("**/run?id=*")
    assert "Run of Orders daily" in page.locator("h1").inner_text()
    facts = page.locator("dl.facts").inner_text()
    assert "threads" in facts and "1.0.0" in facts and "day" not in facts
    assert page.locator("table.params-table").inner_text().split() == ["day", "2026-11-05"]

    page.locator(".failed-nodes a", has_text="check_eu").click()
    row = page.locator("tr.node-row:target")
    assert row.get_attribute("data-name") == "check_eu"
    assert "negative amount in row 3" in row.locator(".err").inner_text()
    skipped = page.locator('tr.node-row[data-name="concat"]')
    assert skipped.get_attribute("data-status") == "SKIPPED"
    assert "parent 'check_eu'" in skipped.inner_text()
    enrich = page.locator('tr.node-row[data-name="enrich_eu"]').inner_text()
    assert "pipe" in enrich and "SUCCESS" in enrich and "4 columns" in enrich
    shot(page, "run")


def test_the_dag_is_an_svg_coloured_by_status_and_laid_out_in_layers(
    page: Any, app_url: str, filled: Filled
) -> None:
    page.goto(f"{app_url}run?id={filled.failed}")
    nodes = page.locator("svg.dag g.node")
    assert nodes.count() == 8
    assert page.locator("svg.dag path.edge").count() == 8
    statuses = {
        nodes.nth(i).get_attribute("data-name"): nodes.nth(i).get_attribute("data-status")
        for i in range(8)
    }
    assert statuses == {
        "orders": "SUCCESS", "enrich_eu": "SUCCESS", "enrich_us": "SUCCESS",
        "check_eu": "FAILURE", "tax_us": "SUCCESS", "concat": "SKIPPED",
        "tax_all": "SKIPPED", "add_currency": "SKIPPED",
    }  # fmt: skip
    stroke = page.locator('svg.dag g.node[data-name="check_eu"] rect')
    assert stroke.evaluate("e => getComputedStyle(e).stroke") == RED
    edge = page.locator('svg.dag path.edge[data-from="check_eu"][data-to="concat"]')
    assert edge.count() == 1
    # layers left to right; the two parallel branches share a column
    x = {n: _box(page, f'svg.dag g.node[data-name="{n}"] rect') for n in statuses}
    assert x["orders"]["x"] < x["enrich_eu"]["x"] == x["enrich_us"]["x"] < x["check_eu"]["x"]
    assert x["enrich_eu"]["y"] != x["enrich_us"]["y"]
    assert x["check_eu"]["x"] < x["concat"]["x"] < x["tax_all"]["x"] < x["add_currency"]["x"]
    # a node is a link to its row
    page.locator('svg.dag g.node[data-name="tax_us"]').click()
    assert page.locator("tr.node-row:target").get_attribute("data-name") == "tax_us"


def test_the_timeline_shows_the_parallel_branches(page: Any, app_url: str, filled: Filled) -> None:
    page.goto(f"{app_url}run?id={filled.failed}")
    bars = page.locator("svg.gantt rect.bar")
    spans = {
        bars.nth(i).get_attribute("data-name"): (
            float(bars.nth(i).get_attribute("data-start-ms")),
            float(bars.nth(i).get_attribute("data-stop-ms")),
        )
        for i in range(bars.count())
    }
    assert {"enrich_eu", "enrich_us", "check_eu", "tax_us"} <= set(spans)
    assert "concat" not in spans  # skipped nodes never ran
    (a0, a1), (b0, b1) = spans["enrich_eu"], spans["enrich_us"]
    assert a0 < b1 and b0 < a1, spans  # the two 0.25 s naps overlapped on threads
    assert spans["check_eu"][0] >= spans["enrich_eu"][1]
    assert page.locator(".parallel").inner_text() == "up to 2 nodes running at once"
    eu, us = (
        _box(page, 'svg.gantt rect[data-name="enrich_eu"]'),
        _box(page, 'svg.gantt rect[data-name="enrich_us"]'),
    )
    assert eu["x"] < us["x"] + us["width"] and us["x"] < eu["x"] + eu["width"]


def test_the_filters(page: Any, app_url: str, filled: Filled) -> None:
    page.goto(app_url)
    page.select_option('select[name="status"]', "FAILURE")
    page.click('form.filters button[type="submit"]')
    page.wait_for_url("**status=FAILURE**")
    rows = page.locator("tr.run")
    assert rows.count() == 2
    assert {rows.nth(i).get_attribute("data-status") for i in range(2)} == {"FAILURE"}
    page.select_option('select[name="pipeline"]', "orders-daily")
    page.click('form.filters button[type="submit"]')
    assert [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())] == [
        filled.failed
    ]
    assert "1\u20131 of 1 runs" in page.locator(".pager").inner_text()
    shot(page, "runs-filtered")
    page.goto(app_url + "?since=2999-01-01")
    assert page.locator("tr.run").count() == 0
    assert "No runs match" in page.locator("table.runs").inner_text()
    page.goto(app_url + "?until=2000-01-01&status=SUCCESS")
    assert page.locator("tr.run").count() == 0
    page.goto(app_url + "?since=2000-01-01&pipeline=orders-weekly")
    assert page.locator("tr.run").count() == 1
    response = page.goto(app_url + "?since=yesterday")
    assert response.status == 400
    assert "from must be a date like 2026-11-29" in page.locator(".problem").inner_text()
    assert page.locator("tr.run").count() == 7  # the bad filter is dropped, and said so


def test_script_names_are_shown_as_text(page: Any, app_url: str, filled: Filled) -> None:
    page.goto(app_url)
    row = page.locator(f'tr.run[data-run-id="{filled.hostile}"]')
    assert row.locator("td").nth(1).inner_text() == HOSTILE
    assert HOSTILE_ERROR in row.inner_text()
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    row.locator("a.run-link").click()
    page.wait_for_url("**/run?id=*")
    assert page.locator("h1").inner_text().startswith(f"Run of {HOSTILE}")
    node = page.locator("tr.node-row").nth(1)
    assert node.get_attribute("data-name") == HOSTILE
    assert HOSTILE_ERROR in node.inner_text()
    assert page.locator("svg.dag g.node").nth(1).get_attribute("data-name") == HOSTILE
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    page.locator("dl.facts a").first.click()  # to the pipeline page
    assert HOSTILE in page.locator("h1").inner_text()
    assert page.locator("script").count() == 0
    assert not page.dialogs
    shot(page, "hostile-pipeline")


def test_the_pipeline_view(page: Any, app_url: str, filled: Filled) -> None:
    page.goto(f"{app_url}run?id={filled.successes[0]}")
    page.locator("dl.facts a", has_text="Orders daily").click()
    page.wait_for_url("**/pipeline?id=orders-daily")
    assert page.locator(".success-rate b").inner_text() == "80%"
    durations = page.locator("svg.chart.durations rect.bar")
    assert durations.count() == 5
    colours = [durations.nth(i).get_attribute("fill") for i in range(5)]
    assert colours == ["#2e7d32"] * 4 + ["#c62828"]  # oldest left, the failure last
    assert page.locator("svg.chart.rows rect.bar").count() == 4  # the failure wrote nothing
    changes = page.locator("table.schema-changes tbody tr")
    assert changes.count() == 1
    text = changes.first.inner_text()
    assert "channel" in text and "orders" in text and filled.successes[2][:12] in text
    shot(page, "pipeline")


def test_secret_looking_params_never_show(page: Any, app_url: str, filled: Filled) -> None:
    for url in (app_url, f"{app_url}run?id={filled.successes[1]}"):
        page.goto(url)
        html = page.content()
        assert "tok-never-shown-1234" not in html
        assert "api_token=***" in html or "api_token" in html
