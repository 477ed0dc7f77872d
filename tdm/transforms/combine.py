"""Steps that combine several frames: :func:`join`, :func:`concat` and its alias :func:`union`.

Each factory has two forms: called with options only it returns the step
(``join(on="k")``); called with inputs it connects pipelines (``join(a, b, on="k")``) or, given
frames, runs at once and returns a ``Result``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import pandas as pd
from returns.result import Result

from tdm._types import Frame
from tdm.core.factories import transform
from tdm.core.pipe import Op, Pipe, PipeError, StepResult
from tdm.core.pipeline import Pipeline
from tdm.transforms._common import as_list, fail, show

__all__ = ["concat", "join", "union"]

How = Literal["inner", "left", "right", "outer", "cross"]
Validate = Literal["one_to_one", "one_to_many", "many_to_one", "many_to_many"] | None

_UNIQUE_SIDES = {
    "one_to_one": ("left", "right"),
    "1:1": ("left", "right"),
    "one_to_many": ("left",),
    "1:m": ("left",),
    "many_to_one": ("right",),
    "m:1": ("right",),
    "many_to_many": (),
    "m:m": (),
}


def _duplicate_keys(frame: pd.DataFrame, keys: list[Any], side: str, validate: str) -> str | None:
    repeated = frame.duplicated(subset=keys, keep=False)
    if not bool(repeated.any()):
        return None
    dup = frame.loc[repeated, keys]
    values = dup.drop_duplicates().head(10)
    shown = [
        row[0] if len(keys) == 1 else tuple(row)
        for row in values.itertuples(index=False, name=None)
    ]
    distinct = len(dup.drop_duplicates())
    return (
        f"join(validate={validate!r}) failed: the {side} frame repeats {distinct} key "
        f"value(s) of {keys} in {int(repeated.sum())} rows, e.g. {show(shown)}; deduplicate "
        f"that side first or relax validate= (e.g. 'many_to_one')"
    )


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
) -> StepResult:
    keys = as_list(on)
    left_keys = keys or as_list(left_on)
    right_keys = keys or as_list(right_on)
    if how != "cross" and not left_keys and not right_keys:
        common = [c for c in left.columns if c in right.columns]
        if not common:
            return fail(
                f"no join keys: pass on= (or left_on=/right_on=); the frames share no column "
                f"(left {show(left.columns)}, right {show(right.columns)})"
            )
        left_keys = right_keys = common
    if len(left_keys) != len(right_keys):
        return fail(
            f"left_on has {len(left_keys)} column(s) but right_on has {len(right_keys)}; "
            "give as many on each side"
        )
    for side, frame, cols in (("left", left, left_keys), ("right", right, right_keys)):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            return fail(
                f"join key(s) {show(missing)} not in the {side} frame; its columns are "
                f"{show(frame.columns, 30)}"
            )
    if validate is not None:
        if validate not in _UNIQUE_SIDES:
            return fail(
                f"validate={validate!r} is not one of one_to_one, one_to_many, many_to_one, "
                "many_to_many"
            )
        for side in _UNIQUE_SIDES[validate]:
            frame, cols = (left, left_keys) if side == "left" else (right, right_keys)
            problem = _duplicate_keys(frame, cols, side, validate)
            if problem:
                return fail(problem)
    try:
        if how == "cross":
            return left.merge(right, how="cross", suffixes=suffixes)
        return left.merge(
            right,
            how=how,
            on=keys or None,
            left_on=None if keys else left_keys,
            right_on=None if keys else right_keys,
            suffixes=suffixes,
        )
    except ValueError as exc:
        if "trying to merge on" not in str(exc):
            raise
        pairs = ", ".join(
            f"{lk!r} {left[lk].dtype} vs {rk!r} {right[rk].dtype}"
            for lk, rk in zip(left_keys, right_keys, strict=True)
        )
        return fail(
            f"join keys have incompatible types ({pairs}); cast one side first, "
            "e.g. cast({'key': 'int64'}) or cast({'key': 'str'})"
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
    frames).

    Args:
        on: key column(s) present in both frames (default: the columns they share).
        how: ``"inner"`` (default), ``"left"``, ``"right"``, ``"outer"`` or ``"cross"``.
        left_on / right_on: key columns named differently on each side.
        suffixes: appended to clashing non-key column names, ``("_x", "_y")`` by default.
        validate: ``"one_to_one"``, ``"one_to_many"``, ``"many_to_one"`` or
            ``"many_to_many"``: a failure listing the repeated keys if a side that must be
            unique is not.

    >>> import pandas as pd
    >>> left = pd.DataFrame({"k": [1, 2], "a": ["x", "y"]})
    >>> right = pd.DataFrame({"k": [2, 3], "b": [True, False]})
    >>> join(left, right, on="k").unwrap().to_dict("records")
    [{'k': 2, 'a': 'y', 'b': True}]
    >>> join(left, right, on="k", how="left").unwrap()["b"].tolist()
    [nan, True]
    >>> twice = pd.DataFrame({"k": [2, 2], "b": [True, False]})
    >>> result = join(left, twice, on="k", validate="one_to_one")
    >>> print(result.failure())  # doctest: +NORMALIZE_WHITESPACE
    join: join(validate='one_to_one') failed: the right frame repeats 1 key value(s) of ['k']
    in 2 rows, e.g. [2]; deduplicate that side first or relax validate= (e.g. 'many_to_one')
    """
    step = _join(**options)
    if not inputs:
        return step
    if len(inputs) != 2:
        raise TypeError(f"join takes two inputs (left, right), got {len(inputs)}")
    return step(*inputs)


