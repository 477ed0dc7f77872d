"""The audit trail: every run recorded (even failed or interrupted), three stores, history."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm.effects.secrets import MappingSecrets
from tdm.state import RunRecord, StateStore
from tests.observability.conftest import PLANTED, LeakySource, boom, identity, secrets


def chain() -> tdm.Pipeline:
    return tdm.inputs.frame("orders") >> identity()


def test_default_runtime_records_every_run_in_sqlite_under_tdm_home(orders: pd.DataFrame) -> None:
    ok = tdm.run(chain(), inputs={"orders": orders}, pipeline_id="orders", run_id="r-ok")
    bad = tdm.run(
        tdm.inputs.frame("orders") >> boom(),
        inputs={"orders": orders},
        pipeline_id="orders",
        pipeline_name="Orders nightly",
        run_id="r-bad",
    )
    assert ok.ok and not bad.ok
    home = Path(tdm.effects.secrets.tdm_home())
    assert (home / "state.db").exists()
    runs = {r.run_id: r for r in tdm.state.sqlite().runs()}
    assert set(runs) == {"r-ok", "r-bad"}
    good, failed = runs["r-ok"], runs["r-bad"]
    assert good.status == "SUCCESS" and good.rows_in == 3 and good.rows_out == 3
    assert good.tdm_version == tdm.__version__ and good.finished_at and good.duration_s is not None
    assert "identity: identity()" in good.plan
    assert [n.name for n in good.nodes] == ["orders", "identity"]
    node = good.nodes[1]
    assert (node.status, node.rows_in, node.rows_out) == ("SUCCESS", 3, 3)
    assert node.columns == ("id", "a", "b") and node.dtypes == ("int64", "int64", "int64")
    assert node.schema == tdm.state.schema_fingerprint(node.columns, node.dtypes)
    assert node.started_at and node.finished_at and node.duration_s is not None
    assert good.plan == "identity: identity()\norders: inputs.frame('orders')"
    assert failed.status == "FAILURE" and failed.pipeline_name == "Orders nightly"
    assert "text in row 7" in (failed.error or "")
    assert [n.name for n in failed.failed_nodes] == ["boom"]
    frame = tdm.history(pipeline="orders")
    assert frame["run_id"].tolist() == ["r-bad", "r-ok"]
    assert frame["status"].tolist() == ["FAILURE", "SUCCESS"]
    assert str(frame["started_at"].dtype) == "datetime64[us, UTC]"
    assert tdm.history(status="failure")["run_id"].tolist() == ["r-bad"]
    assert tdm.history(pipeline="Orders nightly")["run_id"].tolist() == ["r-bad"]
    assert len(tdm.history(limit=1)) == 1
    nodes = tdm.history(pipeline="orders", nodes=True)
    assert nodes[nodes["run_id"] == "r-bad"]["status"].tolist() == ["SUCCESS", "FAILURE"]


class ExplodingHook(tdm.Hook):
    def before_node(self, **_: Any) -> None:
        raise RuntimeError("observer crashed")


def test_the_audit_database_and_its_folder_are_created_private(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    """Records hold errors and plans: only the owner may read them (0700 folders, 0600 files,
    the SQLite -wal and -shm files included), whatever the umask."""
    import os
    import stat

    tmp_path.chmod(0o755)
    old = os.umask(0o022)
    try:
        home = tmp_path / "home" / ".tdm"
        tdm.run(
            chain(),
            inputs={"orders": orders},
            runtime=tdm.Runtime(state=tdm.state.sqlite(home / "state.db")),
        )
    finally:
        os.umask(old)
    files = sorted(home.glob("state.db*"))
    assert [f.name for f in files][:2] == ["state.db", "state.db-shm"]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [home, home.parent, *files]}
    assert modes == {"home": 0o700, ".tdm": 0o700, **{f.name: 0o600 for f in files}}
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # an existing folder is left alone


def test_a_run_killed_by_a_hook_exception_is_recorded(orders: pd.DataFrame) -> None:
    store = tdm.state.memory()
    report = tdm.run(
        chain(),
        inputs={"orders": orders},
        run_id="r-hook",
        runtime=tdm.Runtime(state=store, hooks=[ExplodingHook()]),
    )
    assert report.status is tdm.Status.FAILURE
    (run,) = store.runs()
    assert run.run_id == "r-hook" and run.status == "FAILURE"
    assert "observer crashed" in (run.error or "")
    assert [n.status for n in run.nodes] == ["SUCCESS", "SKIPPED"]


@tdm.transform
def interrupt(df: pd.DataFrame) -> pd.DataFrame:
    raise KeyboardInterrupt


class InterruptingHook(tdm.Hook):
    def before_node(self, **kwargs: Any) -> None:
        if kwargs["node"].name == "identity":
            raise KeyboardInterrupt


def test_an_interrupted_run_is_recorded(orders: pd.DataFrame, tmp_path: Path) -> None:
    store = tdm.state.sqlite(tmp_path / "audit.db")
    with pytest.raises(KeyboardInterrupt):
        tdm.run(
            chain(),
            inputs={"orders": orders},
            run_id="r-int",
            runtime=tdm.Runtime(state=store, hooks=[InterruptingHook()]),
        )
    run = store.get("r-int")
    assert run.status == "FAILURE" and "interrupted by KeyboardInterrupt" in (run.error or "")


def test_a_run_is_visible_as_running_while_it_runs(orders: pd.DataFrame, tmp_path: Path) -> None:
    store = tdm.state.sqlite(tmp_path / "audit.db")
    seen: list[str] = []

    class Peek(tdm.Hook):
        def after_node(self, **_: Any) -> None:
            seen.append(store.get("r-live").status)

    tdm.run(
        chain(),
        inputs={"orders": orders},
        run_id="r-live",
        runtime=tdm.Runtime(state=store, hooks=[Peek()]),
    )
    assert seen == ["RUNNING", "RUNNING"] and store.get("r-live").status == "SUCCESS"


def test_sqlite_under_eight_concurrent_runs_loses_no_record(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "shared.db"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def one(k: int) -> None:
        try:
            store = tdm.state.SQLiteStore(path)  # its own connections, like another process
            barrier.wait()
            for j in range(5):
                p = tdm.inputs.frame("orders") >> (boom() if j == 4 else identity())
                report = tdm.run(
                    p,
                    inputs={"orders": orders},
                    runtime=tdm.Runtime(state=store),
                    pipeline_id=f"p{k}",
                    run_id=f"r{k}-{j}",
                )
                assert not report.hook_errors, report.hook_errors
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    runs = tdm.state.SQLiteStore(path).runs()
    assert sorted(r.run_id for r in runs) == sorted(f"r{k}-{j}" for k in range(8) for j in range(5))
    assert sum(r.status == "FAILURE" for r in runs) == 8
    assert all(r.node_count == 2 for r in runs)


WORKER = """
import sys, pandas as pd, tdm
from tdm.core.factories import transform
@transform
def ident(df):
    return df
