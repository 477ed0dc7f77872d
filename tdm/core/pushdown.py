"""Plan optimisation: push column pruning and row filters into file reads.

A :class:`~tdm.core.pipeline.Pipeline` is a value, so before a run the interpreter can see
every step after a read. When those steps say which columns they use (built-in steps do; a
user step declares it with ``@transform(columns=[...])``), the read is rewritten to load only
those columns (:attr:`~tdm.core.files.Read.keep_columns`); a ``filter_rows`` comparison right
after a CSV or parquet read lets the reader drop rows it rules out before they become pandas
rows, and skip parquet row groups whose statistics rule every row out
(:attr:`~tdm.core.files.Read.row_filter`; the filter step still runs, so results are exact).

This is a pure rewrite of the plan: no I/O, and a run with it gives the same outputs as one
without (``tdm.run(..., optimize=False)``). Whenever a step's column use is unknown (a user
step without a declaration, a callable predicate, a write, an output of the pipeline) every
column is kept: correctness first.

The analysis walks the plan from the outputs back to the sources with a *demand* per node:
``None`` (every column matters, with its order) or the set of columns whose values and
presence decide everything downstream (the others may be left out).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from tdm.core.files import Read
from tdm.core.group_keys import encodable_keys
from tdm.core.pipe import Op, Pipe
from tdm.core.pipeline import Node, Pipeline

__all__ = [
    "ColumnRule",
    "Demand",
    "column_rule",
    "explain",
    "expression_names",
    "optimize",
    "row_conditions",
    "value_names",
]

Demand: TypeAlias = "frozenset[str] | None"
"""The columns a node's consumers use (``None``: all of them, in order)."""

ColumnRule: TypeAlias = Callable[[Mapping[str, Any], "frozenset[str] | None"], Any]
"""``rule(params, demand_out) -> demand on each input`` (one Demand, or a tuple per input)."""

_RULE = "__tdm_column_rule__"
_READS = "__tdm_reads__"

# Reader options that keep a read prunable: anything else (``columns``, ``names``, ``header``
# ...) changes which columns exist or what they are called, so the read is left alone.
_CSV_PRUNABLE = frozenset(
    {"sep", "delimiter", "encoding", "quotechar", "na_values", "dtype", "block_size"}
    | {"storage_options"}
)
_PARQUET_UNPRUNABLE = frozenset({"columns", "filters", "schema"})
_COMPARISONS: Mapping[type[ast.cmpop], str] = {
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Eq: "==",
}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "=="}


def column_rule(factory: Callable[..., Any]) -> Callable[[ColumnRule], ColumnRule]:
    """Register how a step factory's steps use columns (for pruning reads).

    The rule gets the step's bound parameters and the demand on its output, and returns the
    demand on its input (or a tuple, one per input). It must over-approximate: a column whose
    values or mere presence can change the step's output (or make it fail) belongs in it.

    >>> import pandas as pd
    >>> from tdm.core.factories import transform
    >>> @transform
    ... def total(df: pd.DataFrame, *, of: list[str]) -> pd.DataFrame:
    ...     return df.assign(total=df[of].sum(axis=1))
    >>> @column_rule(total)
    ... def _(params, demand):
    ...     return None if demand is None else demand - {"total"} | set(params["of"])
    >>> sorted(total(of=["a", "b"]).factory.__tdm_column_rule__(
    ...     {"of": ["a", "b"]}, frozenset({"total", "c"})))
    ['a', 'b', 'c']
    """

    def register(rule: ColumnRule) -> ColumnRule:
        setattr(factory, _RULE, rule)
        return rule

    return register


def expression_names(expr: object) -> frozenset[str] | None:
    """The names a pandas ``eval``/``query`` expression refers to (None: cannot tell).

    >>> sorted(expression_names("qty > 10 and state == 'TX'"))
    ['qty', 'state']
    >>> sorted(expression_names("price * 2 + abs(discount)"))
    ['abs', 'discount', 'price']
    >>> expression_names("`unit price` > 2") is None, expression_names(len) is None
    (True, True)
    """
    if not isinstance(expr, str):
        return None
    return _names_in(expr, "exec")


