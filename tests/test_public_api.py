"""Pins the curated public surface: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import tdm

EXPECTED = [
    "Frame",
    "Hook",
    "NodeReport",
    "Pipe",
    "PipeError",
    "Pipeline",
    "RunContext",
    "RunReport",
    "Runtime",
    "SecretRef",
    "Skip",
    "Status",
    "__version__",
    "alerts",
    "checkpoints",
    "concat",
    "errors",
    "executors",
    "files",
    "history",
    "incremental",
    "inputs",
    "join",
    "load_yaml",
    "logging",
    "pipe",
    "rest",
    "run",
    "run_partitions",
    "secrets",
    "state",
    "transform",
    "transform_with_context",
    "transforms",
]


def test_all_is_sorted_and_pinned() -> None:
    assert tdm.__all__ == sorted(tdm.__all__)
    assert sorted(tdm.__all__) == sorted(EXPECTED)
    for name in tdm.__all__:
        assert hasattr(tdm, name), name


def test_core_imports_no_io_library() -> None:
    code = (
        "import sys, tdm.core; "
        "bad = [m for m in ('fsspec', 's3fs', 'adlfs', 'httpx', 'dask', 'distributed', 'tenacity') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_tdm_configures_no_logging() -> None:
    code = (
        "import logging; before = (logging.root.handlers[:], logging.root.level); import tdm; "
        "print(logging.root.handlers == before[0] and logging.root.level == before[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
