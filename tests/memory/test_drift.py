"""Schema drift between runs: reported (warn), fatal before any write (fail), or ignored."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import tdm
from tdm import files
from tdm.cli import cli
from tdm.executors import Sequential

V1 = pd.DataFrame({"id": [1, 2], "price": [10, 20], "note": ["a", "b"]})
V2 = pd.DataFrame({"id": [1, 2, 3], "price": [10.5, 20.0, 1.0], "colour": ["r", "g", "b"]})


def load(out: Path) -> tdm.Pipeline:
    return tdm.inputs.frame("orders") >> files.write(str(out))


def test_warn_reports_new_missing_and_retyped_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "audit.db"
    rt = tdm.Runtime(state=tdm.state.sqlite(db))
    out = tmp_path / "orders.parquet"
    first = tdm.run(load(out), inputs={"orders": V1}, runtime=rt, pipeline_id="orders")
    assert first.ok and first.drift == []
    with caplog.at_level(logging.WARNING, logger="tdm.run"):
        second = tdm.run(load(out), inputs={"orders": V2}, runtime=rt, pipeline_id="orders")
    assert second.ok and len(second.drift) == 1
    text = second.drift[0]
    assert text.startswith("orders: ") and f"since run {first.run_id}" in text
    for change in ("new column colour (str)", "missing column note (was str)",
                   "column price retyped int64 -> float64"):  # fmt: skip
        assert change in text
    assert any("schema drift in orders" in r.getMessage() for r in caplog.records)
    assert rt.state.get(second.run_id).drift == (text,)  # type: ignore[union-attr]
    row = tdm.history(pipeline="orders", store=rt.state).iloc[0]
    assert "retyped" in row["drift"]
    # Compared with the previous *successful* run: the same schema again is no drift.
    third = tdm.run(load(out), inputs={"orders": V2}, runtime=rt, pipeline_id="orders")
    assert third.ok and third.drift == []

    diff = CliRunner().invoke(
        cli, ["history", "--diff", first.run_id, second.run_id, "--state", str(db), "--json"]
    )
    assert diff.exit_code == 0, diff.output
    rows = [json.loads(line) for line in diff.output.splitlines()]
    assert {"node": "orders", "change": "rows", "detail": "rows 2 -> 3", "rows_a": 2,
            "rows_b": 3} in rows  # fmt: skip
    assert {r["detail"] for r in rows if r["change"] == "schema"} == {
        "new column colour (str)",
        "missing column note (was str)",
        "column price retyped int64 -> float64",
    }


def test_fail_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    rt = tdm.Runtime(state=tdm.state.memory())
    out = tmp_path / "orders.parquet"
    assert tdm.run(load(out), inputs={"orders": V1}, runtime=rt, pipeline_id="o").ok
    out.unlink()
    bad = tdm.run(load(out), inputs={"orders": V2}, runtime=rt, pipeline_id="o", drift="fail")
    assert not bad.ok and [n.name for n in bad.failed] == ["orders"]
    assert "schema drift" in (bad.error or "") and "nothing was written" in (bad.error or "")
    assert bad.nodes["write_orders"].status is tdm.Status.SKIPPED
    assert not out.exists() and len(bad.drift) == 1
    ignored = tdm.run(load(out), inputs={"orders": V2}, runtime=rt, pipeline_id="o", drift="ignore")
    assert ignored.ok and ignored.drift == [] and out.exists()
    with pytest.raises(tdm.errors.InputError, match="drift= must be one of"):
        tdm.run(load(out), inputs={"orders": V2}, runtime=rt, pipeline_id="o", drift="loud")


def test_drift_policy_in_yaml_and_on_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    V1.to_csv(data, index=False)
    spec = tmp_path / "p.yml"
    spec.write_text(
        "version: 1\n"
        "pipelines:\n"
        "  - name: Orders\n"
        "    drift: fail\n"
        "    pipes:\n"
        f"      - {{name: read, type: fileread, config: {{path: '{data}'}}}}\n"
        f"      - {{name: write, type: filewriter, config: {{parents: [read], "
        f"path: '{tmp_path / 'out.csv'}'}}}}\n"
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(spec), "--log-level", "error"]).exit_code == 0
    V2.to_csv(data, index=False)
    failed = runner.invoke(cli, ["run", str(spec), "--log-level", "error"])
    assert failed.exit_code == 1 and "schema drift" in failed.output
    warned = runner.invoke(cli, ["run", str(spec), "--drift", "warn", "--log-level", "error"])
    assert warned.exit_code == 0 and "drift: read: new column colour" in warned.output
    bad = tmp_path / "bad.yml"
    bad.write_text(spec.read_text().replace("drift: fail", "drift: loud"))
    refused = runner.invoke(cli, ["validate", str(bad)])
    assert refused.exit_code == 2 and "`drift` must be one of warn, fail, ignore" in refused.output


class _General(Sequential):
    """The same executor through the general scheduler (a subclass never takes the lean loop)."""


@pytest.mark.parametrize("policy", ["warn", "fail"])
def test_the_lean_loop_checks_drift_as_the_general_scheduler_does(
    tmp_path: Path, policy: str
) -> None:
    outcomes = []
    for label, executor in (("lean", "sequential"), ("general", _General())):
        rt = tdm.Runtime(state=tdm.state.sqlite(tmp_path / f"{label}.db"))
        out = tmp_path / label / "orders.parquet"
        out.parent.mkdir()
        pipeline = (
            tdm.inputs.frame("orders") >> tdm.transforms.select(["id"]) >> files.write(str(out))
        )
        first = tdm.run(
            pipeline, inputs={"orders": V1}, runtime=rt, pipeline_id="p", executor=executor
        ).run_id
        report = tdm.run(
            pipeline, inputs={"orders": V2}, runtime=rt, pipeline_id="p", executor=executor,
            drift=policy,  # type: ignore[arg-type]
        )  # fmt: skip
        statuses = {n: r.status for n, r in report.nodes.items()}
        errors = {n: str(r.error) for n, r in report.nodes.items() if r.error is not None}
        texts = [t.replace(first, "RUN") for t in [*report.drift, *errors.values()]]
        outcomes.append((report.status, texts, statuses, len(pd.read_parquet(out))))
    lean, general = outcomes
    assert lean == general
    assert "new column colour" in lean[1][0] and "(since run RUN)" in lean[1][0]
    assert (lean[0] is tdm.Status.FAILURE) == (policy == "fail")
    assert lean[3] == (3 if policy == "warn" else 2)  # fail: the old output stays