@functools.lru_cache(maxsize=1024)
def _names_in(expr: str, mode: str) -> frozenset[str] | None:
    if "`" in expr or "@" in expr:
        return None
    try:
        tree = ast.parse(expr.strip(), mode=mode)
    except SyntaxError:
        return None
    return frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))


def value_names(expr: str) -> frozenset[str] | None:
    """The names an expression that only computes a value refers to (None: an assignment,
    several statements, backticks, ``@`` locals or not valid; parsed once per text).

    >>> sorted(value_names("qty * price > 10"))
    ['price', 'qty']
    >>> value_names("total = qty * price") is None
    True
    """
    return _names_in(expr, "eval")


def row_conditions(expr: object) -> tuple[tuple[str, str, Any], ...] | None:
    """``column op literal`` conditions that must all hold for a row ``expr`` keeps.

    Only ``>``, ``>=``, ``<``, ``<=`` and ``==`` against a number or a string, joined by
    ``and``/``&``: a row where one of them is false (or the value is null) is dropped by
    ``filter_rows``, so a reader may skip data that cannot satisfy them. None: not such an
    expression.

    >>> row_conditions("qty > 10 and 'TX' == state")
    (('qty', '>', 10), ('state', '==', 'TX'))
    >>> row_conditions("qty > 10 or qty < 2") is None
    True
    """
    if not isinstance(expr, str) or "`" in expr or "@" in expr:
        return None
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return None
    out: list[tuple[str, str, Any]] = []
    pending: list[ast.expr] = [tree]
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            pending[:0] = node.values
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
            pending[:0] = [node.left, node.right]
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            found = _condition(node.left, node.ops[0], node.comparators[0])
            if found is None:
                return None
            out.append(found)
        else:
            return None
    return tuple(out)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        ok, value = _literal(node.operand)
        return (ok and not isinstance(value, str), -value if ok else None)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return True, node.value
    return False, None


def _condition(left: ast.expr, op: ast.cmpop, right: ast.expr) -> tuple[str, str, Any] | None:
    symbol = _COMPARISONS.get(type(op))
    if symbol is None:
        return None
    if isinstance(left, ast.Name):
        ok, value = _literal(right)
        return (left.id, symbol, value) if ok else None
    if isinstance(right, ast.Name):
        ok, value = _literal(left)
        return (right.id, _FLIP[symbol], value) if ok else None
    return None


# ------------------------------------------------------------------------------------------
# the analysis
# ------------------------------------------------------------------------------------------
def _union(a: Demand, b: Demand) -> Demand:
    return None if a is None or b is None else a | b


def _demands(op: Op, count: int, demand: Demand) -> tuple[tuple[Demand, ...], str]:
    """The demand on each of ``op``'s ``count`` inputs, and why it is total (for explain)."""
    everything: tuple[Demand, ...] = (None,) * count
    if not isinstance(op, Pipe):
        return everything, f"{op.describe()} uses every column"
    factory = op.factory
    rule = getattr(factory, _RULE, None) if factory is not None else None
    if rule is not None:
        try:
            found = rule(op.kwargs, demand)
        except Exception:  # a rule that cannot read odd parameters: keep every column
            found = None
        got = found if isinstance(found, tuple) else (found,) * count
        if len(got) != count:
            return everything, f"{op.describe()} uses every column"
        if demand is None and None in got and _passes_total(rule, op, count):
            return got, "every column is needed after it"
        return got, f"{op.describe()} uses every column"
    reads = getattr(factory, _READS, None) if factory is not None else None
    if reads is not None and not getattr(factory, "__tdm_passthrough__", True):
        return (reads,) * count, ""
    if reads is not None and demand is not None:
        return (demand | reads,) * count, ""
    if reads is not None:
        return everything, "every column is needed after it"
    return everything, (
        f"{op.describe()} is a user step that does not declare its columns "
        "(@transform(columns=[...]))"
    )


