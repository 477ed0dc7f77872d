"""Crash-safe publishing of a set of files (a partitioned dataset) at one target folder.

A reader of a target sees the old set of files or the new set, never a mix and never nothing,
whenever the writer is killed, on local disk and on object stores alike:

1. the new files are staged in a fresh *version folder* inside the target,
   ``<target>/.tdm-v-<time>-<random>/...`` (hidden: plain folder readers skip it);
2. a small manifest, ``<target>/_tdm_manifest.json``, listing the dataset's files, is written
   last, with one atomic rename (local disk) or one PUT (object stores): that is the instant the
   new set replaces the old one. tdm's reader follows the manifest when there is one, and reads
   a plain folder as before when there is none;
3. the writer then removes what is no longer referenced: version folders of older writes, plain
   files of a pre-manifest layout, and what killed writes left behind (staged folders, temporary
   files, unfinished multipart uploads) once they are older than a grace period, so that another
   write still in progress is never touched. The set the new manifest replaced is kept until the
   next write, for readers that were already reading it.

:func:`publish` is the reusable step (writes that stage their files differently, such as an
upsert, call it too); :func:`stage_folder` names the folder to stage into and
:func:`dataset_files` is what readers use.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

__all__ = [
    "GRACE_S",
    "MANIFEST",
    "PHASES",
    "Manifest",
    "checkpoint",
    "cleanup",
    "dataset_files",
    "new_stamp",
    "publish",
    "plain_files",
    "read_manifest",
    "remove_leftovers",
    "stage_folder",
]

_T = TypeVar("_T")

MANIFEST = "_tdm_manifest.json"
"""The pointer object of a dataset folder: which files make up the dataset now."""

GRACE_S = 3600.0
"""Leftovers of other writes are removed only once this old (seconds): a write in progress keeps
adding objects to its staging folder, so its newest object is younger than this."""

VERSION_PREFIX = ".tdm-v-"
TMP_TAG = ".tdm-tmp-"

PHASES = ("stage", "staging", "staged", "manifest", "published", "cleaning", "cleaned")
FILE_PHASES = ("file-temp",)
"""The named point of a single-file write on local disk: the temporary file is complete."""
"""The named points of a publish, in order (``TDM_TEST_PAUSE_AT`` stops a writer at one)."""

_STAMP = re.compile(r"(?:\.tdm-v-|\.tdm-tmp-)(\d{10})-")
_S3 = frozenset({"s3", "s3a"})


def checkpoint(phase: str) -> None:
    """Test hook: with ``TDM_TEST_PAUSE_AT=<phase>`` the writer announces the phase (writes it
    to the file ``TDM_TEST_PAUSE_SIGNAL``) and waits there to be killed."""
    if os.environ.get("TDM_TEST_PAUSE_AT") != phase:
        return
    signal = os.environ.get("TDM_TEST_PAUSE_SIGNAL")
    if signal:
        with open(signal + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(phase)
        os.replace(signal + ".tmp", signal)
    time.sleep(600)


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files of a dataset (relative to its folder), and those of the set it replaced.

    >>> m = Manifest(files=(".tdm-v-1-a/k=1/part-0.parquet",), previous=("k=1/old.parquet",))
    >>> Manifest.loads(m.dumps()) == m
    True
    >>> sorted(m.referenced())
    ['.tdm-v-1-a', 'k=1']
    """

    files: tuple[str, ...]
    previous: tuple[str, ...] = ()
    written_at: str = ""

    def dumps(self) -> bytes:
        body = {
            "format": "tdm-dataset",
            "version": 1,
            "written_at": self.written_at,
            "files": list(self.files),
            "previous": list(self.previous),
        }
        return json.dumps(body, indent=1).encode()

    @staticmethod
    def loads(data: bytes) -> Manifest:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != "tdm-dataset":
            raise ValueError(f"{MANIFEST} is not a tdm dataset manifest")
        return Manifest(
            files=tuple(str(f) for f in body.get("files", [])),
            previous=tuple(str(f) for f in body.get("previous", [])),
            written_at=str(body.get("written_at", "")),
        )

    def referenced(self) -> set[str]:
        """The top-level entries of the dataset folder that this manifest still needs."""
        return {f.split("/", 1)[0] for f in (*self.files, *self.previous)}


