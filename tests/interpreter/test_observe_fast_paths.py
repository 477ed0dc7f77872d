"""The cheap paths of a run's observers keep what they record.

The audit node table takes the columns every run of a pipeline shares (names, kinds, parents)
from the report's layout, encoded once per pipeline; the SQLite store remembers the schemas of
a run it just wrote for the next run's drift check; INFO logging is not called for a pure
step's success. Each must give exactly what the general path gives.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import Hook
from tdm.effects.state.records import EncodedColumn, dumps
from tdm.interpreter.observe import _node_table, run_record
from tdm.interpreter.report import NodeMap, RunReport
from tdm.state import SQLiteStore
from tdm.transforms import select
from tests.json_logs import json_logs

FRAME = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


@tdm.transform
def same(df: pd.DataFrame) -> pd.DataFrame:
    return df


@tdm.transform
def add_c(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(c=df["a"] * 2)


@tdm.transform
def boom(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError('bad "quoted" value é')


def sample() -> tdm.Pipeline:
    src = tdm.inputs.frame("x")
    kept = src >> same() >> add_c() >> select(["a", "c"])
    failed = src >> boom() >> same().named("after_boom")
    return tdm.Pipeline.of(kept, failed, src >> same().named("naïve ü"))


def without_layout(report: RunReport) -> RunReport:
    """The same report whose nodes carry no layout: the observers read every record."""
    assert isinstance(report.nodes, NodeMap) and report.nodes.layout is not None
    plain = NodeMap(dict(report.nodes), ambiguous=report.nodes.ambiguous)
    return RunReport(**{**{f: getattr(report, f) for f in report.__slots__}, "nodes": plain})


def plain_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def test_the_node_table_from_the_layout_equals_the_one_read_from_each_record() -> None:
    pipeline = sample()
    report = tdm.run(pipeline, inputs={"x": FRAME}, runtime=tdm.Runtime())
    fast, fast_schemas = _node_table(report)
    slow, slow_schemas = _node_table(without_layout(report))
    assert fast == slow and fast_schemas == slow_schemas
    assert dumps(fast) == plain_json({k: list(v) for k, v in slow.items()})
    assert fast["name"] == ["x", "same", "add_c", "select", "boom", "after_boom", "naïve ü"]
    assert fast["kind"] == ["effect"] + ["pipe"] * 6
    assert fast["status"] == ["SUCCESS"] * 4 + ["FAILURE", "SKIPPED", "SUCCESS"]
    assert fast["parents"] == [[], [0], [1], [2], [0], [4], [0]]
    assert fast["rows_in"] == [None, 3, 3, 3, 3, None, 3]
    assert fast["rows_out"] == [3, 3, 3, 3, None, None, 3]
    assert fast["error"][4] == 'ValueError: bad "quoted" value é'
    assert fast["error"][5] == "skipped because parent 'boom' failure"
    # the input, the step that returned it unchanged and the last step share one schema
    prints = fast["schema"]
    assert prints[0] == prints[1] == prints[6] and prints[4] is None
    assert fast_schemas[prints[3]] == {"columns": ["a", "c"], "dtypes": ["int64", "int64"]}
    # a second run of the same pipeline value reuses the layout and records its own run
    again = tdm.run(pipeline, inputs={"x": FRAME}, runtime=tdm.Runtime())
    assert _node_table(again)[0]["name"] == fast["name"]
    assert _node_table(again)[0]["start_us"] != fast["start_us"]


def test_records_of_a_changed_node_map_are_read_one_by_one() -> None:
    report = tdm.run(sample(), inputs={"x": FRAME}, runtime=tdm.Runtime())
    assert isinstance(report.nodes, NodeMap)
    del report.nodes["naïve ü"]  # the layout no longer describes the records
    assert report.nodes.layout_of_records() is None
    table, _ = _node_table(report)
    assert table["name"][-1] == "after_boom" and len(table["parents"]) == 6


def test_the_sqlite_record_reads_back_as_the_record_that_was_written(tmp_path: Path) -> None:
    store = tdm.state.sqlite(tmp_path / "audit.db")
    pipeline = sample()
    report = tdm.run(pipeline, inputs={"x": FRAME}, runtime=tdm.Runtime(state=store))
    written = run_record(report, pipeline)
    [read] = SQLiteStore(tmp_path / "audit.db").runs()
    assert read.as_dict() == written.as_dict()
    assert read.nodes == written.nodes
    assert [n.parents for n in read.nodes][-2:] == [("boom",), ("x",)]


def test_the_drift_baseline_is_the_latest_successful_run_whoever_wrote_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    ours, theirs = SQLiteStore(path), SQLiteStore(path)  # like two processes
    p = tdm.inputs.frame("orders") >> same()
    v1 = pd.DataFrame({"id": [1], "price": [10]})
    v2 = pd.DataFrame({"id": [1], "price": [1.5]})
    first = tdm.run(p, inputs={"orders": v1}, runtime=tdm.Runtime(state=ours), pipeline_id="o")
    remembered = ours.last_schemas("o")
    assert remembered is not None and remembered.run_id == first.run_id
    decoded = SQLiteStore(path).last_schemas("o")
    assert decoded is not None
    assert remembered.node_schemas(["orders"]) == decoded.node_schemas(["orders"])
    assert remembered.node_schemas(["orders"]) == {"orders": (("id", "price"), ("int64",) * 2)}
    # another writer's newer run is the baseline, not the one this store remembers
    second = tdm.run(p, inputs={"orders": v2}, runtime=tdm.Runtime(state=theirs), pipeline_id="o")
    assert len(second.drift) == 1
    latest = ours.last_schemas("o")
    assert latest is not None and latest.run_id == second.run_id
    assert latest.node_schemas(["orders"])["orders"][1] == ("int64", "float64")
    third = tdm.run(p, inputs={"orders": v2}, runtime=tdm.Runtime(state=ours), pipeline_id="o")
    assert third.drift == []
    failed = tdm.run(
        tdm.inputs.frame("orders") >> boom(), inputs={"orders": v1},
        runtime=tdm.Runtime(state=ours), pipeline_id="o",
    )  # fmt: skip
    assert not failed.ok
    after = ours.last_schemas("o")  # a failed run is never a baseline
    assert after is not None and after.run_id == third.run_id


@pytest.fixture
def info_logs() -> Iterator[io.StringIO]:
    with json_logs("INFO") as stream:
        yield stream


class Seen(Hook):
    def __init__(self) -> None:
        self.nodes: list[tuple[str, str]] = []

    def after_node(self, *, node: Any, **_: Any) -> None:
        self.nodes.append((node.name, str(node.status)))


def test_info_logging_skips_step_successes_and_user_hooks_still_see_every_node(
    info_logs: io.StringIO,
) -> None:
    seen = Seen()
    report = tdm.run(sample(), inputs={"x": FRAME}, runtime=tdm.Runtime(hooks=[seen]))
    every = [(n.name, str(n.status)) for n in report.nodes.values()]
    assert len(seen.nodes) == len(every) and sorted(seen.nodes) == sorted(every)
    events = [json.loads(line) for line in info_logs.getvalue().splitlines()]
    nodes = [(e["node"], e["status"]) for e in events if e.get("event") == "node_finished"]
    assert nodes == [("x", "SUCCESS"), ("boom", "FAILURE"), ("after_boom", "SKIPPED")]
    assert [e["event"] for e in events if e.get("event", "").startswith("run_")] == [
        "run_started",
        "run_finished",
    ]


def test_the_summary_counts_statuses_in_the_order_they_first_appear() -> None:
    report = tdm.run(sample(), inputs={"x": FRAME}, runtime=tdm.Runtime())
    text = report.summary(errors=False)
    assert text.startswith(f"run {report.run_id} FAILURE in ")
    assert text.endswith(": 5 success, 1 failure, 1 skipped")


@pytest.mark.parametrize(
    "values",
    [["a", 'quo"te', "back\\slash", "é ü 中", "\x00\x1f", None], [1, None, 2**53 + 1], []],
)
def test_an_encoded_column_is_a_list_with_its_json(values: list[Any]) -> None:
    column = EncodedColumn(values)
    assert column == values and column.json == plain_json(values)
    assert dumps({"c": column, "d": values}) == plain_json({"c": values, "d": values})
    copy = pickle.loads(pickle.dumps(column))
    assert copy == values and copy.json == column.json


def _set_index(df: pd.DataFrame) -> None:
    df.index = pd.RangeIndex(10, 10 + len(df))


@pytest.mark.parametrize(
    "change",
    [
        lambda df: df.drop(columns=["b"], inplace=True),
        lambda df: df.rename(columns={"a": "z"}, inplace=True),
        lambda df: df.drop(index=[0], inplace=True),
        lambda df: df.reset_index(drop=True, inplace=True),
        lambda df: df.__setitem__("a", df["a"].astype("float64")),
        lambda df: df.__setitem__("new", 1),
        _set_index,
        lambda df: None,
    ],
)
def test_statistics_of_a_step_that_changes_its_input_in_place_and_returns_it(
    change: Any,
) -> None:
    @tdm.transform
    def in_place(df: pd.DataFrame) -> pd.DataFrame:
        change(df)
        return df

    p = tdm.inputs.frame("x") >> same() >> in_place() >> same().named("last")
    report = tdm.run(p, inputs={"x": FRAME.copy()}, runtime=tdm.Runtime())
    out = report.output
    for name in ("in_place", "last"):
        node = report.nodes[name]
        assert node.rows_out == len(out)
        assert node.columns == tuple(out.columns)
        assert node.dtypes == tuple(str(d) for d in out.dtypes)
    assert report.nodes["x"].columns == ("a", "b") and report.nodes["x"].rows_out == 3


@tdm.transform
def drop_first(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[1:]


@tdm.transform
def widen(df: pd.DataFrame, *, k: int) -> pd.DataFrame:
    return df.assign(**{f"c{k}": k})


def test_a_table_of_many_distinct_row_counts_and_schemas_encodes_like_json() -> None:
    steps = [drop_first() for _ in range(40)] + [widen(k=k) for k in range(40)]
    report = tdm.run(
        tdm.pipe(tdm.inputs.frame("x"), *steps),
        inputs={"x": pd.DataFrame({"a": range(50)})},
        runtime=tdm.Runtime(),
    )
    table, schemas = _node_table(report)
    assert dumps(table) == plain_json({k: list(v) for k, v in table.items()})
    assert table["rows_out"] == [50 - i for i in range(41)] + [10] * 40
    assert len(set(table["schema"])) == 41 == len(schemas)
