"""Checkpoints: node outputs kept at an fsspec location so a failed run can be resumed.

Layout under the store's URL, per pipeline id::

    <url>/<pipeline>/objects/<key>.parquet   a node's output (``.pickle`` when Parquet cannot
                                             hold the frame: mixed-type object columns, say)
    <url>/<pipeline>/runs/<run_id>.json      which run read each source (written at start)

A key is content-addressed by the interpreter (the node's structural hash and its inputs'
keys), so an object is never rewritten with other content, and a run killed midway leaves
every finished node usable. Objects are written under a temporary name and renamed (local
files) or with one PUT (object stores), so a reader never sees half of one.

The ``.pickle`` fallback is read back with :mod:`pickle`: point a store only at a location
that tdm alone writes to.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tdm._types import Frame

__all__ = ["CheckpointStore", "parse_age"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "_"


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """Seconds in an age like ``7d``, ``12h``, ``30m``, ``90s`` or ``2w``.

    >>> parse_age("7d"), parse_age("1.5h")
    (604800.0, 5400.0)
    """
    found = _AGE.match(str(text))
    if found is None:
        raise ValueError(
            f"an age is a number and a unit (s, m, h, d, w), like 7d or 12h; got {text!r}"
        )
    return float(found.group(1)) * _UNIT[found.group(2)]


@dataclass(frozen=True, slots=True)
class CheckpointStore:
    """Node outputs at ``url`` (any fsspec URL: a folder, ``s3://``, ``az://``, ``memory://``).

    ``storage_options`` are non-secret fsspec settings (``{"endpoint_url": ...}``, say);
    ``secret`` names a secret whose keys are storage options (credentials), resolved through
    the run's secrets provider.

    >>> store = CheckpointStore("memory://doctest-ckpt")
    >>> store.save("p", "k1", pd.DataFrame({"a": [1]}))
    >>> store.keys("p"), store.load("p", "k1")["a"].tolist()
    ({'k1'}, [1])
    """

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    secret: str | None = None
    provider: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.strip():
            raise ValueError(
                f"checkpoints= takes a folder URL such as 'file:///var/tdm/ckpt' or "
                f"'s3://bucket/ckpt', got {self.url!r}"
            )
        object.__setattr__(self, "url", self.url.rstrip("/"))

    def using(self, secrets: Any) -> CheckpointStore:
        """This store, resolving its secret (if any) through ``secrets``."""
        if secrets is None or self.secret is None:
            return self
        return dataclasses.replace(self, provider=secrets)

    def _fs(self) -> tuple[Any, str]:
        from tdm.effects.state.file_store import open_folder

        return open_folder(self.url, self.secret, self.provider, self.storage_options)

    def _local(self, fs: Any) -> bool:
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        return "file" in protocols or "local" in protocols

    def _put(self, fs: Any, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        if self._local(fs):
            tmp = f"{parent}/.{uuid.uuid4().hex[:12]}.tmp"
            fs.pipe_file(tmp, data)
            os.replace(tmp, path)
        else:
            fs.pipe_file(path, data)

    def save(self, pipeline: str, key: str, frame: Frame) -> None:
        """Keep ``frame`` as the output whose key is ``key``."""
        fs, root = self._fs()
        base = f"{root}/{_safe(pipeline)}/objects/{key}"
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer)
            suffix = ".parquet"
        except Exception:  # a frame parquet cannot hold (mixed object columns, say)
            buffer = io.BytesIO()
            pickle.dump(frame, buffer, protocol=pickle.HIGHEST_PROTOCOL)
            suffix = ".pickle"
        self._put(fs, base + suffix, buffer.getvalue())

    def keys(self, pipeline: str) -> set[str]:
        """The keys that have an output stored for ``pipeline`` (one listing)."""
        fs, root = self._fs()
        folder = f"{root}/{_safe(pipeline)}/objects"
        try:
            fs.invalidate_cache(folder)
            names = fs.ls(folder, detail=False)
        except FileNotFoundError:
            return set()
        out = set()
        for name in names:
            leaf = str(name).rsplit("/", 1)[-1]
            stem, dot, ext = leaf.rpartition(".")
            if dot and ext in ("parquet", "pickle") and not leaf.startswith("."):
                out.add(stem)
        return out

    def load(self, pipeline: str, key: str) -> Frame:
        """The output stored under ``key``."""
        fs, root = self._fs()
        base = f"{root}/{_safe(pipeline)}/objects/{key}"
        if fs.exists(base + ".parquet"):
            return pd.read_parquet(io.BytesIO(fs.cat_file(base + ".parquet")))
        frame = pickle.loads(fs.cat_file(base + ".pickle"))
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"checkpoint {base}.pickle does not hold a DataFrame")
        return frame

    def write_run(self, pipeline: str, run_id: str, data: Mapping[str, Any]) -> None:
        """Note what run ``run_id`` needs to be resumed (its sources' epochs)."""
        fs, root = self._fs()
        path = f"{root}/{_safe(pipeline)}/runs/{_safe(run_id)}.json"
        self._put(fs, path, json.dumps(dict(data), default=str).encode())

    def read_run(self, pipeline: str, run_id: str) -> dict[str, Any] | None:
        """What :meth:`write_run` kept for ``run_id`` (None: that run kept no checkpoints)."""
        fs, root = self._fs()
        path = f"{root}/{_safe(pipeline)}/runs/{_safe(run_id)}.json"
        try:
            fs.invalidate_cache(path)
            data: dict[str, Any] = json.loads(fs.cat_file(path).decode())
        except FileNotFoundError:
            return None
        return data

    def clear(self, pipeline: str) -> None:
        """Remove every checkpoint of ``pipeline``."""
        fs, root = self._fs()
        folder = f"{root}/{_safe(pipeline)}"
        if fs.exists(folder):
            fs.rm(folder, recursive=True)

    def prune(self, older_than: float | str, *, now: float | None = None) -> list[str]:
        """Remove objects older than ``older_than`` (seconds, or ``"7d"``); the paths removed."""
        age = parse_age(older_than) if isinstance(older_than, str) else float(older_than)
        limit = (time.time() if now is None else now) - age
        fs, root = self._fs()
        if not fs.exists(root):
            return []
        gone = []
        for path, info in fs.find(root, detail=True).items():
            stamp = _mtime(info)
            if stamp is not None and stamp < limit:
                fs.rm(path)
                gone.append(str(path))
        return sorted(gone)

    def describe(self) -> str:
        return f"checkpoints:{self.url}"


def _mtime(info: Mapping[str, Any]) -> float | None:
    for name in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        if isinstance(value, int | float):
            return float(value)
        try:
            return datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            continue
    return None
