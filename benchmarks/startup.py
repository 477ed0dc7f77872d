"""Start-up cost: ``import tdm`` on top of pandas, and ``tdm --help`` / ``tdm --version``.

Run: ``python benchmarks/startup.py`` (``--repeat K``, default 21; ``--quick`` = 7;
``--compare PATH`` also measures the tdm checkout at PATH, interleaved, e.g. an older commit).

Every sample is a fresh interpreter; all variants are interleaved A, B, C, A, B, C ... in the
same session so machine load hits them alike, and medians are printed. Each sample's CPU time
(user + system, from ``os.wait4``) is the main figure: on a shared machine it is far steadier
than wall time, which is printed too.

* ``python -c "import pandas"`` (the baseline) against ``python -c "import pandas, tdm"``, and
  against ``import pandas, tdm`` plus first use of the algebra and a built-in step (what a
  script pays before building its first pipeline);
* ``tdm --help`` and ``tdm --version`` (the console script's module, ``tdm.cli.main``) against
  ``python -c pass``. Neither may import pandas (``tests/test_public_api.py`` pins that).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CLI = "import sys; from tdm.cli import main; sys.argv[0] = 'tdm'; main({})"
FIRST_USE = "import pandas, tdm; tdm.pipe(tdm.inputs.frame('x'), tdm.transforms.select('a'))"
# tdm's own import cost, read inside the process (pandas already loaded): steadier than the
# difference of two process totals.
OWN = (
    "import time, pandas; c, w = time.process_time(), time.perf_counter(); import tdm; "
    "print(time.process_time() - c, time.perf_counter() - w)"
)
VARIANTS: dict[str, str] = {
    "python -c pass": "pass",
    "import pandas": "import pandas",
    "import pandas, tdm": "import pandas, tdm",
    "  + build a pipeline": FIRST_USE,
    "tdm --help": CLI.format("['--help']"),
    "tdm --version": CLI.format("['--version']"),
}


def _sample(code: str, root: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a fresh ``python -c code`` importing tdm from ``root``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    began = time.perf_counter()
    # cwd=root: ``-c`` puts the working directory first on sys.path.
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=root, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{code!r} exited with {child.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def _own(root: Path) -> tuple[float, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", OWN], env=env, cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="7 repetitions")
    parser.add_argument("--compare", type=Path, help="another tdm checkout to measure too")
    args = parser.parse_args()
    repeat = 7 if args.quick else args.repeat
    roots = {"this": REPO}
    if args.compare is not None:
        roots["compare"] = args.compare.resolve()
    cpu: dict[tuple[str, str], list[float]] = {}
    wall: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeat):
        for label, root in roots.items():
            for name, code in VARIANTS.items():
                if label != "this" and name in ("python -c pass", "import pandas"):
                    continue  # baselines do not depend on tdm
                c, w = _sample(code, root)
                cpu.setdefault((label, name), []).append(c)
                wall.setdefault((label, name), []).append(w)
            c, w = _own(root)
            cpu.setdefault((label, "import tdm, in-process"), []).append(c)
            wall.setdefault((label, "import tdm, in-process"), []).append(w)
    print(f"medians of {repeat} interleaved processes: CPU ms (wall ms)")
    med = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
    medw = {k: statistics.median(v) * 1e3 for k, v in wall.items()}
    base = med[("this", "import pandas")]
    empty = med[("this", "python -c pass")]
    for label, root in roots.items():
        print(f"tdm from {root}:")
        for name in (*VARIANTS, "import tdm, in-process"):
            if (label, name) not in med:
                continue
            extra = ""
            if ("tdm" in name or "pipeline" in name) and "in-process" not in name:
                ref = empty if name.startswith("tdm --") else base
                what = "python -c pass" if name.startswith("tdm --") else "import pandas"
                extra = f"  = {med[(label, name)] - ref:+7.1f} ms over {what}"
            print(f"  {name:<22} {med[(label, name)]:8.1f} ({medw[(label, name)]:7.1f}){extra}")


if __name__ == "__main__":
    main()
