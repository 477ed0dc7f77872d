"""Pushdown never changes results: optimised and unoptimised runs of generated pipelines of
built-in steps over generated csv/parquet files give identical outputs (or fail alike)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tdm
from tdm import files
from tdm import transforms as t

LETTERS = ["a", "b", "c", None]


@st.composite
def frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 30))
    ints = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    floats = draw(
        st.lists(st.one_of(st.floats(-3, 3), st.just(float("nan"))), min_size=n, max_size=n)
    )
    words = draw(st.lists(st.sampled_from(LETTERS), min_size=n, max_size=n))
    # integers and booleans with nulls: their pandas dtype depends on whether nulls were read
    holes = draw(st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=n, max_size=n))
    flags = draw(st.lists(st.sampled_from([True, False, None]), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "n": pd.array(holes, dtype="Int64"),
            "b": pd.array(flags, dtype=object),
            "i": np.asarray(ints, dtype="int64"),
            "f": np.asarray(floats, dtype="float64"),
            "s": pd.array(words, dtype="str"),
            "k": np.asarray([abs(x) % 3 for x in ints], dtype="int64"),
            "extra": np.arange(n, dtype="int64"),
        }
    )


COMPARISONS = st.builds(
    lambda col, op, lit: f"{col} {op} {lit!r}",
    st.sampled_from(["i", "f", "k", "n"]),
    st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    st.one_of(st.integers(-6, 6), st.sampled_from([0.5, -1.5, 2.0])),
) | st.builds(
    lambda op, lit: f"s {op} {lit!r}", st.sampled_from(["==", ">", "<="]), st.sampled_from("abc")
)

STEPS = st.one_of(
    COMPARISONS.map(t.filter_rows),
    st.builds(lambda a, b: t.filter_rows(f"{a} and {b}"), COMPARISONS, COMPARISONS),
    st.just(t.assign(x="i + k")),
    st.just(t.assign(k="k * 2", y=1)),
    st.just(t.rename_columns({"f": "g"})),
    st.just(t.rename_columns({"i": "extra"})),  # a clash with a column nothing else uses
    st.just(t.drop(["f"], missing="ignore")),
    st.just(t.drop("extra")),
    st.just(t.sort(["i", "extra"])),
    st.just(t.limit(4, offset=1)),
    st.just(t.deduplicate("k")),
    st.just(t.drop_nulls("s")),
    st.just(t.cast({"k": "float64"})),
    st.just(t.map_values("s", {"a": "A"})),
)

TERMINALS = st.one_of(
    st.lists(
        st.sampled_from(["i", "f", "s", "k", "x", "g"]), min_size=1, max_size=3, unique=True
    ).map(lambda cols: t.select(cols, strict=False)),
    st.just(t.select(["i", "s"])),
    st.just(t.aggregate("k", {"total": ("i", "sum"), "rows": "size", "f": "mean"})),
    st.just(t.aggregate(None, {"s": "nunique"})),
    # text keys only grouped on: held as categories between a CSV read and the aggregate
    st.builds(
        lambda by, dropna, sort: t.aggregate(
            by,
            {"total": ("i", "sum"), "mean": ("f", "mean"), "rows": "size"},
            dropna=dropna,
            sort=sort,
        ),
        st.sampled_from(["s", ["s", "k"], ["k", "s"]]),
        st.booleans(),
        st.booleans(),
    ),
    st.none(),
)


def _write(df: pd.DataFrame, folder: Path, row_group: int, pandas_metadata: bool) -> None:
    df.to_csv(folder / "data.csv", index=False)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if not pandas_metadata:  # as other writers (Spark, DuckDB) leave it: dtypes from Arrow
        table = table.replace_schema_metadata(None)
    pq.write_table(table, folder / "data.parquet", row_group_size=row_group)


def _outcome(report: tdm.RunReport) -> tuple[str, list[str]]:
    failed = [n.name for n in report.nodes.values() if n.status.value == "FAILURE"]
    return report.status.value, failed


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    df=frames(),
    fmt=st.sampled_from(["csv", "parquet"]),
    steps=st.lists(STEPS, max_size=3),
    terminal=TERMINALS,
    row_group=st.integers(1, 6),
    joined=st.booleans(),
    first=st.one_of(st.none(), COMPARISONS.map(t.filter_rows)),
    pandas_metadata=st.booleans(),
)
def test_optimised_run_equals_unoptimised(
    df: pd.DataFrame,
    fmt: str,
    steps: list[tdm.Pipe],
    terminal: tdm.Pipe | None,
    row_group: int,
    joined: bool,
    first: tdm.Pipe | None,
    pandas_metadata: bool,
) -> None:
    steps = [first, *steps] if first is not None else steps  # right after the read: pushed
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(df, folder, row_group, pandas_metadata)
        pipeline: tdm.Pipeline = tdm.pipe(files.read(f"data.{fmt}"), *steps)
        if joined:
            other = files.read("data.csv" if fmt == "parquet" else "data.parquet")
            right = other >> t.select(["i", "s", "extra"], strict=False)
            pipeline = t.join(pipeline, right, on="i", how="left")
        if terminal is not None:
            pipeline = pipeline >> terminal
        runtime = tdm.Runtime(files=str(folder))
        fast = tdm.run(pipeline, runtime=runtime)
        slow = tdm.run(pipeline, runtime=runtime, optimize=False)
    assert _outcome(fast) == _outcome(slow), pipeline.explain()
    if slow.status.value == "SUCCESS":
        pd.testing.assert_frame_equal(fast.output, slow.output)


def test_pruned_reads_load_only_used_columns(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "qty": [5, 20, 30], "note": ["x", "y", "z"]})
    df.to_csv(tmp_path / "o.csv", index=False)
    pipeline = files.read("o.csv") >> t.filter_rows("qty > 10") >> t.select(["id"])
    assert pipeline.explain() == (
        "read_o: columns ['id', 'qty'] (others skipped); "
        "rows where qty > 10 cannot hold dropped while reading"
    )
    report = tdm.run(pipeline, runtime=tdm.Runtime(files=str(tmp_path)))
    assert list(report.nodes["read_o"].columns) == ["id", "qty"]
    assert report.output["id"].tolist() == [2, 3]
    assert report.nodes["read_o"].rows_out == 2  # the row that fails qty > 10 is not read
    assert report.output.index.tolist() == [1, 2]  # labelled as in the whole file
    full = tdm.run(pipeline, runtime=tdm.Runtime(files=str(tmp_path)), optimize=False)
    assert list(full.nodes["read_o"].columns) == ["id", "qty", "note"]


def test_parquet_row_groups_skipped_but_rows_and_index_exact(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": np.arange(100), "v": np.arange(100) * 0.5})
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False), tmp_path / "o.parquet", row_group_size=10
    )
    pipeline = files.read("o.parquet") >> t.filter_rows("id >= 35 and id < 52")
    assert pipeline.explain() == (
        "read_o: all columns (filter_rows: it is an output of the pipeline); rows where "
        "id >= 35 and id < 52 cannot hold dropped while reading (parquet row groups unread)"
    )
    runtime = tdm.Runtime(files=str(tmp_path))
    report = tdm.run(pipeline, runtime=runtime)
    assert report.nodes["read_o"].rows_out == 17  # from groups 30-39, 40-49, 50-59 only
    expected = tdm.run(pipeline, runtime=runtime, optimize=False).output
    pd.testing.assert_frame_equal(report.output, expected, check_index_type=True)
    assert report.output.index.tolist() == list(range(35, 52))


def test_missing_column_fails_at_the_same_step(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "o.csv", index=False)
    pipeline = files.read("o.csv") >> t.select(["a", "zz"])
    runtime = tdm.Runtime(files=str(tmp_path))
    fast, slow = (
        tdm.run(pipeline, runtime=runtime),
        tdm.run(pipeline, runtime=runtime, optimize=False),
    )
    assert _outcome(fast) == _outcome(slow) == ("FAILURE", ["select"])
    assert "'zz'" in str(fast.nodes["select"].error)


@tdm.transform(columns=["qty"])
def big(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["qty"] > 10]


@tdm.transform(columns=["state", "qty"], passthrough=False)
def per_state(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("state", as_index=False)["qty"].sum()


@tdm.transform
def undeclared(df: pd.DataFrame) -> pd.DataFrame:
    return df


def test_user_steps_declare_what_they_read() -> None:
    read = files.read("o.csv")
    assert (read >> big() >> per_state()).explain() == (
        "read_o: columns ['qty', 'state'] (others skipped)"
    )
    # passing other columns through to the output: every column is needed
    assert (read >> big()).explain() == "read_o: all columns (big: it is an output of the pipeline)"
    assert "columns ['id', 'qty']" in (read >> big() >> t.select(["id"])).explain()
    text = (read >> undeclared() >> t.select(["id"])).explain()
    assert "all columns (undeclared() is a user step that does not declare its columns" in text
    written = read >> t.select(["id"]) >> files.write("out.csv")
    assert "columns ['id']" in written.explain()
    assert "all columns" in (read >> files.write("out.csv") >> t.select(["id"])).explain()


def test_drift_of_a_pruned_read_compares_the_columns_it_reads(tmp_path: Path) -> None:
    rt = tdm.Runtime(files=str(tmp_path), state=tdm.state.memory())
    pipeline = files.read("o.csv") >> per_state()
    pd.DataFrame({"state": ["TX"], "qty": [1], "note": ["x"]}).to_csv(tmp_path / "o.csv")
    assert tdm.run(pipeline, runtime=rt, pipeline_id="p").drift == []
    again = pd.DataFrame({"state": ["TX"], "qty": [1.5], "other": [2]})
    again.to_csv(tmp_path / "o.csv", index=False)
    second = tdm.run(pipeline, runtime=rt, pipeline_id="p")
    assert second.ok and len(second.drift) == 1
    assert "column qty retyped int64 -> float64" in second.drift[0]
    assert "note" not in second.drift[0] and "other" not in second.drift[0]


@pytest.mark.parametrize("pandas_metadata", [True, False])
def test_skipping_the_row_groups_with_the_nulls_keeps_dtypes(
    tmp_path: Path, pandas_metadata: bool
) -> None:
    df = pd.DataFrame(
        {
            "i": np.arange(8),
            "n": pd.array([None, 1, 2, 3, 4, 5, 6, 7], dtype="Int64"),
            "b": pd.array([None, True, False, True, True, False, True, False], dtype=object),
            "c": pd.Categorical(["x", "y", "z", "x", "x", "x", "x", "x"]),
        }
    )
    _write(df, tmp_path, 2, pandas_metadata)
    runtime = tdm.Runtime(files=str(tmp_path))
    for source in ("data.csv", "data.parquet"):
        for columns in (["i", "n"], ["i", "b"], ["i", "c"], ["i"]):
            pipeline = files.read(source) >> t.filter_rows("i > 3") >> t.select(columns)
            fast = tdm.run(pipeline, runtime=runtime)
            slow = tdm.run(pipeline, runtime=runtime, optimize=False)
            pd.testing.assert_frame_equal(fast.output, slow.output, check_index_type=True)
        assert fast.nodes["read_data"].rows_out == 4  # only "i" read: rows 0-3 dropped


def test_optimising_keeps_no_pipeline_alive() -> None:
    import gc
    import weakref

    from tdm.core.pushdown import optimize

    pruned = files.read("o.csv") >> t.select(["a"])
    unread = t.select(["a"]) >> t.select(["a"])
    assert optimize(pruned) != pruned and optimize(unread) is unread
    refs = [weakref.ref(pruned), weakref.ref(unread)]
    del pruned, unread
    gc.collect()
    assert [r() for r in refs] == [None, None]
