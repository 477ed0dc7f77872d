"""Handlers for :class:`~tdm.core.files.Read` and :class:`~tdm.core.files.Write`.

With :mod:`tdm.effects.storage` (URIs, credentials, retries), the only place tdm imports fsspec
(and, through it, s3fs and adlfs). It

* reads csv/parquet with the pyarrow engines (one copy into pandas, strings Arrow-backed);
* writes atomically: a temporary name and a rename on local disk, one object PUT from a buffer
  on ``memory://`` and object stores, and all-or-nothing staging for partitioned writes.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import posixpath
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tdm._types import Frame
from tdm.core.files import Read, ReadAfter, Write, split_compression
from tdm.effects import publish
from tdm.effects.dispatch import EffectEnv, handle
from tdm.effects.pushdown import prefilter, read_tables
from tdm.effects.storage import (
    FileTarget,
    _effect_error,
    _Retry,
    open_target,
)
from tdm.errors import EffectError

__all__ = ["read_frame", "write_frame"]

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
    info = fs.info(path)
    if info.get("type") != "directory":
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
    return pa_csv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)


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


_COMBINE_LIMIT = 1 << 30  # int32 string offsets: keep combined string columns well under 2 GiB


def _to_pandas(table: pa.Table) -> Frame:
    # One copy out of Arrow: numbers become numpy, strings stay Arrow-backed (pandas "str"),
    # dates become datetime64; self_destruct frees Arrow buffers as columns are converted.
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
        push = effect if effect.keep_columns is not None or effect.row_filter else None
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
    table = (
        tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    )
    tables.clear()
    if push is not None and push.row_filter:
        kept = prefilter(table, push.row_filter)
        if kept is not None:  # convert only rows the following filter may keep
            table = table.take(kept)
            bounds = np.searchsorted(kept, np.cumsum([0, *counts]))
            counts = np.diff(bounds).tolist()
            positions = kept if positions is None else positions[kept]
    frame = _to_pandas(table)
    del table
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


@handle.register
def _read(effect: Read, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    return read_frame(effect, env)


@handle.register
def _read_after(effect: ReadAfter, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    return read_frame(effect, env)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def _keeps_index(frame: Frame) -> bool:
    return any(name is not None for name in frame.index.names)


def _serialize(
    frame: Frame,
    fmt: str,
    sink: Any,
    options: Mapping[str, Any],
    compression: str | None,
    header: bool = True,
) -> None:
    """Write ``frame`` as ``fmt`` to ``sink`` (a local path or a binary buffer)."""
    opts = dict(options)
    if fmt == "parquet":
        table = pa.Table.from_pandas(frame, preserve_index=_keeps_index(frame))
        pq.write_table(table, sink, compression=opts.pop("compression", "snappy"), **opts)
        return
    compression = opts.pop("compression", compression)  # an explicit option wins
    # pandas-stubs' overloads cannot see through **opts, hence the Any.
    writer: Any = frame.reset_index() if _keeps_index(frame) else frame
    if fmt == "csv":
        opts.setdefault("index", False)
        writer.to_csv(sink, header=header, compression=compression, **opts)
    elif fmt == "jsonl":
        opts.setdefault("date_format", "iso")
        writer.to_json(sink, orient="records", lines=True, compression=compression, **opts)
    else:
        opts.setdefault("date_format", "iso")
        writer.to_json(sink, orient=opts.pop("orient", "records"), compression=compression, **opts)


def _serialize_to(
    sink: Any, *, frame: Frame, fmt: str, options: Mapping[str, Any], compression: str | None
) -> None:
    _serialize(frame, fmt, sink, options, compression)


def _to_bytes(
    frame: Frame, fmt: str, options: Mapping[str, Any], compression: str | None, header: bool = True
) -> bytes:
    buffer = io.BytesIO()
    _serialize(frame, fmt, buffer, options, compression, header)
    return buffer.getvalue()


def _tmp_name(path: str, token: str) -> str:
    parent, name = posixpath.split(path.rstrip("/"))
    return posixpath.join(parent, f".{name}{_TMP_TAG}{token}")


def _put(target: FileTarget, path: str, make: Callable[[Any], None], retry: _Retry) -> None:
    """Publish one object at ``path`` atomically; ``make(sink)`` writes its bytes to ``sink``."""
    fs = target.fs
    parent = posixpath.dirname(path)
    if target.local:
        os.makedirs(parent or ".", exist_ok=True)
        tmp = _tmp_name(path, publish.new_stamp())
        try:
            make(tmp)
            publish.checkpoint("file-temp")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    buffer = io.BytesIO()
    make(buffer)
    data = buffer.getvalue()
    del buffer
    if parent and target.protocol == "memory":
        fs.makedirs(parent, exist_ok=True)
    retry(lambda: fs.pipe_file(path, data))


def _exists(target: FileTarget, path: str) -> bool:
    with _suppress_all():
        target.fs.invalidate_cache(path)
    return bool(target.fs.exists(path))


def _check_columns(frame: Frame, existing: Sequence[str], uri: str) -> Frame:
    new = [str(c) for c in frame.columns]
    if new == list(existing):
        return frame
    if set(new) == set(existing) and len(new) == len(existing):
        return frame[list(existing)]
    missing = [c for c in existing if c not in new]
    extra = [c for c in new if c not in existing]
    raise EffectError(
        f"cannot append to {uri}: its columns differ from the frame's "
        f"(missing: {missing or 'none'}, extra: {extra or 'none'}); select the same columns, "
        "or write with mode='overwrite'"
    )


def _append_single(
    frame: Frame, effect: Write, target: FileTarget, retry: _Retry, env: EffectEnv
) -> None:
    path = target.path
    fs = target.fs
    fmt = effect.format
    _, compression = split_compression(path)
    options = _writer_options(effect)
    if fmt in ("csv", "jsonl"):
        if fmt == "csv":
            with fs.open(path, "rb", compression=compression) as handle:
                first = io.TextIOWrapper(handle, encoding="utf-8", newline="").readline()
            header = next(csv.reader([first], delimiter=options.get("sep", ",")), [])
            if _keeps_index(frame):
                frame = frame.reset_index()
            frame = _check_columns(frame, header, target.uri)
        old = retry(lambda: fs.cat_file(path))
        if old and not old.endswith(b"\n") and compression is None:
            old += b"\n"
        new = _to_bytes(frame, fmt, options, compression, header=False)
        _put(target, path, lambda sink: _write_bytes(sink, old + new), retry)
        return
    storage = {"storage_options": effect.options.get("storage_options", {})}
    existing = read_frame(Read(effect.uri, fmt, storage, effect.secret), env)
    existing.attrs.clear()
    frame = _check_columns(frame, [str(c) for c in existing.columns], target.uri)
    combined = pd.concat([existing, frame], ignore_index=True)
    _put(target, path, lambda sink: _serialize(combined, fmt, sink, options, compression), retry)


def _write_bytes(sink: Any, data: bytes) -> None:
    if isinstance(sink, str):
        with open(sink, "wb") as handle:
            handle.write(data)
    else:
        sink.write(data)


def _writer_options(effect: Write) -> dict[str, Any]:
    return {k: v for k, v in effect.options.items() if k != "storage_options"}


def _encode_partition(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return _HIVE_NULL
    if isinstance(value, pd.Timestamp):
        value = value.isoformat()
    return quote(str(value), safe="")


def _partitions(frame: Frame, columns: Sequence[str]) -> Iterator[tuple[str, Frame]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EffectError(
            f"partition_by names column(s) {missing} that the frame does not have; "
            f"its columns are: {', '.join(map(str, frame.columns))}"
        )
    grouped = frame.groupby(list(columns), dropna=False, sort=True, observed=True)
    for keys, part in grouped:
        values = keys if isinstance(keys, tuple) else (keys,)
        rel = "/".join(
            f"{quote(str(c), safe='')}={_encode_partition(v)}"
            for c, v in zip(columns, values, strict=True)
        )
        yield rel, part.drop(columns=list(columns))


def _write_partitioned(
    frame: Frame, effect: Write, target: FileTarget, retry: _Retry, grace_s: float
) -> None:
    """Stage every partition in a new version folder, then publish them all at once."""
    fs, dest = target.fs, target.path.rstrip("/")
    fmt = effect.format
    columns = effect.partition_by or ()
    options = _writer_options(effect)
    # Text formats in partitions: compressed if asked, e.g. compression="gzip" -> part-....csv.gz
    compression = None if fmt == "parquet" else options.pop("compression", None)
    token = uuid.uuid4().hex[:12]
    kept: list[str] = []
    if effect.mode == "append":
        current = publish.read_manifest(fs, dest)
        kept = list(current.files) if current is not None else publish.plain_files(fs, dest)
    stage = publish.stage_folder(dest)
    suffix = _FORMAT_SUFFIX[fmt] + _COMPRESSION_SUFFIX.get(compression or "", "")
    written: list[str] = []
    publish.checkpoint("stage")
    try:
        for i, (rel, part) in enumerate(_partitions(frame, columns)):
            path = f"{stage}/{rel}/part-{token}-{i:05d}{suffix}"
            make = functools.partial(
                _serialize_to, frame=part, fmt=fmt, options=options, compression=compression
            )
            _put(target, path, make, retry)
            written.append(path[len(dest) + 1 :])
            if i == 0:
                publish.checkpoint("staging")
        publish.checkpoint("staged")
    except BaseException:
        with _suppress_all():  # never published: nobody can be reading it
            fs.rm(stage, recursive=True)
        raise
    publish.publish(fs, dest, kept + written, local=target.local, retry=retry, grace_s=grace_s)


def _grace(env: EffectEnv) -> float:
    """``Runtime(options={"files": {"cleanup_after_s": ...}})``: when leftovers of killed writes
    may be removed (default an hour, so that a write in progress is never touched)."""
    raw = env.runtime.options.get("files", {}) if env.runtime.options else {}
    if isinstance(raw, Mapping) and "cleanup_after_s" in raw:
        return max(0.0, float(raw["cleanup_after_s"]))
    return publish.GRACE_S


class _suppress_all:
    """Best-effort cleanup: ignore any ``Exception``."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], Exception)  # type: ignore[arg-type]


