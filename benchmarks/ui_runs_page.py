"""How fast the run browser's pages render over a large audit store, against bare SQL.

Run: ``python benchmarks/ui_runs_page.py`` (``--runs 10000`` by default, ``--quick`` for fewer
repetitions).

A SQLite audit store is filled with ``--runs`` records copied from real ``tdm.run`` records
(8 nodes each, two pipelines, one run in five failed; new ids and start times). Then, through
the real app served by uvicorn on 127.0.0.1 and fetched over HTTP:

1. the runs page (first page, newest 50), a filtered page deep in the list (status=FAILURE,
   page 20), a run page and a pipeline page;
2. the baseline: the bare SQL query for one page of 50 runs (``SELECT * ... ORDER BY
   started_at DESC LIMIT 50``) with the sqlite3 module, and a plain HTTP GET of a constant
   page from the same server (what any page costs before it reads anything).

Prints the median of each and its ratio to the baselines.
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tdm
from tdm.effects.state import RunRecord, SQLiteStore


def median_time(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def templates() -> list[RunRecord]:
    """Two real records (a success and a failure) of an 8-node pipeline."""
    from tests.ui.fill import orders_pipeline

    store = tdm.state.memory()
    frame = pd.DataFrame({"id": range(6), "amount": [10.0, 20.0, -5.0, 40.0, 50.0, 60.0]})
    tdm.run(
        orders_pipeline(currency=True),
        inputs={"orders": frame.abs()},
        runtime=tdm.Runtime(state=store),
        pipeline_id="orders-daily",
        params={"day": "2026-11-01"},
    )
    tdm.run(
        orders_pipeline(currency=True),
        inputs={"orders": frame},
        runtime=tdm.Runtime(state=store),
        pipeline_id="orders-daily",
        params={"day": "2026-11-02"},
    )
    return sorted(store.runs(), key=lambda r: r.status, reverse=True)  # SUCCESS, FAILURE


def fill(store: SQLiteStore, count: int) -> None:
    ok, failed = templates()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        base = failed if i % 5 == 0 else ok
        rows.append(
            dataclasses.replace(
                base,
                run_id=f"run{i:06d}",
                job_id=f"run{i:06d}",
                pipeline_id="orders-daily" if i % 2 else "orders-weekly",
                pipeline_name="Orders daily" if i % 2 else "Orders weekly",
                started_at=(start + timedelta(minutes=i)).isoformat(timespec="microseconds"),
            )
        )
    for row in rows:
        store.record(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 5 if args.quick else 21

    from tdm.ui.app import create_app
    from tests.ui.conftest import AppServer

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "state.db"
        began = time.perf_counter()
        store = SQLiteStore(db)
        fill(store, args.runs)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - began:.1f} s ({db})")

        app = create_app(store)
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        app.router.routes.append(Route("/constant", lambda _: PlainTextResponse("ok")))
        server = AppServer(app)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:

                def get(path: str) -> Callable[[], object]:
                    def fetch() -> None:
                        answer = client.get(path)
                        assert answer.status_code == 200, (path, answer.status_code)

                    return fetch

                conn = sqlite3.connect(db)

                def bare_sql() -> None:
                    conn.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT 50").fetchall()

                for fn in (bare_sql, get("/"), get("/constant")):  # warm up
                    fn()
                sql = median_time(bare_sql, repeat)
                http = median_time(get("/constant"), repeat)
                print(f"baseline: bare SQL page of 50     {sql * 1000:8.2f} ms")
                print(f"baseline: HTTP GET constant page  {http * 1000:8.2f} ms")
                pages = [
                    ("runs page (newest 50)", "/"),
                    ("runs page status=FAILURE page 20", "/?status=FAILURE&page=20"),
                    ("runs page pipeline+dates", "/?pipeline=orders-daily&since=2026-01-03"
                     "&until=2026-01-05"),
                    ("run page", "/run?id=run000005"),
                    ("pipeline page (100 runs)", "/pipeline?id=orders-daily"),
                ]  # fmt: skip
                for label, path in pages:
                    took = median_time(get(path), repeat)
                    print(
                        f"{label:34s} {took * 1000:8.2f} ms  "
                        f"x{took / sql:7.1f} bare SQL  x{took / http:5.1f} constant page"
                    )
                conn.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
