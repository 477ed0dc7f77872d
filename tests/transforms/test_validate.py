"""Data checks: pass-through on success, ValidationError with counts and rows on failure."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

import tdm
from tdm.transforms import (
    ValidationError,
    expect_columns,
    expect_no_nulls,
    expect_not_empty,
    expect_range,
    expect_schema,
    expect_unique,
    expect_values_in,
)

DF = pd.DataFrame(
    {
        "id": [1, 2, 2, 4, 5, 6, 7, 8],
        "state": ["TX", "CA", None, "XX", "TX", "ZZ", "TX", "TX"],
        "qty": [1, 5, -1, 3, 99, 2, None, 4],
    }
)


@pytest.mark.parametrize(
    "step",
    [
        expect_columns(["id", "state"]),
        expect_schema({"id": "integer", "state": "string", "qty": "float"}),
        expect_not_empty(),
        expect_unique(["id", "qty"]),
        expect_no_nulls("id"),
        expect_values_in("state", {"TX", "CA", "XX", "ZZ"}),
        expect_range("id", min=1, max=8),
    ],
)
def test_passing_checks_return_the_frame_unchanged(step: tdm.Pipe) -> None:
    out = step(DF).unwrap()
    pd.testing.assert_frame_equal(out, DF)


def test_failure_carries_counts_and_the_first_rows() -> None:
    err = expect_range("qty", min=0, max=10, examples=1)(DF).failure()
    assert isinstance(err, ValidationError) and isinstance(err, tdm.PipeError)
    assert (err.check, err.violations, err.total) == ("expect_range", 2, 8)
    assert err.rows is not None and err.rows.index.tolist() == [2]
    assert err.message.startswith("2 of 8 rows break 0 <= qty <= 10; first 1:")
    assert "-1.0" in err.message and "99" not in err.message  # only the first N shown


def test_values_in_and_nulls() -> None:
    err = expect_values_in("state", ["TX", "CA"])(DF).failure()
    assert err.violations == 2 and "['XX', 'ZZ']" in err.message
    strict = expect_values_in("state", ["TX", "CA"], allow_null=False)(DF).failure()
    assert strict.violations == 3
    nulls = expect_no_nulls()(DF).failure()
    assert nulls.violations == 2 and "state: 1, qty: 1" in nulls.message


def test_unique_whole_rows_and_keys() -> None:
    err = expect_unique("id")(DF).failure()
    assert err.violations == 2 and err.rows is not None and err.rows["id"].tolist() == [2, 2]
    assert "duplicates" in expect_unique()(pd.concat([DF, DF.head(1)])).failure().message


def test_schema_and_columns() -> None:
    err = expect_schema({"id": "str", "qty": "numeric"}, exact=True)(DF).failure()
    assert "'id' is int64, expected str" in err.message and "unexpected column(s) ['state']" in (
        err.message
    )
    assert err.violations == 2
    missing = expect_columns(["id", "nope"])(DF).failure()
    assert isinstance(missing, ValidationError) and "['nope']" in missing.message
    assert expect_schema({"state": "str"})(DF).unwrap() is DF


def test_not_empty_and_range_needs_bounds() -> None:
    assert expect_not_empty()(DF.head(0)).failure().check == "expect_not_empty"
    assert "min=" in expect_range("qty")(DF).failure().message


def test_validation_error_through_a_run_keeps_its_type_and_node_name() -> None:
    p = tdm.inputs.frame("x") >> expect_unique("id").named("ids are unique")
    report = tdm.run(p, inputs={"x": DF})
    assert not report.ok
    err = report.nodes["ids are unique"].error
    assert isinstance(err, ValidationError) and err.step == "ids are unique"
    assert err.violations == 2
    assert pickle.loads(pickle.dumps(err)) == err
