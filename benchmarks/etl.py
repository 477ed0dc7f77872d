"""ETL throughput: a tdm pipeline against the pandas scripts a user would write by hand.

Run: ``python benchmarks/etl.py`` (``--rows N``, ``--repeat K``, ``--quick`` = 3 repetitions,
``--compare CHECKOUT``: also the ``tdm-builtin`` variant from another checkout, interleaved).

The job: a synthetic CSV of 5,000,000 rows (ints, floats, strings, a date) -> keep rows with
``qty > 10`` -> derived column ``revenue = qty * price`` -> group by ``category`` and ``region``
(sum of revenue, row count, mean price) -> Parquet. Three variants of the same job:

* ``handwritten``: what a user writes with pandas defaults (``pd.read_csv``, ``to_parquet``);
* ``handtuned``: the same with the pyarrow CSV engine and Arrow dtypes
  (``engine="pyarrow", dtype_backend="pyarrow"``);
* ``tdm``: ``files.read(csv) >> steps >> files.write(parquet)`` run by ``tdm.run`` with its
  defaults (the same pandas code in user steps, which do not declare their columns);
* ``tdm-builtin``: the same job with built-in steps (``filter_rows``, ``assign``,
  ``aggregate``), whose column use tdm knows, so the read loads only the columns the job uses
  (``pipeline.explain()``).

``--format parquet`` reads a Parquet copy of the CSV instead (written once).

Every repetition of every variant runs in a fresh subprocess (with bytecode cached, as an
installed package has it) (so one variant's memory cannot
help or hurt another), interleaved A, B, C, A, B, C ... in the same session. Each child reports
its wall time for the job (after imports) and its peak RSS (``resource.getrusage``); the parent
prints medians and the ratios tdm/handwritten and tdm/handtuned. All outputs are checked equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
variant, src = sys.argv[1], sys.argv[2]
out = sys.argv[4]
import pandas as pd

def transform(df):
    df = df[df["qty"] > 10]
    df = df.assign(revenue=df["qty"] * df["price"])
    return df.groupby(["category", "region"], as_index=False).agg(
        revenue=("revenue", "sum"), rows=("id", "count"), mean_price=("price", "mean")
    )

if variant == "tdm":
    import tdm
    from tdm import files

    @tdm.transform
    def big_orders(df, *, over: int):
        return df[df["qty"] > over]

    @tdm.transform
    def add_revenue(df):
        return df.assign(revenue=df["qty"] * df["price"])

    @tdm.transform
    def by_category(df):
        return df.groupby(["category", "region"], as_index=False).agg(
            revenue=("revenue", "sum"), rows=("id", "count"), mean_price=("price", "mean")
        )

    pipeline = (files.read(src) >> big_orders(over=10) >> add_revenue() >> by_category()
                >> files.write(out))
elif variant == "tdm-builtin":
    import tdm
    from tdm import files
    from tdm.transforms import aggregate, assign, filter_rows

    aggs = {"revenue": ("revenue", "sum"), "rows": ("id", "count"),
            "mean_price": ("price", "mean")}
    pipeline = (files.read(src) >> filter_rows("qty > 10") >> assign(revenue="qty * price")
                >> aggregate(["category", "region"], aggs) >> files.write(out))
    assert "others skipped" in pipeline.explain(), pipeline.explain()
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

began, cpu_began = time.perf_counter(), cpu()
if variant == "handwritten":
    df = pd.read_parquet(src) if src.endswith(".parquet") else pd.read_csv(src)
    transform(df).to_parquet(out)
elif variant == "handtuned":
    if src.endswith(".parquet"):
        df = pd.read_parquet(src, dtype_backend="pyarrow")
    else:
        df = pd.read_csv(src, engine="pyarrow", dtype_backend="pyarrow")
    transform(df).to_parquet(out)
else:
    report = tdm.run(pipeline)
    assert report.ok, report.error
elapsed, cpu_s = time.perf_counter() - began, cpu() - cpu_began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "cpu": cpu_s, "peak_rss": peak}))
"""

VARIANTS = ("handwritten", "handtuned", "tdm", "tdm-builtin")
OLD = "tdm-builtin@compare"  # --compare: the same variant from another checkout


