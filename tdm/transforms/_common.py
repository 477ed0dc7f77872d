"""Helpers shared by the transform modules (private)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeAlias

import pandas as pd
from returns.result import Failure

from tdm.core.pipe import PipeError
from tdm.core.pushdown import value_names

RowPredicate: TypeAlias = "str | Callable[[pd.DataFrame], Any]"
"""A row condition: a pandas query string (``"amount > 0"``) or ``df -> bool Series``."""

FramePredicate: TypeAlias = "str | Callable[[pd.DataFrame], Any]"
"""A frame condition: a pandas eval string (``"amount.sum() > 0"``) or ``df -> bool``."""

Columns: TypeAlias = "str | Sequence[str]"


def fail(message: str) -> Failure[PipeError]:
    """A failure attributed to the current step (the wrapper fills in the step's name)."""
    return Failure(PipeError("", message))


def as_list(columns: Hashable | Iterable[Hashable] | None) -> list[Any]:
    """``"a"`` -> ``["a"]``; a sequence -> a list; ``None`` -> ``[]``."""
    if columns is None:
        return []
    if isinstance(columns, str | bytes) or not isinstance(columns, Iterable):
        return [columns]
    return list(columns)


def show(values: Iterable[Any], limit: int = 10) -> str:
    """A short, readable list of values for messages."""
    items = list(values)
    text = ", ".join(repr(v) for v in items[:limit])
    more = len(items) - limit
    return f"[{text}{f', ... ({more} more)' if more > 0 else ''}]"


def missing_columns(df: pd.DataFrame, wanted: Iterable[Any], what: str = "column") -> str | None:
    """A message naming the columns of ``wanted`` that ``df`` lacks, or None."""
    missing = [c for c in wanted if c not in df.columns]
    if not missing:
        return None
    plural = "s" if len(missing) > 1 else ""
    return (
        f"{what}{plural} {show(missing)} not found; the frame's columns are {show(df.columns, 30)}"
    )


def describe_expr(expr: Any) -> str:
    """A short name for a predicate or expression (for messages)."""
    if isinstance(expr, str):
        return repr(expr)
    name = getattr(expr, "__qualname__", None) or getattr(expr, "__name__", None)
    return f"{name}()" if name else repr(expr)


class ExpressionError(ValueError):
    """An expression string names something the frame does not have, or is not valid."""


def eval_expression(df: pd.DataFrame, expr: str) -> Any:
    """``df.eval(expr)`` with errors that list the frame's columns and say how to quote them."""
    try:
        columns = _plain_names(df, expr)
        if columns is not None:
            return pd.eval(expr, resolvers=[columns], target=df)
        return df.eval(expr)
    except pd.errors.UndefinedVariableError as exc:
        name = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
        spaced = [c for c in df.columns if isinstance(c, str) and not c.isidentifier()]
        quote = (
            f"; quote names that are not identifiers with backticks, e.g. `{spaced[0]}`"
            if spaced
            else ""
        )
        raise ExpressionError(
            f"expression {expr!r} uses {name!r}, which is not a column; the frame's columns "
            f"are {show(df.columns, 30)}{quote} (strings need quotes: \"state == 'TX'\")"
        ) from None
    except SyntaxError as exc:
        raise ExpressionError(
            f"expression {expr!r} is not valid: {exc.msg}; expressions are pandas eval/query "
            "syntax: comparisons, and/or/not, arithmetic, column methods such as "
            "amount.sum() or name.str.startswith('A')"
        ) from None


def _plain_names(df: pd.DataFrame, expr: str) -> dict[str, pd.Series] | None:
    """The columns an expression names, when they are all it can mean (None: use ``df.eval``).

    ``df.eval`` also offers the index (and its levels) by name, and builds that Series on
    every call: a copy of the index, as costly as a column. An expression of plain names,
    none of them the index, gets the same values from its columns alone.
    """
    names = value_names(expr)
    if names is None or "index" in names or names & set(df.index.names):
        return None
    if isinstance(df.columns, pd.MultiIndex) or not df.columns.is_unique:
        return None
    return {n: df[n] for n in names if n in df.columns}


def row_mask(df: pd.DataFrame, predicate: RowPredicate) -> pd.Series:
    """Evaluate a row predicate into a boolean Series aligned with ``df`` (nulls count False)."""
    if isinstance(predicate, str):
        result = eval_expression(df, predicate)
    elif callable(predicate):
        result = predicate(df)
    else:
        raise TypeError(
            f"a row predicate must be a query string or a function df -> bool Series, "
            f"got {type(predicate).__name__}"
        )
    if isinstance(result, bool) or pd.api.types.is_scalar(result):
        return pd.Series(bool(result), index=df.index)
    if not isinstance(result, pd.Series):
        result = pd.Series(result, index=df.index)
    if len(result) != len(df):
        raise ValueError(
            f"predicate {describe_expr(predicate)} returned {len(result)} values for {len(df)} rows"
        )
    if not (pd.api.types.is_bool_dtype(result.dtype) or result.isna().all()):
        raise TypeError(
            f"predicate {describe_expr(predicate)} returned {result.dtype} values, "
            'not booleans; compare something, e.g. "amount > 0"'
        )
    return result.fillna(False).astype(bool)


def frame_truth(df: pd.DataFrame, predicate: FramePredicate) -> bool:
    """Evaluate a frame predicate to a single bool."""
    if isinstance(predicate, str):
        result = eval_expression(df, predicate)
    elif callable(predicate):
        result = predicate(df)
    else:
        raise TypeError(
            f"a frame predicate must be an eval string or a function df -> bool, "
            f"got {type(predicate).__name__}"
        )
    if isinstance(result, pd.Series | pd.DataFrame):
        raise TypeError(
            f"predicate {describe_expr(predicate)} returned a {type(result).__name__} "
            f"of {len(result)} values; a frame predicate must return one bool: reduce it "
            'with .any() or .all() (e.g. "(amount > 0).all()")'
        )
    try:
        return bool(result)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"predicate {describe_expr(predicate)} returned {type(result).__name__}, not a bool"
        ) from exc
