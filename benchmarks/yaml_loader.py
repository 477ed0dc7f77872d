"""YAML loading speed: pipes per second for pipeline files of 1,000, 10,000 and 50,000 pipes.

Run: ``python benchmarks/yaml_loader.py`` (``--sizes 1000,10000,50000``, ``--repeat K``).

Each file is one pipeline: an ``input`` followed by a chain of ``rename_columns`` pipes, each the
parent of the next (the shape that was quadratic: every node used to copy the names of all the
nodes above it). Every size runs in a fresh subprocess that loads the file ``K`` times; it reports
the median wall time and CPU time of ``tdm.load_yaml`` and the process's peak RSS (CPU time
is the steadier figure on a shared machine). As a same-session baseline
the child also times ``yaml.safe_load`` of the same text (PyYAML's pure-Python parser, what a
hand-written loader would use), so the ratio tdm/safe_load does not depend on the machine.

Linear loading means pipes/second stays roughly flat as the file grows, and so does the peak
memory per pipe.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, statistics, sys, time
sys.path.insert(0, sys.argv[1])
path, repeat = sys.argv[2], int(sys.argv[3])
import yaml
import tdm
text = open(path).read()
times, cpu = [], []
for _ in range(repeat):
    start, start_cpu = time.perf_counter(), time.process_time()
    project = tdm.load_yaml(path)
    times.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
    del project
base = []
for _ in range(max(1, repeat // 2)):
    start = time.perf_counter()
    yaml.safe_load(text)
    base.append(time.perf_counter() - start)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"median": statistics.median(times), "baseline": statistics.median(base),
                  "cpu": statistics.median(cpu),
                  "peak_mb": peak_kb / 1024}))
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


def measure(pipes: int, repeat: int, folder: Path) -> dict[str, float]:
    path = folder / f"chain_{pipes}.yml"
    write_chain(path, pipes)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), str(path), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    result["bytes"] = path.stat().st_size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'pipes':>7} {'file MB':>8} {'median s':>9} {'pipes/s':>9} {'CPU s':>7} "
        f"{'pipes/CPU s':>11} {'tdm/safe_load':>13} {'peak RSS MB':>11}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for pipes in sizes:
            r = measure(pipes, args.repeat, Path(folder))
            print(
                f"{pipes:>7} {r['bytes'] / 1e6:>8.2f} {r['median']:>9.3f} "
                f"{pipes / r['median']:>9.0f} {r['cpu']:>7.3f} {pipes / r['cpu']:>11.0f} "
                f"{r['median'] / r['baseline']:>13.2f} "
                f"{r['peak_mb']:>11.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