def _passes_total(rule: ColumnRule, op: Pipe, count: int) -> bool:
    """Whether ``rule`` keeps every column only because everything after the step needs it."""
    try:
        found = rule(op.kwargs, frozenset())
    except Exception:
        return False
    got = found if isinstance(found, tuple) else (found,) * count
    return None not in got


def _analyse(pipeline: Pipeline) -> tuple[list[Demand], list[str]]:
    plan = pipeline.plan
    n = len(plan.nodes)
    demand: list[Demand] = [frozenset()] * n
    why = [""] * n
    for i in plan.outputs:
        demand[i], why[i] = None, "it is an output of the pipeline"
    for i in reversed(range(n)):
        parents = plan.parents[i]
        if not parents:
            continue
        got, reason = _demands(plan.nodes[i].op, len(parents), demand[i])
        if demand[i] is None and reason == "every column is needed after it":
            reason = f"{plan.names[i]}: {why[i]}"
        for p, d in zip(parents, got, strict=True):
            if demand[p] is not None and d is None:
                why[p] = reason or f"{plan.names[i]} uses every column"
            demand[p] = _union(demand[p], d)
    return demand, why


def _prunable(op: Read) -> bool:
    if op.format == "csv":
        return set(op.options) <= _CSV_PRUNABLE
    if op.format == "parquet":
        return not (set(op.options) & _PARQUET_UNPRUNABLE)
    return False


def _row_filter(pipeline: Pipeline, i: int) -> tuple[tuple[str, str, Any], ...] | None:
    """Conditions of a ``filter_rows`` that is the only consumer of parquet read ``i``."""
    plan = pipeline.plan
    op = plan.nodes[i].op
    if not isinstance(op, Read) or op.format not in ("csv", "parquet"):
        return None
    if "filters" in op.options:
        return None
    if i in plan.outputs or len(plan.children[i]) != 1:
        return None
    step = plan.nodes[plan.children[i][0]].op
    if not isinstance(step, Pipe) or getattr(step.factory, "__tdm_name__", "") != "filter_rows":
        return None
    if getattr(step.fn, "__module__", "") != "tdm.transforms.rows":
        return None
    found = row_conditions(step.kwargs.get("predicate"))
    return found or None


def _rewrite(pipeline: Pipeline) -> tuple[Pipeline | None, dict[int, str]]:
    """The optimised pipeline (None: the same as ``pipeline``) and a note per read."""
    plan = pipeline.plan
    if not any(isinstance(node.op, Read) for node in plan.nodes):
        return None, {}
    demand, why = _analyse(pipeline)
    replaced: dict[int, Op] = {}
    encoded: dict[int, tuple[tuple[str, ...], str]] = {}
    for i, node in enumerate(plan.nodes):
        prunable = isinstance(node.op, Read) and _prunable(node.op)
        found = encodable_keys(pipeline, i) if prunable else None
        if found is not None:
            columns, grouping, step = found
            replaced[grouping] = step
            encoded[i] = columns, plan.names[grouping]
    mapped: dict[int, Node] = {}
    notes: dict[int, str] = {}
    changed = False
    for i, node in enumerate(plan.nodes):
        op = replaced.get(i, node.op)
        if isinstance(op, Read):
            op, notes[i] = _planned_read(pipeline, i, op, demand[i], why[i], encoded.get(i))
        changed = changed or op is not node.op
        parents = tuple(mapped[id(p)] for p in node.parents)
        same = op is node.op and all(a is b for a, b in zip(parents, node.parents, strict=True))
        mapped[id(node)] = node if same else Node.make(op, parents)
    if not changed:
        return None, notes
    optimised = Pipeline(tuple(mapped[id(o)] for o in pipeline.outputs))
    if optimised.plan.names != plan.names:  # two reads became one node: keep the plan as is
        return None, {i: "not optimised (rewritten reads would merge)" for i in notes}
    return optimised, notes


