"""Per-node overhead of ``tdm.run`` against plain function calls, and threads vs sequential.

Run: ``python benchmarks/overhead.py`` (add ``--quick`` for fewer repetitions).

By default runs use a bare ``tdm.Runtime()`` (no audit store, no logging). With
``--observability`` they use ``tdm.Runtime.default()`` (the SQLite audit store, in a temporary
``TDM_HOME``) and ``tdm.logging.configure("INFO", "json")`` writing to ``os.devnull``: the
cost of what every production run does.

1. A linear chain of N = 10, 100, 1,000, 10,000 trivial steps (``--large``: also 100,000, to
   show the cost stays linear) on a 1,000-row frame, through ``tdm.run``
   (sequential executor, default hooks) and through plain calls of the same functions in the same
   process. Prints the median of at least 5 runs and the microseconds per node above the baseline.
2. Eight independent branches that each sleep 50 ms: threads versus sequential wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tdm


def trivial(df: pd.DataFrame) -> pd.DataFrame:
    return df


@tdm.transform
def trivial_step(df: pd.DataFrame) -> pd.DataFrame:
    return trivial(df)


@tdm.transform
def sleepy(df: pd.DataFrame, *, seconds: float, branch: int) -> pd.DataFrame:
    time.sleep(seconds)
    return df


CLOCK = time.perf_counter
"""Wall time by default; ``--cpu`` switches to this process's CPU time, which a busy shared
machine disturbs far less."""


def median_time(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        began = CLOCK()
        fn()
        samples.append(CLOCK() - began)
    return statistics.median(samples)


def chain_overhead(
    repeat: int, runtime: tdm.Runtime | None = None, sizes: tuple[int, ...] = (10, 100, 1000)
) -> list[tuple[int, float, float, float]]:
    frame = pd.DataFrame({"a": range(1000), "b": [float(i) for i in range(1000)]})
    rows = []
    for n in sizes:
        pipeline = tdm.pipe(tdm.inputs.frame("x"), *[trivial_step() for _ in range(n)])
        tdm.run(pipeline, inputs={"x": frame}, runtime=runtime)  # warm up (plan cached)

        def plain(n: int = n) -> None:
            df = frame
            for _ in range(n):
                df = trivial(df)

        reps = repeat if n <= 10_000 else max(3, repeat // 5)
        base = median_time(plain, reps)
        ours = median_time(
            lambda p=pipeline: tdm.run(p, inputs={"x": frame}, runtime=runtime), reps
        )
        rows.append((n, base, ours, (ours - base) / n * 1e6))
    return rows


def branches(repeat: int, runtime: tdm.Runtime | None = None) -> tuple[float, float]:
    frame = pd.DataFrame({"a": [1]})
    src = tdm.inputs.frame("x")
    pipeline = tdm.Pipeline.of(*[src >> sleepy(seconds=0.05, branch=i) for i in range(8)])
    seq = median_time(lambda: tdm.run(pipeline, inputs={"x": frame}, runtime=runtime), repeat)
    thr = median_time(
        lambda: tdm.run(
            pipeline, inputs={"x": frame}, runtime=runtime, executor="threads", max_workers=8
        ),
        repeat,
    )
    return seq, thr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repetitions instead of 15")
    parser.add_argument(
        "--observability",
        action="store_true",
        help="JSON logging at INFO (to os.devnull) and the default SQLite audit store",
    )
    parser.add_argument("--large", action="store_true", help="also a chain of 100,000 steps")
    parser.add_argument("--cpu", action="store_true", help="time CPU, not wall (busy machines)")
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    sizes = (10, 100, 1000, 10_000) + ((100_000,) if args.large else ())
    repeat = 5 if args.quick else 15
    if args.observability:
        os.environ["TDM_HOME"] = tempfile.mkdtemp(prefix="tdm-bench-")
        sink = open(os.devnull, "w")  # noqa: SIM115  (open for the whole process)
        tdm.logging.configure("INFO", "json", sink)
        runtime = tdm.Runtime.default()
        mode = f"observability on: JSON logs at INFO, audit store {runtime.state!r}"
    else:
        runtime = tdm.Runtime()
        mode = "bare runtime: no audit store, logging not configured"
    print(mode)
    clock = "CPU time" if args.cpu else "wall time"
    print(f"chain of trivial steps, 1,000-row frame, median of {repeat} runs ({clock})")
    print(f"{'N':>6} {'plain (ms)':>12} {'tdm.run (ms)':>14} {'us/node above plain':>22}")
    for n, base, ours, per_node in chain_overhead(repeat, runtime, sizes):
        print(f"{n:>6} {base * 1e3:>12.3f} {ours * 1e3:>14.3f} {per_node:>22.2f}")
    CLOCK = time.perf_counter  # sleeping branches: only wall time means anything
    seq, thr = branches(max(5, repeat // 3), runtime)
    print(
        f"8 branches x 50 ms sleep: sequential {seq:.3f} s, threads {thr:.3f} s, "
        f"ratio {thr / seq:.2f}x"
    )


if __name__ == "__main__":
    main()
