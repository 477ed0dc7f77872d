from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from returns.result import Failure, Success

import tdm
from tdm import PipeError, RunContext, transform, transform_with_context
from tdm.core.pipe import VARIADIC


@transform
def add_total(df: pd.DataFrame, *, cols: list[str], out: str = "total") -> pd.DataFrame:
    return df.assign(**{out: df[cols].sum(axis=1)})


@transform
def scale(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    return df * factor


@transform
def merge_on(left: pd.DataFrame, right: pd.DataFrame, *, on: str) -> pd.DataFrame:
    return left.merge(right, on=on)


@transform
def checked(df: pd.DataFrame, *, column: str) -> tdm.Frame | Failure[PipeError]:
    if column not in df:
        return Failure(PipeError("", f"missing {column!r}"))
    return df


@transform
def not_a_frame(df: pd.DataFrame) -> pd.DataFrame:
    return 42  # type: ignore[return-value]


@transform_with_context
def stamp(df: pd.DataFrame, context: RunContext, *, column: str = "at") -> pd.DataFrame:
    return df.assign(**{column: context.started_at})


def test_call_returns_success_with_the_new_frame(orders: pd.DataFrame) -> None:
    result = add_total(cols=["a", "b"])(orders)
    assert isinstance(result, Success)
    assert result.unwrap()["total"].tolist() == [11, 22, 33]


def test_exception_in_body_becomes_failure_naming_step_and_cause(orders: pd.DataFrame) -> None:
    result = add_total(cols=["a", "nope"])(orders)
    assert isinstance(result, Failure)
    err = result.failure()
    assert err.step == "add_total"
    assert "KeyError" in err.message and "nope" in err.message
    assert isinstance(err.cause, KeyError)


def test_body_may_return_a_result_and_failures_get_the_step_name(orders: pd.DataFrame) -> None:
    assert checked(column="a")(orders).unwrap() is orders
    err = checked(column="zz")(orders).failure()
    assert err.step == "checked" and "zz" in err.message


def test_wrong_return_type_is_a_clear_failure(orders: pd.DataFrame) -> None:
    err = not_a_frame()(orders).failure()
    assert "returned int, expected a pandas DataFrame" in err.message


def test_equal_params_give_equal_hashable_pipes() -> None:
    assert add_total(cols=["a", "b"]) == add_total(cols=["a", "b"], out="total")
    assert hash(add_total(cols=["a", "b"])) == hash(add_total(cols=["a", "b"]))
    assert add_total(cols=["a", "b"]) != add_total(cols=["b", "a"])
    assert len({add_total(cols=["a"]), add_total(cols=["a"]), add_total(cols=["b"])}) == 2


def test_positional_params_and_readable_repr() -> None:
    assert repr(scale(2)) == "scale(factor=2)"
    assert repr(add_total(cols=["a"], out="t")) == "add_total(cols=['a'], out='t')"
    assert repr(scale(2).named("twice")) == "scale(factor=2).named('twice')"


def test_bad_factory_arguments_raise_type_error_with_signature() -> None:
    with pytest.raises(TypeError, match=r"add_total\(\).*signature is add_total\(\*, cols"):
        add_total(colz=["a"])  # type: ignore[call-arg]


def test_multi_frame_transform_has_arity_two(orders: pd.DataFrame) -> None:
    step = merge_on(on="id")
    assert step.arity == 2
    assert step(orders, orders[["id"]]).unwrap().shape == (3, 3)
    assert "takes 2 input frame(s) but got 1" in step.apply((orders,)).failure().message


def test_variadic_concat_arity() -> None:
    assert tdm.concat().arity == VARIADIC


def test_pipes_pickle_by_factory_reference() -> None:
    step = add_total(cols=["a", "b"]).named("sum_ab")
    clone = pickle.loads(pickle.dumps(step))
    assert clone == step and clone.name == "sum_ab"


def test_context_step_uses_the_given_run_context(orders: pd.DataFrame) -> None:
    ctx = RunContext(started_at=datetime(2025, 5, 17, tzinfo=UTC), run_id="r")
    out = stamp()(orders, context=ctx).unwrap()
    assert (out["at"] == ctx.started_at).all()


def test_transform_requires_a_frame_parameter() -> None:
    with pytest.raises(TypeError, match="must take the input frame"):

        @transform
        def nothing() -> pd.DataFrame:  # type: ignore[misc]
            return pd.DataFrame()


def test_body_mutation_of_its_own_input_is_its_own_business(orders: pd.DataFrame) -> None:
    # a direct call hands the caller's frame over: the interpreter is what isolates siblings
    @transform
    def grow(df: pd.DataFrame) -> pd.DataFrame:
        df["new"] = 1
        return df

    assert "new" in grow()(orders.copy()).unwrap()


def test_named_is_the_same_step_built_under_that_name() -> None:
    import dataclasses

    step = add_total(cols=["a", "b"], out="sum")
    renamed = step.named("sum_ab")
    rebuilt = dataclasses.replace(step, name="sum_ab", explicit_name=True)
    assert renamed == rebuilt and hash(renamed) == hash(rebuilt)
    assert renamed != step and renamed.named("sum_ab") == renamed
    assert (renamed.params, renamed.call_kwargs, renamed.factory) == (
        step.params,
        step.call_kwargs,
        step.factory,
    )
    assert renamed.explicit_name and not step.explicit_name and step.name == "add_total"


@transform
def knobs(
    df: pd.DataFrame, first: int, /, second: str = "s", *rest: int, third: bool = False, **more: str
) -> pd.DataFrame:
    return df


@transform
def opts(df: pd.DataFrame, a: int = 1, *, b: str = "x", **more: str) -> pd.DataFrame:
    return df


@transform
def spread(df: pd.DataFrame, *cols: str, keep: bool = False) -> pd.DataFrame:
    return df


@pytest.mark.parametrize(
    ("factory", "args", "kwargs"),
    [
        (opts, (), {}),
        (opts, (), {"b": "y"}),
        (opts, (), {"b": "y", "a": 2}),
        (opts, (), {"c": "z"}),  # caught by **more: the general path
        (opts, (3,), {"d": "w"}),
        (spread, (), {"keep": True}),
        (spread, ("a", "b"), {}),
        (add_total, (), {"cols": ["a"]}),
        (add_total, (), {"out": "x", "cols": ["a"]}),  # keywords not in the signature's order
        (scale, (2,), {}),
        (scale, (), {"factor": 2}),
    ],
)
def test_calls_bind_like_the_signature(
    factory: Any, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    import inspect

    step = factory(*args, **kwargs)
    expected = inspect.signature(factory).bind(*args, **kwargs)
    expected.apply_defaults()
    assert step.params == tuple(expected.arguments.items())
    assert (step.call_args, dict(step.call_kwargs)) == (expected.args, expected.kwargs)


def test_positional_only_and_variadic_parameters_still_bind_by_the_signature() -> None:
    assert knobs(1).params == (
        ("first", 1),
        ("second", "s"),
        ("rest", ()),
        ("third", False),
        ("more", {}),
    )
    assert dict(knobs(1, "t", 2, 3, third=True, x="y").params)["more"] == {"x": "y"}
    with pytest.raises(tdm.errors.StepArgumentError, match="first"):
        knobs(first=1)
    with pytest.raises(tdm.errors.StepArgumentError, match="unexpected 'colz'"):
        add_total(cols=["a"], colz=1)
    with pytest.raises(tdm.errors.StepArgumentError, match="missing a required argument: 'cols'"):
        add_total(out="x")


def test_equal_mappings_make_equal_steps_whatever_their_order_or_key_types() -> None:
    from tdm.transforms import map_values, rename_columns

    assert rename_columns({"a": "x", "b": "y"}) == rename_columns({"b": "y", "a": "x"})
    assert hash(rename_columns({"a": "x", "b": "y"})) == hash(rename_columns({"b": "y", "a": "x"}))
    mixed, reordered = map_values("c", {1: "x", "a": "y"}), map_values("c", {"a": "y", 1: "x"})
    assert mixed == reordered and hash(mixed) == hash(reordered)
    assert map_values("c", {1: "x", "a": "y"}) != map_values("c", {1: "x", "a": "z"})
