"""Row steps on plain frames, with hypothesis properties."""

from __future__ import annotations

import hypothesis.strategies as st
import pandas as pd
from hypothesis import given

from tdm.transforms import deduplicate, drop_nulls, filter_rows, limit, sample, sort

ints = st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=30)


def frame(values: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {"k": pd.array(values, dtype="Int64"), "v": [str(i) for i in range(len(values))]}
    )


def test_filter_rows_query_and_predicate_and_nulls() -> None:
    df = frame([1, None, 3])
    assert filter_rows("k > 1")(df).unwrap()["v"].tolist() == ["2"]
    assert filter_rows(lambda d: d["k"] < 3)(df).unwrap()["v"].tolist() == ["0"]


def test_filter_rows_bad_predicates_fail_clearly() -> None:
    df = frame([1])
    assert "not booleans" in filter_rows(lambda d: d["k"] + 1)(df).failure().message
    assert "uses 'zz', which is not a column" in filter_rows("zz > 1")(df).failure().message


@given(ints)
def test_filter_rows_keeps_a_subset_in_order(values: list[int | None]) -> None:
    df = frame(values)
    out = filter_rows("k >= 0")(df).unwrap()
    assert list(out.index) == sorted(out.index)
    assert set(out.index) <= set(df.index)
    assert (out["k"] >= 0).all()


def test_drop_nulls() -> None:
    df = pd.DataFrame({"a": [1, None], "b": [None, None]})
    assert len(drop_nulls()(df).unwrap()) == 0
    assert len(drop_nulls("a")(df).unwrap()) == 1
    assert "['zz']" in drop_nulls("zz")(df).failure().message


@given(ints)
def test_deduplicate_is_idempotent_and_unique(values: list[int | None]) -> None:
    df = frame(values)
    once = deduplicate("k")(df).unwrap()
    twice = deduplicate("k")(once).unwrap()
    pd.testing.assert_frame_equal(once, twice)
    assert not once["k"].duplicated().any()
    assert set(once["k"].dropna()) == set(df["k"].dropna())


def test_deduplicate_keep_options() -> None:
    df = pd.DataFrame({"k": [1, 1, 2]})
    assert deduplicate("k", keep="none")(df).unwrap()["k"].tolist() == [2]
    assert deduplicate(keep="last")(df).unwrap().index.tolist() == [1, 2]


@given(ints, st.booleans())
def test_sort_is_sorted_with_nulls_last_and_stable(
    values: list[int | None], descending: bool
) -> None:
    df = frame(values)
    out = sort("k", descending=descending)(df).unwrap()
    keys = out["k"].dropna().tolist()
    assert keys == sorted(keys, reverse=descending)
    nulls = out["k"].isna().tolist()
    assert nulls == sorted(nulls)  # all nulls at the end
    assert len(out) == len(df)
    for _, group in out.groupby("k", dropna=False):
        assert group.index.tolist() == sorted(group.index.tolist())  # stable


def test_sort_several_keys_and_flag_mismatch() -> None:
    df = pd.DataFrame({"a": [1, 1, 0], "b": [1, 2, 3]})
    assert sort(["a", "b"], descending=[False, True])(df).unwrap()["b"].tolist() == [3, 2, 1]
    assert "flag" in sort(["a", "b"], descending=[True])(df).failure().message


@given(ints, st.integers(0, 40), st.integers(0, 40))
def test_limit_bounds(values: list[int | None], n: int, offset: int) -> None:
    df = frame(values)
    out = limit(n, offset=offset)(df).unwrap()
    assert len(out) == max(0, min(n, len(df) - offset))
    assert out["v"].tolist() == df["v"].tolist()[offset : offset + n]


def test_limit_rejects_negative() -> None:
    assert "n >= 0" in limit(-1)(frame([1])).failure().message


@given(ints, st.integers(0, 40), st.integers(0, 2**16))
def test_sample_is_seeded_and_bounded(values: list[int | None], n: int, seed: int) -> None:
    df = frame(values)
    a = sample(n, seed=seed)(df).unwrap()
    b = sample(n, seed=seed)(df).unwrap()
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == min(n, len(df))
    assert not a.index.duplicated().any()


def test_sample_needs_exactly_one_size() -> None:
    assert "exactly one" in sample()(frame([1])).failure().message
    assert "exactly one" in sample(1, frac=0.5)(frame([1])).failure().message


def test_expressions_may_name_the_index_or_its_levels() -> None:
    # Plain column expressions skip the index; one naming it still gets pandas' meaning.
    df = pd.DataFrame({"a": [1, 2, 3, 4]}, index=pd.Index([10, 20, 30, 40], name="key"))
    assert filter_rows("index > 15 and a < 4")(df).unwrap()["a"].tolist() == [2, 3]
    assert filter_rows("key >= 30")(df).unwrap()["a"].tolist() == [3, 4]
    assert filter_rows("a > 2")(df).unwrap().index.tolist() == [30, 40]
    both = pd.DataFrame({"index": [5, 6]})  # a column called "index": pandas' own choice
    assert filter_rows("index > 5")(both).unwrap()["index"].tolist() == [6]


def test_expressions_on_unusual_column_sets_keep_their_errors() -> None:
    twice = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    assert "duplicate column names ['a']" in str(filter_rows("a > 1")(twice).failure())
    nested = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    assert "which is not a column" in str(filter_rows("a > 1")(nested).failure())
