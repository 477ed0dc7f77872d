"""examples/incremental/nightly_orders.py runs as its docstring says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def test_nightly_orders_reads_only_new_exports(tmp_path: Path) -> None:
    script = ROOT / "examples" / "incremental" / "nightly_orders.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("night")]
    assert lines == [
        "night 1: read 2 new row(s); table:",
        "night 2 (nothing new): read 0 new row(s); table:",
        "night 3: read 2 new row(s); table:",
    ]
    table = pd.read_parquet(tmp_path / "orders.parquet").sort_values("order_id")
    assert table.to_dict("list") == {"order_id": [1, 2, 3], "status": ["new", "shipped", "new"]}
