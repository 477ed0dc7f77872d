"""Column steps on plain frames: no runtime, no mocks."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import hypothesis.strategies as st
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given

import tdm
from tdm.transforms import (
    KEEP,
    US_STATE_CODES,
    add_date_from_filename,
    append_date_column,
    assign,
    cast,
    drop,
    map_values,
    rename_columns,
    select,
    standardize_us_state,
    with_columns,
)

CTX = tdm.RunContext(started_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC), run_id="r1")
names = st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=8, unique=True)


def frame_with(columns: list[str], rows: int = 2) -> pd.DataFrame:
    return pd.DataFrame({c: list(range(rows)) for c in columns})


# select ------------------------------------------------------------------------------------
@given(names, st.data())
def test_select_keeps_requested_order_and_count(cols: list[str], data: st.DataObject) -> None:
    wanted = data.draw(st.permutations(cols).map(lambda p: p[: max(1, len(p) // 2)]))
    out = select(wanted)(frame_with(cols)).unwrap()
    assert out.columns.tolist() == list(wanted)
    assert len(out) == 2


def test_select_missing_column_names_it_and_the_existing_ones() -> None:
    err = select(["a", "nope"])(frame_with(["a", "b"])).failure()
    assert err.step == "select"
    assert "['nope']" in err.message and "['a', 'b']" in err.message


def test_select_single_name_and_duplicates_requested_once() -> None:
    assert select("b")(frame_with(["a", "b"])).unwrap().columns.tolist() == ["b"]
    assert select(["b", "b"])(frame_with(["a", "b"])).unwrap().columns.tolist() == ["b"]


def test_drop() -> None:
    df = frame_with(["a", "b", "c"])
    assert drop(["a", "c"])(df).unwrap().columns.tolist() == ["b"]
    assert "'zz'" in drop("zz")(df).failure().message
    assert drop("zz", missing="ignore")(df).unwrap().columns.tolist() == ["a", "b", "c"]


# rename ------------------------------------------------------------------------------------
def test_rename_columns_actually_renames() -> None:
    # the original RenameColumns discarded df.rename's result
    out = rename_columns({"a": "A", "b": "B"})(frame_with(["a", "b"])).unwrap()
    assert out.columns.tolist() == ["A", "B"]


@given(names, st.data())
def test_rename_twice_with_inverse_maps_is_identity(cols: list[str], data: st.DataObject) -> None:
    df = frame_with(cols)
    targets = data.draw(st.permutations(cols))
    mapping = dict(zip(cols, targets, strict=True))
    inverse = {v: k for k, v in mapping.items()}
    out = (rename_columns(mapping) >> rename_columns(inverse))(df).unwrap()
    pd.testing.assert_frame_equal(out, df)


def test_rename_strict_missing_and_ignore() -> None:
    df = frame_with(["a"])
    assert "['zz']" in rename_columns({"zz": "y"})(df).failure().message
    assert rename_columns({"zz": "y", "a": "b"}, missing="ignore")(
        df
    ).unwrap().columns.tolist() == ["b"]


def test_rename_refuses_to_create_duplicate_names() -> None:
    err = rename_columns({"a": "b"})(frame_with(["a", "b"])).failure()
    assert "duplicate" in err.message and "'b'" in err.message
    # swapping names is fine
    assert rename_columns({"a": "b", "b": "a"})(
        frame_with(["a", "b"])
    ).unwrap().columns.tolist() == [
        "b",
        "a",
    ]


# cast --------------------------------------------------------------------------------------
def test_cast_pandas_and_arrow_dtypes() -> None:
    df = pd.DataFrame({"n": ["1", "2"], "f": ["1.5", "2"], "d": ["2026-01-01", "2026-02-01"]})
    out = cast({"n": "int64", "f": pa.float32(), "d": "datetime64[ns]"})(df).unwrap()
    assert out["n"].dtype == "int64"
    assert out["f"].dtype == pd.ArrowDtype(pa.float32())
    assert str(out["d"].dtype) == "datetime64[ns]"
    assert cast({"n": "int64[pyarrow]"})(df).unwrap()["n"].tolist() == [1, 2]


def test_cast_failure_lists_unparseable_values_and_counts() -> None:
    df = pd.DataFrame({"n": ["1", "x", "y", "x"]})
    err = cast({"n": "int64"})(df).failure()
    assert "'n'" in err.message and "3 of 4 rows" in err.message
    assert "['x', 'y']" in err.message


def test_cast_errors_null_and_nulls_into_non_nullable() -> None:
    df = pd.DataFrame({"n": ["1", "oops", None]})
    assert cast({"n": "float64"}, errors="null")(df).unwrap()["n"].isna().tolist() == [
        False,
        True,
        True,
    ]
    err = cast({"n": "int64"})(pd.DataFrame({"n": [1.0, None]})).failure()
    assert "null" in err.message and "Int64" in err.message


def test_cast_missing_column() -> None:
    assert "['zz']" in cast({"zz": "int64"})(frame_with(["a"])).failure().message


# assign ------------------------------------------------------------------------------------
def test_assign_expressions_callables_constants_in_order() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    out = assign(b="a * 10", c=lambda d: d["b"] + 1, d=7)(df).unwrap()
    assert out.to_dict("list") == {"a": [1, 2], "b": [10, 20], "c": [11, 21], "d": [7, 7]}
    assert with_columns is assign


def test_assign_bad_expression_names_the_column() -> None:
    err = assign(b="nope + 1")(pd.DataFrame({"a": [1]})).failure()
    assert "'b'" in err.message and "nope + 1" in err.message


# dates -------------------------------------------------------------------------------------
def test_append_date_column_uses_the_run_start_time_not_the_clock() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    out = append_date_column()(df, context=CTX).unwrap()
    assert out["load_date"].tolist() == [pd.Timestamp("2026-03-01 12:30", tz="UTC")] * 2
    fixed = datetime(2020, 5, 5, tzinfo=UTC)
    report = tdm.run(
        tdm.inputs.frame("x") >> append_date_column("loaded", fmt="%Y-%m-%d"),
        inputs={"x": df},
        runtime=tdm.Runtime(clock=lambda: fixed),
    )
    assert report.output["loaded"].tolist() == ["2020-05-05", "2020-05-05"]


def test_append_date_column_refuses_to_overwrite_unless_asked() -> None:
    df = pd.DataFrame({"load_date": [1]})
    assert "already exists" in append_date_column()(df, context=CTX).failure().message
    assert append_date_column(overwrite=True)(df, context=CTX).unwrap()["load_date"][0].year == 2026


def test_append_date_column_on_empty_frame_has_datetime_dtype() -> None:
    out = append_date_column()(pd.DataFrame({"a": []}), context=CTX).unwrap()
    assert pd.api.types.is_datetime64_any_dtype(out["load_date"])


def test_add_date_from_filename_per_row_attrs_and_patterns() -> None:
    df = pd.DataFrame({"source_file": ["a/dev_2026-01-31.csv", "b/dev_20260201.csv", None]})
    out = add_date_from_filename()(df).unwrap()
    assert out["file_date"].tolist()[:2] == [pd.Timestamp("2026-01-31"), pd.Timestamp("2026-02-01")]
    assert pd.isna(out["file_date"].tolist()[2])
    one = pd.DataFrame({"a": [1, 2]})
    one.attrs["source_path"] = "s3://bucket/x/Devices_01-02-2026.csv"
    custom = add_date_from_filename(pattern=r"_(\d\d-\d\d-\d{4})", fmt="%d-%m-%Y")(one).unwrap()
    assert custom["file_date"].tolist() == [pd.Timestamp("2026-02-01")] * 2


def test_add_date_from_filename_failures_are_clear() -> None:
    err = add_date_from_filename()(pd.DataFrame({"a": [1]})).failure()
    assert "source_file" in err.message and "path_column" in err.message
    undated = pd.DataFrame({"source_file": ["devices.csv"]})
    assert "['devices.csv']" in add_date_from_filename()(undated).failure().message
    nulls = add_date_from_filename(missing="null")(undated).unwrap()
    assert nulls["file_date"].isna().all()


# map_values / states -----------------------------------------------------------------------
def test_map_values_keep_default_strict_and_nulls() -> None:
    df = pd.DataFrame({"s": ["a", "b", None]})
    assert map_values("s", {"a": "A"})(df).unwrap()["s"].tolist()[:2] == ["A", "b"]
    assert map_values("s", {"a": "A"}, default=KEEP)(df).unwrap()["s"].tolist()[:2] == ["A", "b"]
    out = map_values("s", {"a": 1}, default=0)(df).unwrap()["s"].tolist()
    assert out[:2] == [1, 0] and pd.isna(out[2])
    err = map_values("s", {"a": "A"}, strict=True)(df).failure()
    assert "['b']" in err.message and "1 row(s)" in err.message
    assert "['zz']" in map_values("zz", {})(df).failure().message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Texas", "TX"),
        ("TX", "TX"),
        ("tx", "TX"),
        ("tex.", "TX"),
        (" Tex ", "TX"),
        ("calif.", "CA"),
        ("new york", "NY"),
        ("New  York", "NY"),
        ("N.Y.", "NY"),
        ("District of Columbia", "DC"),
        ("Washington, D.C.", "DC"),
        ("washington", "WA"),
        ("Mass.", "MA"),
        ("Puerto Rico", "PR"),
        ("west virginia", "WV"),
    ],
)
def test_standardize_us_state_spellings(raw: str, code: str) -> None:
    df = pd.DataFrame({"state": [raw]})
    assert standardize_us_state()(df).unwrap()["state"].tolist() == [code]


def test_standardize_us_state_unknowns() -> None:
    df = pd.DataFrame({"st": ["Texas", "Narnia", None, 7]})
    assert standardize_us_state("st")(df).unwrap()["st"].tolist()[:2] == ["TX", "Narnia"]
    nulled = standardize_us_state("st", unknown="null")(df).unwrap()["st"]
    assert nulled.tolist()[0] == "TX" and nulled.isna().tolist()[1:] == [True, True, True]
    err = standardize_us_state("st", unknown="fail")(df).failure()
    assert "'Narnia'" in err.message and "7" in err.message


def test_us_state_codes_cover_all_states() -> None:
    assert len(US_STATE_CODES) == 56  # 50 states, DC and 5 territories
    assert US_STATE_CODES["Texas"] == "TX"
    df = pd.DataFrame({"state": list(US_STATE_CODES)})
    out = standardize_us_state()(df).unwrap()["state"].tolist()
    assert out == list(US_STATE_CODES.values())


# values ------------------------------------------------------------------------------------
def test_steps_are_equal_values_and_picklable() -> None:
    assert select(["a", "b"]) == select(["a", "b"])
    assert rename_columns({"a": "b"}) != rename_columns({"a": "c"})
    step = map_values("s", {"a": 1}, strict=True)
    assert pickle.loads(pickle.dumps(step)) == step
    assert repr(select(["a"])) == "select(columns=['a'])"
