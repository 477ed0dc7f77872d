"""The device-inventory example runs against its local demo API (127.0.0.1), in Python and
YAML, and writes the expected CSV."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import tdm
from tdm.effects.secrets import MappingSecrets

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "device_inventory"

# The example needs tdm.files, tdm.rest and tdm.config (built in parallel): until they are
# on this branch the tests are skipped, not failed.
for _module in ("tdm.files", "tdm.rest", "tdm.config"):
    pytest.importorskip(_module)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"device_inventory_{name}", EXAMPLE / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


demo_api = _load("demo_api")
example = _load("pipeline")

STARTED = datetime(2026, 1, 31, 6, 20, tzinfo=UTC)


def _runtime() -> tdm.Runtime:
    secrets = MappingSecrets({"AirWatch": {"code": demo_api.TENANT_CODE, "key": demo_api.API_KEY}})
    return tdm.Runtime(secrets=secrets, clock=lambda: STARTED)


def _check(csv: Path) -> None:
    df = pd.read_csv(csv, dtype={"device_id": str})
    assert df.columns.tolist() == [
        "id",
        "device_id",
        "serial_number",
        "model",
        "platform",
        "state",
        "encrypted",
        "passcode_present",
        "compromised",
        "load_date",
    ]
    assert df["id"].tolist() == [101, 102, 103, 104, 105]
    assert df["state"].tolist() == ["TX", "TX", "CA", "NY", "WA"]
    assert df["load_date"].tolist() == ["2026-01-31"] * 5
    retired = df.set_index("device_id").loc["a1f3-0004"]
    assert pd.isna(retired["encrypted"])  # its security endpoint answered 404: skipped
    assert df.set_index("device_id").loc["a1f3-0003", "compromised"]


def test_python_pipeline_writes_the_inventory(tmp_path: Path) -> None:
    out = tmp_path / "devices.csv"
    with demo_api.serve() as base_url:
        report = tdm.run(example.build(base_url, str(out), page_size=2), runtime=_runtime())
    assert report.ok, report.error
    assert report.nodes["Query Devices"].rows_out == 5
    assert report.nodes["Query Security"].rows_out == 4
    _check(out)


def test_yaml_declares_the_same_steps() -> None:
    project = tdm.load_yaml(EXAMPLE / "pipeline.yml", params={"base_url": "http://127.0.0.1:1"})
    from_yaml = project.pipeline("Device Inventory")
    in_python = example.build("http://127.0.0.1:1", "output/devices.csv")
    assert from_yaml.names() == in_python.names()
    # Every node, REST sources included (pagination, auth, headers): a copy of the YAML reads
    # every page, as the Python version does.
    assert from_yaml.plan.descriptions == in_python.plan.descriptions
    assert from_yaml == in_python


def test_yaml_pipeline_writes_the_same_file(tmp_path: Path) -> None:
    out = tmp_path / "devices.csv"
    with demo_api.serve() as base_url:
        project = tdm.load_yaml(
            EXAMPLE / "pipeline.yml", params={"base_url": base_url, "output": str(out)}
        )
        pipeline = project.pipeline("Device Inventory")
        report = tdm.run(pipeline, runtime=_runtime())
    assert report.ok, report.error
    _check(out)


def test_the_script_runs_offline(tmp_path: Path) -> None:
    out = tmp_path / "devices.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "pipeline.py"), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert demo_api.API_KEY not in done.stdout + done.stderr
    df = pd.read_csv(out)
    assert len(df) == 5 and set(df["state"]) == {"TX", "CA", "NY", "WA"}
