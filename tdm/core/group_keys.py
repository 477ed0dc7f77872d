"""Plan optimisation: hold text columns used only as group keys dictionary-encoded.

Grouping a few million rows by text columns costs most of its time hashing the strings; a CSV
or parquet reader can instead hand those columns over dictionary-encoded (pandas categories,
each value stored once), which groups several times faster (parquet files already store text
that way, so the strings are never built at all). That is only invisible when nothing between
the read and the group-by looks at the column: so this rewrite applies to a chain

    read (CSV or parquet) -> steps that only filter rows or touch other columns -> aggregate(by=...)

where every node has one consumer and none is an output. The aggregate is rewritten to give the
keys back as the text the plain read gives, so the run's outputs are those of the plan as
written (``tdm.run(..., optimize=False)``).

Steps declare themselves with :func:`passes_keys` (a step that keeps every column it does not
name as it is, whatever else it does to rows) and :func:`groups_by` (the step that groups);
built-in steps register in ``tdm.transforms._pushdown``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from tdm.core.files import Read
from tdm.core.pipe import Pipe
from tdm.core.pipeline import Pipeline

__all__ = [
    "ENCODED_ATTR",
    "GroupRule",
    "KeyRefs",
    "Restore",
    "encodable_keys",
    "groups_by",
    "passes_keys",
]

KeyRefs: TypeAlias = Callable[[Mapping[str, Any]], "frozenset[str] | None"]
"""``refs(params)``: the columns a step reads or writes (None: cannot tell)."""

GroupRule: TypeAlias = Callable[[Mapping[str, Any]], "tuple[tuple[str, ...], frozenset[str]]"]
"""``rule(params) -> (key columns, other columns the step reads or writes)``."""

Restore: TypeAlias = Callable[[Pipe, tuple[str, ...]], Pipe]
"""``restore(step, columns)``: the step, giving ``columns`` back as text when they arrive
dictionary-encoded."""

ENCODED_ATTR = "tdm_encoded_columns"
"""The ``DataFrame.attrs`` key where a read notes the columns it holds as categories on
request (a file's own category columns are not among them: they stay categories)."""

_PASSES = "__tdm_key_passes__"
_GROUPS = "__tdm_key_groups__"


def passes_keys(factory: Callable[..., Any], refs: KeyRefs) -> None:
    """Declare that ``factory``'s steps keep every column outside ``refs(params)`` unchanged.

    Rows may be dropped or reordered; the columns ``refs`` names are the only ones whose
    values or dtype the step looks at or changes.
    """
    setattr(factory, _PASSES, refs)


def groups_by(factory: Callable[..., Any], rule: GroupRule, restore: Restore) -> None:
    """Declare ``factory``'s steps as group-bys (``rule``) that ``restore`` can make give
    dictionary-encoded key columns back as text."""
    setattr(factory, _GROUPS, (rule, restore))


def encodable_keys(pipeline: Pipeline, i: int) -> tuple[tuple[str, ...], int, Pipe] | None:
    """The columns read node ``i`` may hold dictionary-encoded, the group-by node that uses
    them only as keys, and that node's step rewritten to restore them (None: no such chain).

    >>> import pandas as pd
    >>> from tdm.core.factories import transform
    >>> @transform
    ... def total(df: pd.DataFrame) -> pd.DataFrame:
    ...     return df
    >>> encodable_keys(Read("orders.csv", None) >> total(), 0) is None   # not a group-by
    True
    """
    plan = pipeline.plan
    op = plan.nodes[i].op
    if not isinstance(op, Read) or op.format not in ("csv", "parquet"):
        return None
    if {"dtype", "read_dictionary"} & set(op.options):
        return None
    touched: set[str] = {op.path_column} if op.path_column else set()
    at = i
    while True:
        if at in plan.outputs or len(plan.children[at]) != 1:
            return None
        nxt = plan.children[at][0]
        step = plan.nodes[nxt].op
        if len(plan.parents[nxt]) != 1 or not isinstance(step, Pipe) or step.needs_context:
            return None
        factory = step.factory
        grouping = getattr(factory, _GROUPS, None) if factory is not None else None
        if grouping is not None:
            rule, restore = grouping
            try:
                keys, refs = rule(step.kwargs)
            except Exception:  # odd parameters: leave the plan alone
                return None
            columns = tuple(k for k in keys if k not in touched and k not in refs)
            return (columns, nxt, restore(step, columns)) if columns else None
        passes = getattr(factory, _PASSES, None) if factory is not None else None
        if passes is None:
            return None
        try:
            refs = passes(step.kwargs)
        except Exception:
            return None
        if refs is None:
            return None
        touched |= refs
        at = nxt
