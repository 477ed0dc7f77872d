"""Which columns the built-in steps use, for pruning reads (see :mod:`tdm.core.pushdown`).

Each rule maps the demand on a step's output (``None``: every column, in order; else the set
of columns that matter downstream) to the demand on its input(s). Rules over-approximate: a
column whose values or mere presence can change the output, or make the step fail, is kept.
Steps without a rule here (validators, reshaping, ``when``...) keep every column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tdm.core.group_keys import groups_by, passes_keys
from tdm.core.pushdown import Demand, column_rule, expression_names
from tdm.transforms import aggregate as _aggregate
from tdm.transforms import columns as _columns
from tdm.transforms import combine as _combine
from tdm.transforms import logic as _logic
from tdm.transforms import rows as _rows
from tdm.transforms import validate as _validate
from tdm.transforms._common import as_list

__all__: list[str] = []


def _names(columns: Any) -> frozenset[str]:
    return frozenset(c for c in as_list(columns) if isinstance(c, str))


def _plus(demand: Demand, *extra: frozenset[str]) -> Demand:
    if demand is None:
        return None
    out = demand
    for more in extra:
        out = out | more
    return out


def _passes(demand: Demand) -> Demand:
    return demand


_PASS: tuple[Any, ...] = (_rows.limit, _rows.sample, _logic.skip_if_empty)
for _factory in (*_PASS, _validate.expect_not_empty):
    column_rule(_factory)(lambda params, demand: _passes(demand))


@column_rule(_columns.select)
def _select(params: Mapping[str, Any], demand: Demand) -> Demand:
    return _names(params["columns"])


@column_rule(_columns.drop)
def _drop(params: Mapping[str, Any], demand: Demand) -> Demand:
    cols = _names(params["columns"])
    if demand is None:
        return None
    # missing="fail" checks that the columns are there, so they are read
    return demand | cols if params.get("missing") == "fail" else demand - cols


@column_rule(_columns.rename_columns)
def _rename(params: Mapping[str, Any], demand: Demand) -> Demand:
    mapping = dict(params["mapping"])
    # old names (renamed or checked) and new names (a clash with an existing column fails)
    return _plus(demand, _names(list(mapping)), _names(list(mapping.values())))


@column_rule(_columns.assign)
def _assign(params: Mapping[str, Any], demand: Demand) -> Demand:
    if demand is None:
        return None
    exprs = {**dict(params.get("columns") or {}), **dict(params.get("named") or {})}
    used: set[str] = set()
    for expr in exprs.values():
        if isinstance(expr, str):
            names = expression_names(expr)
            if names is None:
                return None
            used |= names
        elif callable(expr):
            return None  # a function of the whole frame
    return (demand - frozenset(exprs)) | used


@column_rule(_columns.cast)
def _cast(params: Mapping[str, Any], demand: Demand) -> Demand:
    return _plus(demand, _names(list(dict(params["dtypes"]))))


for _one in (_columns.map_values, _columns.standardize_us_state):
    column_rule(_one)(lambda params, demand: _plus(demand, _names(params["column"])))


@column_rule(_columns.append_date_column)
def _append_date(params: Mapping[str, Any], demand: Demand) -> Demand:
    return _plus(demand, _names(params["column"]))  # an existing column is an error or kept


@column_rule(_rows.filter_rows)
def _filter(params: Mapping[str, Any], demand: Demand) -> Demand:
    names = expression_names(params["predicate"])
    return None if names is None else _plus(demand, names)


@column_rule(_logic.guard)
def _guard(params: Mapping[str, Any], demand: Demand) -> Demand:
    names = expression_names(params["predicate"])
    return None if names is None else _plus(demand, names)


@column_rule(_rows.sort)
def _sort(params: Mapping[str, Any], demand: Demand) -> Demand:
    return _plus(demand, _names(params["by"]))


for _subset in (_rows.deduplicate, _rows.drop_nulls):
    column_rule(_subset)(
        lambda params, demand: (
            None if params["subset"] is None else _plus(demand, _names(params["subset"]))
        )
    )


@column_rule(_aggregate.aggregate)
def _agg(params: Mapping[str, Any], demand: Demand) -> Demand:
    used = set(_names(params["by"]))
    for out, spec in dict(params["aggs"]).items():
        used.add(out)  # {"rows": "size"} counts rows only while "rows" is not a column
        if isinstance(spec, tuple) and spec:
            used |= _names(spec[0])
        elif isinstance(spec, Mapping):
            used |= _names(spec.get("column"))
    return frozenset(used)


def _join(params: Mapping[str, Any], demand: Demand) -> tuple[Demand, Demand]:
    if demand is None:
        return None, None
    on = _names(params.get("on"))
    left, right = _names(params.get("left_on")), _names(params.get("right_on"))
    if params.get("how") == "cross":
        left = right = frozenset()
    elif on:
        left = right = on
    elif not (left and right):
        return None, None  # keys are the columns both sides share: every column matters
    suffixes = [s for s in params.get("suffixes") or () if isinstance(s, str) and s]
    # An overlapping column gets a suffix only when both sides have it: ask both sides for
    # every wanted name and its unsuffixed base, so that overlap is the same as unpruned.
    wanted = set(demand)
    for name in demand:
        wanted.update(name[: -len(s)] for s in suffixes if name.endswith(s) and name != s)
    both = frozenset(wanted)
    return both | left, both | right


column_rule(_combine._join)(_join)
for _stack in (_combine._concat, _combine._union):
    column_rule(_stack)(lambda params, demand: None if params["strict"] else demand)


# ------------------------------------------------------------------------------------------
# group keys held dictionary-encoded between a CSV read and an aggregate (tdm.core.group_keys)
# ------------------------------------------------------------------------------------------
def _assigned(params: Mapping[str, Any]) -> frozenset[str] | None:
    exprs = {**dict(params.get("columns") or {}), **dict(params.get("named") or {})}
    refs = set(exprs)
    for expr in exprs.values():
        if callable(expr):
            return None
        if isinstance(expr, str):
            names = expression_names(expr)
            if names is None:
                return None
            refs |= names
    return frozenset(refs)


def _renamed(params: Mapping[str, Any]) -> frozenset[str]:
    mapping = dict(params["mapping"])
    return _names(list(mapping)) | _names(list(mapping.values()))


passes_keys(_rows.filter_rows, lambda params: expression_names(params["predicate"]))
passes_keys(_columns.assign, _assigned)
passes_keys(_columns.rename_columns, _renamed)
for _keeps in (_columns.select, _columns.drop, _rows.limit):
    passes_keys(_keeps, lambda params: frozenset())


def _grouping(params: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str]]:
    keys = tuple(c for c in as_list(params["by"]) if isinstance(c, str))
    refs: set[str] = set()
    for out, spec in dict(params["aggs"]).items():
        refs.add(out)
        if isinstance(spec, tuple) and spec:
            refs |= _names(spec[0])
        elif isinstance(spec, Mapping):
            refs |= _names(spec.get("column"))
    return keys, frozenset(refs)


groups_by(_aggregate.aggregate, _grouping, _aggregate.keys_as_text)
