"""The reader's side of plan optimisation (:mod:`tdm.core.pushdown`).

A :class:`~tdm.core.files.Read` may carry ``keep_columns`` (the only columns the pipeline
uses) and ``row_filter`` (conditions a following ``filter_rows`` applies). Here they become
reader arguments, so that the frame a pruned read gives holds the same columns, in the same
order, with the same values and index, as the unpruned frame restricted to those columns.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tdm.core.files import Read, split_compression
from tdm.core.group_keys import ENCODED_ATTR
from tdm.effects.storage import FileTarget

__all__ = [
    "DICTIONARY_OPTION",
    "as_categories",
    "as_planned",
    "csv_columns",
    "dictionary_encoded",
    "encoded_columns",
    "mark_encoded",
    "read_tables",
    "kept_in_order",
    "prefilter",
    "parquet_index_columns",
    "row_groups_to_read",
]

DICTIONARY_OPTION = "_tdm_dictionary_columns"
"""The reader option (internal) naming the CSV columns to read dictionary-encoded."""

_ENCODED_KEY = b"tdm.encoded_columns"

_MAX_CARDINALITY = 1 << 16
"""Distinct values per CSV block above which a column stays plain text (hashing them once
while parsing pays only when values repeat)."""

_OPS: Mapping[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def kept_in_order(names: Sequence[str], keep: Iterable[str]) -> list[str] | None:
    """The file's columns that are kept, in file order (None: prune nothing).

    Nothing is pruned when the file repeats a column name (readers would tell them apart
    differently) or when no kept column is in the file (a frame of no columns loses its rows).

    >>> kept_in_order(["id", "qty", "state"], {"state", "id", "other"})
    ['id', 'state']
    >>> kept_in_order(["a", "a"], {"a"}) is None
    True
    """
    wanted = set(keep)
    if len(set(names)) != len(names):
        return None
    out = [n for n in names if n in wanted]
    return out or None


def parquet_index_columns(schema: pa.Schema) -> list[str]:
    """Columns that pandas metadata restores as the frame's index (always read)."""
    meta = schema.pandas_metadata or {}
    return [c for c in meta.get("index_columns", []) if isinstance(c, str)]


def csv_columns(source: Any, read: pa_csv.ReadOptions, parse: pa_csv.ParseOptions) -> list[str]:
    """The column names of a CSV file (from its header; reads only its first block)."""
    probe = pa_csv.ReadOptions(
        encoding=read.encoding,
        skip_rows=read.skip_rows,
        column_names=read.column_names,
        autogenerate_column_names=read.autogenerate_column_names,
        block_size=1 << 20,
    )
    reader = pa_csv.open_csv(source, read_options=probe, parse_options=parse)
    try:
        return list(reader.schema.names)
    finally:
        reader.close()


def _comparable(stat: Any, value: Any) -> tuple[Any, Any] | None:
    """``stat`` and ``value`` as pandas would compare them, or None (do not skip on them)."""
    if isinstance(value, str):
        return (stat, value) if isinstance(stat, str) else None
    if isinstance(stat, bool) or not isinstance(stat, (int, float)):
        return None
    if isinstance(stat, float) or isinstance(value, float):
        # numpy compares an int64 column with a float as float64: so must the statistics
        return float(stat), float(value)
    return stat, value


def _may_hold(stats: Any, op: str, value: Any) -> bool:
    """Whether some row of a row group with ``stats`` can satisfy ``column op value``."""
    if stats is None or not stats.has_min_max:
        return True
    low = _comparable(stats.min, value)
    high = _comparable(stats.max, value)
    if low is None or high is None or any(v != v for v in (*low, *high)):  # NaN bounds
        return True
    (lo, v), (hi, _) = low, high
    if op == "==":
        return bool(lo <= v <= hi)
    if op in (">", ">="):
        return _OPS[op](hi, v)
    return _OPS[op](lo, v)


