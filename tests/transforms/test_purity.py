"""No transform modifies its input frame (the original AppendDateColumn did), for every factory."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import hypothesis.strategies as st
import pandas as pd
from hypothesis import HealthCheck, given, settings

import tdm
import tdm.transforms as T

CTX = tdm.RunContext(started_at=datetime(2026, 1, 2, tzinfo=UTC))

ONE_INPUT: dict[str, list[tdm.Pipe]] = {
    "select": [T.select(["state", "id"]), T.select(["id", "zz"], strict=False)],
    "drop": [T.drop("tags")],
    "rename_columns": [T.rename_columns({"id": "ID", "state": "st"})],
    "cast": [T.cast({"id": "float64"}), T.cast({"amount": "Int64"}, errors="null")],
    "assign": [T.assign(twice="id * 2", upper=lambda d: d["state"].str.upper())],
    "with_columns": [T.with_columns(id=0)],
    "append_date_column": [T.append_date_column(), T.append_date_column("d", fmt="%Y")],
    "add_date_from_filename": [T.add_date_from_filename(missing="null")],
    "map_values": [T.map_values("state", {"Texas": "TX"}, default="?")],
    "standardize_us_state": [T.standardize_us_state(unknown="null")],
    "filter_rows": [T.filter_rows("id > 0"), T.filter_rows(lambda d: d["state"].notna())],
    "drop_nulls": [T.drop_nulls(), T.drop_nulls("state")],
    "deduplicate": [T.deduplicate(["id"]), T.deduplicate("state", keep="none")],
    "sort": [T.sort(["state", "id"], descending=[True, False])],
    "limit": [T.limit(2, offset=1)],
    "sample": [T.sample(frac=0.5, seed=3)],
    "flatten_json": [T.flatten_json(), T.flatten_json("meta", lists=False)],
    "explode": [T.explode("tags")],
    "pivot": [T.pivot("id", "state", "amount", agg="sum")],
    "unpivot": [T.unpivot("id", ["amount"])],
    "aggregate": [T.aggregate("state", {"total": ("amount", "sum"), "rows": "size"})],
    "group_by": [T.group_by("state").agg(n="size")],
    "expect_columns": [T.expect_columns(["id"], exact=True)],
    "expect_schema": [T.expect_schema({"id": "integer"})],
    "expect_not_empty": [T.expect_not_empty()],
    "expect_unique": [T.expect_unique("id")],
    "expect_no_nulls": [T.expect_no_nulls()],
    "expect_values_in": [T.expect_values_in("state", ["TX"])],
    "expect_range": [T.expect_range("amount", min=0)],
    "when": [T.when("id.sum() > 3", then=T.append_date_column(), otherwise=T.drop("tags"))],
    "guard": [T.guard(lambda d: len(d) > 2)],
    "skip_if_empty": [T.skip_if_empty()],
}
TWO_INPUTS: dict[str, list[tdm.Pipe]] = {
    "join": [T.join(on="id", how="left"), T.join(on="id", validate="one_to_one")],
    "concat": [T.concat(), T.concat(strict=True)],
    "union": [T.union()],
}
NOT_STEPS = {"KEEP", "US_STATE_CODES", "GroupBy", "ValidationError", "flatten_record"}


def test_every_public_factory_is_covered() -> None:
    assert set(T.__all__) - NOT_STEPS == set(ONE_INPUT) | set(TWO_INPUTS)


row = st.fixed_dictionaries(
    {
        "id": st.integers(-3, 3),
        "state": st.one_of(st.none(), st.sampled_from(["Texas", "tx", "Calif.", "Narnia"])),
        "amount": st.one_of(st.none(), st.floats(-10, 10, allow_nan=False)),
        "tags": st.lists(st.sampled_from(["a", "b"]), max_size=2),
        "meta": st.fixed_dictionaries({"os": st.sampled_from(["ios", "android"])}),
        "source_file": st.sampled_from(["d_2026-01-01.csv", "nodate.csv"]),
    }
)
frames = st.lists(row, max_size=6).map(
    lambda rows: pd.DataFrame(
        rows, columns=["id", "state", "amount", "tags", "meta", "source_file"]
    ).astype({"id": "int64", "amount": "float64"})
)


def _check_untouched(step: tdm.Pipe, *inputs: pd.DataFrame) -> None:
    before = [(copy.deepcopy(df), dict(df.attrs), list(df.columns)) for df in inputs]
    step.apply(inputs, CTX)
    for df, (frame, attrs, columns) in zip(inputs, before, strict=True):
        assert list(df.columns) == columns, step
        assert df.attrs == attrs, step
        pd.testing.assert_frame_equal(df, frame, obj=repr(step))


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(frames, frames)
def test_no_transform_mutates_its_input(df: pd.DataFrame, other: pd.DataFrame) -> None:
    df.attrs["source_path"] = "s3://b/x_2026-02-03.csv"
    for steps in ONE_INPUT.values():
        for step in steps:
            _check_untouched(step, df)
    for steps in TWO_INPUTS.values():
        for step in steps:
            _check_untouched(step, df, other)


def test_steps_succeed_on_a_typical_frame() -> None:
    """The purity test must exercise real work, not just early failures."""
    df = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "state": ["Texas", "tx", None],
            "amount": [1.0, 2.0, 3.0],
            "tags": [["a"], [], ["a", "b"]],
            "meta": [{"os": "ios"}] * 3,
            "source_file": ["d_2026-01-01.csv"] * 3,
        }
    )
    failing = {"expect_no_nulls", "expect_values_in", "expect_columns"}  # by design here
    for name, steps in ONE_INPUT.items():
        for step in steps:
            result = step.apply((df,), CTX)
            assert (result.value_or(None) is None) == (name in failing), (name, result)
