"""Data checks: each passes the frame through unchanged, or fails with a :class:`ValidationError`
that counts the violations and shows the first few violating rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from returns.result import Failure

from tdm.core.factories import transform
from tdm.core.pipe import PipeError, StepResult
from tdm.transforms._common import as_list, fail, missing_columns, show

__all__ = [
    "ValidationError",
    "expect_columns",
    "expect_no_nulls",
    "expect_not_empty",
    "expect_range",
    "expect_schema",
    "expect_unique",
    "expect_values_in",
]

EXAMPLES = 5
"""How many violating rows a :class:`ValidationError` shows by default."""


@dataclass(frozen=True, slots=True)
class ValidationError(PipeError):
    """A data check failed: which check, how many rows broke it, and the first of them.

    Attributes:
        check: the check's name, e.g. ``"expect_unique"``.
        violations: how many rows (or columns, for schema checks) broke it.
        total: how many rows (or columns) were checked.
        rows: the first violating rows, with their original index (not part of equality).

    >>> err = ValidationError("check", "2 of 3 rows ...", check="expect_unique", violations=2)
    >>> err.violations, isinstance(err, PipeError)
    (2, True)
    """

    check: str = ""
    violations: int = 0
    total: int = 0
    rows: pd.DataFrame | None = field(default=None, compare=False, repr=False)


def _violation(
    check: str,
    what: str,
    df: pd.DataFrame,
    mask: pd.Series,
    examples: int,
    columns: Sequence[Any] | None = None,
) -> Failure[ValidationError]:
    count = int(mask.sum())
    bad = df.loc[mask]
    shown = bad.loc[:, list(columns)] if columns else bad
    shown = shown.head(examples)
    listing = shown.to_string(max_colwidth=40)
    message = (
        f"{count} of {len(df)} rows {what}; first {len(shown)}:\n{listing}"
        if examples > 0
        else f"{count} of {len(df)} rows {what}"
    )
    return Failure(
        ValidationError(
            "", message, check=check, violations=count, total=len(df), rows=bad.head(examples)
        )
    )


def _missing(check: str, df: pd.DataFrame, columns: Sequence[Any]) -> StepResult | None:
    problem = missing_columns(df, columns)
    if problem is None:
        return None
    absent = [c for c in columns if c not in df.columns]
    return Failure(
        ValidationError("", problem, check=check, violations=len(absent), total=len(list(columns)))
    )


@transform
def expect_columns(
    df: pd.DataFrame, columns: str | Sequence[str], *, exact: bool = False
) -> StepResult:
    """Check that ``columns`` are present (and, with ``exact=True``, that no others are).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1], "b": [2]})
    >>> expect_columns(["a"])(df).unwrap().columns.tolist()
    ['a', 'b']
    >>> print(expect_columns(["a"], exact=True)(df).failure())
    expect_columns: unexpected column(s) ['b']; expected exactly ['a']
    """
    wanted = as_list(columns)
    absent = _missing("expect_columns", df, wanted)
    if absent is not None:
        return absent
    if exact:
        extra = [c for c in df.columns if c not in wanted]
        if extra:
            return Failure(
                ValidationError(
                    "",
                    f"unexpected column(s) {show(extra)}; expected exactly {show(wanted)}",
                    check="expect_columns",
                    violations=len(extra),
                    total=len(df.columns),
                )
            )
    return df


_KINDS: dict[str, Callable[[Any], bool]] = {
    "integer": lambda t: bool(pd.api.types.is_integer_dtype(t)),
    "float": pd.api.types.is_float_dtype,
    "numeric": pd.api.types.is_numeric_dtype,
    "string": lambda t: pd.api.types.is_string_dtype(t) and not isinstance(t, pd.CategoricalDtype),
    "boolean": pd.api.types.is_bool_dtype,
    "datetime": pd.api.types.is_datetime64_any_dtype,
    "category": lambda t: isinstance(t, pd.CategoricalDtype),
}


def _dtype_matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str) and expected in _KINDS:
        return bool(_KINDS[expected](actual))
    try:
        return bool(actual == pd.api.types.pandas_dtype(expected))
    except TypeError:
        return str(actual) == str(expected)


@transform
def expect_schema(
    df: pd.DataFrame, schema: Mapping[str, Any], *, exact: bool = False
) -> StepResult:
    """Check column dtypes: exact dtypes (``"int64"``, ``"str"``...) or kinds.

    Kinds: ``"integer"``, ``"float"``, ``"numeric"``, ``"string"``, ``"boolean"``,
    ``"datetime"``, ``"category"``. ``exact=True`` also rejects columns not in ``schema``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1], "name": ["x"]})
    >>> expect_schema({"id": "integer", "name": "string"})(df).unwrap().shape
    (1, 2)
    >>> print(expect_schema({"id": "float64"})(df).failure())
    expect_schema: 1 of 1 column(s) have the wrong dtype: 'id' is int64, expected float64
    """
    absent = _missing("expect_schema", df, list(schema))
    if absent is not None:
        return absent
    wrong = [
        f"{col!r} is {df[col].dtype}, expected {expected}"
        for col, expected in schema.items()
        if not _dtype_matches(df[col].dtype, expected)
    ]
    extra = [c for c in df.columns if c not in schema] if exact else []
    if wrong or extra:
        parts = []
        if wrong:
            parts.append(
                f"{len(wrong)} of {len(schema)} column(s) have the wrong dtype: " + "; ".join(wrong)
            )
        if extra:
            parts.append(f"unexpected column(s) {show(extra)}")
        return Failure(
            ValidationError(
                "",
                "; ".join(parts),
                check="expect_schema",
                violations=len(wrong) + len(extra),
                total=len(df.columns),
            )
        )
    return df


@transform
def expect_not_empty(df: pd.DataFrame) -> StepResult:
    """Check that the frame has at least one row.

    >>> import pandas as pd
    >>> print(expect_not_empty()(pd.DataFrame({"a": []})).failure())
    expect_not_empty: the frame has no rows (columns: ['a'])
    """
    if len(df) == 0:
        return Failure(
            ValidationError(
                "",
                f"the frame has no rows (columns: {show(df.columns, 30)})",
                check="expect_not_empty",
                violations=1,
                total=0,
            )
        )
    return df


@transform
def expect_unique(
    df: pd.DataFrame, columns: str | Sequence[str] | None = None, *, examples: int = EXAMPLES
) -> StepResult:
    """Check that no two rows share a value of ``columns`` (default: whole rows).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 2, 2], "v": ["a", "b", "c"]})
    >>> err = expect_unique("id")(df).failure()
    >>> err.violations, err.rows.index.tolist()
    (2, [1, 2])
    >>> print(err)
    expect_unique: 2 of 3 rows repeat a value of ['id']; first 2:
       id
    1   2
    2   2
    """
    cols = as_list(columns)
    absent = _missing("expect_unique", df, cols)
    if absent is not None:
        return absent
    mask = df.duplicated(subset=cols or None, keep=False)
    if bool(mask.any()):
        what = f"repeat a value of {show(cols)}" if cols else "are duplicates"
        return _violation("expect_unique", what, df, mask, examples, cols or None)
    return df


@transform
def expect_no_nulls(
    df: pd.DataFrame, columns: str | Sequence[str] | None = None, *, examples: int = EXAMPLES
) -> StepResult:
    """Check that ``columns`` (default: all) hold no nulls.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 2], "state": ["TX", None]})
    >>> print(expect_no_nulls("state")(df).failure())
    expect_no_nulls: 1 of 2 rows have nulls in ['state'] (state: 1); first 1:
       id state
    1   2   NaN
    """
    cols = as_list(columns) or list(df.columns)
    absent = _missing("expect_no_nulls", df, cols)
    if absent is not None:
        return absent
    nulls = df[cols].isna()
    mask = nulls.any(axis=1)
    if bool(mask.any()):
        per = ", ".join(f"{c}: {int(n)}" for c, n in nulls.sum().items() if n)
        return _violation(
            "expect_no_nulls", f"have nulls in {show(cols)} ({per})", df, mask, examples
        )
    return df


@transform
def expect_values_in(
    df: pd.DataFrame,
    column: str,
    values: Collection[Any],
    *,
    allow_null: bool = True,
    examples: int = EXAMPLES,
) -> StepResult:
    """Check that every value of ``column`` is one of ``values``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": ["TX", "XX", None]})
    >>> err = expect_values_in("state", {"TX", "CA"})(df).failure()
    >>> err.violations, err.rows["state"].tolist()
    (1, ['XX'])
    """
    absent = _missing("expect_values_in", df, [column])
    if absent is not None:
        return absent
    series = df[column]
    mask = ~series.isin(list(values))
    if allow_null:
        mask &= series.notna()
    if bool(mask.any()):
        odd = series[mask].drop_duplicates().tolist()
        allowed = sorted(values, key=repr) if len(values) <= 20 else f"{len(values)} values"
        return _violation(
            "expect_values_in",
            f"have {column!r} outside the allowed values {allowed}: {show(odd)}",
            df,
            mask,
            examples,
        )
    return df


@transform
def expect_range(
    df: pd.DataFrame,
    column: str,
    *,
    min: Any = None,
    max: Any = None,
    inclusive: bool = True,
    allow_null: bool = True,
    examples: int = EXAMPLES,
) -> StepResult:
    """Check that ``column`` lies between ``min`` and ``max`` (either may be omitted).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"qty": [1, 5, -2, 50]})
    >>> err = expect_range("qty", min=0, max=10)(df).failure()
    >>> err.violations, err.rows["qty"].tolist()
    (2, [-2, 50])
    """
    absent = _missing("expect_range", df, [column])
    if absent is not None:
        return absent
    if min is None and max is None:
        return fail("give min=, max= or both")
    series = df[column]
    ok = pd.Series(True, index=df.index)
    if min is not None:
        ok &= (series >= min) if inclusive else (series > min)
    if max is not None:
        ok &= (series <= max) if inclusive else (series < max)
    mask = ~ok.fillna(False).astype(bool)
    if allow_null:
        mask &= series.notna()
    if bool(mask.any()):
        lo = "" if min is None else f"{min} {'<=' if inclusive else '<'} "
        hi = "" if max is None else f" {'<=' if inclusive else '<'} {max}"
        return _violation("expect_range", f"break {lo}{column}{hi}", df, mask, examples, None)
    return df
