"""rows_to_pandas gives exactly the frame of converting the taken rows, with sorted categories."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tdm.effects.conversion import rows_to_pandas, to_pandas
from tdm.effects.pushdown import as_categories

WORDS = ["Zürich", "apple", "Äpfel", "zebra", "Apple", "b", "a b", "10", "9"]


def _chunked(values: list[object], kind: pa.DataType, cuts: list[int]) -> pa.ChunkedArray:
    edges = [0, *cuts, len(values)]
    return pa.chunked_array(
        [pa.array(values[a:b], type=kind) for a, b in itertools.pairwise(edges)],
        type=kind,
    )


def _dictionary(values: list[object], cuts: list[int]) -> pa.ChunkedArray:
    # every chunk its own dictionary, in its own order of first appearance (as a CSV block)
    edges = [0, *cuts, len(values)]
    return pa.chunked_array(
        [
            pa.array(values[a:b], pa.string()).dictionary_encode()
            for a, b in itertools.pairwise(edges)
        ]
    )


def _table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, rows), size=3, replace=False).tolist())
    other = sorted(rng.choice(np.arange(1, rows), size=2, replace=False).tolist())
    words = np.asarray(WORDS, dtype=object)[rng.integers(0, len(WORDS), rows)]
    words[rng.random(rows) < 0.1] = None
    many = [f"w{i}" for i in rng.integers(0, 300, rows)]  # more than 127 categories
    ints = rng.integers(-50, 50, rows).tolist()
    floats = rng.random(rows).tolist()
    floats[3] = float("nan")
    holes = [None if i % 7 == 0 else v for i, v in enumerate(ints)]
    return pa.table(
        {
            "id": _chunked(list(range(rows)), pa.int64(), cuts),
            "qty": _chunked(ints, pa.int32(), other),  # another chunk layout
            "small": _chunked([abs(i) for i in ints], pa.uint8(), cuts),
            "price": _chunked(floats, pa.float64(), cuts),
            "ratio": _chunked(floats, pa.float32(), []),
            "holes": _chunked(holes, pa.int64(), cuts),  # nulls: float64 in pandas
            "flag": _chunked([i % 3 == 0 for i in ints], pa.bool_(), cuts),
            "when": _chunked([i * 86_400_000_000 for i in range(rows)], pa.timestamp("us"), cuts),
            "note": _chunked(words.tolist(), pa.string(), cuts),
            "category": _dictionary(words.tolist(), cuts),
            "many": _dictionary(many, other),
            "native": _dictionary(many, cuts),  # a dictionary column not encoded on request
            "empty": _dictionary([None] * rows, cuts),  # no category at all
        }
    )


def _expected(table: pa.Table, kept: np.ndarray | None, encoded: list[str]) -> pd.DataFrame:
    frame = to_pandas(table if kept is None else table.take(kept))
    return as_categories(frame, encoded)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("share", [None, 0.0, 0.3, 1.0])
@pytest.mark.parametrize("masked", [False, True])
def test_the_kept_rows_convert_as_a_take_then_a_conversion(
    seed: int, share: float | None, masked: bool
) -> None:
    table = _table(2_000, seed)
    rng = np.random.default_rng(seed)
    chosen = rng.random(table.num_rows) < (share or 0.0)
    kept = None if share is None else np.flatnonzero(chosen)
    mask = pa.chunked_array([chosen[:700], chosen[700:]]) if masked and kept is not None else None
    encoded = ["category", "many", "empty"]
    expected = _expected(table, kept, encoded)
    got = as_categories(rows_to_pandas(table, kept, encoded, mask), encoded)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["category"].cat.categories.is_monotonic_increasing
    assert list(got["native"].cat.categories) == list(expected["native"].cat.categories)
    if kept is not None:
        assert got["id"].tolist() == kept.tolist()


def test_tables_with_pandas_metadata_convert_as_before() -> None:
    df = pd.DataFrame({"a": [3, 1, 2], "b": ["x", "y", "x"]}, index=[10, 11, 12])
    table = pa.Table.from_pandas(df)
    kept = np.array([0, 2])
    got = rows_to_pandas(table, kept, ())
    pd.testing.assert_frame_equal(got, to_pandas(table.take(kept)))
    assert got.index.tolist() == [10, 12]  # the stored index, as to_pandas restores it


def test_repeated_names_convert_as_before() -> None:
    table = pa.table([pa.array([1, 2, 3]), pa.array([4, 5, 6])], names=["a", "a"])
    got = rows_to_pandas(table, np.array([1]), ())
    assert got.columns.tolist() == ["a", "a"] and got.iloc[0].tolist() == [2, 5]


def test_a_chunk_the_filter_empties_still_gives_its_categories() -> None:
    # the take path concatenates every chunk's dictionary; a filter drops emptied chunks
    table = pa.table({"k": _dictionary(["b", "a", "zz", "zz", "a"], [2, 4]), "v": range(5)})
    chosen = np.array([True, True, False, False, True])
    kept = np.flatnonzero(chosen)
    mask = pa.chunked_array([chosen[:2], chosen[2:4], chosen[4:]])
    got = as_categories(rows_to_pandas(table, kept, ["k"], mask), ["k"])
    pd.testing.assert_frame_equal(got, _expected(table, kept, ["k"]), check_exact=True)
    assert list(got["k"].cat.categories) == ["a", "b", "zz"] and got["v"].tolist() == [0, 1, 4]