def _planned_read(
    pipeline: Pipeline,
    i: int,
    op: Read,
    demand: Demand,
    why: str,
    encoded: tuple[tuple[str, ...], str] | None = None,
) -> tuple[Read, str]:
    notes: list[str] = []
    keep: tuple[str, ...] | None = None
    if not _prunable(op):
        notes.append(f"all columns ({op.format} read options rule out pruning)")
    elif demand is None:
        notes.append(f"all columns ({why})")
    elif not demand:
        notes.append("all columns (no column is used)")
    else:
        wanted = demand - {op.path_column} if op.path_column else demand
        keep = tuple(sorted(wanted))
        notes.append(f"columns {list(keep)} (others skipped)")
    conditions = _row_filter(pipeline, i)
    if conditions:
        where = " and ".join(f"{c} {o} {v!r}" for c, o, v in conditions)
        unread = " (parquet row groups unread)" if op.format == "parquet" else ""
        notes.append(f"rows where {where} cannot hold dropped while reading{unread}")
    dictionary = None
    if encoded is not None:
        dictionary, grouping = encoded
        notes.append(f"{list(dictionary)} held as categories until {grouping} (group keys only)")
    if keep is None and not conditions and not dictionary:
        return op, notes[0]
    new = dataclasses.replace(
        op, keep_columns=keep, row_filter=conditions, dictionary_columns=dictionary
    )
    return new, "; ".join(notes)


# Values never hold their key (None stands for "unchanged"), or entries would never be freed.
_CACHE: weakref.WeakKeyDictionary[Pipeline, tuple[Pipeline | None, dict[int, str]]] = (
    weakref.WeakKeyDictionary()
)


def _planned(pipeline: Pipeline) -> tuple[Pipeline | None, dict[int, str]]:
    found = _CACHE.get(pipeline)
    if found is None:
        found = _CACHE[pipeline] = _rewrite(pipeline)
    return found


def optimize(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with column pruning and row filters pushed into its file reads.

    The result has the same nodes, names and outputs; only reads change. Running it gives
    the same outputs as running ``pipeline``.

    >>> from tdm.core.files import Read
    >>> from tdm.core.factories import transform
    >>> @transform(columns=["qty"])
    ... def big(df):
    ...     return df[df["qty"] > 10]
    >>> p = Read("orders.csv", None) >> big() >> big().named("count")
    >>> optimize(p) == p   # the output needs every column, so nothing is pruned
    True
    """
    optimised = _planned(pipeline)[0]
    return pipeline if optimised is None else optimised


def explain(pipeline: Pipeline) -> str:
    """What :func:`optimize` pushes into each read of ``pipeline``, one line per read.

    >>> from tdm.core.files import Read
    >>> from tdm.core.factories import transform
    >>> from tdm.transforms import select
    >>> @transform(columns=["qty"])
    ... def big(df):
    ...     return df[df["qty"] > 10]
    >>> print(explain(Read("orders.csv", None) >> big() >> select(["id"])))
    read_orders: columns ['id', 'qty'] (others skipped)
    """
    _, notes = _planned(pipeline)
    names = pipeline.plan.names
    if not notes:
        return "no file reads: nothing to push down"
    return "\n".join(f"{names[i]}: {text}" for i, text in sorted(notes.items()))


def _as_set(columns: Iterable[Any] | str | None) -> frozenset[str]:
    if columns is None:
        return frozenset()
    if isinstance(columns, str):
        return frozenset({columns})
    return frozenset(c for c in columns if isinstance(c, str))


def declare_reads(factory: Callable[..., Any], columns: Sequence[str] | str) -> None:
    """Mark ``factory``'s steps as reading only ``columns`` and passing the rest through."""
    setattr(factory, _READS, _as_set(columns))
