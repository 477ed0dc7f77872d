"""Column steps: choose, rename, type, compute and normalise columns.

Every factory returns a pure :class:`~tdm.Pipe`; none of them modifies its input frame.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Literal

import pandas as pd

from tdm.core.context import RunContext
from tdm.core.factories import transform, transform_with_context
from tdm.core.pipe import StepResult
from tdm.errors import StepArgumentError
from tdm.transforms._common import as_list, eval_expression, fail, missing_columns, show
from tdm.transforms._us_states import LOOKUP, US_STATE_CODES, normalize_key

__all__ = [
    "KEEP",
    "US_STATE_CODES",
    "add_date_from_filename",
    "append_date_column",
    "assign",
    "cast",
    "drop",
    "map_values",
    "rename_columns",
    "select",
    "standardize_us_state",
    "with_columns",
]

Missing = Literal["fail", "ignore"]


class _Keep(Enum):
    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep.KEEP
"""``map_values(default=KEEP)``: values without a mapping stay as they are."""


@transform
def select(df: pd.DataFrame, columns: str | Sequence[str], *, strict: bool = True) -> StepResult:
    """Keep only ``columns``, in the order given.

    Args:
        columns: the column names to keep (a single name is fine).
        strict: fail when a requested column is missing (default); ``False`` skips it.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1], "b": [2], "c": [3]})
    >>> select(["c", "a"])(df).unwrap().columns.tolist()
    ['c', 'a']
    >>> print(select(["a", "zz"])(df).failure())  # doctest: +NORMALIZE_WHITESPACE
    select: column ['zz'] not found; the frame's columns are ['a', 'b', 'c'];
    fix the name or use select(..., strict=False)
    >>> select(["a", "zz"], strict=False)(df).unwrap().columns.tolist()
    ['a']
    """
    wanted = list(dict.fromkeys(as_list(columns)))
    problem = missing_columns(df, wanted)
    if problem:
        if strict:
            return fail(problem + "; fix the name or use select(..., strict=False)")
        wanted = [c for c in wanted if c in df.columns]
    return df.loc[:, wanted]


@transform
def drop(
    df: pd.DataFrame, columns: str | Sequence[str], *, missing: Missing = "fail"
) -> StepResult:
    """Remove ``columns``.

    Args:
        columns: the column names to remove.
        missing: ``"fail"`` (default) when a column is not there, or ``"ignore"``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1], "b": [2]})
    >>> drop("b")(df).unwrap().columns.tolist()
    ['a']
    >>> drop(["b", "zz"], missing="ignore")(df).unwrap().columns.tolist()
    ['a']
    """
    cols = as_list(columns)
    problem = missing_columns(df, cols)
    if problem and missing == "fail":
        return fail(problem + "; fix the name or use drop(..., missing='ignore')")
    return df.drop(columns=[c for c in cols if c in df.columns])


@transform
def rename_columns(
    df: pd.DataFrame, mapping: Mapping[str, str], *, missing: Missing = "fail"
) -> StepResult:
    """Rename columns with ``{old: new}``; fails on missing names or name clashes.

    Args:
        mapping: old name -> new name.
        missing: ``"fail"`` (default) when an old name is not a column, or ``"ignore"``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"SerialNumber": ["s1"], "Uuid": ["u1"]})
    >>> step = rename_columns({"SerialNumber": "serial_number", "Uuid": "device_id"})
    >>> step(df).unwrap().columns.tolist()
    ['serial_number', 'device_id']
    >>> print(rename_columns({"Serial": "serial"})(df).failure())  # doctest: +NORMALIZE_WHITESPACE
    rename_columns: column ['Serial'] not found; the frame's columns are
    ['SerialNumber', 'Uuid']; fix the name or use rename_columns(..., missing='ignore')
    """
    mapping = dict(mapping)
    problem = missing_columns(df, mapping)
    if problem:
        if missing == "fail":
            return fail(problem + "; fix the name or use rename_columns(..., missing='ignore')")
        mapping = {k: v for k, v in mapping.items() if k in df.columns}
    new_names = [mapping.get(c, c) for c in df.columns]
    seen: dict[Any, int] = {}
    for name in new_names:
        seen[name] = seen.get(name, 0) + 1
    clashes = [n for n, k in seen.items() if k > 1 and sum(c == n for c in df.columns) < k]
    if clashes:
        return fail(
            f"renaming would give duplicate column name(s) {show(clashes)}; "
            "drop or rename the existing column(s) first"
        )
    return df.rename(columns=mapping)


def _to_dtype(dtype: Any) -> Any:
    try:
        import pyarrow as pa

        if isinstance(dtype, pa.DataType):
            return pd.ArrowDtype(dtype)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    return pd.api.types.pandas_dtype(dtype) if not isinstance(dtype, type) else dtype


def _bad_values(series: pd.Series, dtype: Any, limit: int = 10_000) -> list[Any]:
    bad: list[Any] = []
    for value in series.dropna().unique()[:limit]:
        try:
            pd.Series([value], dtype=object).astype(dtype)
        except (ValueError, TypeError, OverflowError):
            bad.append(value)
    return bad


@transform
def cast(
    df: pd.DataFrame,
    dtypes: Mapping[str, Any],
    *,
    errors: Literal["fail", "null"] = "fail",
) -> StepResult:
    """Convert columns to pandas or Arrow dtypes; fail listing the values that do not parse.

    Args:
        dtypes: column -> dtype (``"int64"``, ``"Int64"``, ``"float64"``, ``"str"``,
            ``"datetime64[ns]"``, ``"int64[pyarrow]"``, a ``pyarrow.DataType``...).
        errors: ``"fail"`` (default) or ``"null"`` to turn unparseable values into nulls
            (the target dtype must hold nulls, e.g. ``"Int64"`` or ``"float64"``).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"n": ["1", "2", "x"]})
    >>> print(cast({"n": "int64"})(df).failure())  # doctest: +NORMALIZE_WHITESPACE
    cast: column 'n' (str) cannot be cast to int64: 1 of 3 rows hold 1 value(s) that do not
    parse: ['x']; clean them first or use cast(..., errors='null')
    >>> cast({"n": "Int64"}, errors="null")(df).unwrap()["n"].tolist()
    [1, 2, <NA>]
    """
    problem = missing_columns(df, dtypes)
    if problem:
        return fail(problem)
    out = df.copy(deep=False)
    for col, wanted in dtypes.items():
        dtype = _to_dtype(wanted)
        series = df[col]
        try:
            out[col] = series.astype(dtype)
            continue
        except (ValueError, TypeError, OverflowError) as exc:
            bad = _bad_values(series, dtype)
            if not bad:
                nulls = int(series.isna().sum())
                hint = (
                    f"; it has {nulls} null(s), which {dtype} cannot hold: use a nullable "
                    "dtype such as 'Int64' or fill them first"
                    if nulls
                    else ""
                )
                return fail(
                    f"column {col!r} ({series.dtype}) cannot be cast to {dtype}: {exc}{hint}"
                )
            if errors == "null":
                cleaned = series.astype(object).where(~series.isin(bad), None)
                try:
                    out[col] = cleaned.astype(dtype)
                    continue
                except (ValueError, TypeError) as exc2:
                    return fail(f"column {col!r} cannot be cast to {dtype}: {exc2}")
            rows = int(series.isin(bad).sum())
            return fail(
                f"column {col!r} ({series.dtype}) cannot be cast to {dtype}: {rows} of "
                f"{len(series)} rows hold {len(bad)} value(s) that do not parse: {show(bad)}; "
                "clean them first or use cast(..., errors='null')"
            )
    return out


Expr = str | Callable[[pd.DataFrame], Any] | int | float | bool | None


@transform
def assign(
    df: pd.DataFrame, columns: Mapping[str, Any] | None = None, /, **named: Any
) -> StepResult:
    """Add or replace columns from expressions, in order (later ones see earlier ones).

    Each value is a pandas expression string (``"a + b"``, evaluated with ``DataFrame.eval``),
    a function ``df -> Series`` or a constant. ``with_columns`` is the same step.

    Args:
        columns: ``{name: expression}``, for names that are not Python identifiers.
        **named: ``name=expression``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1, 2], "b": [10, 20]})
    >>> assign(total="a + b", big=lambda d: d["total"] > 15)(df).unwrap().to_dict("list")
    {'a': [1, 2], 'b': [10, 20], 'total': [11, 22], 'big': [False, True]}
    >>> assign({"unit price": 2.5})(df).unwrap()["unit price"].tolist()
    [2.5, 2.5]
    """
    exprs: dict[str, Any] = {**dict(columns or {}), **named}
    out = df.copy(deep=False)
    for name, expr in exprs.items():
        if isinstance(expr, str):
            try:
                value = eval_expression(out, expr)
            except Exception as exc:
                return fail(f"column {name!r}: cannot evaluate {expr!r}: {exc}")
        elif callable(expr):
            value = expr(out)
        else:
            value = expr
        out[name] = value
    return out


with_columns = assign


@transform_with_context
def append_date_column(
    df: pd.DataFrame,
    context: RunContext,
    column: str = "load_date",
    *,
    fmt: str | None = None,
    overwrite: bool = False,
) -> StepResult:
    """Add a column holding the run's start time (the same value in every row).

    The value comes from the run (``RunContext.started_at``), never from the clock, so a run
    is reproducible and every row of a run carries the same stamp.

    Args:
        column: the new column's name.
        fmt: a ``strftime`` format to store text (e.g. ``"%Y-%m-%d"``); by default the column
            holds timezone-aware UTC timestamps.
        overwrite: replace an existing column of that name instead of failing.

    >>> import pandas as pd
    >>> from datetime import datetime, timezone
    >>> ctx = RunContext(started_at=datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc))
    >>> df = pd.DataFrame({"a": [1, 2]})
    >>> append_date_column()(df, context=ctx).unwrap()["load_date"].tolist()[0]
    Timestamp('2026-03-01 12:30:00+0000', tz='UTC')
    >>> append_date_column("day", fmt="%Y-%m-%d")(df, context=ctx).unwrap()["day"].tolist()
    ['2026-03-01', '2026-03-01']
    """
    if column in df.columns and not overwrite:
        return fail(f"column {column!r} already exists; choose another name or pass overwrite=True")
    started = pd.Timestamp(context.started_at)
    value: Any = started.strftime(fmt) if fmt is not None else started
    return df.assign(**{column: value})


_DATE = re.compile(r"(?<!\d)(\d{4})[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])(?!\d)")


def _date_in(name: str, pattern: re.Pattern[str] | None, fmt: str | None) -> pd.Timestamp | None:
    base = posixpath.basename(name.replace("\\", "/").split("?", 1)[0])
    if pattern is None:
        match = _DATE.search(base)
        if match is None:
            return None
        text, fmt = "-".join(match.groups()), "%Y-%m-%d"
    else:
        match = pattern.search(base)
        if match is None:
            return None
        text = match.group(1) if pattern.groups else match.group(0)
    try:
        return pd.Timestamp(pd.to_datetime(text, format=fmt))
    except (ValueError, TypeError):
        return None


@transform
def add_date_from_filename(
    df: pd.DataFrame,
    column: str = "file_date",
    *,
    source_column: str = "source_file",
    pattern: str | None = None,
    fmt: str | None = None,
    missing: Literal["fail", "null"] = "fail",
) -> StepResult:
    """Add a date column parsed from the name of the file each row was read from.

    The file name comes from ``source_column`` (``files.read(..., path_column="source_file")``
    adds one per row) or, when the frame has no such column, from ``df.attrs["source_path"]``
    (set by ``files.read``). By default the first ``YYYY-MM-DD``, ``YYYY_MM_DD`` or
    ``YYYYMMDD`` in the base name is used.

    Args:
        column: the new column's name.
        source_column: the column holding each row's source path.
        pattern: a regular expression whose first group (or whole match) is the date text.
        fmt: the ``strptime`` format of that text (inferred when omitted).
        missing: ``"fail"`` (default) when a name holds no date, or ``"null"``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"source_file": ["s3://b/devices_2026-01-31.csv", "x_20260201.csv"]})
    >>> add_date_from_filename()(df).unwrap()["file_date"].dt.strftime("%Y-%m-%d").tolist()
    ['2026-01-31', '2026-02-01']
    >>> one = pd.DataFrame({"a": [1]})
    >>> one.attrs["source_path"] = "/data/export_2025_12_24.csv"
    >>> add_date_from_filename("day")(one).unwrap()["day"].tolist()
    [Timestamp('2025-12-24 00:00:00')]
    """
    if source_column in df.columns:
        names = df[source_column]
    elif df.attrs.get("source_path"):
        names = pd.Series([str(df.attrs["source_path"])] * len(df), index=df.index)
    else:
        return fail(
            f"no source file name: the frame has no {source_column!r} column and no "
            "attrs['source_path']; read it with files.read(..., path_column='source_file') "
            "or name the column with add_date_from_filename(source_column=...)"
        )
    compiled = re.compile(pattern) if pattern is not None else None
    dates = {name: _date_in(str(name), compiled, fmt) for name in names.dropna().unique()}
    undated = [name for name, date in dates.items() if date is None]
    if undated and missing == "fail":
        return fail(
            f"no date found in file name(s) {show(undated)}; pass pattern= (and fmt=) to say "
            "where the date is, or missing='null'"
        )
    values = pd.to_datetime(names.map(dates))
    return df.assign(**{column: values})


@transform
def map_values(
    df: pd.DataFrame,
    column: str,
    mapping: Mapping[Any, Any],
    *,
    default: Any = KEEP,
    strict: bool = False,
) -> StepResult:
    """Replace the values of ``column`` through ``mapping``.

    Values without a mapping stay as they are (``default=KEEP``), become ``default``, or make
    the step fail (``strict=True``, listing them). Nulls stay null.

    Args:
        column: the column to change.
        mapping: old value -> new value.
        default: the value for unmapped values (``KEEP`` keeps them).
        strict: fail when a non-null value has no mapping.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": ["Texas", "Ohio", None]})
    >>> map_values("state", {"Texas": "TX"})(df).unwrap()["state"].tolist()
    ['TX', 'Ohio', nan]
    >>> map_values("state", {"Texas": "TX"}, default="??")(df).unwrap()["state"].tolist()
    ['TX', '??', nan]
    >>> strict = map_values("state", {"Texas": "TX"}, strict=True)
    >>> print(strict(df).failure())  # doctest: +NORMALIZE_WHITESPACE
    map_values: column 'state': 1 row(s) hold 1 value(s) with no mapping: ['Ohio'];
    add them to the mapping or drop strict=True
    """
    if column not in df.columns:
        return fail(missing_columns(df, [column]) or "")
    series = df[column]
    known = series.isin(list(mapping.keys()))
    unmapped = series.notna() & ~known
    if strict and bool(unmapped.any()):
        values = series[unmapped].unique().tolist()
        return fail(
            f"column {column!r}: {int(unmapped.sum())} row(s) hold {len(values)} value(s) "
            f"with no mapping: {show(values)}; add them to the mapping or drop strict=True"
        )
    mapped = series.map(dict(mapping))
    if default is KEEP:
        result = mapped.where(known, series)
    else:
        result = mapped.where(known | series.isna(), default)
    if pd.api.types.is_object_dtype(result.dtype):
        result = result.infer_objects()
    return df.assign(**{column: result})


@transform
def standardize_us_state(
    df: pd.DataFrame,
    column: str = "state",
    *,
    unknown: Literal["keep", "fail", "null"] = "keep",
    aliases: Mapping[str, str] | None = None,
) -> StepResult:
    """Normalise US state names, codes and messy spellings to USPS codes.

    ``'Texas'``, ``'TX'``, ``'tx'``, ``'tex.'``, ``' new  york'``, ``'Calif.'``, ISO 3166-2
    codes such as ``'US-TX'`` and ``'District of Columbia'`` all become two-letter codes (DC
    and territories included). Your own spellings go in ``aliases`` (in YAML, load them from a
    file next to the config with ``aliases: ${file:state_aliases.csv}``).

    Args:
        column: the column holding states.
        unknown: what to do with values that are not a state: ``"keep"`` them as they are
            (default), ``"fail"`` listing them with their row counts, or turn them into nulls
            (``"null"``). Kept or nulled values are counted in ``df.attrs["unknown_us_states"]``.
        aliases: extra spellings, ``{spelling: USPS code}`` (matched like the built-in ones:
            case, dots and extra spaces do not matter); they win over the built-in table.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": ["Texas", "TX", "US-TX", "calif.", "new york", "Gondor"]})
    >>> standardize_us_state()(df).unwrap()["state"].tolist()
    ['TX', 'TX', 'TX', 'CA', 'NY', 'Gondor']
    >>> print(standardize_us_state(unknown="fail")(df).failure())  # doctest: +NORMALIZE_WHITESPACE
    standardize_us_state: column 'state': 1 row(s) hold 1 value(s) that are not US states:
    'Gondor' (1 row); fix them, add them to aliases={...}, or use unknown='keep' or
    unknown='null'
    >>> standardize_us_state(aliases={"Gondor": "NY"})(df).unwrap()["state"].tolist()[-1]
    'NY'
    """
    if column not in df.columns:
        return fail(missing_columns(df, [column]) or "")
    extra = _alias_table(aliases or {})
    series = df[column]
    codes = {
        value: _state_code(value, extra) if isinstance(value, str) else None
        for value in series.dropna().unique()
    }
    unknowns = [value for value, code in codes.items() if code is None]
    counts: dict[Any, int] = {}
    if unknowns:
        tally = series[series.isin(unknowns)].value_counts()
        counts = {value: int(tally.get(value, 0)) for value in unknowns}
        counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))
    if unknowns and unknown == "fail":
        rows = sum(counts.values())
        listed = ", ".join(
            f"{value!r} ({n} row{'s' if n != 1 else ''})" for value, n in list(counts.items())[:20]
        )
        more = f" and {len(counts) - 20} more" if len(counts) > 20 else ""
        return fail(
            f"column {column!r}: {rows} row(s) hold {len(unknowns)} value(s) that are not US "
            f"states: {listed}{more}; fix them, add them to aliases={{...}}, or use "
            "unknown='keep' or unknown='null'"
        )
    mapped = series.map(codes)
    result = mapped if unknown == "null" else mapped.where(mapped.notna(), series)
    if pd.api.types.is_object_dtype(result.dtype):
        result = result.infer_objects()
    out = df.assign(**{column: result})
    if counts:
        out.attrs["unknown_us_states"] = counts
    return out


def _alias_table(aliases: Mapping[str, str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for spelling, code in aliases.items():
        official = LOOKUP.get(normalize_key(str(code)))
        if official is None:
            raise StepArgumentError(
                f"standardize_us_state(): aliases[{spelling!r}] = {code!r} is not a US state "
                "code or name; map each spelling to a USPS code such as 'TX'"
            )
        table[normalize_key(str(spelling))] = official
    return table


def _state_code(value: str, extra: Mapping[str, str]) -> str | None:
    key = normalize_key(value)
    found = extra.get(key) or LOOKUP.get(key)
    if found is None:
        for prefix in ("us ", "usa "):  # ISO 3166-2 (US-TX) and similar country prefixes
            if key.startswith(prefix):
                rest = key[len(prefix) :]
                found = extra.get(rest) or LOOKUP.get(rest)
                break
    return found
