"""The Quickstart's demo pipeline runs end to end through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_demo_pipeline_runs_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "totals.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TDM_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "tdm", "run", "examples/demo/pipeline.yml", "--param", f"out={out}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = pd.read_csv(out)
    assert report[["state", "orders"]].to_dict("list") == {
        "state": ["CA", "NY", "TX"],
        "orders": [2, 1, 2],
    }
    assert report["total"].round(2).tolist() == [44.98, 21.25, 149.97]
    assert report["load_date"].notna().all()


def test_python_demo_equals_the_yaml_demo() -> None:
    import importlib.util

    import tdm

    spec = importlib.util.spec_from_file_location("demo", ROOT / "examples/demo/demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    project = tdm.load_yaml(ROOT / "examples/demo/pipeline.yml")
    assert project.pipeline("Orders Demo") == module.pipeline
