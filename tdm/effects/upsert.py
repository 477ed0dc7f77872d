"""``files.write(..., mode="upsert", key=[...])``: merge a frame into a stored dataset by key.

The stored rows whose key appears in the frame are replaced by the frame's rows, the frame's
other rows are added, and the merged dataset is published the way an overwrite is (a single
object atomically, a partitioned folder all or nothing), so a crash leaves the previous data.
Running the same upsert twice gives the same dataset: it is the idempotent write to pair with
incremental sources.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from tdm._types import Frame
from tdm.core.files import Read, Write, split_compression
from tdm.effects.dispatch import EffectEnv
from tdm.effects.storage import FileTarget, _Retry
from tdm.errors import EffectError

__all__ = ["merge_by_key", "upsert"]


def merge_by_key(stored: Frame, new: Frame, key: list[str]) -> Frame:
    """``stored`` with the rows of ``new`` replacing those with the same key, others added.

    >>> old = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    >>> merge_by_key(old, pd.DataFrame({"id": [2, 3], "v": ["B", "c"]}), ["id"])
       id  v
    0   1  a
    1   2  B
    2   3  c
    """
    new = new.drop_duplicates(subset=key, keep="last")
    if stored.empty:
        return new.reset_index(drop=True)
    stored_keys = pd.MultiIndex.from_frame(stored[key].astype(object))
    new_keys = pd.MultiIndex.from_frame(new[key].astype(object))
    kept = stored[~stored_keys.isin(new_keys)]
    columns = list(stored.columns) + [c for c in new.columns if c not in stored.columns]
    return pd.concat([kept, new], ignore_index=True)[columns]


def upsert(frame: Frame, effect: Write, target: object, env: EffectEnv) -> None:
    """Merge ``frame`` into the dataset at ``effect.uri`` by ``effect.key`` and publish it."""
    from tdm.effects import files

    assert effect.key is not None
    key = list(effect.key)
    retry = _Retry.of(env)
    assert isinstance(target, FileTarget)
    if frame.empty and files._exists(target, target.path):
        return  # nothing to merge: the stored data is already the result
    missing = [k for k in key if k not in frame.columns]
    if missing:
        raise EffectError(
            f"cannot upsert into {target.uri}: key column(s) {missing} are not in the frame; "
            f"its columns are: {', '.join(map(str, frame.columns))}",
            node=env.node,
            uri=target.uri,
        )
    merged = frame
    if files._exists(target, target.path):
        storage = {"storage_options": effect.options.get("storage_options", {})}
        stored = files.read_frame(Read(effect.uri, effect.format, storage, effect.secret), env)
        stored.attrs.clear()
        absent = [k for k in key if k not in stored.columns]
        if absent:
            raise EffectError(
                f"cannot upsert into {target.uri}: the stored data has no key column(s) "
                f"{absent}; write it once with mode='overwrite' or choose another key",
                node=env.node,
                uri=target.uri,
            )
        merged = merge_by_key(stored, frame, key)
    else:
        merged = frame.drop_duplicates(subset=key, keep="last")
    whole = dataclasses.replace(effect, mode="overwrite", key=None)
    if effect.partition_by:
        files._write_partitioned(merged, whole, target, retry, files._grace(env))
        return
    _, compression = split_compression(target.path)
    options = files._writer_options(whole)
    files._put(
        target,
        target.path,
        lambda sink: files._serialize(merged, whole.format, sink, options, compression),
        retry,
    )
