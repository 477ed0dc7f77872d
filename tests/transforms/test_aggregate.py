"""aggregate and group_by(...).agg(...)."""

from __future__ import annotations

import hypothesis.strategies as st
import pandas as pd
from hypothesis import given

from tdm.transforms import aggregate, group_by


def test_aggregate_spellings() -> None:
    df = pd.DataFrame({"s": ["TX", "CA", "TX"], "amt": [1, 2, 3]})
    out = aggregate("s", {"total": ("amt", "sum"), "amt": "max", "rows": "size"})(df).unwrap()
    assert out.to_dict("records") == [
        {"s": "CA", "total": 2, "amt": 2, "rows": 1},
        {"s": "TX", "total": 4, "amt": 3, "rows": 2},
    ]
    lists = aggregate(["s"], {"amt": ["min", "max"]})(df).unwrap()
    assert lists.columns.tolist() == ["s", "amt_min", "amt_max"]
    custom = aggregate("s", {"spread": ("amt", lambda x: x.max() - x.min())})(df).unwrap()
    assert custom["spread"].tolist() == [0, 2]


def test_null_keys_are_a_group_unless_dropped() -> None:
    df = pd.DataFrame({"s": ["TX", None], "amt": [1, 2]})
    assert len(aggregate("s", {"amt": "sum"})(df).unwrap()) == 2
    assert len(aggregate("s", {"amt": "sum"}, dropna=True)(df).unwrap()) == 1


def test_aggregate_errors() -> None:
    df = pd.DataFrame({"s": ["TX"], "amt": [1]})
    assert "group key" in aggregate("zz", {"amt": "sum"})(df).failure().message
    assert "['nope']" in aggregate("s", {"x": ("nope", "sum")})(df).failure().message
    assert "empty" in aggregate("s", {})(df).failure().message


def test_group_by_agg_is_aggregate() -> None:
    assert group_by("s").agg(total=("amt", "sum")) == aggregate(["s"], {"total": ("amt", "sum")})
    assert group_by(["a", "b"]).by == ("a", "b")


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-100, 100)), max_size=40))
def test_group_sums_add_up_to_the_total(rows: list[tuple[str, int]]) -> None:
    df = pd.DataFrame(rows, columns=["k", "v"]).astype({"v": "int64"})
    out = aggregate("k", {"v": "sum", "n": "size"})(df).unwrap()
    assert out["v"].sum() == df["v"].sum()
    assert out["n"].sum() == len(df)
    assert out["k"].tolist() == sorted(set(df["k"]))
