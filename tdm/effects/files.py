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
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tdm._types import Frame
from tdm.core.files import Read, ReadAfter, Write, split_compression
from tdm.effects import publish
from tdm.effects.dispatch import EffectEnv, handle
from tdm.effects.file_reads import (
    _COMPRESSION_SUFFIX,
    _FORMAT_SUFFIX,
    _HIVE_NULL,
    _TMP_TAG,
    _suppress_all,
    read_frame,
)
from tdm.effects.storage import (
    FileTarget,
    _effect_error,
    _Retry,
    open_target,
)
from tdm.errors import EffectError

__all__ = ["read_frame", "write_frame"]


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
