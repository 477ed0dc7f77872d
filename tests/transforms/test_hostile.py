"""Hostile frames x every built-in transform: a failure names the problem, never raw pandas text.

A frame with duplicate column names, column names that are not strings, or an all-null column
breaks many pandas calls in ways whose messages say nothing useful (``'DataFrame' object has no
attribute 'dtype'`` is a duplicate column name). Every built-in step either succeeds on such a
frame or fails with a message that names the problem first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from returns.result import Failure, Success

import tdm
from tdm import Pipe, Skip, Status
from tdm import transforms as T

HOSTILE: dict[str, tuple[pd.DataFrame, str]] = {
    "duplicate columns": (
        pd.DataFrame([[1, 2, "CA"], [3, 4, "NY"]], columns=["a", "a", "b"]),
        "duplicate column names ['a']",
    ),
    "duplicate key column": (
        pd.DataFrame([[1, "CA", "x"], [2, "NY", "y"]], columns=["a", "b", "b"]),
        "duplicate column names ['b']",
    ),
    "some integer column names": (
        pd.DataFrame([[1, "CA", 5], [2, "NY", 6]], columns=["a", 1, 2]),
        "column names that are not strings: [1, 2]",
    ),
    "integer column names only": (
        pd.DataFrame([[1, "CA"], [2, "NY"]]),
        "column names that are not strings: [0, 1]",
    ),
    "tuple column names": (
        pd.DataFrame(
            [[1, "CA"], [2, "NY"]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("b", "y")])
        ),
        "multi-level column names",
    ),
    "all-null object column": (
        pd.DataFrame({"a": [None, None], "b": ["CA", "NY"]}),
        "column 'a' is entirely null",
    ),
    "all-null float column": (
        pd.DataFrame({"a": [np.nan, np.nan], "b": ["CA", "NY"]}),
        "column 'a' is entirely null",
    ),
    "all-null string column": (
        pd.DataFrame({"a": pd.array([None, None], dtype="string"), "b": ["CA", "NY"]}),
        "column 'a' is entirely null",
    ),
}

# Every public step factory of tdm.transforms, on the columns the hostile frames have.
STEPS: dict[str, Pipe] = {
    "select": T.select(["a", "b"]),
    "drop": T.drop("a"),
    "rename_columns": T.rename_columns({"a": "z"}),
    "cast": T.cast({"a": "int64"}),
    "assign": T.assign(c=lambda d: d["a"] + 1),
    "with_columns": T.with_columns({"c": "a * 2"}),
    "append_date_column": T.append_date_column("d"),
    "add_date_from_filename": T.add_date_from_filename(source_column="b", missing="null"),
    "map_values": T.map_values("a", {1: 10}),
    "standardize_us_state": T.standardize_us_state("b"),
    "filter_rows": T.filter_rows("a > 1"),
    "drop_nulls": T.drop_nulls("a"),
    "deduplicate": T.deduplicate("a"),
    "sort": T.sort("a"),
    "limit": T.limit(1),
    "sample": T.sample(1),
    "flatten_json": T.flatten_json(),
    "explode": T.explode("a"),
    "pivot": T.pivot(index="b", columns="a", values="a"),
    "unpivot": T.unpivot("b"),
    "aggregate": T.aggregate("b", {"total": ("a", "sum")}),
    "group_by": T.group_by("b").agg(total=("a", "sum")),
    "expect_columns": T.expect_columns(["a", "b"]),
    "expect_schema": T.expect_schema({"a": "int64"}),
    "expect_not_empty": T.expect_not_empty(),
    "expect_unique": T.expect_unique("a"),
    "expect_no_nulls": T.expect_no_nulls("a"),
    "expect_values_in": T.expect_values_in("a", [1, 2, 3]),
    "expect_range": T.expect_range("a", min=0, max=5),
    "guard": T.guard("a.sum() > 0"),
    "skip_if_empty": T.skip_if_empty(),
    "when": T.when(lambda d: len(d) > 0, then=T.sort("a")),
    "join": T.join(on="a"),
    "concat": T.concat(),
    "union": T.union(strict=True),
}


def test_every_public_step_factory_is_covered() -> None:
    factories = {
        name
        for name in T.__all__
        if name[0].islower() and name not in ("flatten_record",)  # a plain dict -> dict helper
    }
    assert factories == set(STEPS)


@pytest.mark.parametrize("step_name", sorted(STEPS))
@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_a_failure_on_a_hostile_frame_names_the_problem(hostile: str, step_name: str) -> None:
    frame, problem = HOSTILE[hostile]
    step = STEPS[step_name]
    frames = (frame,) if step.arity == 1 else (frame, frame)
    result = step.apply(frames)
    if isinstance(result, Success):
        assert isinstance(result.unwrap(), pd.DataFrame)
        return
    assert isinstance(result, Failure)
    error = result.failure()
    if isinstance(error, Skip):  # a guard stopping its branch on purpose is not a failure
        return
    assert problem in error.message, error.message
    assert error.message.index(problem) < 40 + len(step_name), "the problem comes first"


def test_the_problem_reaches_the_run_report() -> None:
    frame, problem = HOSTILE["duplicate columns"]
    report = tdm.run(tdm.inputs.frame("x") >> T.expect_schema({"a": "int64"}), inputs={"x": frame})
    node = report.nodes["expect_schema"]
    assert node.status is Status.FAILURE
    assert node.error is not None and problem in node.error.message
    assert "has no attribute" in node.error.message  # pandas' own words follow, for the record


def test_an_all_null_column_the_step_does_not_touch_is_not_blamed() -> None:
    frame = pd.DataFrame({"a": [1, 2], "empty": [None, None]})
    message = T.select(["missing"]).apply((frame,)).failure().message
    assert "entirely null" not in message and "'missing'" in message


def test_a_healthy_frame_keeps_the_plain_message() -> None:
    message = T.select(["missing"]).apply((pd.DataFrame({"a": [1]}),)).failure().message
    assert message.startswith("column ['missing'] not found")