def _concat_frames(frames: tuple[pd.DataFrame, ...], strict: bool) -> StepResult:
    if strict:
        first = list(frames[0].columns)
        for k, frame in enumerate(frames[1:], start=2):
            cols = list(frame.columns)
            extra = [c for c in cols if c not in first]
            missing = [c for c in first if c not in cols]
            if extra or missing:
                return fail(
                    f"input {k} does not match input 1's columns: extra {show(extra)}, "
                    f"missing {show(missing)}; align them first (select/rename_columns) or "
                    "use strict=False to fill the gaps with nulls"
                )
            differ = [
                f"{c!r} {frames[0][c].dtype} vs {frame[c].dtype}"
                for c in first
                if frames[0][c].dtype != frame[c].dtype
            ]
            if differ:
                return fail(
                    f"input {k} has other dtypes than input 1: {', '.join(differ[:10])}; "
                    "cast them first or use strict=False"
                )
    return pd.concat(frames, ignore_index=True, sort=False)


@transform(name="concat")
def _concat(*frames: pd.DataFrame, strict: bool = False) -> StepResult:
    return _concat_frames(frames, strict)


@transform(name="union")
def _union(*frames: pd.DataFrame, strict: bool = False) -> StepResult:
    return _concat_frames(frames, strict)


@overload
def concat(*, strict: bool = ...) -> Pipe: ...


@overload
def concat(*inputs: Frame, strict: bool = ...) -> Result[Frame, PipeError]: ...


@overload
def concat(*inputs: Pipeline | Op, strict: bool = ...) -> Pipeline: ...


def concat(*inputs: Any, strict: bool = False) -> Any:
    """Stack frames vertically, aligning columns by name (missing ones become null).

    ``strict=True`` fails unless every input has the same columns (checked both ways) with the
    same dtypes. ``concat()`` is the step; ``concat(a, b, c)`` connects pipelines (or runs on
    frames). The row index of the result is ``0..n-1``.

    >>> import pandas as pd
    >>> a, b = pd.DataFrame({"x": [1], "y": [2]}), pd.DataFrame({"y": [3], "x": [4]})
    >>> concat(a, b).unwrap().to_dict("list")
    {'x': [1, 4], 'y': [2, 3]}
    >>> result = concat(a, pd.DataFrame({"x": [0]}), strict=True)
    >>> print(result.failure())  # doctest: +NORMALIZE_WHITESPACE
    concat: input 2 does not match input 1's columns: extra [], missing ['y'];
    align them first (select/rename_columns) or use strict=False to fill the gaps with nulls
    """
    step = _concat(strict=strict)
    return step(*inputs) if inputs else step


@overload
def union(*, strict: bool = ...) -> Pipe: ...


@overload
def union(*inputs: Frame, strict: bool = ...) -> Result[Frame, PipeError]: ...


@overload
def union(*inputs: Pipeline | Op, strict: bool = ...) -> Pipeline: ...


def union(*inputs: Any, strict: bool = False) -> Any:
    """The same as :func:`concat` (the original tdm's ``Union``), under its own step name.

    >>> import pandas as pd
    >>> a, b = pd.DataFrame({"k": [1], "x": [0]}), pd.DataFrame({"k": [2]})
    >>> union(a, b).unwrap().to_dict("list")
    {'k': [1, 2], 'x': [0.0, nan]}
    >>> print(union(a, b, strict=True).failure())  # doctest: +NORMALIZE_WHITESPACE
    union: input 2 does not match input 1's columns: extra [], missing ['x'];
    align them first (select/rename_columns) or use strict=False to fill the gaps with nulls
    """
    step = _union(strict=strict)
    return step(*inputs) if inputs else step
