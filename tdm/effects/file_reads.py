"""Reading files for :class:`~tdm.core.files.Read`: listing, partitions, CSV/Parquet engines.

Expands globs and partition folders, reads each file with the pyarrow engines (one copy into
pandas, strings Arrow-backed), applies a pushed-down plan (columns kept, row filters) and
combines the parts; the handlers in :mod:`tdm.effects.files` call :func:`read_frame`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tdm._types import Frame
from tdm.core.files import Read, split_compression
from tdm.effects import publish
from tdm.effects.conversion import rows_to_pandas, to_pandas
from tdm.effects.dispatch import EffectEnv
from tdm.effects.pushdown import (
    as_categories,
    as_planned,
    dictionary_encoded,
    encoded_columns,
    prefilter,
    read_tables,
)
from tdm.effects.storage import (
    FileTarget,
    _effect_error,
    _Retry,
    open_target,
)

__all__ = ["read_frame"]


class _suppress_all:
    """Best-effort cleanup: ignore any ``Exception``."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], Exception)  # type: ignore[arg-type]


_GLOB = frozenset("*?[")
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_TMP_TAG = ".tdm-tmp-"
_FORMAT_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "json": ".json", "jsonl": ".jsonl"}
_COMPRESSION_SUFFIX = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zstd": ".zst"}


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _hidden(part: str) -> bool:
    return part.startswith((".", "_"))


def _matches_format(path: str, fmt: str) -> bool:
    base, _ = split_compression(path)
    name = base.rsplit("/", 1)[-1].lower()
    exts = {
        "csv": (".csv", ".tsv", ".txt"),
        "parquet": (".parquet", ".pq"),
        "json": (".json",),
        "jsonl": (".jsonl", ".ndjson"),
    }[fmt]
    return name.endswith(exts) or (fmt == "parquet" and "." not in name)


def _version(info: Mapping[str, Any]) -> str:
    """A file's version for incremental reads: its ETag, else modification time and size."""
    for key in ("ETag", "etag", "e_tag"):
        if info.get(key):
            return str(info[key]).strip('"')
    stamp = next((info[k] for k in ("mtime", "LastModified", "last_modified") if info.get(k)), "")
    return f"{stamp}:{info.get('size', '')}"


