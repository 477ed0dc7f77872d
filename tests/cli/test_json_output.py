"""``--log-format json``: every byte tdm prints is JSON, as a pod's log collector needs.

Each case runs ``python -m tdm`` in a child process (so logging and warnings are set up as in a
pod) and requires stdout to be one JSON document and every stderr line to be a JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDERS = "tests/resources/cli/orders.yml"
FAILING = "tests/resources/cli/failing.yml"


def tdm_json(*args: str, tmp_path: Path, **env: str) -> tuple[int, Any, list[dict[str, Any]]]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TDM_HOME": str(tmp_path / "home"),
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tdm", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err_lines = [json.loads(line) for line in proc.stderr.splitlines()]  # each must be JSON
    document = json.loads(proc.stdout) if proc.stdout.strip() else None
    if document is not None:
        assert proc.stdout.count("\n") == 1, "the summary is one document on one line"
    return proc.returncode, document, err_lines


def test_success_is_one_json_document_and_json_log_lines(tmp_path: Path) -> None:
    null_alerts = tmp_path / "orders.yml"
    null_alerts.write_text(
        (ROOT / ORDERS)
        .read_text()
        .replace("emailalertmanager", "nullalertmanager")
        .replace("email_addresses: [data-ops@example.com]", "name: Null")
        .replace("      host: smtp.example.com\n", "")
    )
    code, doc, logs = tdm_json(
        "run", str(null_alerts), "--log-format", "json", "--show", "1",
        tmp_path=tmp_path, TDM_SECRET__STORE__TOKEN="tok-json-0001",
        TDM_SECRET__SMTP__PASSWORD="pw-json-0002",
    )  # fmt: skip
    assert code == 0, logs
    assert doc["status"] == "SUCCESS"
    assert [p["pipeline"] for p in doc["pipelines"]] == ["Orders", "Joined"]
    orders = doc["pipelines"][0]
    assert orders["pipeline_id"] == "orders" and orders["status"] == "SUCCESS"
    assert [n["name"] for n in orders["nodes"]] == ["Numbers", "Scaled", "Store"]
    assert orders["nodes"][1]["rows_out"] == 3
    (first_row,) = orders["outputs"]["Store"]  # --show 1: one row per output, as records
    assert isinstance(first_row, dict) and first_row
    assert logs and all(line["level"] in ("INFO", "DEBUG", "WARNING") for line in logs)
    assert any(line.get("run_id") == orders["run_id"] for line in logs)
    everything = json.dumps(doc) + json.dumps(logs)
    assert "tok-json-0001" not in everything and "pw-json-0002" not in everything


def test_failed_run_summary_and_error_are_json(tmp_path: Path) -> None:
    code, doc, logs = tdm_json("run", FAILING, "--log-format", "json", tmp_path=tmp_path)
    assert code == 1
    assert doc["status"] == "FAILURE"
    (fails,) = doc["pipelines"]
    boom = next(n for n in fails["nodes"] if n["name"] == "Boom")
    assert boom["status"] == "FAILURE" and "bad row 7" in boom["error"]
    errors = [line for line in logs if line["level"] == "ERROR" and line.get("error")]
    final = errors[-1]
    assert final["error"] == "RunError" and final["exit_code"] == 1
    assert "pipeline 'Fails'" in final["message"]


@pytest.mark.parametrize(
    ("args", "kind", "code"),
    [
        (["run", "missing.yml", "--log-format", "json"], "ConfigError", 2),
        (["run", ORDERS, "--log-format", "json", "--pipeline", "Orders"], "SecretNotFoundError", 2),
        (["run", ORDERS, "--log-format", "json", "--executor", "gpu"], "BadParameter", 2),
        (["run", ORDERS, "--log-format", "json", "--state-secret", "S3"], "InputError", 2),
    ],
)
def test_errors_are_json_lines(tmp_path: Path, args: list[str], kind: str, code: int) -> None:
    exit_code, doc, logs = tdm_json(*args, tmp_path=tmp_path)
    assert exit_code == code
    assert doc is None  # nothing on stdout: no half-written summary
    assert logs[-1]["error"] == kind and logs[-1]["exit_code"] == code
    assert "Traceback" not in json.dumps(logs)


def test_env_var_selects_json_and_dry_run_is_json(tmp_path: Path) -> None:
    code, doc, logs = tdm_json("run", ORDERS, "--dry-run", tmp_path=tmp_path, TDM_LOG_FORMAT="json")
    assert code == 0, logs
    assert doc["dry_run"] is True and "s3://bucket/orders.csv" in doc["plan"]
    code, doc, logs = tdm_json("validate", "missing.yml", tmp_path=tmp_path, TDM_LOG_FORMAT="json")
    assert code == 2 and doc is None and logs[-1]["error"] == "ConfigError"


def test_text_stays_the_default(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tdm", "run", FAILING, "--log-format", "text"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TDM_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "FAILURE  Boom" in proc.stdout
    assert "RunError: pipeline 'Fails'" in proc.stderr
