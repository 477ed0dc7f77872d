"""One copy out of Arrow: a table, or the rows of it a plan keeps, as a pandas frame.

:func:`to_pandas` converts a whole table. :func:`rows_to_pandas` converts only the rows a
pushed-down filter may keep and gives the columns read dictionary-encoded on request
(``encoded``) sorted categories, as :func:`tdm.effects.pushdown.as_categories` would: Arrow
filters every column chunk by chunk, and those columns' codes are written straight into their
pandas array, mapped from each chunk's dictionary to the sorted categories (converting them and
sorting their categories afterwards would rewrite every code twice more). The frame is the one
``to_pandas(table.take(kept))`` gives, with those categories sorted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tdm._types import Frame

__all__ = ["rows_to_pandas", "to_pandas"]

_COMBINE_LIMIT = 1 << 30  # int32 string offsets: keep combined string columns well under 2 GiB


def to_pandas(table: pa.Table) -> Frame:
    """``table`` as a frame: numbers become numpy, strings stay Arrow-backed (pandas "str"),
    dates become datetime64; Arrow buffers are freed as columns are converted."""
    # String columns are combined into one chunk first: pandas then groups, joins and filters
    # them in one pass instead of one per CSV block (2-3x faster group-bys on them).
    for i, column in enumerate(table.columns):
        if (
            column.num_chunks > 1
            and (pa.types.is_string(column.type) or pa.types.is_binary(column.type))
            and column.nbytes < _COMBINE_LIMIT
        ):
            table = table.set_column(i, table.field(i), column.combine_chunks())
    frame: Frame = table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)
    return frame


def _values(array: pa.Array) -> np.ndarray:
    """The value buffer of a fixed-width ``array`` as numpy, nulls' slots included (no copy)."""
    kind = np.dtype(array.type.to_pandas_dtype())
    data = np.frombuffer(array.buffers()[1], dtype=kind)
    return data[array.offset : array.offset + len(array)]


def _code_dtype(categories: int) -> type[np.signedinteger]:
    # the smallest code type pandas gives a Categorical of this many categories
    for kind in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(kind).max:
            return kind
    return np.int64


def _categorical(column: pa.ChunkedArray, rows: pa.ChunkedArray) -> Any:
    """``rows``, the kept rows of the dictionary-encoded ``column``, as a Categorical whose
    categories are ``column``'s, sorted as text sorts (None: no category, left to
    :func:`to_pandas`)."""
    chunks = column.chunks
    if not chunks or any(chunk.dictionary.null_count for chunk in chunks):
        return None
    # Every chunk (CSV block, row group) has its own dictionary: the union, in the order
    # unifying them gives, converted as to_pandas converts categories. It is taken from every
    # chunk, as a take would concatenate them: a filter drops the chunks it empties.
    union = pc.unique(pa.chunked_array([chunk.dictionary for chunk in chunks]))
    empty = pa.DictionaryArray.from_arrays(pa.array([], type=column.type.index_type), union)
    categories = to_pandas(pa.table({"c": pa.chunked_array([empty])}))["c"].cat.categories
    if len(categories) == 0:
        return None
    ordered = categories.sort_values()
    rank = ordered.get_indexer(categories).astype(_code_dtype(len(categories)))
    codes: Any = np.empty(len(rows), dtype=rank.dtype)
    start = 0
    for chunk in rows.chunks:
        end = start + len(chunk)
        lookup = rank[pc.index_in(chunk.dictionary, value_set=union).to_numpy()]
        # a null's index may be anything: clipped here, its code set from the validity below
        np.take(lookup, _values(chunk.indices), out=codes[start:end], mode="clip")
        if chunk.null_count:
            codes[start:end][~chunk.is_valid().to_numpy(zero_copy_only=False)] = -1
        start = end
    dtype: Any = pd.CategoricalDtype(ordered, ordered=column.type.ordered)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _rows(table: pa.Table, kept: np.ndarray | None, mask: Any, encoded: frozenset[str]) -> pa.Table:
    if kept is None:
        return table
    # A filter drops the chunks it empties, and with them a dictionary column's categories
    # that only those chunks held; a take keeps them (the encoded columns' categories are
    # taken from the whole column by _categorical).
    native = any(
        pa.types.is_dictionary(field.type) and field.name not in encoded for field in table.schema
    )
    return table.take(kept) if mask is None or native or not len(kept) else table.filter(mask)


def rows_to_pandas(
    table: pa.Table, kept: np.ndarray | None, encoded: Iterable[str], mask: Any = None
) -> Frame:
    """The rows of ``table`` at the sorted positions ``kept`` (None: every row) as a frame,
    with the ``encoded`` dictionary columns' categories sorted; the index is a RangeIndex.

    ``mask``, a boolean Arrow array true exactly at ``kept``, lets Arrow filter each chunk
    where it is (a ``take`` by positions first concatenates every chunk).

    Tables with pandas metadata (an index stored in a Parquet file) or repeated column names
    are converted by :func:`to_pandas` of the taken rows, as is every column kept as Arrow.
    """
    encoded = frozenset(encoded)
    names = table.column_names
    taken = _rows(table, kept, mask, encoded)
    if (table.schema.metadata or {}).get(b"pandas") or len(set(names)) != len(names):
        return to_pandas(taken)
    direct: dict[str, object] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_dictionary(field.type) and field.name in encoded:
            categorical = _categorical(column, taken.column(field.name))
            if categorical is not None:
                direct[field.name] = categorical
    rest = [name for name in names if name not in direct]
    converted = to_pandas(taken.select(rest)) if rest else None
    if not direct and converted is not None:
        return converted
    data = {
        name: direct[name] if name in direct else converted[name]  # type: ignore[index]
        for name in names
    }
    frame = pd.DataFrame(data, copy=False)
    frame.index = pd.RangeIndex(taken.num_rows)
    return frame
