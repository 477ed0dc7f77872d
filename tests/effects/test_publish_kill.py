"""Publishes survive a kill at any instant: SIGKILL a writer process at every phase of the
publish protocol, on local disk, on S3 (moto) and on Azure Blob (Azurite), and check what a
reader sees each time.

Each kill point is a named phase of :mod:`tdm.effects.publish` (``TDM_TEST_PAUSE_AT`` makes the
writer announce it and wait there); the writer is a real process, forked from
``kill_writer.py``, and dies by SIGKILL. Then:

* a reader sees exactly the old set before the manifest is written and exactly the new set
  from then on: never a mix, never nothing;
* the next successful write to the same target removes everything the killed writer left
  behind (staged files, temporary files, unfinished multipart uploads) once it is older than
  the grace period, and nothing younger (it may be a write in progress).
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pytest

import tdm
from tdm import files
from tdm.effects import publish
from tdm.effects.secrets import MappingSecrets

WRITER = Path(__file__).with_name("kill_writer.py")
REPO = Path(__file__).resolve().parents[2]
BUCKET = "tdm-kills"

# The phases a write reaches when it replaces a dataset tdm published before (which has an
# older version to clean up), and when it replaces a plain pre-manifest folder (nothing to
# clean yet: the plain files are the set readers may still be reading).
FROM_MANIFEST = publish.PHASES
FROM_PLAIN = tuple(p for p in publish.PHASES if p != "cleaning")
BEFORE_SWITCH = {"stage", "staging", "staged", "manifest"}


def _set(tag: str) -> pd.DataFrame:
    return pd.DataFrame({"p": ["a", "b", "c"], "v": [f"{tag}-a", f"{tag}-b", f"{tag}-c"]})


@dataclass
class Store:
    """One backend: where datasets go, how to reach it, and a way to look at it raw."""

    name: str
    root: str
    secrets: dict[str, Any]
    fs: Any

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def path(self, name: str) -> str:
        return fsspec.core.url_to_fs(self.uri(name), **self.options)[1]

    @property
    def options(self) -> dict[str, Any]:
        if "Azure" in self.secrets:
            return {"connection_string": self.secrets["Azure"]["connection_string"]}
        section = self.secrets.get("S3")
        if not section:
            return {}
        return {
            "key": section["key"],
            "secret": section["secret"],
            "client_kwargs": {"endpoint_url": section["endpoint_url"]},
        }

    @property
    def secret(self) -> str | None:
        return next(iter(self.secrets), None)

    def runtime(self, grace_s: float | None = 0) -> tdm.Runtime:
        options = {} if grace_s is None else {"files": {"cleanup_after_s": grace_s}}
        return tdm.Runtime(secrets=MappingSecrets(self.secrets), options=options)

    def write(self, name: str, frame: pd.DataFrame, grace_s: float | None = 0) -> None:
        step = files.write(self.uri(name), format="parquet", partition_by=["p"], secret=self.secret)
        report = tdm.run(
            tdm.inputs.frame("x") >> step, inputs={"x": frame}, runtime=self.runtime(grace_s)
        )
        assert report.ok, report.error

    def read(self, name: str) -> pd.DataFrame | None:
        read = files.read(self.uri(name), format="parquet", secret=self.secret)
        report = tdm.run(read, runtime=self.runtime())
        if not report.ok:
            return None
        return report.output.sort_values("v").reset_index(drop=True)[["p", "v"]]

    def entries(self, name: str) -> list[str]:
        self.fs.invalidate_cache()
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.path(name)))

    def plain_layout(self, name: str, frame: pd.DataFrame) -> None:
        """A dataset as a pre-manifest tdm (or any tool) left it: key=value folders only."""
        for p, part in frame.groupby("p"):
            path = f"{self.path(name)}/p={p}/part-0.parquet"
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with self.fs.open(path, "wb") as handle:
                part.drop(columns=["p"]).to_parquet(handle)

    def uploads(self) -> list[str]:
        if "S3" not in self.secrets:
            return []
        listed = self.fs.call_s3("list_multipart_uploads", Bucket=BUCKET)
        return [u["Key"] for u in listed.get("Uploads", [])]


class Writer:
    """The forking writer process (kill_writer.py) and the kills."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self.count = 0

    def kill_at(self, phase: str, store: Store, name: str, frame: pd.DataFrame) -> None:
        """Start a write of ``frame`` that stops at ``phase``; SIGKILL it there."""
        self.count += 1
        signal_file = self.tmp / f"signal-{self.count}"
        command = {
            "phase": phase,
            "signal": str(signal_file),
            "uri": store.uri(name),
            "frame": frame.to_dict("list"),
            "options": {"format": "parquet", "partition_by": ["p"], "secret": store.secret},
            "secrets": store.secrets,
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        while not signal_file.exists():  # the writer announces the phase, then waits there
            assert _alive(pid), f"the writer finished without reaching phase {phase!r}"
            time.sleep(0.01)
        assert signal_file.read_text() == phase
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.01)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Writer]:
    w = Writer(tmp_path_factory.mktemp("kills"))
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(params=["local", "s3", "azure"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return Store("local", str(tmp_path / "data"), {}, fsspec.filesystem("file"))
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        azurite.reset()
        azurite.make_container(BUCKET)
        secrets = {"Azure": {"connection_string": azurite.connection_string}}
        store = Store("azure", f"az://{BUCKET}/{tmp_path.name}", secrets, None)
        store.fs = fsspec.filesystem("az", **store.options)
        return store
    s3 = request.getfixturevalue("fresh_s3_server")
    s3.make_bucket(BUCKET)
    secrets = {"S3": {"key": s3.key, "secret": s3.secret, "endpoint_url": s3.endpoint_url}}
    store = Store("s3", f"s3://{BUCKET}/{tmp_path.name}", secrets, None)
    store.fs = fsspec.filesystem("s3", **store.options)
    return store


def _check_after_kill(store: Store, name: str, phase: str, old: pd.DataFrame) -> None:
    seen = store.read(name)
    want = old if phase in BEFORE_SWITCH else _set("new")
    assert seen is not None, f"killed at {phase!r}: the reader saw nothing"
    pd.testing.assert_frame_equal(seen, want, obj=f"what a reader sees after a kill at {phase!r}")

    # The next successful write cleans up what the killed one left behind...
    store.write(name, _set("next"))
    pd.testing.assert_frame_equal(store.read(name), _set("next"))
    manifest = publish.read_manifest(store.fs, store.path(name))
    assert manifest is not None
    wanted = manifest.referenced() | {publish.MANIFEST}
    assert store.entries(name) == sorted(wanted), "only the current and the replaced set remain"
    parent = posixpath.dirname(store.path(name))
    assert not [p for p in store.fs.find(parent) if publish.TMP_TAG in p]
    assert store.uploads() == []


@pytest.mark.parametrize("phase", FROM_MANIFEST)
def test_kill_while_replacing_a_published_dataset(writer: Writer, store: Store, phase: str) -> None:
    store.write("ds", _set("older"))
    store.write("ds", _set("old"))
    writer.kill_at(phase, store, "ds", _set("new"))
    _check_after_kill(store, "ds", phase, _set("old"))


@pytest.mark.parametrize("phase", FROM_PLAIN)
def test_kill_while_replacing_a_plain_folder(writer: Writer, store: Store, phase: str) -> None:
    store.plain_layout("ds", _set("old"))
    assert store.read("ds") is not None  # a plain folder: read as before
    writer.kill_at(phase, store, "ds", _set("new"))
    _check_after_kill(store, "ds", phase, _set("old"))
    store.write("ds", _set("last"))  # two writes after the switch, the plain files are gone
    assert not [e for e in store.entries("ds") if e.startswith("p=")]


def test_kill_of_a_single_file_write_on_local_disk(writer: Writer, tmp_path: Path) -> None:
    target = tmp_path / "one.parquet"
    _set("old").to_parquet(target)
    local = Store("local", str(tmp_path), {}, fsspec.filesystem("file"))
    writer.count += 1
    signal_file = writer.tmp / f"signal-{writer.count}"
    command = {
        "phase": "file-temp",
        "signal": str(signal_file),
        "uri": str(target),
        "frame": _set("new").to_dict("list"),
        "options": {},
        "secrets": {},
    }
    assert writer.proc.stdin is not None and writer.proc.stdout is not None
    writer.proc.stdin.write(json.dumps(command) + "\n")
    writer.proc.stdin.flush()
    pid = int(writer.proc.stdout.readline())
    while not signal_file.exists():
        assert _alive(pid)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.01)
    pd.testing.assert_frame_equal(pd.read_parquet(target), _set("old"))
    left = [p for p in os.listdir(tmp_path) if publish.TMP_TAG in p]
    assert len(left) == 1  # the killed writer's complete temporary file
    step = files.write(str(target))
    for grace, remaining in ((None, 1), (0, 0)):  # young: maybe a write in progress; then gone
        report = tdm.run(
            tdm.inputs.frame("x") >> step, inputs={"x": _set("next")}, runtime=local.runtime(grace)
        )
        assert report.ok, report.error
        assert len([p for p in os.listdir(tmp_path) if publish.TMP_TAG in p]) == remaining


def test_a_young_staging_folder_is_never_removed(writer: Writer, store: Store) -> None:
    """A killed writer's staging looks like a write in progress until the grace period ends."""
    store.write("ds", _set("old"))
    writer.kill_at("staged", store, "ds", _set("new"))
    staged = [e for e in store.entries("ds") if e.startswith(publish.VERSION_PREFIX)]
    store.write("ds", _set("next"), grace_s=None)  # the default grace period: an hour
    assert set(staged) <= set(store.entries("ds"))
    pd.testing.assert_frame_equal(store.read("ds"), _set("next"))
    store.write("ds", _set("last"), grace_s=0)
    assert not set(staged) & set(store.entries("ds"))


def test_unfinished_multipart_uploads_are_aborted(s3_store: Store) -> None:
    store = s3_store
    store.write("ds", _set("old"))
    key = f"{store.path('ds')}/{publish.VERSION_PREFIX}{publish.new_stamp()}/p=a/part.parquet"
    bucket, _, key = key.partition("/")
    store.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
    assert store.uploads() == [key]  # what a writer killed during a large upload leaves
    store.write("ds", _set("next"), grace_s=None)
    assert store.uploads() == [key]  # young: it may be a write in progress
    store.write("ds", _set("last"), grace_s=0)
    assert store.uploads() == []


@pytest.fixture
def s3_store(fresh_s3_server: Any, tmp_path: Path) -> Store:
    fresh_s3_server.make_bucket(BUCKET)
    secrets = {
        "S3": {
            "key": fresh_s3_server.key,
            "secret": fresh_s3_server.secret,
            "endpoint_url": fresh_s3_server.endpoint_url,
        }
    }
    store = Store("s3", f"s3://{BUCKET}/{tmp_path.name}", secrets, None)
    store.fs = fsspec.filesystem("s3", **store.options)
    return store
