"""Errors that point at the fix: factory arguments are checked where the step is written."""

from __future__ import annotations

import pandas as pd
import pytest

import tdm
from tdm.errors import DefinitionError, StepArgumentError
from tdm.transforms import aggregate, filter_rows, limit, rename_columns, select


@tdm.transform
def throttle(df: pd.DataFrame, *, rate: float, burst: int = 1) -> pd.DataFrame:
    return df


def test_misspelled_keyword_names_the_close_match() -> None:
    with pytest.raises(StepArgumentError) as info:
        throttle(rat=3.0)
    message = str(info.value)
    assert "unexpected 'rat' (did you mean 'rate'?)" in message
    assert "missing" not in message.split(";")[0]


def test_unknown_keyword_without_a_close_match_lists_what_is_accepted() -> None:
    with pytest.raises(StepArgumentError, match=r"unexpected 'zzz'; it accepts 'rate', 'burst'"):
        throttle(rate=1.0, zzz=2)


def test_step_argument_error_is_a_definition_error_and_a_type_error() -> None:
    with pytest.raises(DefinitionError):
        throttle(rat=1.0)
    with pytest.raises(TypeError):
        throttle(rat=1.0)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: rename_columns(["a", "b"]), r"mapping=\['a', 'b'\] is a list, expected Mapping"),
        (lambda: limit(n="abc"), r"n='abc' is a str, expected int"),
        (lambda: select(columns=3), r"columns=3 is an int"),
        (lambda: throttle(rate="fast"), r"rate='fast' is a str, expected float"),
    ],
)
def test_obvious_argument_mistakes_fail_when_the_step_is_built(build, expected) -> None:
    with pytest.raises(StepArgumentError, match=expected):
        build()


def test_good_arguments_still_build_equal_steps() -> None:
    assert rename_columns({"a": "b"}) == rename_columns({"a": "b"})
    assert limit(3) == limit(n=3)
    assert throttle(rate=2) == throttle(rate=2)  # an int is a fine float


def test_ambiguous_auto_names_fail_and_list_the_names() -> None:
    p = (
        tdm.inputs.frame("orders")
        >> filter_rows("a > 0")
        >> filter_rows("a > 1")
        >> filter_rows("a > 2")
    )
    report = tdm.run(p, inputs={"orders": pd.DataFrame({"a": [1, 2, 3, 4]})})
    assert report.ok
    with pytest.raises(KeyError) as info:
        report.nodes["filter_rows"]
    text = str(info.value)
    for name in ("'filter_rows'", "'filter_rows_2'", "'filter_rows_3'"):
        assert name in text
    assert ".named(" in text
    assert report.nodes["filter_rows_2"].rows_out == 3
    assert report.nodes["filter_rows_3"].rows_out == 2
    assert report.output["a"].tolist() == [3, 4]


def test_explicit_names_are_not_ambiguous() -> None:
    p = tdm.inputs.frame("x") >> filter_rows("a > 0").named("positive") >> filter_rows("a > 1")
    report = tdm.run(p, inputs={"x": pd.DataFrame({"a": [1, 2]})})
    assert report.nodes["filter_rows"].rows_out == 1
    assert report.nodes["positive"].rows_out == 2


def test_yaml_style_named_aggregation_equals_the_python_tuple_form() -> None:
    df = pd.DataFrame({"team": ["a", "a", "b"], "number": [1, 2, 3]})
    yaml_form = aggregate("team", {"incident_count": {"column": "number", "func": "size"}})
    python_form = aggregate("team", {"incident_count": ("number", "size")})
    assert yaml_form(df).unwrap().equals(python_form(df).unwrap())
    assert yaml_form(df).unwrap()["incident_count"].tolist() == [2, 1]


def test_ambiguous_list_aggregation_fails_at_build_time_with_the_fix() -> None:
    with pytest.raises(StepArgumentError) as info:
        aggregate("team", {"incident_count": ["number", "size"]})
    text = str(info.value)
    assert "'number' is not an aggregation function" in text
    assert "{'incident_count': {'column': 'number', 'func': 'size'}}" in text


def test_list_of_functions_still_means_several_aggregations() -> None:
    df = pd.DataFrame({"team": ["a", "a"], "n": [1, 3]})
    out = aggregate("team", {"n": ["min", "max"]})(df).unwrap()
    assert out.columns.tolist() == ["team", "n_min", "n_max"]


def test_named_aggregation_needs_exactly_column_and_func() -> None:
    with pytest.raises(StepArgumentError, match="exactly the keys 'column' and 'func'"):
        aggregate("team", {"x": {"column": "n"}})