def _unseen(
    target: FileTarget, paths: list[str], seen: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """Of ``paths``, those not in ``seen`` (path, version) pairs, with their versions."""
    known = dict(seen)
    fresh = {}
    for path in paths:
        version = _version(target.fs.info(path))
        if known.get(path) != version:
            fresh[path] = version
    return fresh


def _expand(target: FileTarget, fmt: str) -> tuple[list[str], str | None, bool]:
    """The files to read in path order, the folder they were found under, and whether the
    URI named several files (a glob or a folder) rather than one."""
    fs, path = target.fs, target.path
    with _suppress_all():
        fs.invalidate_cache()
    if any(c in _GLOB for c in path):
        found = fs.glob(path, detail=True)
        files = sorted(
            p
            for p, info in found.items()
            if info.get("type") != "directory" and not any(_hidden(s) for s in _segments(p))
        )
        if not files:
            raise FileNotFoundError(f"no files match the pattern {target.uri}")
        return files, None, True
    if target.local:
        os.stat(path)  # a missing file fails as fsspec's info fails
        directory = os.path.isdir(path)
    else:
        directory = fs.info(path).get("type") == "directory"
    if not directory:
        return [path], None, False
    root = path.rstrip("/")
    listed = publish.dataset_files(fs, root)  # a dataset tdm published: the manifest's files
    if listed is not None:
        if not listed:
            raise FileNotFoundError(f"the dataset {target.uri} holds no files")
        return listed, root, True
    found = fs.find(root)
    files = sorted(
        p
        for p in found
        if _matches_format(p, fmt)
        and not any(_hidden(s) for s in p[len(root) :].strip("/").split("/"))
    )
    if not files:
        raise FileNotFoundError(f"the folder {target.uri} holds no {fmt} files")
    return files, root, True


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _partition_values(path: str, root: str | None) -> dict[str, str | None]:
    if root is None:
        return {}
    values: dict[str, str | None] = {}
    for segment in path[len(root) :].strip("/").split("/")[:-1]:
        key, sep, value = segment.partition("=")
        if sep and key:
            raw = unquote(value)
            values[unquote(key)] = None if raw == _HIVE_NULL else raw
    return values


def _typed_partition(values: Sequence[str | None]) -> Any:
    """Partition values from paths, as numbers when they all are (like pyarrow's discovery)."""
    present = [v for v in values if v is not None]
    for caster in (int, float):
        try:
            [caster(v) for v in present]
        except ValueError:
            continue
        series: Any = pd.Series(list(values), dtype=object)
        return pd.to_numeric(series).to_numpy()
    return np.asarray(values, dtype=object)


_CSV_ARROW_OPTIONS = frozenset(
    {"sep", "delimiter", "usecols", "columns", "encoding", "skiprows", "quotechar", "na_values"}
    | {"names", "header", "dtype", "block_size"}
)


def _csv_arrow(source: Any, options: Mapping[str, Any], tsv: bool) -> pa.Table:
    sep = options.get("sep", options.get("delimiter", "\t" if tsv else ","))
    read = pa_csv.ReadOptions(
        encoding=options.get("encoding", "utf8"),
        skip_rows=int(options.get("skiprows", 0) or 0),
        column_names=list(options["names"]) if options.get("names") else None,
        autogenerate_column_names=options.get("header", "infer") is None
        and not options.get("names"),
        block_size=int(options.get("block_size", 1 << 24)),
    )
    if options.get("names") and options.get("header", "infer") not in (None, "infer"):
        read.skip_rows_after_names = 1
    parse = pa_csv.ParseOptions(delimiter=sep, quote_char=options.get("quotechar", '"'))
    columns = options.get("usecols", options.get("columns"))
    types: dict[str, Any] = {}
    for col, dtype in (options.get("dtype") or {}).items():
        if dtype in (str, "str", "string", object, "object"):
            types[col] = pa.string()
    convert = pa_csv.ConvertOptions(
        include_columns=list(columns) if columns is not None else None,
        column_types=types or None,
        strings_can_be_null=True,  # like pandas: an empty field is NaN, not ""
    )
    if options.get("na_values") is not None:
        na = options["na_values"]
        extra = [na] if isinstance(na, str) else list(na)
        convert.null_values = [*convert.null_values, *map(str, extra)]
    wanted = dictionary_encoded(convert, options)
    table = pa_csv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
    return as_planned(table, wanted) if wanted else table


def _csv_uses_arrow(options: Mapping[str, Any]) -> bool:
    if not set(options) <= _CSV_ARROW_OPTIONS:
        return False
    if options.get("header", "infer") not in ("infer", 0, None):
        return False
    dtype = options.get("dtype")
    if dtype is not None and not isinstance(dtype, Mapping):
        return False
    cols = options.get("usecols", options.get("columns"))
    if cols is not None and (callable(cols) or any(not isinstance(c, str) for c in cols)):
        return False
    return not isinstance(options.get("skiprows", 0), list | tuple)


def _open(target: FileTarget, path: str, compression: str | None) -> Any:
    return target.fs.open(path, "rb", compression=compression)


def _read_arrow(target: FileTarget, path: str, fmt: str, options: Mapping[str, Any]) -> pa.Table:
    base, compression = split_compression(path)
    if fmt == "parquet":
        kwargs = dict(options)
        if target.local:
            return pq.read_table(path, **kwargs)
        return pq.read_table(path, filesystem=target.fs, **kwargs)
    tsv = base.lower().endswith(".tsv")
    if target.local:
        return _csv_arrow(path, options, tsv)  # pyarrow reads local files (and .gz) natively
    with _open(target, path, compression) as handle:
        return _csv_arrow(handle, options, tsv)


def _read_pandas(target: FileTarget, path: str, fmt: str, options: Mapping[str, Any]) -> Frame:
    _, compression = split_compression(path)
    opts = dict(options)
    reader: Any = pd  # pandas-stubs' overloads cannot see through **options
    with _open(target, path, compression) as handle:
        if fmt == "csv":
            frame = reader.read_csv(handle, **opts)
        elif fmt == "jsonl":
            frame = reader.read_json(handle, lines=True, **opts)
        else:
            frame = reader.read_json(handle, orient=opts.pop("orient", "records"), **opts)
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"expected a table of records, got {type(frame).__name__}")
    return frame


