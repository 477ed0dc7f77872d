"""Nightly orders, loaded incrementally: each run reads only the new export files and merges
them into one Parquet table by order id.

Run: ``python examples/incremental/nightly_orders.py [WORKDIR]`` (default: a temporary folder).
It plays three nights: the first export, a quiet night with nothing new, then an export that
changes one order and adds another. The cursor (the files read so far) lives in the audit store
under WORKDIR; ``tdm state show nightly-orders --state WORKDIR/audit.db`` shows it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

import tdm
from tdm import files


def pipeline(workdir: Path) -> tdm.Pipeline:
    exports = files.read(str(workdir / "landing" / "*.csv"), incremental=True, label="exports")
    return exports >> files.write(str(workdir / "orders.parquet"), mode="upsert", key=["order_id"])


def night(workdir: Path, runtime: tdm.Runtime, label: str) -> None:
    report = tdm.run(pipeline(workdir), runtime=runtime, pipeline_id="nightly-orders")
    report.raise_for_status()
    table = pd.read_parquet(workdir / "orders.parquet").sort_values("order_id")
    print(f"{label}: read {report.nodes['exports'].rows_out} new row(s); table:")
    print(table.to_string(index=False))


def main(workdir: Path) -> None:
    landing = workdir / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    runtime = tdm.Runtime(state=tdm.state.sqlite(workdir / "audit.db"))
    pd.DataFrame({"order_id": [1, 2], "status": ["new", "new"]}).to_csv(
        landing / "2024-05-01.csv", index=False
    )
    night(workdir, runtime, "night 1")
    night(workdir, runtime, "night 2 (nothing new)")
    pd.DataFrame({"order_id": [2, 3], "status": ["shipped", "new"]}).to_csv(
        landing / "2024-05-03.csv", index=False
    )
    night(workdir, runtime, "night 3")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
