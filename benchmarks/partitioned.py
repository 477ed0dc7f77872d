"""Partitioned runs: the same pipeline over 16 files, sequential versus Dask with 2 workers.

The anchor: a plain ``multiprocessing.Pool(2)`` (forked once, reused like the Dask cluster)
doing the same partitions by hand: ``pd.read_parquet``, the same step bodies, ``to_parquet``.
The goal is Dask within 1.1x of it. A second anchor, the same Pool running each partition with
``tdm.run_partitions(..., partitions=[one])``, does exactly the work a Dask task does (tdm adds
the ``date=...`` folder name as a column, which the hand-written script skips), so the Dask /
Pool-of-tdm ratio is the executor's own cost.

Run: ``python benchmarks/partitioned.py`` (``--repeat N`` timed runs per executor, default 3;
``--rows``/``--partitions`` to resize; ``--threads`` adds the thread executor for reference).

A dataset of 16 Parquet files of 500,000 rows each (``date=2026-01-DD/events.parquet``, on
local disk in a temporary folder) goes through ``tdm.run_partitions``: read one file, a
CPU-bound pure pipeline (z-scores, string keys, sort, sessionization, group-by), write one
Parquet file per partition. Both executors run in the same session on the same files, after
one warm-up run each (workers import the steps on first use), interleaved; the medians are
compared.

The cluster is the one ``tdm.executors.Dask(address="local")`` starts
(``tdm.interpreter.dask.local_cluster``, here with 2 single-threaded worker processes): its
workers run without Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` (which returns memory to the
OS sooner but turns off glibc's adaptive mmap threshold: every large temporary pandas array is
then a fresh mmap, ~25% more CPU per partition) and without the statistical profiler (which
samples every running task's stack 100 times a second). ``--dask-default-env`` starts a plain
``LocalCluster`` with Dask's defaults instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tdm
from tdm import files


@tdm.transform
def score(df: pd.DataFrame) -> pd.DataFrame:
    amount = df["amount"]
    by_cat = df.groupby("category")["amount"]
    return df.assign(
        z=(amount - by_cat.transform("mean")) / by_cat.transform("std"),
        log_amount=np.log1p(amount.clip(lower=0)),
        band=pd.cut(amount, bins=[-np.inf, 10, 50, 100, 500, np.inf], labels=False),
    )


@tdm.transform
def keys(df: pd.DataFrame) -> pd.DataFrame:
    user = df["user_id"].astype(str)
    return df.assign(key=df["category"] + ":" + user.str.zfill(7) + ":" + df["band"].astype(str))


@tdm.transform
def sessionize(df: pd.DataFrame, *, gap_s: int) -> pd.DataFrame:
    df = df.sort_values(["user_id", "ts"], kind="stable")
    new_user = df["user_id"].diff().ne(0)
    new_session = new_user | df["ts"].diff().gt(gap_s)
    return df.assign(session=new_session.cumsum())


@tdm.transform
def summarize(df: pd.DataFrame) -> pd.DataFrame:
    out = df.groupby("user_id", sort=True).agg(
        events=("amount", "size"),
        sessions=("session", "nunique"),
        total=("amount", "sum"),
        max_z=("z", "max"),
        first_key=("key", "min"),
        start=("ts", "min"),
        end=("ts", "max"),
    )
    return out.reset_index()


def _by_hand(task: tuple[str, str]) -> int:
    """One partition the way a hand-written script does it (runs in a Pool worker)."""
    src, dst = task
    df = pd.read_parquet(src)
    for step in (score(), keys(), sessionize(gap_s=1800), summarize()):
        df = step.fn(df, *step.call_args, **step.call_kwargs)
    df.to_parquet(dst, index=False)
    return len(df)


def _by_hand_cpu(task: tuple[str, str]) -> float:
    """CPU seconds ``_by_hand(task)`` takes in its Pool worker."""
    began = time.process_time()
    _by_hand(task)
    return time.process_time() - began


_JOB: dict[str, Any] = {}
"""The pipeline and sink of the run, set before the Pool forks (its workers inherit it)."""


def _tdm_partition_cpu(name: str) -> float:
    """CPU seconds of one partition run by tdm itself in a Pool worker (``run_partitions``
    with the sequential executor, restricted to that partition): the same work a Dask task
    does, so that the Dask/Pool ratio measures the executor alone."""
    began = time.process_time()
    report = tdm.run_partitions(
        _JOB["pipeline"], write=_JOB["write"], executor="sequential", partitions=[name]
    )
    assert report.ok, report.error
    return time.process_time() - began


def make_dataset(root: Path, partitions: int, rows: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    categories = np.array([f"cat{i:02d}" for i in range(20)], dtype=object)
    for day in range(1, partitions + 1):
        folder = root / "raw" / f"date=2026-01-{day:02d}"
        folder.mkdir(parents=True)
        table = pa.table(
            {
                "user_id": rng.integers(0, 50_000, rows),
                "ts": rng.integers(0, 86_400, rows),
                "amount": rng.gamma(2.0, 40.0, rows),
                "category": categories[rng.integers(0, len(categories), rows)],
            }
        )
        pq.write_table(table, folder / "events.parquet")
    return str(root / "raw" / "date=*" / "*.parquet")


def timed(fn: Callable[[], tdm.RunReport], client: Any) -> tuple[float, float]:
    """Wall seconds of one run, and CPU seconds spent by this process and the workers."""
    cpu = time.process_time() + sum(client.run(time.process_time).values())
    began = time.perf_counter()
    report = fn()
    wall = time.perf_counter() - began
    cpu = time.process_time() + sum(client.run(time.process_time).values()) - cpu
    assert report.ok, report.error
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", action="store_true", help="also time executor='threads'")
    parser.add_argument(
        "--dask-default-env",
        action="store_true",
        help="a plain LocalCluster with Dask's defaults (MALLOC_TRIM_THRESHOLD_, profiler)",
    )
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from tdm.interpreter.dask import local_cluster

    make_cluster = LocalCluster if args.dask_default_env else local_cluster
    print(
        "cluster: "
        + ("LocalCluster, Dask's defaults" if args.dask_default_env else "tdm's local_cluster")
    )

    root = Path(tempfile.mkdtemp(prefix="tdm-bench-"))
    try:
        began = time.perf_counter()
        pattern = make_dataset(root, args.partitions, args.rows)
        print(
            f"dataset: {args.partitions} partitions x {args.rows:,} rows "
            f"({time.perf_counter() - began:.1f} s to generate), {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        pipeline = files.read(pattern) >> score() >> keys() >> sessionize(gap_s=1800)
        pipeline = pipeline >> summarize()
        out = files.write(str(root / "curated") + "/", format="parquet")

        def run(executor: Any) -> tdm.RunReport:
            return tdm.run_partitions(pipeline, write=out, executor=executor)

        import glob
        import multiprocessing

        _JOB.update(pipeline=pipeline, write=out)
        (root / "by-hand").mkdir()
        tasks = [
            (src, str(root / "by-hand" / f"part-{k}.parquet"))
            for k, src in enumerate(sorted(glob.glob(pattern)))
        ]

        with (
            make_cluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
            multiprocessing.get_context("fork").Pool(2) as pool,
        ):
            dask = tdm.executors.Dask(client)
            results: dict[str, list[float]] = {}
            plan: list[tuple[str, Any]] = [
                ("sequential", "sequential"),
                ("dask (2 workers)", dask),
            ]
            if args.threads:
                plan.append(("threads (2)", tdm.executors.Threads(max_workers=2)))
            for label, executor in plan:
                report = run(executor)  # warm-up
                assert report.ok, report.error
                results[label] = []
            pool.map(_by_hand, tasks, chunksize=1)  # warm-up
            names = [n.name for n in report.nodes.values()]
            pool.map(_tdm_partition_cpu, names, chunksize=1)  # warm-up
            results["Pool(2) by hand"] = []
            results["Pool(2) of tdm"] = []
            # Interleave the executors so a burst of load from elsewhere hits both alike.
            cpus: dict[str, list[float]] = {label: [] for label, _ in plan}
            cpus["Pool(2) by hand"] = []
            cpus["Pool(2) of tdm"] = []
            for _ in range(args.repeat):
                for label, executor in plan:
                    wall, cpu = timed(lambda e=executor: run(e), client)
                    results[label].append(wall)
                    cpus[label].append(cpu)
                began = time.perf_counter()
                cpu = sum(pool.map(_by_hand_cpu, tasks, chunksize=1))
                results["Pool(2) by hand"].append(time.perf_counter() - began)
                cpus["Pool(2) by hand"].append(cpu)
                began = time.perf_counter()
                cpu = sum(pool.map(_tdm_partition_cpu, names, chunksize=1))
                results["Pool(2) of tdm"].append(time.perf_counter() - began)
                cpus["Pool(2) of tdm"].append(cpu)
            rows_out = sum(n.rows_out or 0 for n in report.nodes.values())
        print(f"rows written per run: {rows_out:,} ({args.partitions * args.rows:,} events read)")
        base = statistics.median(results["sequential"])
        print(
            f"{'executor':<18} {'median (s)':>11} {'min (s)':>9} {'max (s)':>9} {'speed-up':>9}"
            f" {'CPU-s':>7} {'cores busy':>11}"
        )
        for label, samples in results.items():
            med = statistics.median(samples)
            cpu_text = (
                f"{statistics.median(cpus[label]):>7.2f} "
                f"{statistics.median(cpus[label]) / med:>11.2f}"
                if label in cpus
                else f"{'':>7} {'':>11}"
            )
            print(
                f"{label:<18} {med:>11.2f} {min(samples):>9.2f} {max(samples):>9.2f} "
                f"{base / med:>8.2f}x {cpu_text}"
            )
        seq, dsk = results["sequential"], results["dask (2 workers)"]
        pairs = [s / d for s, d in zip(seq, dsk, strict=True)]
        print(
            "speed-up of each interleaved pair (sequential / dask): "
            + ", ".join(f"{r:.2f}x" for r in pairs)
        )
        pool_pairs = [d / p for d, p in zip(dsk, results["Pool(2) by hand"], strict=True)]
        print(
            f"dask / Pool(2): median {statistics.median(dsk) / statistics.median(results['Pool(2) by hand']):.2f}x"
            " (goal <= 1.1x); per interleaved pair: " + ", ".join(f"{r:.2f}x" for r in pool_pairs)
        )
        pool_cpu = statistics.median(cpus["Pool(2) by hand"])
        print(
            f"CPU-s dask / Pool(2): {statistics.median(cpus['dask (2 workers)']) / pool_cpu:.2f}x;"
            f" sequential / Pool(2): {statistics.median(cpus['sequential']) / pool_cpu:.2f}x"
            " (CPU time is what other jobs' load disturbs least; the Pool's counts its tasks only)"
        )
        own = results["Pool(2) of tdm"]
        own_pairs = [d / p for d, p in zip(dsk, own, strict=True)]
        print(
            f"dask / Pool(2) of tdm partitions (the same work, only the executor differs): median "
            f"{statistics.median(dsk) / statistics.median(own):.2f}x; per interleaved pair: "
            + ", ".join(f"{r:.2f}x" for r in own_pairs)
            + f"; CPU-s {statistics.median(cpus['dask (2 workers)']) / statistics.median(cpus['Pool(2) of tdm']):.2f}x"
        )
        print(
            "tdm's partition work vs by hand: CPU-s "
            f"{statistics.median(cpus['Pool(2) of tdm']) / pool_cpu:.2f}x (tdm adds each partition's "
            "key=value folder names as columns, here a text column `date` every step carries)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f} (2 CPUs shared with other jobs)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