path, k = sys.argv[1], sys.argv[2]
store = tdm.state.SQLiteStore(path)
for j in range(3):
    r = tdm.run(tdm.inputs.frame("x") >> ident(), inputs={"x": pd.DataFrame({"a": [1]})},
                runtime=tdm.Runtime(state=store), run_id=f"proc{k}-{j}")
    assert r.ok and not r.hook_errors, r.hook_errors
"""


def test_sqlite_under_concurrent_processes_loses_no_record(tmp_path: Path) -> None:
    path = tmp_path / "procs.db"
    repo = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": repo, "TDM_HOME": str(tmp_path)}
    import os

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(k)],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
        )
        for k in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    ids = sorted(r.run_id for r in tdm.state.SQLiteStore(path).runs())
    assert ids == sorted(f"proc{k}-{j}" for k in range(4) for j in range(3))


def test_file_store_on_memory(orders: pd.DataFrame) -> None:
    store = tdm.state.files("memory://audit-test/tdm")
    rt = tdm.Runtime(state=store)
    tdm.run(chain(), inputs={"orders": orders}, runtime=rt, pipeline_id="a/b c", run_id="m1")
    tdm.run(
        tdm.inputs.frame("orders") >> boom(),
        inputs={"orders": orders},
        runtime=rt,
        pipeline_id="a/b c",
        run_id="m2",
    )
    import fsspec

    fs = fsspec.filesystem("memory")
    objects = sorted(fs.find("/audit-test/tdm/runs"))
    assert len(objects) == 2 and objects[0].endswith("_m1_SUCCESS.jsonl")
    assert objects[1].endswith("_m2_FAILURE.jsonl") and "/a_b_c/" in objects[0]
    line = fs.cat_file(objects[1]).decode()
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line)["status"] == "FAILURE"
    assert [r.run_id for r in store.runs(pipeline="a/b c")] == ["m2", "m1"]
    assert [r.run_id for r in store.runs(status="SUCCESS")] == ["m1"]
    assert store.get("m2").failed_nodes[0].name == "boom"
    assert tdm.history(store=store, limit=1)["run_id"].tolist() == ["m2"]


def test_file_store_on_s3_with_credentials_from_a_secret(
    s3_server: Any, orders: pd.DataFrame
) -> None:
    s3_server.make_bucket("audit-bucket")
    creds = MappingSecrets({"S3": {"access_key_id": "testing", "secret_access_key_id": "testing"}})
    store = tdm.state.files(
        "s3://audit-bucket/tdm",
        secret="S3",
        storage_options={"client_kwargs": {"endpoint_url": s3_server.endpoint_url}},
    )
    rt = tdm.Runtime(state=store, secrets=creds)
    for j in range(3):
        p = tdm.inputs.frame("orders") >> (boom() if j == 1 else identity())
        tdm.run(p, inputs={"orders": orders}, runtime=rt, pipeline_id="s3pipe", run_id=f"s{j}")
    keys = sorted(
        o["Key"]
        for o in s3_server.boto3_client().list_objects_v2(
            Bucket="audit-bucket", Prefix="tdm/runs/"
        )["Contents"]
    )
    assert len(keys) == 3 and all(k.startswith("tdm/runs/s3pipe/") for k in keys)
    runs = store.using(creds).runs(pipeline="s3pipe")
    assert [r.run_id for r in runs] == ["s2", "s1", "s0"]
    assert [r.status for r in runs] == ["SUCCESS", "FAILURE", "SUCCESS"]
    assert runs[1].nodes[1].error and "text in row 7" in runs[1].nodes[1].error


class BrokenStore(StateStore):
    def __init__(self) -> None:
        self.attempts = 0

    def record(self, run: RunRecord) -> None:
        self.attempts += 1
        raise OSError("disk full")

    def runs(self, **_: Any) -> list[RunRecord]:
        return []

    def describe(self) -> str:
        return "broken-store"


def test_a_failing_store_never_loses_the_output_nor_hides_the_error(orders: pd.DataFrame) -> None:
    stream = io.StringIO()
    handler = tdm.logging.configure("WARNING", "json", stream, logger="tdm")
    store = BrokenStore()
    try:
        ok = tdm.run(
            chain(), inputs={"orders": orders}, runtime=tdm.Runtime(state=store), run_id="b1"
        )
        bad = tdm.run(
            tdm.inputs.frame("orders") >> boom(),
            inputs={"orders": orders},
            runtime=tdm.Runtime(state=store),
            run_id="b2",
        )
    finally:
        logging.getLogger("tdm").removeHandler(handler)
        logging.getLogger("tdm").setLevel(logging.NOTSET)
    assert ok.ok and ok.output.equals(orders)
    assert store.attempts == 6  # retried: 3 attempts per run
    assert (
        len(ok.hook_errors) == 1
        and "not saved to broken-store after 3 attempt(s)" in ok.hook_errors[0]
    )
    assert "OSError: disk full" in ok.hook_errors[0]
    assert not bad.ok and "text in row 7" in (bad.error or "")
    lost = [json.loads(x) for x in stream.getvalue().splitlines() if "AUDIT RECORD NOT SAVED" in x]
    assert len(lost) == 2 and lost[0]["logger"] == "tdm.audit"
    replay = json.loads(lost[0]["message"].split("replayed: ", 1)[1])
    assert replay["run_id"] == "b1" and replay["status"] == "SUCCESS"


def test_planted_secret_appears_in_no_audit_record(tmp_path: Path) -> None:
    store = tdm.state.sqlite(tmp_path / "audit.db")
    files = tdm.state.files(f"file://{tmp_path}/files")
    for s in (store, files):
        report = tdm.run(
            LeakySource() >> identity(),
            params={"token": PLANTED, "n": 1},
            runtime=tdm.Runtime(secrets=secrets(), state=s),
            run_id="leak",
        )
        assert not report.ok and "server rejected token ***" in (report.error or "")
        run = s.get("leak")
        assert PLANTED not in run.to_json()
        assert run.params == {"token": "***", "n": 1}
        assert "leaky(secret='API')" in run.plan
    raw = (tmp_path / "audit.db").read_bytes() + b"".join(
        p.read_bytes() for p in (tmp_path / "files").rglob("*.jsonl")
    )
    wal = tmp_path / "audit.db-wal"
    if wal.exists():
        raw += wal.read_bytes()
    assert PLANTED.encode() not in raw and b"server rejected token ***" in raw


def test_tdm_history_command(orders: pd.DataFrame, tmp_path: Path) -> None:
    import os

    tdm.run(chain(), inputs={"orders": orders}, pipeline_id="cli-pipe", run_id="h1")
    tdm.run(
        tdm.inputs.frame("orders") >> boom(),
        inputs={"orders": orders},
        pipeline_id="cli-pipe",
        run_id="h2",
    )
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": repo}
    out = subprocess.run(
        [sys.executable, "-m", "tdm", "history", "--pipeline", "cli-pipe", "--status", "failure"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    lines_ = out.stdout.splitlines()
    assert lines_[0].split()[:3] == ["run_id", "pipeline_id", "status"]
    assert len(lines_) == 2 and lines_[1].split()[:3] == ["h2", "cli-pipe", "FAILURE"]
    out = subprocess.run(
        [sys.executable, "-m", "tdm", "history", "--json", "--nodes", "--limit", "1"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [(r["run_id"], r["node"], r["status"]) for r in rows] == [
        ("h2", "orders", "SUCCESS"),
        ("h2", "boom", "FAILURE"),
    ]
