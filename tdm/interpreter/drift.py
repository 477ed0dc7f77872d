"""Schema drift: how a node's output schema changed since the last successful run.

The audit record keeps each node's columns, dtypes and row count. A run compares its source
nodes' schemas with those of the previous successful run of the same pipeline; the policy says
what a change does: ``"warn"`` (reported in the RunReport, logs, alerts and history),
``"fail"`` (the source fails, so nothing downstream, no write, runs) or ``"ignore"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import pandas as pd

if TYPE_CHECKING:
    from tdm.effects.state import RunRecord

__all__ = ["DRIFT_POLICIES", "DriftPolicy", "check_policy", "diff_runs", "schema_changes"]

DriftPolicy = Literal["warn", "fail", "ignore"]
DRIFT_POLICIES: tuple[str, ...] = ("warn", "fail", "ignore")


def check_policy(policy: str) -> DriftPolicy:
    """``policy`` if it is one of warn, fail, ignore; a clear ``InputError`` otherwise."""
    if policy not in DRIFT_POLICIES:
        from tdm.errors import InputError

        raise InputError(
            f"drift= must be one of {', '.join(DRIFT_POLICIES)} (what a schema change against "
            f"the last successful run does), got {policy!r}"
        )
    return policy  # type: ignore[return-value]


def schema_changes(
    before: tuple[Sequence[str], Sequence[str]], after: tuple[Sequence[str], Sequence[str]]
) -> list[str]:
    """New, missing and retyped columns between two ``(columns, dtypes)`` schemas.

    >>> schema_changes((["a", "b"], ["int64", "str"]), (["a", "c"], ["float64", "str"]))
    ['new column c (str)', 'missing column b (was str)', 'column a retyped int64 -> float64']
    """
    old = dict(zip(before[0], before[1], strict=False))
    new = dict(zip(after[0], after[1], strict=False))
    out = [f"new column {c} ({t})" for c, t in new.items() if c not in old]
    out += [f"missing column {c} (was {t})" for c, t in old.items() if c not in new]
    out += [
        f"column {c} retyped {old[c]} -> {t}" for c, t in new.items() if c in old and old[c] != t
    ]
    return out


def diff_runs(a: RunRecord, b: RunRecord) -> pd.DataFrame:
    """Per node of two runs: schema changes and row counts (one row per node that differs).

    Columns: ``node``, ``change`` (``schema``, ``rows``, ``added``, ``removed``), ``detail``,
    ``rows_a``, ``rows_b``.
    """
    left = {n.name: n for n in a.nodes}
    right = {n.name: n for n in b.nodes}
    rows: list[dict[str, object]] = []
    for name in list(left) + [n for n in right if n not in left]:
        x, y = left.get(name), right.get(name)
        if x is None or y is None:
            kind = "added" if x is None else "removed"
            rows.append({"node": name, "change": kind, "detail": f"node {kind} in {b.run_id}"})
            continue
        if x.columns is not None and y.columns is not None:
            changes = schema_changes(
                (x.columns, x.dtypes or ("?",) * len(x.columns)),
                (y.columns, y.dtypes or ("?",) * len(y.columns)),
            )
            for change in changes:
                rows.append({"node": name, "change": "schema", "detail": change})
        if x.rows_out != y.rows_out:
            rows.append(
                {
                    "node": name,
                    "change": "rows",
                    "detail": f"rows {x.rows_out} -> {y.rows_out}",
                    "rows_a": x.rows_out,
                    "rows_b": y.rows_out,
                }
            )
    frame = pd.DataFrame(rows, columns=["node", "change", "detail", "rows_a", "rows_b"])
    for col in ("rows_a", "rows_b"):
        frame[col] = frame[col].astype("Int64")
    return frame
