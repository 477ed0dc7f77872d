"""A library of pure steps: each public factory returns a :class:`~tdm.Pipe`.

No step modifies its input frame, reads the clock or does I/O. Failures are values:
``Failure(PipeError)`` (or :class:`ValidationError` from the ``expect_*`` checks, or
:class:`~tdm.Skip` from :func:`guard` and :func:`skip_if_empty`, which stop a branch on purpose).

* columns: :func:`select`, :func:`drop`, :func:`rename_columns`, :func:`cast`, :func:`assign`
  (:func:`with_columns`), :func:`append_date_column`, :func:`add_date_from_filename`,
  :func:`map_values`, :func:`standardize_us_state`
* rows: :func:`filter_rows`, :func:`drop_nulls`, :func:`deduplicate`, :func:`sort`,
  :func:`limit`, :func:`sample`
* combine: :func:`join`, :func:`concat` (:func:`union`)
* reshape: :func:`flatten_json`, :func:`explode`, :func:`pivot`, :func:`unpivot`
* aggregate: :func:`aggregate`, :func:`group_by`
* validate: :func:`expect_columns`, :func:`expect_schema`, :func:`expect_not_empty`,
  :func:`expect_unique`, :func:`expect_no_nulls`, :func:`expect_values_in`, :func:`expect_range`
* logic: :func:`when`, :func:`guard`, :func:`skip_if_empty`
"""

from tdm.transforms import _pushdown  # noqa: F401  (column rules for pruning reads)
from tdm.transforms.aggregate import GroupBy, aggregate, group_by
from tdm.transforms.columns import (
    KEEP,
    US_STATE_CODES,
    add_date_from_filename,
    append_date_column,
    assign,
    cast,
    drop,
    map_values,
    rename_columns,
    select,
    standardize_us_state,
    with_columns,
)
from tdm.transforms.combine import concat, join, union
from tdm.transforms.logic import guard, skip_if_empty, when
from tdm.transforms.reshape import explode, flatten_json, flatten_record, pivot, unpivot
from tdm.transforms.rows import deduplicate, drop_nulls, filter_rows, limit, sample, sort
from tdm.transforms.validate import (
    ValidationError,
    expect_columns,
    expect_no_nulls,
    expect_not_empty,
    expect_range,
    expect_schema,
    expect_unique,
    expect_values_in,
)

__all__ = [
    "GroupBy",
    "KEEP",
    "US_STATE_CODES",
    "ValidationError",
    "add_date_from_filename",
    "aggregate",
    "append_date_column",
    "assign",
    "cast",
    "concat",
    "deduplicate",
    "drop",
    "drop_nulls",
    "expect_columns",
    "expect_no_nulls",
    "expect_not_empty",
    "expect_range",
    "expect_schema",
    "expect_unique",
    "expect_values_in",
    "explode",
    "filter_rows",
    "flatten_json",
    "flatten_record",
    "group_by",
    "guard",
    "join",
    "limit",
    "map_values",
    "pivot",
    "rename_columns",
    "sample",
    "select",
    "skip_if_empty",
    "sort",
    "standardize_us_state",
    "union",
    "unpivot",
    "when",
    "with_columns",
]