def read_frame(effect: Read, env: EffectEnv) -> Frame:
    """Read ``effect``'s files into one frame (the work of the :class:`Read` handler)."""
    retry = _Retry.of(env)
    options = {k: v for k, v in effect.options.items() if k != "storage_options"}
    fmt = effect.format
    uri = effect.uri
    try:
        target = open_target(effect.uri, effect.secret, effect.options, env)
        uri = target.uri
        paths, root, many = retry(lambda: _expand(target, fmt))
        versions: dict[str, str] | None = None
        if effect.seen is not None:  # an incremental read: only files not read before
            versions = retry(lambda: _unseen(target, paths, effect.seen or ()))
            paths = [p for p in paths if p in versions]
            if not paths:
                empty = pd.DataFrame()
                empty.attrs["source_versions"] = {}
                return empty
        arrow = fmt == "parquet" or (fmt == "csv" and _csv_uses_arrow(options))
        pushed = effect.keep_columns is not None or effect.row_filter or effect.dictionary_columns
        push = effect if pushed else None
        try:
            frame, counts = _load(target, paths, fmt, options, arrow, retry, push, root is None)
        except pa.ArrowInvalid as exc:
            # pyarrow infers CSV column types from the first block; a later value that does not
            # fit (a word in a column of numbers) fails there. pandas' reader copes: use it.
            if not (arrow and fmt == "csv" and "conversion error" in str(exc).lower()):
                raise
            frame, counts = _load(target, paths, fmt, options, False, retry, push)
        partitions = [_partition_values(p, root) for p in paths]
    except Exception as exc:
        raise _effect_error("read", uri, fmt, exc, env, retry) from exc
    displays = [target.display(p) for p in paths]
    keys = sorted({k for values in partitions for k in values})
    for key in keys:
        if key not in frame.columns:
            column = [values.get(key) for values in partitions]
            frame[key] = np.repeat(_typed_partition(column), counts)
    if effect.path_column:
        frame[effect.path_column] = pd.array(
            np.repeat(np.asarray(displays, dtype=object), counts), dtype="str"
        )
    frame.attrs["source_path"] = displays if many else displays[0]
    if versions is not None:
        frame.attrs["source_versions"] = versions
    return frame


def _load(
    target: FileTarget,
    paths: Sequence[str],
    fmt: str,
    options: Mapping[str, Any],
    arrow: bool,
    retry: _Retry,
    push: Read | None = None,
    single: bool = False,
) -> tuple[Frame, list[int]]:
    """Read ``paths`` into one frame (one Arrow table converted once, when ``arrow``), with
    the plan's pushdown (``push``: kept columns, row groups to skip; see tdm.core.pushdown)."""
    if not arrow:
        pandas_options = {k: v for k, v in options.items() if k != "block_size"}
        if push is not None and push.keep_columns is not None:
            keep = frozenset(push.keep_columns)
            pandas_options["usecols"] = keep.__contains__  # file order, absent ones skipped
        frames = [
            retry(functools.partial(_read_pandas, target, path, fmt, pandas_options))
            for path in paths
        ]
        counts = [len(f) for f in frames]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return frame, counts
    positions = None
    if push is None:
        tables = [
            retry(functools.partial(_read_arrow, target, path, fmt, options)) for path in paths
        ]
    else:
        tables, positions = read_tables(
            target, paths, fmt, options, push, retry, _read_arrow, single
        )
    counts = [t.num_rows for t in tables]
    encoded = encoded_columns(tables) if push is not None and push.dictionary_columns else ()
    table = (
        tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    )
    tables.clear()
    kept = mask = None
    if push is not None and push.row_filter:
        selected = prefilter(table, push.row_filter, encoded)
        if selected is not None:  # convert only rows the following filter may keep
            kept, mask = selected
            bounds = np.searchsorted(kept, np.cumsum([0, *counts]))
            counts = np.diff(bounds).tolist()
            positions = kept if positions is None else positions[kept]
    if encoded or kept is not None:
        frame = rows_to_pandas(table, kept, encoded, mask)
    else:
        frame = to_pandas(table)
    del table
    if encoded:
        frame = as_categories(frame, encoded)
    if positions is not None:  # rows were skipped: keep the labels the unfiltered read gives
        first = int(positions[0]) if len(positions) else 0
        contiguous = len(positions) and int(positions[-1]) - first == len(positions) - 1
        frame.index = (
            pd.RangeIndex(first, first + len(positions)) if contiguous else pd.Index(positions)
        )
    return _cast_dtypes(frame, options.get("dtype")), counts


def _cast_dtypes(frame: Frame, dtype: Any) -> Frame:
    if not isinstance(dtype, Mapping):
        return frame
    rest = {
        c: t
        for c, t in dtype.items()
        if t not in (str, "str", "string", object, "object") and c in frame.columns
    }
    return frame.astype(rest) if rest else frame
