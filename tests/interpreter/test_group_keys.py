"""Text columns used only as group keys are held as categories between a CSV read and the
aggregate (tdm.core.group_keys): faster, and the outputs are those of the plan as written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tdm
from tdm import files
from tdm import transforms as t
from tdm.core.pushdown import optimize

AGGS = {"revenue": ("revenue", "sum"), "rows": ("id", "count"), "mean_price": ("price", "mean")}
WORDS = ["Zürich", "apple", "Äpfel", "zebra", "Apple", "ápple", "b", "a b", "10", "9"]


def _orders(rows: int, seed: int = 7, nulls: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    category = np.asarray(WORDS, dtype=object)[rng.integers(0, len(WORDS), rows)]
    region = np.asarray(["north", "south", "east"], dtype=object)[rng.integers(0, 3, rows)]
    if nulls:
        category[rng.random(rows) < 0.05] = None
        region[rng.random(rows) < 0.05] = None
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "qty": rng.integers(0, 50, rows),
            "price": np.round(rng.random(rows) * 100, 2),
            "category": category,
            "region": region,
            "note": rng.choice(["x", "y"], rows),
        }
    )


def _job(**options: object) -> tdm.Pipeline:
    return (
        files.read("orders.csv", **options)  # type: ignore[arg-type]
        >> t.filter_rows("qty > 10")
        >> t.assign(revenue="qty * price")
        >> t.aggregate(["category", "region"], AGGS)
    )


def _both(pipeline: tdm.Pipeline, folder: Path) -> tuple[tdm.RunReport, tdm.RunReport]:
    runtime = tdm.Runtime(files=str(folder))
    return (
        tdm.run(pipeline, runtime=runtime),
        tdm.run(pipeline, runtime=runtime, optimize=False),
    )


def _dtype(report: tdm.RunReport, column: str) -> str:
    node = report.nodes["read_orders"]
    return dict(zip(node.columns or (), node.dtypes or (), strict=True))[column]


def test_explain_and_the_planned_read() -> None:
    pipeline = _job()
    assert pipeline.explain().endswith(
        "['category', 'region'] held as categories until aggregate (group keys only)"
    )
    read = optimize(pipeline).plan.nodes[0].op
    assert read.dictionary_columns == ("category", "region")  # type: ignore[attr-defined]
    assert "dictionary_columns=['category', 'region']" in read.describe()


def _write(df: pd.DataFrame, folder: Path, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(folder / "orders.csv", index=False)
    else:  # several row groups: several dictionaries per column
        df.to_parquet(folder / "orders.parquet", index=False, row_group_size=3_000)


@pytest.mark.parametrize("dropna", [False, True])
@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize(
    ("fmt", "block_size"), [("csv", None), ("csv", 4096), ("parquet", None)]
)  # many CSV blocks: many dictionaries
def test_outputs_are_bit_identical(
    tmp_path: Path, dropna: bool, sort: bool, fmt: str, block_size: int | None
) -> None:
    _write(_orders(20_000), tmp_path, fmt)
    options = {"block_size": block_size} if block_size else {}
    pipeline = (
        files.read(f"orders.{fmt}", **options)  # type: ignore[arg-type]
        >> t.filter_rows("qty > 10")
        >> t.assign(revenue="qty * price")
        >> t.aggregate(["category", "region"], AGGS, dropna=dropna, sort=sort)
    )
    assert "held as categories" in pipeline.explain()
    fast, slow = _both(pipeline, tmp_path)
    assert fast.ok and slow.ok
    # while held, the key is a category; the aggregate gives it back as the text it was
    assert _dtype(fast, "category") == "category"
    assert _dtype(slow, "category") == "str"
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)
    assert fast.output["category"].isna().any() != dropna  # null keys: a group unless dropped
    assert (fast.output["revenue"].to_numpy() == slow.output["revenue"].to_numpy()).all()


def test_many_distinct_keys_stay_text_and_agree(tmp_path: Path) -> None:
    rows = 80_000  # more distinct values than a CSV block dictionary-encodes
    df = _orders(rows, nulls=False)
    df["category"] = [f"customer-{i}" for i in range(rows)]
    df.to_csv(tmp_path / "orders.csv", index=False)
    fast, slow = _both(_job(), tmp_path)
    assert _dtype(fast, "category") == "str"
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)


@pytest.mark.parametrize("dropna", [False, True])
def test_keys_whose_combinations_outnumber_the_rows_agree(tmp_path: Path, dropna: bool) -> None:
    # 2,000 x 1,000 key combinations over 3,000 rows: groups are numbered by hashing, not
    # by counting over every combination
    df = _orders(3_000)
    df["category"] = [f"c{i % 2_000}" if i % 50 else None for i in range(len(df))]
    df["region"] = [f"r{(i * 7) % 1_000}" for i in range(len(df))]
    df.to_csv(tmp_path / "orders.csv", index=False)
    pipeline = (
        files.read("orders.csv")
        >> t.filter_rows("qty > 10")
        >> t.assign(revenue="qty * price")
        >> t.aggregate(["category", "region"], AGGS, dropna=dropna)
    )
    fast, slow = _both(pipeline, tmp_path)
    assert _dtype(fast, "category") == "category"
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)
    assert len(fast.output) > 1_000


@pytest.mark.parametrize("dropna", [False, True])
def test_an_all_null_key_and_order_sensitive_aggregations(tmp_path: Path, dropna: bool) -> None:
    df = _orders(5_000)
    df["region"] = None  # a key with no category at all
    df.to_csv(tmp_path / "orders.csv", index=False)
    aggs = {
        "first": ("price", "first"),
        "last": ("id", "last"),
        "kinds": ("qty", "nunique"),
        "median": ("price", "median"),
        "low": ("price", "min"),
        "size": ("id", "size"),
        "mean": ("revenue", "mean"),
    }
    pipeline = (
        files.read("orders.csv")
        >> t.filter_rows("qty > 10")
        >> t.assign(revenue="qty * price")
        >> t.aggregate(["category", "region"], aggs, dropna=dropna)
    )
    assert "held as categories" in pipeline.explain()
    fast, slow = _both(pipeline, tmp_path)
    assert fast.ok and slow.ok
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)
    assert len(fast.output) == (0 if dropna else df["category"].nunique(dropna=False))


def test_numeric_keys_are_read_as_numbers(tmp_path: Path) -> None:
    df = _orders(1_000, nulls=False)
    df["category"] = df["id"] % 7
    df.to_csv(tmp_path / "orders.csv", index=False)
    fast, slow = _both(_job(), tmp_path)
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)
    assert fast.output["category"].dtype == np.int64


def test_a_group_by_of_nothing_but_user_steps_after_it(tmp_path: Path) -> None:
    @tdm.transform
    def shout(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(category=df["category"].str.upper())

    _orders(2_000).to_csv(tmp_path / "orders.csv", index=False)
    pipeline = _job() >> shout()  # the aggregate's output is text again: user code sees text
    fast, slow = _both(pipeline, tmp_path)
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)


@pytest.mark.parametrize(
    "pipeline",
    [
        # the key is compared, computed with, renamed or aggregated: it must stay text
        files.read("o.csv") >> t.filter_rows("region == 'north'") >> t.aggregate("region", AGGS),
        files.read("o.csv") >> t.assign(r2="region + 'x'") >> t.aggregate("region", AGGS),
        files.read("o.csv") >> t.rename_columns({"x": "region"}) >> t.aggregate("region", AGGS),
        files.read("o.csv") >> t.aggregate("region", {"n": ("region", "nunique")}),
        # a step whose use of columns is unknown, or a frame someone else sees
        files.read("o.csv") >> t.filter_rows(lambda d: d["qty"] > 1) >> t.aggregate("region", AGGS),
        files.read("o.csv") >> t.sort("id") >> t.aggregate("region", AGGS),
        files.read("o.csv", dtype={"qty": "float64"}) >> t.aggregate("region", AGGS),
        files.read("o.parquet", read_dictionary=["region"]) >> t.aggregate("region", AGGS),
        files.read("o.json") >> t.aggregate("region", AGGS),
    ],
    ids=[
        "filtered-on",
        "computed-with",
        "renamed",
        "aggregated",
        "callable",
        "sorted",
        "dtype-option",
        "read-dictionary-option",
        "json",
    ],
)
def test_not_held_when_the_key_is_seen(pipeline: tdm.Pipeline) -> None:
    assert "held as categories" not in pipeline.explain()


def test_not_held_when_the_read_has_another_consumer() -> None:
    read = files.read("o.csv")
    pipeline = tdm.Pipeline.of(read >> t.aggregate("region", AGGS), read >> t.select(["region"]))
    assert "held as categories" not in pipeline.explain()


def test_only_keys_not_seen_are_held() -> None:
    pipeline = (
        files.read("o.csv")
        >> t.filter_rows("region == 'north'")
        >> t.aggregate(["category", "region"], AGGS)
    )
    assert pipeline.explain().endswith(
        "['category'] held as categories until aggregate (group keys only)"
    )


def test_a_files_own_category_column_stays_a_category(tmp_path: Path) -> None:
    df = _orders(5_000)
    df["region"] = (
        df["region"].astype("category").cat.reorder_categories(["south", "north", "east"])
    )
    _write(df, tmp_path, "parquet")
    pipeline = (
        files.read("orders.parquet")
        >> t.filter_rows("qty > 10")
        >> t.assign(revenue="qty * price")
        >> t.aggregate(["category", "region"], AGGS)
    )
    assert "['category', 'region'] held as categories" in pipeline.explain()
    fast, slow = _both(pipeline, tmp_path)
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)
    assert isinstance(fast.output["region"].dtype, pd.CategoricalDtype)  # as the file says
    assert fast.output["category"].dtype == "str"


def test_parquet_text_is_never_built(tmp_path: Path) -> None:
    _write(_orders(5_000), tmp_path, "parquet")
    pipeline = files.read("orders.parquet") >> t.aggregate("category", {"n": ("qty", "sum")})
    fast, slow = _both(pipeline, tmp_path)
    assert _dtype(fast, "category") == "category" and _dtype(slow, "category") == "str"
    pd.testing.assert_frame_equal(fast.output, slow.output, check_exact=True)


def test_an_empty_parquet_file_grouped_by_text_gives_text_keys(tmp_path: Path) -> None:
    # an empty dictionary converts with object categories; the plain read gives str
    empty = pd.DataFrame({"s": pd.array([], dtype="str"), "i": np.asarray([], dtype="int64")})
    empty.to_parquet(tmp_path / "data.parquet", index=False)
    job = files.read("data.parquet") >> t.aggregate("s", {"total": ("i", "sum")}, sort=False)
    fast, slow = _both(job, tmp_path)
    assert fast.ok and slow.ok
    assert str(slow.output["s"].dtype) == "str"
    pd.testing.assert_frame_equal(fast.output, slow.output)
