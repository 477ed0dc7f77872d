"""The stores' public read API the run browser uses: filters, pages, counts, pipelines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import tdm
from tdm.effects.state import RunRecord, StateStore


def _record(i: int) -> RunRecord:
    day = 1 + i % 28
    return RunRecord(
        run_id=f"r{i:03d}",
        pipeline_id="even" if i % 2 == 0 else "odd",
        pipeline_name="Even" if i % 2 == 0 else "Odd",
        status="FAILURE" if i % 5 == 0 else "SUCCESS",
        started_at=f"2026-11-{day:02d}T{i % 24:02d}:00:00.000000+00:00",
        duration_s=float(i),
    )


@pytest.fixture(params=["memory", "sqlite", "files"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    made: StateStore
    if request.param == "memory":
        made = tdm.state.memory()
    elif request.param == "sqlite":
        made = tdm.state.sqlite(tmp_path / "state.db")
    else:
        made = tdm.state.files(f"memory://ui-store-api/{tmp_path.name}")
    for i in range(60):
        made.record(_record(i))
    return made


def _expected(**filters: object) -> list[str]:
    runs = [_record(i) for i in range(60)]
    if "pipeline" in filters:
        runs = [r for r in runs if filters["pipeline"] in (r.pipeline_id, r.pipeline_name)]
    if "status" in filters:
        runs = [r for r in runs if r.status == filters["status"]]
    if "since" in filters:
        runs = [r for r in runs if r.started_at >= str(filters["since"])]
    if "until" in filters:
        runs = [r for r in runs if r.started_at < str(filters["until"])]
    return [r.run_id for r in sorted(runs, key=lambda r: r.started_at, reverse=True)]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"pipeline": "even"},
        {"pipeline": "Odd"},
        {"status": "FAILURE"},
        {"since": "2026-11-10", "until": "2026-11-20"},
        {"pipeline": "even", "status": "SUCCESS", "since": "2026-11-05"},
    ],
)
def test_pages_and_counts_agree_with_the_filters(store: StateStore, filters: dict) -> None:
    want = _expected(**filters)
    assert store.count(**filters) == len(want)
    pages = [
        [r.run_id for r in store.runs(**filters, limit=7, offset=k, nodes=False)]
        for k in range(0, len(want) + 7, 7)
    ]
    assert [rid for p in pages for rid in p] == want
    assert all(len(p) <= 7 for p in pages)


def test_aware_datetimes_bound_the_start_and_naive_ones_are_refused(store: StateStore) -> None:
    since = datetime(2026, 11, 27, tzinfo=UTC)
    assert [r.run_id for r in store.runs(since=since)] == _expected(since="2026-11-27")
    with pytest.raises(ValueError, match="aware datetime"):
        store.runs(since=datetime(2026, 11, 27))


def test_pipelines_lists_ids_and_names(store: StateStore) -> None:
    assert store.pipelines() == [("even", "Even"), ("odd", "Odd")]


def test_node_parents_are_recorded_for_the_graph() -> None:
    store = tdm.state.memory()
    import pandas as pd

    from tdm.transforms import concat

    a, b = tdm.inputs.frame("a"), tdm.inputs.frame("b")
    frames = {"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"x": [2]})}
    tdm.run(concat(a, b), inputs=frames, runtime=tdm.Runtime(state=store))
    nodes = {n.name: n.parents for n in store.runs()[0].nodes}
    assert nodes == {"a": (), "b": (), "concat": ("a", "b")}
    # a record written before parents were kept reads back without them
    old = RunRecord.from_dict(
        {**store.runs()[0].as_dict(), "node_table": {
            k: v for k, v in store.runs()[0].node_table.items() if k != "parents"}}
    )  # fmt: skip
    assert {n.parents for n in old.nodes} == {None}


def test_a_pipeline_is_matched_by_id_or_by_name(store: StateStore) -> None:
    store.record(RunRecord("x1", "x", "SUCCESS", "2026-12-01T00:00:00+00:00"))
    store.record(RunRecord("y1", "y", "SUCCESS", "2026-12-02T00:00:00+00:00", pipeline_name="x"))
    store.record(RunRecord("z1", "z", "SUCCESS", "2026-12-03T00:00:00+00:00", pipeline_name="Z"))
    assert [r.run_id for r in store.runs(pipeline="x")] == ["y1", "x1"]
    assert store.count(pipeline="x") == 2
    assert [r.run_id for r in store.runs(pipeline="Z", limit=5)] == ["z1"]
    assert store.count(pipeline="nobody") == 0 and store.runs(pipeline="nobody") == []
