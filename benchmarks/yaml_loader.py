"""YAML loading speed: pipes per second for pipeline files of 1,000, 10,000 and 50,000 pipes.

Run: ``python benchmarks/yaml_loader.py`` (``--sizes 1000,10000,50000``, ``--repeat K``,
default 3).

Each file is one pipeline: an ``input`` followed by a chain of ``rename_columns`` pipes, each the
parent of the next (the shape that was quadratic: every node used to copy the names of all the
nodes above it). Two paths are measured for every size:

* ``load_yaml``: a fresh subprocess loads the file ``K`` times with ``tdm.load_yaml``; the
  median wall and CPU time of one load, and the process's peak RSS. As a same-session baseline
  the same process times ``yaml.safe_load`` of the same text (PyYAML's pure-Python parser, what a
  hand-written loader would use) and ``yaml.load(..., CSafeLoader)`` (libyaml's parser with
  PyYAML's constructor: parsing alone, no checks), so the ratios do not depend on the machine.
* ``tdm validate``: the whole command, ``K`` fresh processes (``python -m tdm validate FILE``,
  what a user waits for: start-up, imports, load, checks); median wall and CPU time (user +
  system, from ``os.wait4``) and peak RSS. ``net pipes/CPU s`` and ``RSS/pipe`` count only what
  is above validating a 10-pipe file (start-up and imports), per pipe.

CPU time is the steadier figure on a shared machine (wall time includes waiting for a core).
Linear loading means pipes/second stays roughly flat as the file grows, and so does the memory
per pipe.
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
import json, resource, statistics, sys, time
sys.path.insert(0, sys.argv[1])
path, repeat = sys.argv[2], int(sys.argv[3])
import yaml
import tdm
text = open(path).read()
tdm.load_yaml(sys.argv[4])  # warm-up: the built-in steps' modules are imported on first use
times, cpu = [], []
for _ in range(repeat):
    start, start_cpu = time.perf_counter(), time.process_time()
    project = tdm.load_yaml(path)
    times.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
    del project
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
yaml.safe_load(text)
pure = time.perf_counter() - start
start = time.perf_counter()
yaml.load(text, Loader=yaml.CSafeLoader)
libyaml = time.perf_counter() - start
print(json.dumps({"median": statistics.median(times), "cpu": statistics.median(cpu),
                  "pure": pure, "libyaml": libyaml, "peak_mb": peak_kb / 1024}))
"""


def write_chain(path: Path, pipes: int) -> None:
    """One pipeline of ``pipes`` pipes: an input, then a chain of renames."""
    lines = ["pipelines:", "  - name: Chain", "    pipes:", "      - {name: p0, type: input}"]
    for i in range(1, pipes):
        lines.append(
            f"      - {{name: p{i}, type: rename_columns, "
            f"config: {{parents: [p{i - 1}], mapping: {{a{i}: b{i}}}}}}}"
        )
    path.write_text("\n".join(lines) + "\n")


def measure_load(path: Path, repeat: int, warm_up: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), str(path), str(repeat), str(warm_up)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def validate_once(path: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of ``python -m tdm validate path``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "tdm", "validate", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stderr = child.stderr.read().decode() if child.stderr else ""
    if status != 0:
        raise SystemExit(f"tdm validate {path} failed: {stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure_validate(path: Path, repeat: int) -> dict[str, float]:
    runs = [validate_once(path) for _ in range(repeat)]
    return {
        "median": statistics.median(r[0] for r in runs),
        "cpu": statistics.median(r[1] for r in runs),
        "peak_mb": max(r[2] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        tiny = Path(folder) / "chain_10.yml"
        write_chain(tiny, 10)
        floor = measure_validate(tiny, args.repeat)
        print(
            f"tdm validate of 10 pipes (start-up, imports): {floor['median']:.3f} s wall, "
            f"{floor['cpu']:.3f} s CPU, {floor['peak_mb']:.0f} MB peak RSS\n"
        )
        print(
            f"{'path':<13} {'pipes':>7} {'file MB':>7} {'wall s':>7} {'pipes/s':>8} "
            f"{'CPU s':>7} {'pipes/CPU s':>11} {'/safe_load':>10} {'/libyaml':>8} "
            f"{'peak RSS MB':>11} {'net pipes/CPU s':>15} {'RSS/pipe KB':>11}"
        )
        for pipes in sizes:
            path = Path(folder) / f"chain_{pipes}.yml"
            write_chain(path, pipes)
            size = path.stat().st_size / 1e6
            load = measure_load(path, args.repeat, tiny)
            print(
                f"{'load_yaml':<13} {pipes:>7} {size:>7.2f} {load['median']:>7.3f} "
                f"{pipes / load['median']:>8.0f} {load['cpu']:>7.3f} "
                f"{pipes / load['cpu']:>11.0f} {load['median'] / load['pure']:>10.2f} "
                f"{load['median'] / load['libyaml']:>8.2f} {load['peak_mb']:>11.0f} "
                f"{'':>15} {'':>11}",
                flush=True,
            )
            check = measure_validate(path, args.repeat)
            per_pipe = (check["peak_mb"] - floor["peak_mb"]) * 1024 / pipes
            above = check["cpu"] - floor["cpu"]
            net = f"{pipes / above:.0f}" if above > 0.05 else "n/a"  # lost in the noise
            print(
                f"{'tdm validate':<13} {pipes:>7} {size:>7.2f} {check['median']:>7.3f} "
                f"{pipes / check['median']:>8.0f} {check['cpu']:>7.3f} "
                f"{pipes / check['cpu']:>11.0f} {'':>10} {'':>8} {check['peak_mb']:>11.0f} "
                f"{net:>15} {per_pipe:>11.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
