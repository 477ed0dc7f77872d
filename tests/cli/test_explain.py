"""``tdm run --explain`` prints the pushdown plan and runs nothing; ``--no-optimize`` runs the
plan as written, with the same result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tdm.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "examples" / "demo" / "pipeline.yml")


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TDM_HOME", str(tmp_path / "home"))


def test_explain_prints_the_columns_each_read_keeps_and_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never.csv"
    result = CliRunner().invoke(cli, ["run", DEMO, "--explain", "-P", f"out={out}"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Orders Demo:",
        "  Read Orders: columns ['order_id', 'quantity', 'state', 'unit_price'] (others skipped)",
    ]
    assert not out.exists()
    as_json = CliRunner().invoke(cli, ["run", DEMO, "--explain", "--log-format", "json"])
    assert json.loads(as_json.stdout)["explain"]["Orders Demo"].startswith("Read Orders: columns")


def test_no_optimize_writes_the_same_report(tmp_path: Path) -> None:
    written = []
    for flags in ([], ["--no-optimize"]):
        out = tmp_path / f"totals{len(flags)}.csv"
        args = ["run", DEMO, "--no-progress", "-P", f"out={out}", *flags]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        written.append(pd.read_csv(out).drop(columns=["load_date"]))
    pd.testing.assert_frame_equal(written[0], written[1])
