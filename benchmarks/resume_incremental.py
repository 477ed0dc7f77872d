"""Runs that remember: resume after a late failure, and incremental loads, against full runs.

Run: ``python benchmarks/resume_incremental.py`` (``--requests 2500 --latency 0.02
--concurrency 32 --records 5000 --changed 50 --page-size 100 --repeat 3``; ``--quick`` for a
short smoke run).

A local fake REST API (tests/servers/fixtures.py: uvicorn in a thread, 127.0.0.1) answers every
request after ``latency`` seconds and counts requests. In the same session:

1. Resume. ``inputs.frame("devices") >> rest.fetch_each(...)`` (``--requests`` rows) ``>>
   files.write >> a late step >> files.write``, with checkpoints; the late step fails. Timed:
   ``tdm.run(..., resume=failed)`` against a full re-run of the same pipeline (no failure).
   Prints the medians, their ratio, and the requests each made (the resume must make none).
2. Incremental. A table of ``--records`` rows, paged by ``--page-size``; after a first load,
   ``--changed`` rows change. Timed: the incremental run (``{cursor}`` in the query) against a
   full run of the same source without a cursor, both upserting into the same Parquet file.
   Prints requests and median times, and checks both give the same table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tdm
from tdm import files, rest
from tests.servers.fixtures import FakeApi, RequestInfo

FAIL = {"on": False}


@tdm.transform
def late_step(df: pd.DataFrame) -> pd.DataFrame:
    if FAIL["on"]:
        raise RuntimeError("the late node failed")
    return df.assign(checked=True)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - began, out


def bench_resume(api: FakeApi, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    api.reset()
    api.total = args.requests
    api.latency_s = args.latency
    devices = pd.DataFrame({"id": range(args.requests)})
    resume_s, full_s, resume_requests, full_requests = [], [], [], []
    for k in range(args.repeat):
        out = root / f"resume-{k}"
        p = (
            tdm.inputs.frame("devices")
            >> rest.fetch_each(f"{api.url}/items/{{id}}", concurrency=args.concurrency)
            >> files.write(str(out / "details.parquet"), label="write_details")
            >> late_step()
            >> files.write(str(out / "checked.parquet"), label="write_checked")
        )
        rt = tdm.Runtime(state=tdm.state.memory(), checkpoints=f"file://{out}/ckpt")
        FAIL["on"] = True
        failed = tdm.run(p, inputs={"devices": devices}, runtime=rt, pipeline_id=f"fan{k}")
        FAIL["on"] = False
        assert not failed.ok
        before = api.count
        took, resumed = _timed(
            tdm.run, p, inputs={"devices": devices}, runtime=rt, pipeline_id=f"fan{k}",
            resume=failed,
        )  # fmt: skip
        assert resumed.ok, resumed.error
        resume_s.append(took)
        resume_requests.append(api.count - before)
        before = api.count
        took, whole = _timed(
            tdm.run, p, inputs={"devices": devices}, runtime=tdm.Runtime(), pipeline_id="x"
        )
        assert whole.ok
        full_s.append(took)
        full_requests.append(api.count - before)
        pd.testing.assert_frame_equal(resumed.output, whole.output)
    r, f = statistics.median(resume_s), statistics.median(full_s)
    return {
        "resume_s": r,
        "full_s": f,
        "ratio": f / r,
        "resume_requests": max(resume_requests),
        "full_requests": statistics.median(full_requests),
    }


class Table:
    """``GET /records?since=T&page=N&per_page=P``: rows updated after T, by page."""

    def __init__(self, count: int) -> None:
        self.rows = {i: {"id": i, "v": 0, "updated": f"{i:08d}"} for i in range(count)}
        self.clock = count

    def handle(self, req: RequestInfo) -> Any:
        since = req.query.get("since", "")
        page, per = int(req.query.get("page", "1")), int(req.query.get("per_page", "100"))
        found = sorted(
            (r for r in self.rows.values() if r["updated"] > since), key=lambda r: r["updated"]
        )
        return {"data": found[(page - 1) * per : page * per], "total": len(found)}

    def change(self, n: int) -> None:
        for i in range(0, n * 97, 97):
            self.clock += 1
            key = i % len(self.rows)
            self.rows[key] = {
                "id": key,
                "v": self.rows[key]["v"] + 1,
                "updated": f"{self.clock:08d}",
            }


def bench_incremental(api: FakeApi, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    api.reset()
    api.latency_s = args.latency
    table = Table(args.records)
    api.route("/records", table.handle)
    paging = rest.page_number(size=args.page_size, total="total", concurrency=8)
    url = f"{api.url}/records"

    def source(incremental: bool) -> tdm.Pipeline:
        return rest.get(
            url,
            params={"since": "{cursor}" if incremental else ""},
            records="data",
            paginate=paging,
            label="records",
            incremental=tdm.incremental("updated", initial="") if incremental else None,
        )

    inc_s, full_s, inc_requests, full_requests = [], [], [], []
    for k in range(args.repeat):
        rt = tdm.Runtime(state=tdm.state.memory())
        inc_out, full_out = root / f"inc-{k}.parquet", root / f"full-{k}.parquet"
        inc = source(True) >> files.write(str(inc_out), mode="upsert", key=["id"])
        full = source(False) >> files.write(str(full_out), mode="upsert", key=["id"])
        assert tdm.run(inc, runtime=rt, pipeline_id=f"inc{k}").ok  # the first load
        assert tdm.run(full, runtime=rt, pipeline_id=f"full{k}").ok
        table.change(args.changed)
        before = api.count
        took, report = _timed(tdm.run, inc, runtime=rt, pipeline_id=f"inc{k}")
        assert report.ok and report.nodes["records"].rows_out == args.changed, report.error
        inc_s.append(took)
        inc_requests.append(api.count - before)
        before = api.count
        took, report = _timed(tdm.run, full, runtime=rt, pipeline_id=f"full{k}")
        assert report.ok
        full_s.append(took)
        full_requests.append(api.count - before)
        a = pd.read_parquet(inc_out).sort_values("id").reset_index(drop=True)
        b = pd.read_parquet(full_out).sort_values("id").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    i, f = statistics.median(inc_s), statistics.median(full_s)
    return {
        "incremental_s": i,
        "full_s": f,
        "ratio": f / i,
        "incremental_requests": statistics.median(inc_requests),
        "full_requests": statistics.median(full_requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2500)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--changed", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.records, args.changed, args.repeat = 200, 1000, 10, 1
    logging.getLogger("tdm").setLevel(logging.CRITICAL)
    api = FakeApi().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            resume = bench_resume(api, args, Path(tmp))
            print(
                f"resume after a late failure ({args.requests} requests at "
                f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}, "
                f"median of {args.repeat}): resume {resume['resume_s']:.3f} s, "
                f"{resume['resume_requests']} requests; full re-run {resume['full_s']:.3f} s, "
                f"{resume['full_requests']:.0f} requests; full/resume = {resume['ratio']:.1f}x"
            )
            inc = bench_incremental(api, args, Path(tmp))
            print(
                f"incremental load ({args.records} records, {args.changed} changed, pages of "
                f"{args.page_size}, median of {args.repeat}): incremental "
                f"{inc['incremental_s']:.3f} s, {inc['incremental_requests']:.0f} requests; full "
                f"{inc['full_s']:.3f} s, {inc['full_requests']:.0f} requests; "
                f"full/incremental = {inc['ratio']:.1f}x time, "
                f"{inc['full_requests'] / max(inc['incremental_requests'], 1):.0f}x requests"
            )
    finally:
        api.stop()


if __name__ == "__main__":
    main()
