"""Aggregation: ``aggregate(by=..., aggs=...)`` and its builder form ``group_by(...).agg(...)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tdm.core.factories import check_arguments, transform
from tdm.core.pipe import Pipe, StepResult
from tdm.transforms._common import as_list, fail, missing_columns, show

__all__ = ["GroupBy", "aggregate", "group_by"]

_GROUP = "__tdm_group__"


def _named(df: pd.DataFrame, by: list[Any], aggs: Mapping[str, Any]) -> dict[str, pd.NamedAgg]:
    """Normalise the accepted spellings into ``{output: NamedAgg(column, func)}``."""
    named: dict[str, pd.NamedAgg] = {}
    for out, spec in aggs.items():
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(
                    f"aggs[{out!r}] = {spec!r}: use (column, function), e.g. ('amount', 'sum')"
                )
            named[out] = pd.NamedAgg(spec[0], spec[1])
        elif isinstance(spec, Mapping):
            named[out] = pd.NamedAgg(spec["column"], spec["func"])
        elif isinstance(spec, list):
            for func in spec:
                fname = func if isinstance(func, str) else getattr(func, "__name__", "agg")
                named[f"{out}_{fname}"] = pd.NamedAgg(out, func)
        elif spec in ("size", "count_rows") and out not in df.columns:
            named[out] = pd.NamedAgg(by[0], "size")
        else:
            named[out] = pd.NamedAgg(out, spec)
    return named


@transform
def aggregate(
    df: pd.DataFrame,
    by: str | Sequence[str] | None,
    aggs: Mapping[str, Any],
    *,
    dropna: bool = False,
    sort: bool = True,
) -> StepResult:
    """Group rows by ``by`` and aggregate: one output row per group, keys as columns.

    ``aggs`` accepts ``{"out": ("column", "sum")}`` or, the form YAML can write,
    ``{"out": {"column": "column", "func": "sum"}}`` (named), ``{"column": "max"}`` (keeps
    the column's name), ``{"column": ["min", "max"]}`` (gives ``column_min``,
    ``column_max``) and ``{"rows": "size"}`` (group sizes). Functions may be pandas names or
    callables ``Series -> value``.

    Args:
        by: the key column(s); ``None`` or ``[]`` aggregates the whole frame into one row.
        aggs: what to compute, as above.
        dropna: drop groups whose key is null (default: keep them as a group).
        sort: sort the groups by key (default).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": ["TX", "CA", "TX"], "amount": [1, 2, 3]})
    >>> step = aggregate("state", {"total": ("amount", "sum"), "rows": "size"})
    >>> step(df).unwrap().to_dict("records")
    [{'state': 'CA', 'total': 2, 'rows': 1}, {'state': 'TX', 'total': 4, 'rows': 2}]
    >>> aggregate(None, {"amount": ["min", "max"]})(df).unwrap().to_dict("records")
    [{'amount_min': 1, 'amount_max': 3}]
    """
    keys = as_list(by)
    problem = missing_columns(df, keys, "group key")
    if problem:
        return fail(problem)
    if not aggs:
        return fail("aggs is empty; say what to compute, e.g. {'total': ('amount', 'sum')}")
    frame = df if keys else df.assign(**{_GROUP: 0})
    group_keys = keys or [_GROUP]
    named = _named(frame, group_keys, aggs)
    used = [agg.column for agg in named.values()]
    absent = [c for c in used if c not in frame.columns]
    if absent:
        return fail(
            f"aggs use column(s) {show(absent)} that are not in the frame; its columns are "
            f"{show(df.columns, 30)}"
        )
    grouped = frame.groupby(group_keys, dropna=dropna, sort=sort, observed=True)
    out = grouped.agg(**named).reset_index()
    return out.drop(columns=[_GROUP]) if not keys else out


_AGG_METHODS = frozenset(
    [
        "all",
        "any",
        "count",
        "cummax",
        "cummin",
        "cumprod",
        "cumsum",
        "first",
        "idxmax",
        "idxmin",
        "last",
        "max",
        "mean",
        "median",
        "min",
        "nunique",
        "prod",
        "quantile",
        "sem",
        "size",
        "skew",
        "std",
        "sum",
        "var",
    ]
)


@check_arguments(aggregate)
def _check_aggs(aggs: Mapping[str, Any], **_: Any) -> str | None:
    if not isinstance(aggs, Mapping):
        return f"aggs must be a mapping such as {{'total': ('amount', 'sum')}}, got {aggs!r}"
    for out, spec in aggs.items():
        if isinstance(spec, Mapping):
            if set(spec) != {"column", "func"}:
                return (
                    f"aggs[{out!r}] = {dict(spec)!r}: a named aggregation has exactly the keys "
                    f"'column' and 'func', e.g. {{{out!r}: {{'column': 'amount', 'func': 'sum'}}}}"
                )
        elif isinstance(spec, tuple) and len(spec) != 2:
            return f"aggs[{out!r}] = {spec!r}: use (column, function), e.g. ('amount', 'sum')"
        elif isinstance(spec, list):
            odd = [f for f in spec if isinstance(f, str) and f not in _AGG_METHODS]
            if odd:
                hint = ""
                if len(spec) == 2 and spec[0] in odd:
                    hint = (
                        f"; to name an output column, write "
                        f"{{{out!r}: {{'column': {spec[0]!r}, 'func': {spec[1]!r}}}}} "
                        f"(in Python also {{{out!r}: ({spec[0]!r}, {spec[1]!r})}})"
                    )
                return (
                    f"aggs[{out!r}] = {spec!r} means 'apply each function in the list to column "
                    f"{out!r}', but {', '.join(repr(f) for f in odd)} is not an aggregation "
                    f"function ({', '.join(sorted(_AGG_METHODS))}){hint}"
                )
    return None


@dataclass(frozen=True, slots=True)
class GroupBy:
    """The first half of ``group_by(keys).agg(...)``: keys waiting for aggregations.

    A value, not a builder: ``.agg`` returns a new :class:`~tdm.Pipe` and changes nothing.
    """

    by: tuple[str, ...]
    dropna: bool = False
    sort: bool = True

    def agg(
        self,
        aggs: Mapping[str, Any] | None = None,
        /,
        **named: tuple[str, str | Callable[[pd.Series], Any]] | str,
    ) -> Pipe:
        """The aggregation step: ``group_by("state").agg(total=("amount", "sum"))``.

        >>> import pandas as pd
        >>> df = pd.DataFrame({"state": ["TX", "TX"], "amount": [1, 3]})
        >>> group_by("state").agg(total=("amount", "sum"))(df).unwrap().to_dict("records")
        [{'state': 'TX', 'total': 4}]
        """
        spec = {**dict(aggs or {}), **named}
        return aggregate(list(self.by), spec, dropna=self.dropna, sort=self.sort)


def group_by(by: str | Sequence[str], *, dropna: bool = False, sort: bool = True) -> GroupBy:
    """Start an aggregation by key columns; finish it with ``.agg(...)`` (see :func:`aggregate`).

    >>> group_by(["state", "city"]).agg(n="size")
    aggregate(by=['state', 'city'], aggs={'n': 'size'})
    """
    return GroupBy(tuple(as_list(by)), dropna=dropna, sort=sort)
