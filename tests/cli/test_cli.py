"""The ``tdm`` command through its real entry points (click's runner and ``python -m tdm``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from tdm.cli import cli

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "tests" / "resources"
SNAPSHOTS = RESOURCES / "snapshots"
ORDERS = "tests/resources/cli/orders.yml"
FAILING = "tests/resources/cli/failing.yml"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="tdm", env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("TDM_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), (
        f"{name} changed; rerun with TDM_UPDATE_SNAPSHOTS=1 if intended"
    )


def tdm_process(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd)]), **env}
    return subprocess.run(
        [sys.executable, "-m", "tdm", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ["", "run", "graph", "deploy", "init"])
def test_help_snapshots(command: str) -> None:
    code, out, _ = invoke(*([command] if command else []), "--help")
    assert code == 0
    snapshot(f"help_{command or 'tdm'}", out)


@pytest.mark.parametrize("fmt", ["text", "mermaid", "dot"])
def test_graph_snapshots(fmt: str) -> None:
    code, out, err = invoke("graph", ORDERS, "--format", fmt)
    assert code == 0, err
    snapshot(f"graph_{fmt}", out)


def test_dry_run_snapshot_touches_nothing() -> None:
    code, out, err = invoke("run", ORDERS, "--dry-run", "--param", "factor=3")
    assert code == 0, err
    snapshot("dry_run", out)
    assert "s3://bucket/orders.csv" in out
    assert "data-ops@example.com" in out
    assert "secret: Store" in out


def test_run_succeeds_with_secrets_from_env(tmp_path: Path) -> None:
    env = {"TDM_SECRET__STORE__TOKEN": "tok-0000", "TDM_SECRET__SMTP__PASSWORD": "pw-0000"}
    null_alerts = tmp_path / "orders.yml"
    null_alerts.write_text(
        (ROOT / ORDERS)
        .read_text()
        .replace("emailalertmanager", "nullalertmanager")
        .replace("email_addresses: [data-ops@example.com]", "name: Null")
        .replace("      host: smtp.example.com\n", "")
    )
    code, out, err = invoke(
        "run", str(null_alerts), "--pipeline", "Orders", "--no-progress", "--show", "2", env=env
    )
    assert code == 0, err
    assert "pipeline 'Orders': SUCCESS" in out
    assert "SUCCESS  Store" in out
    assert "tok-0000" not in out + err
    import tdm

    runs = tdm.history(pipeline="Orders")  # the audit trail has the pipeline's own name
    assert runs[["pipeline_id", "pipeline_name"]].values.tolist() == [["orders", "Orders"]]


def test_history_secret_needs_a_state_store() -> None:
    code, _, err = invoke("history", "--secret", "S3")
    assert code == 2 and "give --state too" in err


def test_run_with_a_missing_secret_is_bad_input_and_runs_nothing() -> None:
    code, out, err = invoke("run", ORDERS, "--pipeline", "Orders", "--no-progress")
    assert code == 2
    assert out == ""
    assert err.startswith("SecretNotFoundError: tests/resources/cli/orders.yml:")
    assert "secret 'SMTP' not found in any provider" in err


def test_validate_list_and_types() -> None:
    code, out, _ = invoke("validate", ORDERS, "--no-secrets")
    assert (code, out) == (0, "OK: tests/resources/cli/orders.yml: 2 pipeline(s): Orders, Joined\n")
    code, out, _ = invoke("list", ORDERS)
    assert code == 0
    assert out.splitlines()[1].split() == [
        "Orders",
        "orders",
        "20",
        "*",
        "*",
        "*",
        "*",
        "3",
        "Store",
    ]
    code, out, _ = invoke("types")
    assert code == 0
    assert "RenameColumns" in out and "tdm.transforms:rename_columns" in out
    code, out, _ = invoke("types", "--kind", "alert")
    assert "gmailemailalertmanager" in out


@pytest.mark.parametrize("target", ["argo", "cronjob"])
def test_deploy_manifests(target: str, tmp_path: Path) -> None:
    out_file = tmp_path / "m.yml"
    code, _, err = invoke(
        "deploy", target, ORDERS, "--image", "reg/tdm:1", "--namespace", "data", "-o", str(out_file)
    )
    assert code == 0, err
    docs = list(yaml.safe_load_all(out_file.read_text()))
    assert len(docs) == 1  # only the scheduled pipeline
    (doc,) = docs
    expected = {
        "argo": ("argoproj.io/v1alpha1", "CronWorkflow"),
        "cronjob": ("batch/v1", "CronJob"),
    }
    assert (doc["apiVersion"], doc["kind"]) == expected[target]
    assert doc["metadata"] == {
        "name": "orders",
        "labels": {"app.kubernetes.io/managed-by": "tdm", "tdm/pipeline-id": "orders"},
        "annotations": {"tdm/pipeline": "Orders"},
        "namespace": "data",
    }
    assert doc["spec"]["schedule"] == "20 * * * *"
    if target == "argo":
        pod = doc["spec"]["workflowSpec"]
        container = pod["templates"][0]["container"]
    else:
        pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["restartPolicy"] == "Never"
    assert container["image"] == "reg/tdm:1"
    assert container["command"] == ["tdm"]
    assert container["args"] == ["run", ORDERS, "--pipeline", "Orders", "--log-format", "json"]
    # every secret the file uses: the pipe's and the alert manager's
    assert pod["volumes"] == [
        {"name": "secret-smtp", "secret": {"secretName": "tdm-smtp"}},
        {"name": "secret-store", "secret": {"secretName": "tdm-store"}},
    ]
    assert [m["mountPath"] for m in container["volumeMounts"]] == [
        "/var/run/secrets/tdm/smtp",
        "/var/run/secrets/tdm/store",
    ]
    assert "kubectl create secret generic tdm-store" in out_file.read_text()
    assert "kubectl create secret generic tdm-smtp" in out_file.read_text()
    assert "audit trail defaults to SQLite" in err  # the store would die with the pod
    code, _, err = invoke("deploy", target, ORDERS)
    assert code == 2 and "no container image" in err
    code, _, err = invoke("deploy", target, ORDERS, "--image", "x", "--pipeline", "Joined")
    assert code == 2 and "pipeline 'Joined' has no `schedule`" in err


def test_exit_codes_and_messages_through_python_m_tdm(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("pipelines:\n  - name: P\n    pipes:\n      - {name: a, type: jion}\n")
    proc = tdm_process("validate", str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        f"ConfigError: {bad}:4: pipeline 'P', pipe 'a': unknown pipe type"
    )
    assert "Traceback" not in proc.stderr
    proc = tdm_process("run", FAILING)  # not a terminal: JSON logs, the text summary
    assert proc.returncode == 1
    assert "FAILURE  Boom" in proc.stdout
    assert "ValueError: bad row 7" in proc.stdout
    assert "RunError: pipeline 'Fails'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = tdm_process("run", "missing.yml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("ConfigError: file 'missing.yml' not found")
    proc = tdm_process("run", ORDERS, "--executor", "gpu")
    assert proc.returncode == 2 and "Invalid value for '--executor'" in proc.stderr
    proc = tdm_process("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("tdm ")


def test_init_then_run_works_offline(tmp_path: Path) -> None:
    proc = tdm_process("init", "demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    demo = tmp_path / "demo"
    for rel in (
        "pipelines/example.yml",
        "demo/pipes.py",
        "tests/test_pipes.py",
        ".tdm/config.yml",
        ".tdm/secrets.yml.example",
        "Dockerfile",
        "pyproject.toml",
    ):
        assert (demo / rel).is_file(), rel
    proc = tdm_process("run", "pipelines/example.yml", cwd=demo, TDM_HOME=str(demo / ".tdm"))
    assert proc.returncode == 0, proc.stderr
    assert "pipeline 'Example': SUCCESS" in proc.stdout
    assert "SUCCESS  Large Orders" in proc.stdout
    saved = pd.read_csv(demo / "output" / "large_orders.csv")
    assert len(saved) > 0 and (saved["total"] >= 20).all()
    proc = tdm_process("init", "demo", cwd=tmp_path)
    assert proc.returncode == 2 and "is not empty" in proc.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=demo,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(demo)])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_run_on_a_dask_scheduler(dask_cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "totals.csv"
    code, stdout, err = invoke(
        "run", "examples/demo/pipeline.yml", "--executor", "dask",
        "--scheduler", dask_cluster.scheduler_address, "--param", f"out={out}",
        "--log-format", "text", "--log-level", "warning",
    )  # fmt: skip
    assert code == 0, err
    assert "pipeline 'Orders Demo': SUCCESS" in stdout
    assert pd.read_csv(out)["state"].tolist() == ["CA", "NY", "TX"]
    code, _, err = invoke("run", "examples/demo/pipeline.yml", "--scheduler", "tcp://x:1")
    assert code == 2 and "--scheduler applies only to --executor dask" in err
