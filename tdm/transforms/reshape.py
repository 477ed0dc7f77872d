"""Reshaping steps: flatten nested JSON, explode lists, pivot and unpivot.

Every factory returns a pure :class:`~tdm.Pipe`; none of them modifies its input frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from tdm.core.factories import transform
from tdm.core.pipe import StepResult
from tdm.transforms._common import as_list, fail, missing_columns, show

__all__ = ["flatten_json", "flatten_record", "explode", "pivot", "unpivot"]


def flatten_record(
    record: Mapping[str, Any], *, sep: str = "_", lists: bool = True
) -> dict[str, Any]:
    """Flatten one nested JSON object into ``{"a_b": value}`` (iteratively, any depth).

    Dict keys are joined with ``sep``; list items get their index (``tags_0``) when ``lists``
    is true, otherwise lists are kept as values. Empty dicts and lists become ``None``.

    >>> flatten_record({"id": 1, "owner": {"name": "ann", "geo": {"state": "TX"}}, "tags": ["a"]})
    {'id': 1, 'owner_name': 'ann', 'owner_geo_state': 'TX', 'tags_0': 'a'}
    """
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", record)]
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, Mapping) or (lists and isinstance(value, list | tuple)):
            items = (
                list(value.items())
                if isinstance(value, Mapping)
                else [(str(i), v) for i, v in enumerate(value)]
            )
            if not items and prefix:
                out[prefix] = None
            for key, item in reversed(items):
                stack.append((f"{prefix}{sep}{key}" if prefix else str(key), item))
        else:
            out[prefix] = value
    return out


def _nested(value: Any, lists: bool = True) -> bool:
    return isinstance(value, Mapping) or (lists and isinstance(value, list | tuple))


def _flatten_cell(col: Any, value: Any, sep: str, lists: bool) -> dict[str, Any]:
    if _nested(value, lists):
        # an empty object or array adds no columns; its row is null in the others
        return flatten_record({col: value}, sep=sep, lists=lists) if len(value) else {}
    if value is None or (isinstance(value, float) and value != value):
        return {}
    return {col: value}


@transform
def flatten_json(
    df: pd.DataFrame,
    columns: str | Sequence[str] | None = None,
    *,
    sep: str = "_",
    lists: bool = True,
) -> StepResult:
    """Flatten nested records: dict and list cells become ``parent_child`` columns.

    This is the original tdm ``FlattenJSONToTable``: a REST read gives a frame whose cells
    hold JSON objects and arrays; each row is flattened with :func:`flatten_record`. A frame
    of one row (a single JSON object) gives one flat row.

    Args:
        columns: the columns to flatten (default: every column holding dicts or lists).
        sep: the separator between a parent name and a child key.
        lists: flatten lists into ``name_0``, ``name_1``... (default); ``False`` keeps them.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 2], "owner": [{"name": "ann", "geo": {"st": "TX"}},
    ...                                             {"name": "bob"}]})
    >>> flatten_json()(df).unwrap().to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'id': 1, 'owner_name': 'ann', 'owner_geo_st': 'TX'},
     {'id': 2, 'owner_name': 'bob', 'owner_geo_st': nan}]
    """
    if columns is None:
        cols = [
            c
            for c in df.columns
            if df[c].dtype == object
            and bool(df[c].map(lambda v: _nested(v, lists), na_action="ignore").any())
        ]
    else:
        cols = as_list(columns)
        problem = missing_columns(df, cols)
        if problem:
            return fail(problem)
    if not cols:
        return df
    pieces: list[pd.DataFrame | pd.Series] = []
    for col in df.columns:
        if col not in cols:
            pieces.append(df[col])
            continue
        rows = [_flatten_cell(col, v, sep, lists) for v in df[col].tolist()]
        flat = pd.DataFrame.from_records(rows, index=df.index)
        if flat.shape[1] == 0:
            flat = pd.DataFrame({col: [None] * len(df)}, index=df.index)
        pieces.append(flat)
    out = pd.concat(pieces, axis=1)
    dupes = out.columns[out.columns.duplicated()].unique().tolist()
    if dupes:
        return fail(
            f"flattening gives duplicate column name(s) {show(dupes)}; rename the clashing "
            f"column(s) first or choose another sep= (now {sep!r})"
        )
    return out


@transform
def explode(
    df: pd.DataFrame, columns: str | Sequence[str], *, ignore_index: bool = True
) -> StepResult:
    """One row per list item of ``columns`` (other columns are repeated).

    Args:
        columns: the list column(s); several columns must hold lists of equal length per row.
        ignore_index: number the result's rows ``0..n-1`` (default).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"device": ["d1", "d2"], "apps": [["mail", "maps"], []]})
    >>> explode("apps")(df).unwrap().to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'device': 'd1', 'apps': 'mail'}, {'device': 'd1', 'apps': 'maps'},
     {'device': 'd2', 'apps': nan}]
    """
    cols = as_list(columns)
    problem = missing_columns(df, cols)
    if problem:
        return fail(problem)
    return df.explode(cols if len(cols) > 1 else cols[0], ignore_index=ignore_index)


def _flat_name(key: Any, sep: str) -> Any:
    if isinstance(key, tuple):
        return sep.join(str(k) for k in key if str(k) != "")
    return key


@transform
def pivot(
    df: pd.DataFrame,
    index: str | Sequence[str],
    columns: str,
    values: str | Sequence[str],
    *,
    agg: str | Callable[[pd.Series], Any] | None = None,
    sep: str = "_",
) -> StepResult:
    """Long to wide: one row per ``index``, one column per value of ``columns``.

    Args:
        index: the column(s) identifying a row of the result.
        columns: the column whose values become column names.
        values: the column(s) holding the cell values (several give ``value_column`` names).
        agg: how to combine repeated (index, column) pairs (``"sum"``, ``"first"``...);
            without it, a repeated pair is a failure listing them.
        sep: joins the parts of generated column names.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"day": [1, 1, 2], "metric": ["cpu", "mem", "cpu"], "v": [5, 7, 6]})
    >>> pivot("day", "metric", "v")(df).unwrap().to_dict("records")
    [{'day': 1, 'cpu': 5.0, 'mem': 7.0}, {'day': 2, 'cpu': 6.0, 'mem': nan}]
    """
    idx = as_list(index)
    vals = as_list(values)
    problem = missing_columns(df, [*idx, columns, *vals])
    if problem:
        return fail(problem)
    if agg is None:
        repeated = df.duplicated(subset=[*idx, columns], keep=False)
        if bool(repeated.any()):
            pairs = (
                df.loc[repeated, [*idx, columns]]
                .drop_duplicates()
                .head(10)
                .itertuples(index=False, name=None)
            )
            return fail(
                f"{int(repeated.sum())} rows repeat an ({', '.join(map(str, idx))}, {columns}) "
                f"pair, e.g. {show(list(pairs))}; pass agg= (e.g. agg='sum' or 'first') "
                "to combine them"
            )
        agg = "first"
    wide = df.pivot_table(
        index=idx,
        columns=columns,
        values=vals if len(vals) > 1 else vals[0],
        aggfunc=agg,  # type: ignore[arg-type]  # any pandas aggregation name
        dropna=False,
        observed=True,
    )
    if isinstance(wide.columns, pd.MultiIndex):
        wide.columns = [_flat_name(c, sep) for c in wide.columns]
    wide.columns.name = None
    return wide.reset_index()


@transform
def unpivot(
    df: pd.DataFrame,
    id_columns: str | Sequence[str],
    value_columns: str | Sequence[str] | None = None,
    *,
    var_name: str = "variable",
    value_name: str = "value",
) -> StepResult:
    """Wide to long: one row per (id, value column) pair.

    Args:
        id_columns: the column(s) kept on every row.
        value_columns: the columns to turn into rows (default: all the others).
        var_name: the column holding the former column names.
        value_name: the column holding the values.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"day": [1, 2], "cpu": [5, 6], "mem": [7, 8]})
    >>> unpivot("day")(df).unwrap().to_dict("records")[:3]  # doctest: +NORMALIZE_WHITESPACE
    [{'day': 1, 'variable': 'cpu', 'value': 5}, {'day': 2, 'variable': 'cpu', 'value': 6},
     {'day': 1, 'variable': 'mem', 'value': 7}]
    """
    ids = as_list(id_columns)
    vals = as_list(value_columns) or None
    problem = missing_columns(df, [*ids, *(vals or [])])
    if problem:
        return fail(problem)
    return df.melt(id_vars=ids, value_vars=vals, var_name=var_name, value_name=value_name)