def row_groups_to_read(
    meta: pq.FileMetaData,
    schema: pa.Schema,
    conditions: Sequence[tuple[str, str, Any]],
    read: Sequence[str],
) -> list[int] | None:
    """The row groups of a parquet file where every condition may hold (None: all of them).

    Only plain numeric and string columns are judged (not dictionary, date or decimal ones):
    for them a row ``filter_rows`` keeps has a value between the group's min and max. Groups
    are skipped only when the ``read`` columns keep the pandas dtypes the whole file gives.
    """
    positions = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    checks: list[tuple[int, str, Any]] = []
    for column, op, value in conditions:
        if column not in positions or schema.get_field_index(column) < 0:
            continue
        kind = schema.field(column).type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        if (numeric and not isinstance(value, str)) or (text and isinstance(value, str)):
            checks.append((positions[column], op, value))
    if not checks:
        return None
    groups = [
        g
        for g in range(meta.num_row_groups)
        if all(_may_hold(meta.row_group(g).column(c).statistics, op, v) for c, op, v in checks)
    ]
    if len(groups) == meta.num_row_groups:
        return None
    return groups if _same_dtypes(meta, schema, positions, read, groups) else None


def _same_dtypes(
    meta: pq.FileMetaData,
    schema: pa.Schema,
    positions: Mapping[str, int],
    read: Sequence[str],
    groups: Sequence[int],
) -> bool:
    """Whether the kept row groups convert to the same pandas dtypes as the whole file.

    An integer or boolean column with nulls becomes float64/object in pandas, without them
    int64/bool: so skipping the only groups holding its nulls would change its dtype. A
    dictionary column's categories come from the groups read. Unknown null counts: no skip.
    """
    for name in read:
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind) or pa.types.is_nested(kind):
            return False
        if not (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
            continue
        if name not in positions:
            return False
        counts = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(positions[name]).statistics
            if stats is None or not stats.has_null_count:
                return False
            counts.append(stats.null_count)
        if sum(counts) and not sum(counts[g] for g in groups):
            return False
    return True


def _plain_index(schema: pa.Schema, single: bool) -> bool:
    """Whether the whole file's frame has the default index 0..n-1 (so that row positions
    are its labels): no pandas index columns, or (one file) an unnamed range from 0 by 1."""
    meta = schema.pandas_metadata or {}
    index = meta.get("index_columns", [])
    return not index or (
        single
        and all(
            isinstance(c, dict)
            and c.get("kind") == "range"
            and c.get("name") is None
            and c.get("start") == 0
            and c.get("step") == 1
            for c in index
        )
    )


def _parquet(
    target: FileTarget,
    path: str,
    options: Mapping[str, Any],
    effect: Read,
    skip: bool,
    single: bool,
) -> tuple[pa.Table, np.ndarray | None, int]:
    """One parquet file with the pushdown applied: the table, the positions of its rows when
    row groups were skipped (else None), and the file's row count."""
    fs = None if target.local else target.fs
    source = pq.ParquetFile(path, filesystem=fs) if fs is not None else pq.ParquetFile(path)
    try:
        schema, meta = source.schema_arrow, source.metadata
        columns = None
        if effect.keep_columns is not None:
            keep = {*effect.keep_columns, *parquet_index_columns(schema)}
            columns = kept_in_order(schema.names, keep)
        wanted = [
            name
            for name in effect.dictionary_columns or ()
            if schema.get_field_index(name) >= 0
            and (columns is None or name in columns)
            and (
                pa.types.is_string(schema.field(name).type)
                or pa.types.is_large_string(schema.field(name).type)
            )
        ]
        if wanted:
            options = {**options, "read_dictionary": wanted}
            source.close()
            source = pq.ParquetFile(path, filesystem=fs, read_dictionary=wanted)
        groups = None
        if (
            skip
            and effect.row_filter
            and _plain_index(schema, single)
            and not (set(options) - {"read_dictionary"})
        ):
            read = columns if columns is not None else schema.names
            groups = row_groups_to_read(meta, schema, effect.row_filter, read)
        if groups is None:
            kwargs = dict(options)
            if fs is not None:
                kwargs["filesystem"] = fs
            table = pq.read_table(path, columns=columns, **kwargs)
            return mark_encoded(table, wanted), None, meta.num_rows
        starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
        kept = [np.arange(starts[g], starts[g + 1], dtype=np.int64) for g in groups]
        table = mark_encoded(source.read_row_groups(groups, columns=columns), wanted)
        index = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
        return table, index, meta.num_rows
    finally:
        source.close()


def _csv(
    target: FileTarget,
    path: str,
    options: Mapping[str, Any],
    keep: Sequence[str],
    read: Callable[[FileTarget, str, str, Mapping[str, Any]], pa.Table],
    dictionary: Sequence[str] = (),
) -> pa.Table:
    base, compression = split_compression(path)
    tsv = base.lower().endswith(".tsv")
    sep = options.get("sep", options.get("delimiter", "\t" if tsv else ","))
    read_options = pa_csv.ReadOptions(encoding=options.get("encoding", "utf8"))
    parse = pa_csv.ParseOptions(delimiter=sep, quote_char=options.get("quotechar", '"'))
    if target.local:
        names = csv_columns(path, read_options, parse)
    else:
        with target.fs.open(path, "rb", compression=compression) as handle:
            names = csv_columns(handle, read_options, parse)
    columns = kept_in_order(names, keep)
    pruned = options if columns is None else {**options, "columns": columns}
    if dictionary:
        pruned = {**pruned, DICTIONARY_OPTION: dictionary}
    return read(target, path, "csv", pruned)


def read_tables(
    target: FileTarget,
    paths: Sequence[str],
    fmt: str,
    options: Mapping[str, Any],
    effect: Read,
    retry: Callable[[Callable[[], Any]], Any],
    read: Callable[[FileTarget, str, str, Mapping[str, Any]], pa.Table],
    skip: bool,
) -> tuple[list[pa.Table], np.ndarray | None]:
    """``paths`` read with ``effect``'s pushdown; the row positions when rows were skipped."""
    tables: list[pa.Table] = []
    spans: list[tuple[int, int, np.ndarray | None]] = []  # (offset, rows, rows kept)
    offset, skipped = 0, False
    for path in paths:
        if fmt == "parquet":
            table, kept, total = retry(
                functools.partial(_parquet, target, path, options, effect, skip, len(paths) == 1)
            )
        else:
            keep = effect.keep_columns or ()
            dictionary = effect.dictionary_columns or ()
            table = retry(functools.partial(_csv, target, path, options, keep, read, dictionary))
            kept, total = None, table.num_rows
        skipped = skipped or kept is not None
        spans.append((offset, total, kept))
        offset += total
        tables.append(table)
    if not skipped:
        return tables, None
    positions = [
        start + (kept if kept is not None else np.arange(total, dtype=np.int64))
        for start, total, kept in spans
    ]
    return tables, np.concatenate(positions)


_ARROW_COMPARE: Mapping[str, Callable[[Any, Any], Any]] = {
    ">": pc.greater,
    ">=": pc.greater_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    "==": pc.equal,
}


def _judged(kind: pa.DataType, value: Any) -> bool:
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    return (numeric and not isinstance(value, str)) or (text and isinstance(value, str))


def prefilter(
    table: pa.Table,
    conditions: Sequence[tuple[str, str, Any]],
    encoded: Iterable[str] = (),
) -> tuple[np.ndarray, Any] | None:
    """Positions of the rows of ``table`` where every condition may hold, and the mask that
    selects them (None: keep all).

    A superset of the rows ``filter_rows`` keeps (a null or NaN value is kept; the step
    decides), so converting only these to pandas changes nothing but the work done. None
    when nothing is dropped, or when dropping rows would change a column's pandas dtype
    (an integer/boolean column whose only nulls are dropped, a dictionary column other than
    the ``encoded`` ones, whose categories are sorted from the whole dictionary later).
    """
    encoded = frozenset(encoded)
    mask = None
    for column, op, value in conditions:
        found = table.schema.get_all_field_indices(column)
        if len(found) != 1 or not _judged(table.schema.field(found[0]).type, value):
            continue
        values = table.column(found[0])
        try:
            holds = _ARROW_COMPARE[op](values, pa.scalar(value))
        except Exception:  # a literal the column cannot be compared with: not judged here
            continue
        keep = pc.or_kleene(holds, pc.is_null(values, nan_is_null=True))
        mask = keep if mask is None else pc.and_kleene(mask, keep)
    if mask is None:
        return None
    kept = np.flatnonzero(mask.to_numpy())
    if len(kept) == table.num_rows:
        return None
    for i, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_dictionary(kind) and field.name in encoded:
            continue
        if pa.types.is_dictionary(kind) or pa.types.is_nested(kind):
            return None
        column = table.column(i)
        nullable = pa.types.is_integer(kind) or pa.types.is_boolean(kind)
        if nullable and column.null_count and not pc.is_null(column).to_numpy()[kept].any():
            return None
    return kept, mask


def dictionary_encoded(
    convert: pa_csv.ConvertOptions, options: Mapping[str, Any]
) -> tuple[str, ...]:
    """Set ``convert`` to dictionary-encode the text columns ``options`` asks for; return them.

    pyarrow's CSV reader encodes every column it infers as text (up to a cardinality, beyond
    which the column stays plain): :func:`as_planned` then decodes the ones not asked for.
    """
    wanted = tuple(options.get(DICTIONARY_OPTION) or ())
    if wanted:
        convert.auto_dict_encode = True
        convert.auto_dict_max_cardinality = _MAX_CARDINALITY
    return wanted


def _decoded(table: pa.Table, keep: Iterable[str]) -> pa.Table:
    keep = frozenset(keep)
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and field.name not in keep:
            column = table.column(i).cast(field.type.value_type)
            table = table.set_column(i, pa.field(field.name, field.type.value_type), column)
    return table


def mark_encoded(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """``table``, noting (in its schema metadata) the columns read dictionary-encoded on
    request, so that they are told from a file's own dictionary (category) columns."""
    if not names:
        return table
    meta = dict(table.schema.metadata or {})
    meta[_ENCODED_KEY] = json.dumps(list(names)).encode()
    return table.replace_schema_metadata(meta)


def _marked(table: pa.Table) -> frozenset[str]:
    found = (table.schema.metadata or {}).get(_ENCODED_KEY)
    return frozenset(json.loads(found)) if found else frozenset()


def as_planned(table: pa.Table, wanted: Sequence[str]) -> pa.Table:
    """A CSV ``table`` with every dictionary column outside ``wanted`` decoded to plain text
    (pyarrow encodes every text column it may), the others noted as encoded on request."""
    table = _decoded(table, wanted)
    return mark_encoded(table, [n for n in wanted if n in table.column_names])


def encoded_columns(tables: list[pa.Table]) -> tuple[str, ...]:
    """The columns every one of ``tables`` holds dictionary-encoded on request, after giving
    back as text the ones some table holds as its file's own dictionary (so the concatenated
    column is what the plain read gives). Updates ``tables`` in place."""
    ours: set[str] = set()
    native: set[str] = set()
    for table in tables:
        marked = _marked(table)
        ours |= marked
        for field in table.schema:
            if pa.types.is_dictionary(field.type) and field.name not in marked:
                native.add(field.name)
    clash = native & ours
    for i, table in enumerate(tables):
        undo = _marked(table) & clash
        if undo:
            kinds = {f.name for f in table.schema if pa.types.is_dictionary(f.type)}
            tables[i] = _decoded(table, kinds - undo)
    for i, table in enumerate(tables):
        if _marked(table):
            tables[i] = table.replace_schema_metadata(
                {k: v for k, v in (table.schema.metadata or {}).items() if k != _ENCODED_KEY}
            )
    return tuple(sorted(ours - native))


def as_categories(frame: Any, columns: Sequence[str]) -> Any:
    """``frame`` with its category ``columns``' categories sorted, as text sorts (so groups
    come out in the order the plain text column gives), and noted in ``frame.attrs`` for the
    aggregate that gives them back as text (:data:`tdm.core.group_keys.ENCODED_ATTR`)."""
    import pandas as pd

    frame.attrs[ENCODED_ATTR] = tuple(columns)
    for column in columns:
        if column in frame.columns and isinstance(frame[column].dtype, pd.CategoricalDtype):
            values = frame[column].cat
            if len(values.categories) == 0 and values.categories.dtype == object:
                # an empty dictionary converts with object categories: the plain read of the
                # text column gives str, and so must the aggregate that gives the keys back
                frame[column] = values.set_categories(pd.Index([], dtype="str"))
                continue
            ordered = values.categories.sort_values()
            if not values.categories.equals(ordered):
                frame[column] = values.reorder_categories(ordered)
    return frame
