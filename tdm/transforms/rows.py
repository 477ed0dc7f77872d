"""Row steps: filter, drop nulls, deduplicate, sort, limit and sample.

Every factory returns a pure :class:`~tdm.Pipe`; none of them modifies its input frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from tdm.core.factories import transform
from tdm.core.pipe import StepResult
from tdm.transforms._common import RowPredicate, as_list, fail, missing_columns, row_mask

__all__ = ["deduplicate", "drop_nulls", "filter_rows", "limit", "sample", "sort"]


@transform
def filter_rows(df: pd.DataFrame, predicate: RowPredicate) -> StepResult:
    """Keep the rows where ``predicate`` holds (rows where it is null are dropped).

    Args:
        predicate: a pandas query string (``"amount > 0 and state == 'TX'"``) or a function
            ``df -> bool Series``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "x"]})
    >>> filter_rows("a > 1 and s == 'x'")(df).unwrap()["a"].tolist()
    [3]
    >>> filter_rows(lambda d: d["a"] % 2 == 1)(df).unwrap()["a"].tolist()
    [1, 3]
    """
    mask = row_mask(df, predicate)
    if mask.all():  # what df[mask] gives, without copying every column (reads often pre-filter)
        return df.copy(deep=False)
    return df[mask]


@transform
def drop_nulls(
    df: pd.DataFrame,
    subset: str | Sequence[str] | None = None,
    *,
    how: Literal["any", "all"] = "any",
) -> StepResult:
    """Drop rows holding nulls (in ``subset`` columns, or in any column).

    Args:
        subset: the columns to look at (default: all).
        how: ``"any"`` drops a row with at least one null, ``"all"`` only rows of nulls.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1, None, 3], "b": [None, None, 6]})
    >>> drop_nulls()(df).unwrap()["a"].tolist()
    [3.0]
    >>> drop_nulls("a")(df).unwrap()["a"].tolist()
    [1.0, 3.0]
    >>> drop_nulls(how="all")(df).unwrap()["a"].tolist()
    [1.0, 3.0]
    """
    cols = as_list(subset) or None
    if cols:
        problem = missing_columns(df, cols)
        if problem:
            return fail(problem)
    return df.dropna(subset=cols, how=how)


@transform
def deduplicate(
    df: pd.DataFrame,
    subset: str | Sequence[str] | None = None,
    *,
    keep: Literal["first", "last", "none"] = "first",
) -> StepResult:
    """Drop repeated rows (judged on ``subset`` columns, or on all columns).

    Args:
        subset: the key columns (default: all).
        keep: which of the repeats to keep: ``"first"``, ``"last"``, or ``"none"`` of them.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"k": [1, 1, 2], "v": ["a", "b", "c"]})
    >>> deduplicate("k")(df).unwrap()["v"].tolist()
    ['a', 'c']
    >>> deduplicate("k", keep="last")(df).unwrap()["v"].tolist()
    ['b', 'c']
    >>> deduplicate("k", keep="none")(df).unwrap()["v"].tolist()
    ['c']
    """
    cols = as_list(subset) or None
    if cols:
        problem = missing_columns(df, cols)
        if problem:
            return fail(problem)
    return df.drop_duplicates(subset=cols, keep=False if keep == "none" else keep)


@transform
def sort(
    df: pd.DataFrame,
    by: str | Sequence[str],
    *,
    descending: bool | Sequence[bool] = False,
    nulls: Literal["first", "last"] = "last",
) -> StepResult:
    """Sort rows by ``by`` columns (a stable sort: ties keep their order).

    Args:
        by: the sort key column(s).
        descending: one flag, or one per key column.
        nulls: where nulls go: ``"last"`` (default) or ``"first"``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [2, None, 1], "b": ["x", "y", "z"]})
    >>> sort("a")(df).unwrap()["b"].tolist()
    ['z', 'x', 'y']
    >>> sort("a", descending=True, nulls="first")(df).unwrap()["b"].tolist()
    ['y', 'x', 'z']
    """
    cols = as_list(by)
    problem = missing_columns(df, cols)
    if problem:
        return fail(problem)
    flags = [descending] * len(cols) if isinstance(descending, bool) else list(descending)
    if len(flags) != len(cols):
        return fail(f"descending has {len(flags)} flag(s) for {len(cols)} sort column(s)")
    return df.sort_values(cols, ascending=[not d for d in flags], na_position=nulls, kind="stable")


@transform
def limit(df: pd.DataFrame, n: int, *, offset: int = 0) -> StepResult:
    """Keep at most ``n`` rows, after skipping ``offset`` rows.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": range(5)})
    >>> limit(2)(df).unwrap()["a"].tolist()
    [0, 1]
    >>> limit(2, offset=4)(df).unwrap()["a"].tolist()
    [4]
    """
    if n < 0 or offset < 0:
        return fail(f"limit needs n >= 0 and offset >= 0, got n={n}, offset={offset}")
    return df.iloc[offset : offset + n]


@transform
def sample(
    df: pd.DataFrame,
    n: int | None = None,
    *,
    frac: float | None = None,
    seed: int = 0,
    replace: bool = False,
) -> StepResult:
    """A random sample of rows, reproducible: the same ``seed`` gives the same rows.

    Args:
        n: how many rows (at most the frame's size unless ``replace``); or give ``frac``.
        frac: the fraction of rows to keep, e.g. ``0.1``.
        seed: the random seed.
        replace: sample with replacement.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": range(100)})
    >>> len(sample(10)(df).unwrap()), sample(10)(df).unwrap().equals(sample(10)(df).unwrap())
    (10, True)
    >>> len(sample(frac=0.25, seed=7)(df).unwrap())
    25
    """
    if (n is None) == (frac is None):
        return fail("give exactly one of n= or frac=")
    if n is not None and not replace:
        n = min(n, len(df))
    return df.sample(n=n, frac=frac, random_state=seed, replace=replace)
