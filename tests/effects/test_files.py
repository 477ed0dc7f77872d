"""File effects on memory:// and local disk: formats, globs, modes, partitions, atomicity, errors."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import tdm
from tdm import files
from tdm.core.files import Write
from tdm.effects.secrets import MappingSecrets
from tdm.effects.storage import _LocalFS, is_transient, resolve_uri
from tdm.errors import DefinitionError

from .files_helpers import FORMATS, assert_same, failed, ok, published, sample

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mem() -> str:
    """A fresh memory:// folder for one test."""
    return f"memory://t-{uuid.uuid4().hex[:8]}"


def write_then(uri: str, frame: pd.DataFrame, runtime: tdm.Runtime | None = None, **kw: object):
    p = tdm.inputs.frame("x") >> files.write(uri, **kw)  # type: ignore[arg-type]
    return tdm.run(p, inputs={"x": frame}, runtime=runtime)


# ---- descriptions ----------------------------------------------------------------------------
def test_descriptions_are_values_with_inferred_formats() -> None:
    a = files.read("s3://raw/devices/*.parquet", secret="S3")
    assert a == files.read("s3://raw/devices/*.parquet", format="parquet", secret="S3")
    assert hash(a) == hash(files.read("s3://raw/devices/*.parquet", secret="S3"))
    w = files.write("out/devices.csv.gz", sep=";")
    assert isinstance(w, Write) and w.format == "csv" and w.arity == 1
    assert w == files.write("out/devices.csv.gz", sep=";") != files.write("out/devices.csv.gz")
    assert pickle.loads(pickle.dumps(w)) == w
    assert w.name == "write_devices" and a.sources() == ["read_devices"]
    assert "secret='S3'" in a.plan.descriptions[0]
    assert files.write("o/x.jsonl.gz").format == "jsonl"
    assert files.write("o/x.json").format == "json"


def test_unknown_extension_suggests_format() -> None:
    with pytest.raises(DefinitionError, match=r"format=.*'parquet'"):
        files.read("data/devices.xlsx")
    with pytest.raises(DefinitionError, match="no extension"):
        files.write("output/devices", partition_by=["platform"])
    assert files.write("output/devices", format="parquet", partition_by=["p"]).partition_by == (
        "p",
    )
    with pytest.raises(DefinitionError, match="unknown file format 'xml'"):
        files.read("a.csv", format="xml")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="unknown write mode"):
        files.write("a.csv", mode="merge")  # type: ignore[arg-type]


def test_credentials_in_options_are_refused() -> None:
    with pytest.raises(DefinitionError, match=r"'key', 'secret'.*secret='S3'"):
        files.read("s3://b/x.csv", storage_options={"key": "AKIA", "secret": "shh"})
    with pytest.raises(DefinitionError, match="connection_string"):
        files.write("az://c/x.csv", connection_string="DefaultEndpoints...")