def new_stamp() -> str:
    """A unique name part that starts with the time, so that its age can be told."""
    return f"{int(time.time()):010d}-{uuid.uuid4().hex[:10]}"


def stage_folder(dest: str) -> str:
    """A fresh, hidden version folder inside ``dest`` to stage a new set of files in."""
    return f"{dest.rstrip('/')}/{VERSION_PREFIX}{new_stamp()}"


def _manifest_path(dest: str) -> str:
    return f"{dest.rstrip('/')}/{MANIFEST}"


def read_manifest(fs: Any, dest: str) -> Manifest | None:
    """The manifest of the dataset at ``dest``, or None if it has none (a plain folder)."""
    path = _manifest_path(dest)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    return Manifest.loads(data)


def dataset_files(fs: Any, dest: str) -> list[str] | None:
    """The files a reader of the folder ``dest`` must read (None: no manifest, read it plainly)."""
    manifest = read_manifest(fs, dest)
    if manifest is None:
        return None
    root = dest.rstrip("/")
    return [f"{root}/{rel}" for rel in manifest.files]


def plain_files(fs: Any, dest: str) -> list[str]:
    """The visible files of a pre-manifest folder (what a plain reader reads), relative."""
    root = dest.rstrip("/")
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return []
    rels = [p[len(root) :].strip("/") for p in found]
    return sorted(r for r in rels if r and not any(s.startswith((".", "_")) for s in r.split("/")))


