"""Aggregation: ``aggregate(by=..., aggs=...)`` and its builder form ``group_by(...).agg(...)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tdm.core.factories import check_arguments, transform
from tdm.core.group_keys import ENCODED_ATTR
from tdm.core.pipe import Pipe, StepResult
from tdm.transforms._common import as_list, fail, missing_columns, show

__all__ = ["GroupBy", "aggregate", "group_by", "keys_as_text"]

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
    return _aggregate(df, by, aggs, dropna=dropna, sort=sort)


def _aggregate(
    df: pd.DataFrame,
    by: str | Sequence[str] | None,
    aggs: Mapping[str, Any],
    *,
    dropna: bool = False,
    sort: bool = True,
    coded: tuple[str, ...] = (),
) -> StepResult:
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
    if keys and coded and set(keys) <= set(coded):
        out = _by_codes(frame, keys, named, dropna=dropna, sort=sort)
        if out is not None:
            return out
    grouped = frame.groupby(group_keys, dropna=dropna, sort=sort, observed=True)
    out = grouped.agg(**named).reset_index()
    return out.drop(columns=[_GROUP]) if not keys else out


def _by_codes(
    frame: pd.DataFrame, keys: list[Any], named: dict[str, pd.NamedAgg], *, dropna: bool, sort: bool
) -> pd.DataFrame | None:
    """The aggregate grouped by one integer label made of the key columns' category codes,
    with the keys given back as text (None: not every key is a category, or too many groups).

    Categories are sorted (:func:`tdm.effects.pushdown.as_categories`) and a null key takes
    the code after the last category, so labels order groups as the text keys sort, nulls
    last; within a group, rows keep their order, so sums and means are those of grouping by
    the text columns, to the last bit.
    """
    columns = [frame[k] for k in keys]
    if not all(isinstance(c.dtype, pd.CategoricalDtype) for c in columns):
        return None
    sizes = [len(c.cat.categories) + 1 for c in columns]
    space = np.prod(np.asarray(sizes, dtype=np.float64))
    if space >= 2.0**62:
        return None
    label = np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    for column, size in zip(columns, sizes, strict=True):
        codes = column.cat.codes.to_numpy()
        label *= size
        label += codes
        if len(codes) and codes.min() < 0:  # a null key: the code after the last category
            nulls = codes < 0
            missing |= nulls
            label[nulls] += size
    if dropna and missing.any():
        frame, label = frame[~missing], label[~missing]
    if sort and len(label) and space <= 2 * len(label) + (1 << 16):
        # Labels in a small space: number the groups present in label order, and group by a
        # category of those numbers, which pandas neither hashes nor sorts again.
        counts = np.bincount(label, minlength=int(space))
        present = np.flatnonzero(counts)
        numbers = np.zeros(len(counts), dtype=np.int64)
        numbers[present] = np.arange(len(present))
        groups = pd.Categorical.from_codes(numbers[label], pd.Index(present), validate=False)
        by = pd.Series(groups, index=frame.index, copy=False)
        result = frame.groupby(by, sort=True, observed=False).agg(**named)
    else:
        # a Series on the frame's own index: grouping by a bare array would copy it first
        by = pd.Series(label, index=frame.index, copy=False)
        result = frame.groupby(by, sort=sort).agg(**named)
    if set(keys) & set(result.columns):  # the plain path's error message, not two columns
        return None
    ids = result.index.to_numpy(dtype=np.int64)
    out: dict[Any, pd.Series] = {}
    for key, column, size in reversed(list(zip(keys, columns, sizes, strict=True))):
        codes = ids % size
        ids = ids // size
        categories = column.cat.categories
        texts = pd.Categorical.from_codes(np.where(codes == size - 1, -1, codes), categories)
        out[key] = pd.Series(texts).astype(categories.dtype)
    keyed = pd.DataFrame({k: out[k] for k in keys})
    grouped: pd.DataFrame = pd.concat([keyed, result.reset_index(drop=True)], axis=1)
    return grouped


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


@dataclass(frozen=True, slots=True)
class _KeysAsText:
    """An aggregate body whose key ``columns`` may arrive as categories (see
    :mod:`tdm.core.group_keys`): its output holds them as text, as the plain read gives."""

    body: Callable[..., Any]
    columns: tuple[str, ...]

    @property
    def __name__(self) -> str:  # step descriptions name the body
        return str(getattr(self.body, "__name__", "aggregate"))

    def __call__(self, df: pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        # only what the read encoded on request: a file's own category column stays one
        held = set(df.attrs.get(ENCODED_ATTR, ()))
        ours = tuple(c for c in self.columns if c in held)
        out = _aggregate(df, *args, coded=ours, **kwargs)
        if isinstance(out, pd.DataFrame):
            out.attrs.pop(ENCODED_ATTR, None)
            for column in ours:
                if column in out.columns and isinstance(out[column].dtype, pd.CategoricalDtype):
                    out[column] = out[column].astype(out[column].cat.categories.dtype)
        return out


def keys_as_text(step: Pipe, columns: tuple[str, ...]) -> Pipe:
    """``step`` (an :func:`aggregate`), giving key ``columns`` held as categories back as text.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": pd.Categorical(["TX", "CA", "TX"]), "n": [1, 2, 3]})
    >>> df.attrs[ENCODED_ATTR] = ("state",)   # as the read notes it
    >>> step = keys_as_text(aggregate("state", {"n": "sum"}), ("state",))
    >>> out = step(df).unwrap()
    >>> out["state"].dtype == "str", out.to_dict("records")
    (True, [{'state': 'CA', 'n': 2}, {'state': 'TX', 'n': 4}])
    """
    return dataclasses.replace(step, fn=_KeysAsText(step.fn, columns))