def test_write_passes_its_frame_on_and_pipeline_continues(mem: str) -> None:
    @tdm.transform
    def double(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(id=df["id"] * 2)

    p = (
        tdm.inputs.frame("x")
        >> files.write(f"{mem}/raw.parquet")
        >> double()
        >> files.write(f"{mem}/doubled.csv")
    )
    report = ok(tdm.run(p, inputs={"x": sample(3)}))
    assert report.output["id"].tolist() == [0, 2, 4]
    back = ok(tdm.run(files.read(f"{mem}/doubled.csv"))).output
    assert back["id"].tolist() == [0, 2, 4]
    raw = ok(tdm.run(files.read(f"{mem}/raw.parquet"))).output
    assert_same(raw, sample(3))


def test_read_after_waits_for_the_write(mem: str) -> None:
    w = tdm.inputs.frame("x") >> files.write(f"{mem}/stage.parquet")
    r = files.read(f"{mem}/stage.parquet", after=w)
    report = ok(tdm.run(r, inputs={"x": sample(4)}))
    assert_same(report.output, sample(4))
    assert report.nodes["read_stage"].rows_out == 4


# ---- formats on memory:// and local disk -------------------------------------------------------
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("store", ["memory", "local"])
def test_every_format_round_trips(fmt: str, store: str, mem: str, tmp_path: Path) -> None:
    uri = f"{mem}/{FORMATS[fmt]}" if store == "memory" else str(tmp_path / FORMATS[fmt])
    ok(write_then(uri, sample()))
    report = ok(tdm.run(files.read(uri)))
    assert_same(report.output, sample())
    expected_path = uri if store == "memory" else str(tmp_path / FORMATS[fmt])
    assert report.output.attrs["source_path"] == expected_path
    if fmt.endswith(".gz"):
        raw = fsspec.open(uri, "rb").open().read()
        assert raw[:2] == b"\x1f\x8b"  # really gzip


def test_csv_reads_fast_types_and_options(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("zip;name;n\n007;x;1\n010;;2\n", encoding="utf-8")
    df = ok(tdm.run(files.read(str(tmp_path / "a.csv"), sep=";", dtype={"zip": str}))).output
    assert df["zip"].tolist() == ["007", "010"]
    assert pd.isna(df["name"].iloc[1]) and df["n"].dtype == "int64"
    assert isinstance(df["name"].dtype, pd.StringDtype)  # Arrow-backed strings
    picked = ok(tdm.run(files.read(str(tmp_path / "a.csv"), sep=";", columns=["n"]))).output
    assert list(picked.columns) == ["n"]
    # an option pyarrow's reader lacks falls back to pandas' reader, same result
    slow = ok(tdm.run(files.read(str(tmp_path / "a.csv"), sep=";", nrows=1))).output
    assert slow["n"].tolist() == [1]
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert ok(tdm.run(files.read(str(tmp_path / "t.tsv")))).output["b"].tolist() == [2]


def test_glob_concatenates_in_path_order_with_source_paths(mem: str) -> None:
    for i, name in enumerate(["b", "a", "c"]):
        ok(write_then(f"{mem}/in/{name}.parquet", sample(2, offset=10 * i)))
    ok(write_then(f"{mem}/in/.hidden.parquet", sample(9)))
    df = ok(tdm.run(files.read(f"{mem}/in/*.parquet", path_column="source_file"))).output
    assert df["id"].tolist() == [10, 11, 0, 1, 20, 21]  # a, b, c
    expected = [f"{mem}/in/{n}.parquet" for n in "abc"]
    assert df.attrs["source_path"] == expected
    assert df["source_file"].tolist() == [p for p in expected for _ in range(2)]
    one = ok(tdm.run(files.read(f"{mem}/in/a*.parquet"))).output
    assert one.attrs["source_path"] == [f"{mem}/in/a.parquet"]  # a glob gives a list


def test_relative_paths_resolve_against_runtime_files(mem: str, tmp_path: Path) -> None:
    rt = tdm.Runtime(files=mem)
    ok(write_then("rel/out.csv", sample(2), runtime=rt))
    assert fsspec.filesystem("memory").exists(f"{mem}/rel/out.csv")
    assert_same(ok(tdm.run(files.read("rel/out.csv"), runtime=rt)).output, sample(2))
    local = tdm.Runtime(files=str(tmp_path))
    ok(write_then("sub/out.parquet", sample(2), runtime=local))
    assert (tmp_path / "sub" / "out.parquet").is_file()
    assert resolve_uri("x.csv", None) == os.path.abspath("x.csv")


# ---- modes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz", "log.jsonl", "log.parquet", "log.json"])
def test_append_adds_rows(name: str, tmp_path: Path) -> None:
    uri = str(tmp_path / name)
    ok(write_then(uri, sample(2), mode="append"))  # creates
    ok(write_then(uri, sample(3, offset=2), mode="append"))
    df = ok(tdm.run(files.read(uri))).output
    assert_same(df, sample(5))


def test_append_with_other_columns_fails_and_keeps_file(mem: str) -> None:
    uri = f"{mem}/log.csv"
    ok(write_then(uri, sample(2)))
    before = fsspec.filesystem("memory").cat(uri)
    error = failed(write_then(uri, sample(2).drop(columns=["ok"]), mode="append"))
    assert "cannot append" in error and "missing: ['ok']" in error and uri in error
    assert fsspec.filesystem("memory").cat(uri) == before
    # same columns in another order are reordered to the file's
    ok(
        write_then(
            uri, sample(1, offset=7)[["ok", "id", "amount", "platform", "date"]], mode="append"
        )
    )
    assert ok(tdm.run(files.read(uri))).output["id"].tolist() == [0, 1, 7]


def test_error_if_exists(tmp_path: Path) -> None:
    uri = str(tmp_path / "once.parquet")
    ok(write_then(uri, sample(2), mode="error_if_exists"))
    error = failed(write_then(uri, sample(5), mode="error_if_exists"))
    assert "already exists" in error and uri in error and "mode='overwrite'" in error
    assert len(pd.read_parquet(uri)) == 2


# ---- partitioned writes --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("store", ["memory", "local"])
def test_partitioned_write_and_read_back(fmt: str, store: str, mem: str, tmp_path: Path) -> None:
    uri = f"{mem}/devices" if store == "memory" else str(tmp_path / "devices")
    data = sample(6)
    ok(write_then(uri, data, format=fmt, partition_by=["platform"]))
    fs, root = fsspec.core.url_to_fs(uri)
    objects = {p[len(root.rstrip("/")) + 1 :]: fs.cat(p) for p in fs.find(root)}
    parts = published({f"x/{k}": v for k, v in objects.items()}, "x")
    assert [p.split("/")[0] for p in parts] == ["platform=android", "platform=ios"]
    assert not [p for p in fs.find(os.path.dirname(root.rstrip("/"))) if ".tdm-tmp-" in p]
    back = ok(tdm.run(files.read(uri, format=fmt))).output  # type: ignore[arg-type]
    back = back.sort_values("id")[list(data.columns)]
    assert_same(back, data)
    # overwrite replaces every partition (no stale ones)
    ok(
        write_then(
            uri, sample(2, offset=20).assign(platform="web"), format=fmt, partition_by=["platform"]
        )
    )
    again = ok(tdm.run(files.read(uri, format=fmt))).output  # type: ignore[arg-type]
    assert sorted(again["platform"].unique()) == ["web"] and len(again) == 2


def test_partitioned_append_adds_files(mem: str) -> None:
    uri = f"{mem}/events"
    ok(write_then(uri, sample(2), format="parquet", partition_by=["platform"], mode="append"))
    ok(
        write_then(
            uri, sample(2, offset=2), format="parquet", partition_by=["platform"], mode="append"
        )
    )
    back = ok(tdm.run(files.read(uri, format="parquet"))).output
    assert sorted(back["id"]) == [0, 1, 2, 3]


def test_partition_by_unknown_column_fails_clearly(mem: str) -> None:
    error = failed(write_then(f"{mem}/p", sample(2), format="parquet", partition_by=["nope"]))
    assert "'nope'" in error and "platform" in error


# ---- atomicity ------------------------------------------------------------------------------
def _poisoned(n: int) -> pd.DataFrame:
    """A frame whose last partition cannot be written as Parquet (mixed int/str objects)."""
    df = sample(n)
    bad = df["platform"].astype(object).where(df["platform"] != "ios", "x")
    values = [1 if p == "android" else "zzz" for p in df["platform"]]
    frame = df.assign(platform=bad, mixed=pd.Series(values, dtype=object))
    frame.loc[frame["platform"] == "x", "mixed"] = pd.Series([1, "b"] * n, dtype=object)[
        : (frame["platform"] == "x").sum()
    ].to_numpy()
    return frame


@pytest.mark.parametrize("store", ["memory", "local"])
def test_failed_partitioned_write_leaves_previous_output(
    store: str, mem: str, tmp_path: Path
) -> None:
    uri = f"{mem}/parts" if store == "memory" else str(tmp_path / "parts")
    ok(write_then(uri, sample(4), format="parquet", partition_by=["platform"]))
    fs, root = fsspec.core.url_to_fs(uri)
    before = {p: fs.cat(p) for p in fs.find(root)}
    error = failed(write_then(uri, _poisoned(6), format="parquet", partition_by=["platform"]))
    assert uri in error and "cannot write" in error
    assert {p: fs.cat(p) for p in fs.find(root)} == before  # all partitions or none
    parent = os.path.dirname(root.rstrip("/"))
    assert not [p for p in fs.find(parent) if ".tdm-tmp-" in p]  # staging cleaned up


@pytest.mark.parametrize("store", ["memory", "local"])
def test_failed_single_write_leaves_previous_file(store: str, mem: str, tmp_path: Path) -> None:
    uri = f"{mem}/one.parquet" if store == "memory" else str(tmp_path / "one.parquet")
    ok(write_then(uri, sample(3)))
    fs, path = fsspec.core.url_to_fs(uri)
    before = fs.cat(path)
    bad = pd.DataFrame({"mixed": pd.Series([1, "b"], dtype=object)})
    assert "cannot write" in failed(write_then(uri, bad))
    assert fs.cat(path) == before
    assert not [p for p in fs.ls(os.path.dirname(path), detail=False) if ".tdm-tmp-" in p]


_BIG_WRITER = """
import sys, numpy as np, pandas as pd, tdm
from tdm import files
n = 3_000_000
df = pd.DataFrame({"a": np.arange(n), "s": np.repeat(np.array(["x" * 20], dtype=object), n)})
print("ready", flush=True)
tdm.run(tdm.inputs.frame("x") >> files.write(sys.argv[1]), inputs={"x": df})
print("finished", flush=True)
"""


def test_killed_process_mid_write_leaves_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "big.csv"
    ok(write_then(str(target), sample(3)))
    before = target.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _BIG_WRITER, str(target)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 20
        temps: list[Path] = []
        while time.monotonic() < deadline and not temps:
            temps = [
                p for p in tmp_path.iterdir() if ".tdm-tmp-" in p.name and p.stat().st_size > 0
            ]
            time.sleep(0.01)
        assert temps, "the writer never started writing its temporary file"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert target.read_bytes() == before  # the destination was never touched
    # the half-written temporary file is hidden and never read by a folder or glob read
    assert_same(ok(tdm.run(files.read(str(tmp_path / "*.csv")))).output, sample(3))


# ---- errors ---------------------------------------------------------------------------------
def test_missing_file_is_a_clear_failure(mem: str, tmp_path: Path) -> None:
    report = tdm.run(files.read(f"{mem}/nope.csv") >> files.write(f"{mem}/out.csv"))
    error = failed(report)
    assert f"cannot read {mem}/nope.csv" in error and "no such file" in error
    assert report.nodes["write_out"].status is tdm.Status.SKIPPED
    assert not fsspec.filesystem("memory").exists(f"{mem}/out.csv")
    assert "no files match" in failed(tdm.run(files.read(str(tmp_path / "*.csv"))))


def test_wrong_secret_name_fails_and_writes_nothing(mem: str) -> None:
    rt = tdm.Runtime(secrets=MappingSecrets({"S3": {"key": "k-value-1", "secret": "s-value-1"}}))
    error = failed(write_then(f"{mem}/x.csv", sample(2), runtime=rt, secret="S4"))
    assert (
        f"cannot write {mem}/x.csv" in error and "'S4' not found" in error and "there: S3" in error
    )
    assert "s-value-1" not in error
    assert not fsspec.filesystem("memory").exists(f"{mem}/x.csv")


def test_corrupt_file_is_a_format_failure(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    error = failed(tdm.run(files.read(str(tmp_path / "bad.parquet"))))
    assert "as parquet" in error and str(tmp_path / "bad.parquet") in error


# ---- retries --------------------------------------------------------------------------------
class FlakyMemory(MemoryFileSystem):
    """A real fsspec filesystem (memory-backed) whose reads fail transiently at first."""

    protocol = "flaky"
    failures = 0
    calls = 0

    def cat_file(self, path, start=None, end=None, **kwargs):  # type: ignore[no-untyped-def]
        FlakyMemory.calls += 1
        if FlakyMemory.failures > 0:
            FlakyMemory.failures -= 1
            raise ConnectionResetError("connection reset by peer")
        return super().cat_file(path, start, end, **kwargs)

    def _open(self, path, mode="rb", **kwargs):  # type: ignore[no-untyped-def]
        if "r" in mode:
            FlakyMemory.calls += 1
            if FlakyMemory.failures > 0:
                FlakyMemory.failures -= 1
                raise TimeoutError("read timed out")
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def flaky() -> str:
    fsspec.register_implementation("flaky", FlakyMemory, clobber=True)
    FlakyMemory.failures = FlakyMemory.calls = 0
    return f"flaky://r-{uuid.uuid4().hex[:8]}"


def test_transient_errors_are_retried(flaky: str) -> None:
    rt = tdm.Runtime(options={"files": {"attempts": 4, "max_wait": 0.01}})
    ok(write_then(f"{flaky}/a.jsonl", sample(3), runtime=rt))
    FlakyMemory.failures = 2
    assert_same(ok(tdm.run(files.read(f"{flaky}/a.jsonl"), runtime=rt)).output, sample(3))
    FlakyMemory.failures, FlakyMemory.calls = 10, 0
    error = failed(tdm.run(files.read(f"{flaky}/a.jsonl"), runtime=rt))
    assert "gave up after 4 attempts" in error and FlakyMemory.calls == 4


def test_permanent_errors_are_not_retried() -> None:
    assert not is_transient(PermissionError("denied"))
    assert not is_transient(FileNotFoundError("x"))
    wrapped = OSError("s3 said")
    wrapped.__cause__ = ConnectionError("dropped")
    assert is_transient(wrapped)


def test_partitioned_text_files_can_be_compressed(mem: str) -> None:
    uri = f"{mem}/gz"
    ok(write_then(uri, sample(4), format="csv", partition_by=["platform"], compression="gzip"))
    fs = fsspec.filesystem("memory")
    names = [n for n in fs.find(uri) if not n.endswith("_tdm_manifest.json")]
    assert names and all(n.endswith(".csv.gz") for n in names)
    assert fs.cat(names[0])[:2] == b"\x1f\x8b"
    back = ok(tdm.run(files.read(uri, format="csv"))).output.sort_values("id")
    assert_same(back[list(sample().columns)], sample(4))


def test_csv_type_surprise_late_in_the_file_falls_back_to_pandas(tmp_path: Path) -> None:
    rows = "\n".join(str(i) for i in range(2000))
    (tmp_path / "late.csv").write_text(f"code\n{rows}\nN/A-7\n", encoding="utf-8")
    # a small block makes pyarrow infer int64 from the first block, then meet "N/A-7"
    df = ok(tdm.run(files.read(str(tmp_path / "late.csv"), block_size=1024))).output
    assert len(df) == 2001 and df["code"].iloc[-1] == "N/A-7"


def test_unknown_protocol_is_named() -> None:
    error = failed(tdm.run(files.read("nosuch://bucket/x.csv")))
    assert "unknown storage protocol 'nosuch'" in error and "s3" in error


def test_the_local_filesystem_is_fsspecs_made_on_first_use(tmp_path: Path) -> None:
    lazy = _LocalFS()
    lazy.invalidate_cache()  # nothing made yet: no listing is cached on local disk
    clone = pickle.loads(pickle.dumps(lazy))
    assert lazy.protocol == clone.protocol == fsspec.filesystem("file").protocol
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")
    # a glob and a folder read go through fsspec's local filesystem, made when first needed
    assert sorted(clone.glob(f"{tmp_path}/*.csv")) == [f"{tmp_path}/a.csv", f"{tmp_path}/b.csv"]
    assert ok(tdm.run(files.read(f"{tmp_path}/*.csv"))).output["x"].tolist() == [1, 2]
