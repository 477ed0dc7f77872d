"""Loading a pipeline file is linear in its size: counted work, never timed.

A file of n pipes and one of 2n pipes are validated through the CLI, counting the Python and
builtin calls made (``sys.setprofile``) and the memory allocated (``tracemalloc``). Linear loading
means the second half costs what the first half did; anything that redoes work for every pipe
above (copying the names or nodes of the pipeline so far, rebuilding a map, re-walking the plan)
makes the second half cost about three times the first, far past the bound checked here. The
speed itself is measured in ``benchmarks/yaml_loader.py``.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

from click.testing import CliRunner

from tdm.cli import cli


def _write(path: Path, pipes: int) -> None:
    """A chain of pipes of a few kinds, each the parent of the next, some with placeholders."""
    lines = [
        "params: {column: total}",
        "pipelines:",
        "  - name: Chain",
        "    pipes:",
        "      - {name: p0, type: input}",
    ]
    for i in range(1, pipes):
        parent = f"parents: [p{i - 1}]"
        if i % 3 == 0:
            config = f"{{{parent}, n: {i}}}"
            kind = "limit"
        elif i % 3 == 1:
            config = f"{{{parent}, mapping: {{a{i}: '${{params.column}}_{i}'}}}}"
            kind = "rename_columns"
        else:
            config = f"{{{parent}, columns: [a{i}, b{i}]}}"
            kind = "select"
        lines.append(f"      - {{name: p{i}, type: {kind}, config: {config}}}")
    path.write_text("\n".join(lines) + "\n")


def _validate(path: Path) -> tuple[int, int]:
    """Calls made and peak bytes allocated by ``tdm validate path``."""
    calls = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    gc.collect()
    tracemalloc.start()
    sys.setprofile(count)
    try:
        result = CliRunner().invoke(cli, ["validate", str(path)], prog_name="tdm")
    finally:
        sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    return calls, peak


def test_validate_does_the_same_work_for_each_pipe(tmp_path: Path) -> None:
    n = 200
    sizes = (n, 2 * n, 4 * n)
    for pipes in sizes:
        _write(tmp_path / f"chain_{pipes}.yml", pipes)
    _validate(tmp_path / f"chain_{n}.yml")  # imports and per-type caches: not per-pipe work
    costs = [_validate(tmp_path / f"chain_{pipes}.yml") for pipes in sizes]
    for what, index in (("calls", 0), ("allocated bytes", 1)):
        small, middle, large = (c[index] for c in costs)
        # the pipes n+1..2n and 2n+1..4n, each per pipe
        first, second = (middle - small) / n, (large - middle) / (2 * n)
        assert first > 0, (what, costs)
        assert second < 1.3 * first, (
            f"{what} per pipe grew from {first:,.0f} to {second:,.0f} when the file doubled: "
            "loading is no longer linear"
        )
