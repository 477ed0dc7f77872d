"""Expression strings (filter_rows, assign, when, guard): errors list the frame's columns."""

from __future__ import annotations

import pandas as pd

from tdm.transforms import assign, filter_rows, guard, when


def test_undefined_name_in_filter_lists_columns_and_backticks() -> None:
    df = pd.DataFrame({"amount": [1, 2], "unit price": [3, 4]})
    failure = filter_rows("amout > 1")(df).failure()
    assert "uses 'amout', which is not a column" in failure.message
    assert "['amount', 'unit price']" in failure.message
    assert "`unit price`" in failure.message


def test_undefined_name_in_assign_and_predicates() -> None:
    df = pd.DataFrame({"a": [1]})
    assert "which is not a column" in assign(b="c * 2")(df).failure().message
    assert "['a']" in guard("x.sum() > 0")(df).failure().message
    assert "which is not a column" in when("x.any()", then=assign(b="a"))(df).failure().message


def test_method_calls_work_in_expressions() -> None:
    df = pd.DataFrame({"name": ["Ann", "Bob"], "amount": [1, 5]})
    assert filter_rows("name.str.startswith('A')")(df).unwrap()["name"].tolist() == ["Ann"]
    assert guard("amount.sum() > 5")(df).unwrap()["amount"].tolist() == [1, 5]


def test_syntax_error_says_what_the_language_is() -> None:
    failure = filter_rows("a >")(pd.DataFrame({"a": [1]})).failure()
    assert "is not valid" in failure.message
    assert "pandas eval/query syntax" in failure.message
