"""join / concat / union on plain frames and in pipelines."""

from __future__ import annotations

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import given

import tdm
from tdm.transforms import concat, join, union


def test_join_keys_default_to_shared_columns_and_suffixes() -> None:
    left = pd.DataFrame({"k": [1, 2], "v": ["a", "b"]})
    right = pd.DataFrame({"k": [1, 2], "v": ["c", "d"]})
    out = join(left, right, on="k", suffixes=("_l", "_r")).unwrap()
    assert out.columns.tolist() == ["k", "v_l", "v_r"]
    assert join(left, right).unwrap().columns.tolist() == ["k", "v"]


def test_join_left_on_right_on_and_missing_keys() -> None:
    left = pd.DataFrame({"id": [1, 2]})
    right = pd.DataFrame({"device_id": [2], "x": [9]})
    out = join(left, right, left_on="id", right_on="device_id", how="left").unwrap()
    assert out["x"].tolist()[1] == 9
    err = join(left, right, on="id").failure()
    assert "right frame" in err.message and "['device_id', 'x']" in err.message
    assert "shared" not in err.message


@pytest.mark.parametrize(
    ("validate", "side"),
    [("one_to_one", "left"), ("one_to_many", "left"), ("many_to_one", "right")],
)
def test_join_validate_failure_lists_repeated_keys(validate: str, side: str) -> None:
    dup = pd.DataFrame({"k": [1, 1, 2], "v": [1, 2, 3]})
    uniq = pd.DataFrame({"k": [1, 2], "w": [5, 6]})
    left, right = (dup, uniq) if side == "left" else (uniq, dup)
    err = join(left, right, on="k", validate=validate).failure()
    assert f"the {side} frame repeats 1 key value(s)" in err.message
    assert "in 2 rows" in err.message and "[1]" in err.message
    assert join(uniq, uniq, on="k", validate="one_to_one").unwrap().shape == (2, 3)


def test_join_incompatible_key_types() -> None:
    err = join(pd.DataFrame({"k": ["1"]}), pd.DataFrame({"k": [1]}), on="k").failure()
    assert "cast" in err.message and "'k'" in err.message


def test_join_connects_pipelines() -> None:
    p = join(tdm.inputs.frame("a"), tdm.inputs.frame("b"), on="k", how="outer")
    report = tdm.run(p, inputs={"a": pd.DataFrame({"k": [1]}), "b": pd.DataFrame({"k": [2]})})
    assert sorted(report.output["k"].tolist()) == [1, 2]


frames = st.lists(
    st.lists(st.integers(0, 3), max_size=6).map(lambda xs: pd.DataFrame({"a": xs})),
    min_size=1,
    max_size=5,
)


@given(frames)
def test_concat_row_count_is_the_sum(parts: list[pd.DataFrame]) -> None:
    out = concat(*parts).unwrap()
    assert len(out) == sum(len(p) for p in parts)
    assert out.index.tolist() == list(range(len(out)))


def test_concat_aligns_by_name_and_fills_gaps() -> None:
    a = pd.DataFrame({"x": [1], "y": [2]})
    b = pd.DataFrame({"y": [3], "z": [4]})
    out = concat(a, b).unwrap()
    assert out.columns.tolist() == ["x", "y", "z"]
    assert out["y"].tolist() == [2, 3]


@pytest.mark.parametrize("factory", [concat, union])
def test_strict_schema_is_checked_both_ways(factory: object) -> None:
    narrow = pd.DataFrame({"k": [1]})
    wide = pd.DataFrame({"k": [1], "x": [0]})
    f = factory  # type: ignore[assignment]
    # the original Union accepted k + (k, x) but refused (k, x) + k
    assert "extra ['x']" in f(narrow, wide, strict=True).failure().message
    assert "missing ['x']" in f(wide, narrow, strict=True).failure().message
    retyped = pd.DataFrame({"k": ["1"]})
    assert "dtypes" in f(narrow, retyped, strict=True).failure().message
    assert len(f(narrow, pd.DataFrame({"k": [5]}), strict=True).unwrap()) == 2


def test_union_is_its_own_step_name() -> None:
    assert union().name == "union" and concat().name == "concat"
    p = union(tdm.inputs.frame("a"), tdm.inputs.frame("b"))
    assert "union" in p.names()