def publish(
    fs: Any,
    dest: str,
    files: Sequence[str],
    *,
    local: bool,
    retry: Callable[[Callable[[], _T]], _T] | None = None,
    grace_s: float = GRACE_S,
) -> Manifest:
    """Make ``files`` (paths relative to ``dest``, already staged) the dataset at ``dest``.

    The manifest is written in one atomic step; then what is no longer needed is removed (see
    :func:`cleanup`). Files of the current set that should stay (an append keeps them) are
    simply listed in ``files`` too.
    """
    call: Callable[[Callable[[], Any]], Any] = retry or (lambda fn: fn())
    dest = dest.rstrip("/")
    current = read_manifest(fs, dest)
    previous = current.files if current is not None else tuple(plain_files(fs, dest))
    manifest = Manifest(
        files=tuple(files),
        previous=tuple(previous),
        written_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    data = manifest.dumps()
    path = _manifest_path(dest)
    if local:
        os.makedirs(dest, exist_ok=True)
        tmp = f"{dest}/.{MANIFEST}{TMP_TAG}{new_stamp()}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            checkpoint("manifest")
            os.replace(tmp, path)  # the instant the new set replaces the old one
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:
        checkpoint("manifest")
        call(lambda: fs.pipe_file(path, data))  # one PUT: the new set replaces the old one
    checkpoint("published")
    with contextlib.suppress(Exception):  # a failed cleanup is retried by the next write
        cleanup(fs, dest, manifest, local=local, grace_s=grace_s)
    checkpoint("cleaned")
    return manifest


def _age(fs: Any, path: str, name: str, now: float) -> float:
    """Seconds since anything was last written under ``path`` (its stamp or its newest file)."""
    newest = 0.0
    match = _STAMP.match(name)
    if match:
        newest = float(match.group(1))
    try:
        infos: Iterable[Mapping[str, Any]] = fs.find(path, detail=True).values() or [fs.info(path)]
    except FileNotFoundError:
        return float("inf")
    for info in infos:
        newest = max(newest, _mtime(info))
    return now - newest


def _mtime(info: Mapping[str, Any]) -> float:
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
    return 0.0


def cleanup(
    fs: Any, dest: str, manifest: Manifest, *, local: bool, grace_s: float = GRACE_S
) -> list[str]:
    """Remove from ``dest`` what ``manifest`` does not need; return what was removed.

    * entries neither the current nor the replaced set use: a pre-manifest layout's files
      (two writes after the switch to manifests) and older versions;
    * leftovers of killed writes (staging folders, temporary files, multipart uploads) older
      than ``grace_s``; younger ones may belong to a write in progress and are kept.
    """
    dest = dest.rstrip("/")
    now = time.time()
    keep = manifest.referenced() | {MANIFEST}
    removed: list[str] = []
    fs.invalidate_cache(dest)
    for info in fs.ls(dest, detail=True):
        path = str(info["name"]).rstrip("/")
        name = posixpath.basename(path)
        if name in keep:
            continue
        ours = name.startswith((VERSION_PREFIX, f".{MANIFEST}{TMP_TAG}"))
        if ours:
            if _age(fs, path, name, now) < grace_s:
                continue
        elif name.startswith((".", "_")):
            continue  # not ours, not data (e.g. a _SUCCESS marker): leave it
        fs.rm(path, recursive=True)
        removed.append(path)
        checkpoint("cleaning")
    removed.extend(remove_leftovers(fs, dest, local=local, grace_s=grace_s, now=now))
    return removed


def remove_leftovers(
    fs: Any, path: str, *, local: bool, grace_s: float = GRACE_S, now: float | None = None
) -> list[str]:
    """Remove what killed writes of ``path`` (a file or a dataset folder) left next to it:
    temporary files and staging folders (also those of tdm versions that staged beside the
    target) and unfinished S3 multipart uploads, once older than ``grace_s``."""
    now = time.time() if now is None else now
    path = path.rstrip("/")
    removed: list[str] = []
    parent, name = posixpath.split(path)
    prefix = f".{name}{TMP_TAG}"
    entries: list[str] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        if local:
            entries = [f"{parent}/{n}" for n in os.listdir(parent or ".") if n.startswith(prefix)]
        else:
            fs.invalidate_cache(parent)
            entries = [
                str(p).rstrip("/")
                for p in fs.ls(parent, detail=False)
                if posixpath.basename(str(p).rstrip("/")).startswith(prefix)
            ]
    for entry in entries:
        if _age(fs, entry, posixpath.basename(entry), now) >= grace_s:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(entry, recursive=True)
            removed.append(entry)
    removed.extend(abort_uploads(fs, path, now=now, grace_s=grace_s))
    return removed


def abort_uploads(
    fs: Any, path: str, *, now: float | None = None, grace_s: float = GRACE_S
) -> list[str]:
    """Abort unfinished S3 multipart uploads of ``path`` (the object, the objects under it, or
    its staging siblings) started over ``grace_s`` ago."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol not in _S3:
        return []
    now = time.time() if now is None else now
    bucket, _, key = path.strip("/").partition("/")
    parent, name = posixpath.split(key)
    sibling = posixpath.join(parent, f".{name}{TMP_TAG}")
    aborted: list[str] = []
    for prefix in (key, sibling):
        listed = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
        for upload in listed.get("Uploads", []):
            target = upload["Key"]
            if not (target == key or target.startswith((key + "/", sibling))):
                continue
            started = upload.get("Initiated")
            newest = started.timestamp() if isinstance(started, datetime) else 0.0
            stamp = _STAMP.search(target)  # the staging folder's own time, when it has one
            if stamp:
                newest = max(newest, float(stamp.group(1)))
            if now - newest < grace_s:
                continue
            fs.call_s3(
                "abort_multipart_upload", Bucket=bucket, Key=target, UploadId=upload["UploadId"]
            )
            aborted.append(f"{bucket}/{target}")
    return aborted
