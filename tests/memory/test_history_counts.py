"""``tdm history`` counts each run's nodes and failures, in every store and every rendering."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.state import StateStore


@tdm.transform
def keep(df: pd.DataFrame) -> pd.DataFrame:
    return df


@tdm.transform
def bad_price(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("price is text")


@tdm.transform
def bad_date(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("date is text")


def four_nodes_two_failures() -> tdm.Pipeline:
    source = tdm.inputs.frame("orders")
    return tdm.Pipeline.of(source >> bad_price(), source >> keep() >> bad_date())


def run_it(store: StateStore, orders: pd.DataFrame) -> tdm.RunReport:
    report = tdm.run(
        four_nodes_two_failures(),
        inputs={"orders": orders},
        runtime=tdm.Runtime(state=store),
        pipeline_id="counts",
    )
    assert not report.ok and len(report.nodes) == 4 and len(report.failed) == 2
    return report


STORES = {
    "sqlite": lambda tmp: tdm.state.sqlite(tmp / "audit.db"),
    "files": lambda tmp: tdm.state.files(f"file://{tmp}/audit"),
    "memory": lambda tmp: tdm.state.memory(),
}


@pytest.mark.parametrize("kind", sorted(STORES))
def test_history_counts_nodes_and_failures(kind: str, tmp_path: Path, orders: pd.DataFrame) -> None:
    store = STORES[kind](tmp_path)
    run_it(store, orders)
    row = tdm.history(pipeline="counts", store=store).iloc[0]
    assert (row["nodes"], row["failed"]) == (4, 2)
    light = store.runs(pipeline="counts", nodes=False)[0]
    assert (light.node_count, light.nodes_failed) == (4, 2)


def cell(header: str, line: str, column: str) -> str:
    """The value under ``column`` in a right-aligned text table."""
    end = header.index(f" {column}") + len(column) + 1 if header.find(column) else len(column)
    return line[:end].split()[-1]


def test_history_command_table_and_json_show_the_counts(
    tmp_path: Path, orders: pd.DataFrame
) -> None:
    store = tdm.state.sqlite(tmp_path / "audit.db")
    report = run_it(store, orders)
    runner = CliRunner()
    table = runner.invoke(cli, ["history", "--state", str(tmp_path / "audit.db")])
    assert table.exit_code == 0, table.output
    header, line = table.output.splitlines()[:2]
    assert (cell(header, line, "run_id"), cell(header, line, "nodes")) == (report.run_id, "4")
    assert cell(header, line, "failed") == "2"
    out = runner.invoke(cli, ["history", "--json", "--state", str(tmp_path / "audit.db")])
    row = json.loads(out.output.splitlines()[0])
    assert (row["nodes"], row["failed"]) == (4, 2)


def test_a_database_from_before_the_counts_is_migrated_and_counted(
    tmp_path: Path, orders: pd.DataFrame
) -> None:
    path = tmp_path / "old.db"
    run_it(tdm.state.sqlite(path), orders)
    with sqlite3.connect(path) as conn:  # make it look like a database of the first release
        conn.execute("ALTER TABLE runs DROP COLUMN nodes_total")
        conn.execute("ALTER TABLE runs DROP COLUMN nodes_failed")
    reopened = tdm.state.SQLiteStore(path)
    row = tdm.history(pipeline="counts", store=reopened).iloc[0]
    assert (row["nodes"], row["failed"]) == (4, 2)
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(runs)")}
    assert {"nodes_total", "nodes_failed"} <= columns