def write_frame(frame: Frame, effect: Write, env: EffectEnv) -> Frame:
    """Write ``frame`` as ``effect`` says, atomically; return it unchanged."""
    retry = _Retry.of(env)
    uri = effect.uri
    try:
        target = open_target(effect.uri, effect.secret, effect.options, env)
        uri = target.uri
        if effect.mode == "error_if_exists" and _exists(target, target.path):
            raise EffectError(
                f"cannot write {uri}: it already exists and mode='error_if_exists'; "
                "use mode='overwrite' to replace it or mode='append' to add rows",
                node=env.node,
                uri=uri,
            )
        if effect.mode == "upsert":
            from tdm.effects.upsert import upsert

            upsert(frame, effect, target, env)
        elif effect.partition_by:
            _write_partitioned(frame, effect, target, retry, _grace(env))
        elif effect.mode == "append" and _exists(target, target.path):
            _append_single(frame, effect, target, retry, env)
        else:
            _, compression = split_compression(target.path)
            options = _writer_options(effect)
            _put(
                target,
                target.path,
                lambda sink: _serialize(frame, effect.format, sink, options, compression),
                retry,
            )
            with _suppress_all():  # a failed cleanup is retried by the next write
                publish.remove_leftovers(
                    target.fs, target.path, local=target.local, grace_s=_grace(env)
                )
        with _suppress_all():
            target.fs.invalidate_cache()
    except Exception as exc:
        raise _effect_error("write", uri, effect.format, exc, env, retry) from exc
    return frame


@handle.register
def _write(effect: Write, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    return write_frame(frames[0], effect, env)
