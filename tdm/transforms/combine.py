"""Steps that combine several frames: :func:`join` and :func:`concat`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import pandas as pd
from returns.result import Result

from tdm._types import Frame
from tdm.core.pipe import Op, Pipe, PipeError, transform
from tdm.core.pipeline import Pipeline

__all__ = ["concat", "join"]

How = Literal["inner", "left", "right", "outer", "cross"]
Validate = Literal["one_to_one", "one_to_many", "many_to_one", "many_to_many"] | None


@transform(name="join")
def _join(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    on: str | Sequence[str] | None = None,
    how: How = "inner",
    left_on: str | Sequence[str] | None = None,
    right_on: str | Sequence[str] | None = None,
    suffixes: tuple[str, str] = ("_x", "_y"),
    validate: Validate = None,
) -> pd.DataFrame:
    keys = [on] if isinstance(on, str) else list(on or [])
    for side, frame, cols in (
        ("left", left, keys or ([left_on] if isinstance(left_on, str) else list(left_on or []))),
        (
            "right",
            right,
            keys or ([right_on] if isinstance(right_on, str) else list(right_on or [])),
        ),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise KeyError(
                f"join key(s) {missing} not in the {side} frame; "
                f"its columns are {list(frame.columns)}"
            )
    return left.merge(
        right,
        how=how,
        on=on,
        left_on=left_on,
        right_on=right_on,
        suffixes=suffixes,
        validate=validate,
    )


@overload
def join(*, on: Any = ..., how: How = ..., **options: Any) -> Pipe: ...


@overload
def join(left: Frame, right: Frame, /, **options: Any) -> Result[Frame, PipeError]: ...


@overload
def join(left: Pipeline | Op, right: Pipeline | Op, /, **options: Any) -> Pipeline: ...


def join(*inputs: Any, **options: Any) -> Any:
    """Join two frames on key columns (``pandas.merge`` semantics).

    ``join(on=...)`` is the step; ``join(a, b, on=...)`` connects two pipelines (or runs on two
    frames). Options: ``on``, ``how`` (inner, left, right, outer, cross), ``left_on``,
    ``right_on``, ``suffixes``, ``validate`` (``"one_to_one"``...: a failure if keys repeat).

    >>> import pandas as pd
    >>> left = pd.DataFrame({"k": [1, 2], "a": ["x", "y"]})
    >>> right = pd.DataFrame({"k": [2, 3], "b": [True, False]})
    >>> join(left, right, on="k").unwrap().to_dict("records")
    [{'k': 2, 'a': 'y', 'b': True}]
    >>> join(left, right, on="k", how="left").unwrap()["b"].tolist()
    [nan, True]
    """
    step = _join(**options)
    if not inputs:
        return step
    if len(inputs) != 2:
        raise TypeError(f"join takes two inputs (left, right), got {len(inputs)}")
    return step(*inputs)


@transform(name="concat")
def _concat(*frames: pd.DataFrame, strict: bool = False) -> pd.DataFrame:
    if strict:
        first = list(frames[0].columns)
        for k, frame in enumerate(frames[1:], start=2):
            cols = list(frame.columns)
            if set(cols) != set(first):
                extra = sorted(set(cols) - set(first))
                missing = sorted(set(first) - set(cols))
                raise ValueError(
                    f"input {k} does not match input 1's columns: extra {extra}, missing "
                    f"{missing}; align them first or use concat(strict=False) to fill with nulls"
                )
    return pd.concat(frames, ignore_index=True, sort=False)


@overload
def concat(*, strict: bool = ...) -> Pipe: ...


@overload
def concat(*inputs: Frame, strict: bool = ...) -> Result[Frame, PipeError]: ...


@overload
def concat(*inputs: Pipeline | Op, strict: bool = ...) -> Pipeline: ...


def concat(*inputs: Any, strict: bool = False) -> Any:
    """Stack frames vertically, aligning columns by name (missing ones become null).

    ``strict=True`` fails unless every input has the same columns. ``concat()`` is the step;
    ``concat(a, b, c)`` connects pipelines (or runs on frames).

    >>> import pandas as pd
    >>> a, b = pd.DataFrame({"x": [1], "y": [2]}), pd.DataFrame({"y": [3], "x": [4]})
    >>> concat(a, b).unwrap().to_dict("list")
    {'x': [1, 4], 'y': [2, 3]}
    >>> concat(a, pd.DataFrame({"z": [0]}), strict=True).failure().message[:40]
    'ValueError: input 2 does not match input'
    """
    step = _concat(strict=strict)
    return step(*inputs) if inputs else step