def make_csv(path: Path, rows: int) -> None:
    """Write the synthetic input once (numpy + pyarrow, a few seconds)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(42)
    categories = np.array([f"category-{i:02d}" for i in range(40)])
    regions = np.array(["north", "south", "east", "west", "central"])
    days = np.datetime64("2024-01-01") + rng.integers(0, 366, rows).astype("timedelta64[D]")
    table = pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "qty": rng.integers(0, 50, rows),
            "price": np.round(rng.random(rows) * 100, 2),
            "category": categories[rng.integers(0, len(categories), rows)],
            "region": regions[rng.integers(0, len(regions), rows)],
            "order_date": days.astype("datetime64[D]").astype(str),
        }
    )
    tmp = path.with_suffix(".tmp")
    pa_csv.write_csv(table, tmp)
    os.replace(tmp, path)


def run_child(variant: str, src: Path, out: Path, repo: Path = REPO) -> dict[str, float]:
    # Bytecode is cached as for an installed package (pip compiles on install): with
    # PYTHONDONTWRITEBYTECODE set, every child would compile tdm's modules again (~0.08 s),
    # while pandas' and pyarrow's come precompiled from site-packages.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(repo)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(src), str(repo), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check_outputs(outs: dict[str, Path]) -> None:
    import pandas as pd

    frames = {}
    for variant, path in outs.items():
        df = pd.read_parquet(path).sort_values(["category", "region"]).reset_index(drop=True)
        frames[variant] = df.astype(
            {"revenue": "float64", "rows": "int64", "mean_price": "float64"}
        )
    base = frames["handwritten"]
    for df in frames.values():
        pd.testing.assert_frame_equal(
            df[list(base.columns)], base, check_dtype=False, check_exact=False, rtol=1e-9
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repetitions")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tdm-bench")
    parser.add_argument(
        "--format",
        choices=["csv", "parquet"],
        default="csv",
        help="the source file's format (parquet: written once from the CSV)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="also run tdm-builtin from another checkout of tdm (e.g. a git worktree of an "
        "older commit), interleaved, and print the paired ratio new/old",
    )
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    args.data.mkdir(parents=True, exist_ok=True)
    src = args.data / f"orders-{args.rows}.csv"
    if not src.exists():
        began = time.perf_counter()
        # In a child: a child inherits its parent's peak RSS, so the parent stays small.
        code = f"import sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); import etl; "
        code += f"etl.make_csv(__import__('pathlib').Path({str(src)!r}), {args.rows})"
        subprocess.run([sys.executable, "-c", code], check=True)
        print(
            f"wrote {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - began:.1f} s"
        )
    if args.format == "parquet":
        csv_src, src = src, src.with_suffix(".parquet")
        if not src.exists():
            code = "import pyarrow.csv as c, pyarrow.parquet as q; "
            code += f"q.write_table(c.read_csv({str(csv_src)!r}), {str(src)!r})"
            subprocess.run([sys.executable, "-c", code], check=True)
    variants = VARIANTS + ((OLD,) if args.compare else ())
    repos = {v: REPO for v in VARIANTS} | {OLD: args.compare or REPO}
    children = {v: v if v != OLD else "tdm-builtin" for v in variants}
    outs = {v: args.data / f"out-{v}.parquet" for v in variants}
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    run_child("tdm", src, outs["tdm"])  # warm the page cache and .pyc files
    if args.compare:
        run_child("tdm-builtin", src, outs[OLD], args.compare)
    for i in range(repeat):
        for variant in variants:
            samples[variant].append(
                run_child(children[variant], src, outs[variant], repos[variant])
            )
        print(
            f"repetition {i + 1}/{repeat}: "
            + ", ".join(f"{v} {samples[v][-1]['seconds']:.2f} s" for v in variants),
            flush=True,
        )
    check_outputs(outs)
    print(f"\n{args.rows:,} rows, {repeat} repetitions each, medians (fresh subprocess per run):")
    med = {
        v: {k: statistics.median(s[k] for s in samples[v]) for k in ("seconds", "cpu", "peak_rss")}
        for v in variants
    }
    for v in variants:
        times = ", ".join(f"{s['seconds']:.2f}" for s in samples[v])
        print(
            f"  {v:<12} wall {med[v]['seconds']:5.2f} s   cpu {med[v]['cpu']:5.2f} s   "
            f"peak RSS {med[v]['peak_rss'] / 1e9:5.2f} GB   (wall runs: {times})"
        )
    hw, ht = med["handwritten"], med["handtuned"]
    for name in ("tdm", "tdm-builtin") + ((OLD,) if args.compare else ()):
        t = med[name]
        # Each repetition runs the variants back to back: the ratio within a repetition
        # cancels the machine's drift across the session (shared cores), a ratio of medians
        # does not.
        paired = statistics.median(
            s["seconds"] / h["seconds"]
            for s, h in zip(samples[name], samples["handwritten"], strict=True)
        )
        print(
            f"\n  {name} / handwritten: wall {t['seconds'] / hw['seconds']:.2f}x "
            f"(goal <= 0.6x, bar 0.75x; median of the {repeat} paired ratios: {paired:.2f}x), "
            f"cpu {t['cpu'] / hw['cpu']:.2f}x, "
            f"peak RSS {t['peak_rss'] / hw['peak_rss']:.2f}x (goal <= 0.8x)"
        )
        print(
            f"  {name} / handtuned:   wall {t['seconds'] / ht['seconds']:.2f}x, "
            f"cpu {t['cpu'] / ht['cpu']:.2f}x"
        )
    if args.compare:
        paired = statistics.median(
            n["seconds"] / o["seconds"]
            for n, o in zip(samples["tdm-builtin"], samples[OLD], strict=True)
        )
        cpu_paired = statistics.median(
            n["cpu"] / o["cpu"] for n, o in zip(samples["tdm-builtin"], samples[OLD], strict=True)
        )
        print(
            f"\n  tdm-builtin / the same from {args.compare}: median of the paired ratios: "
            f"wall {paired:.2f}x, cpu {cpu_paired:.2f}x"
        )
    print(
        f"  load average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
