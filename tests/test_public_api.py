"""Pins the curated public surface: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tdm

EXPECTED = [
    "Frame",
    "Hook",
    "Job",
    "NodeReport",
    "Pipe",
    "PipeError",
    "Pipeline",
    "RunContext",
    "RunReport",
    "Runtime",
    "SecretRef",
    "Secrets",
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
    "load",
    "load_yaml",
    "logging",
    "pipe",
    "rest",
    "run",
    "run_partitions",
    "secrets",
    "sink",
    "source",
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


def _loaded(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}; import sys; print(','.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


IO_LIBRARIES = ("fsspec", "s3fs", "adlfs", "httpx", "dask", "distributed", "tenacity")
# What ``import tdm`` / ``import tdm.core`` must leave for first use: handler modules, the YAML
# loader, the audit store, TLS and asyncio (alerts, REST), terminal UI and the CLI toolkit.
# (pyarrow.compute is not listed: pandas 3 imports it itself.)
LAZY = (
    "tdm.effects.http",
    "tdm.effects.rest",
    "tdm.effects.files",
    "tdm.effects.file_reads",
    "tdm.effects.storage",
    "tdm.effects.state",
    "tdm.effects.alerts",
    "tdm.config",
    "tdm.config.loader",
    "tdm.interpreter",
    "yaml",
    "sqlite3",
    "ssl",
    "asyncio",
    "rich",
    "click",
    "importlib.metadata",
)


def test_core_imports_no_io_library() -> None:
    assert _loaded("import tdm.core", IO_LIBRARIES + LAZY) == []


def test_import_tdm_loads_only_the_pure_algebra_on_first_use() -> None:
    assert _loaded("import tdm", IO_LIBRARIES + LAZY + ("pandas",)) == []
    # The algebra and the built-in steps do not pull in effects or the interpreter.
    assert _loaded("import tdm; tdm.Pipeline; tdm.transforms.select", IO_LIBRARIES + LAZY) == []


def test_running_a_pipeline_loads_no_network_or_yaml_library() -> None:
    code = (
        "import pandas as pd, tdm; "
        "tdm.run(tdm.inputs.frame('x'), inputs={'x': pd.DataFrame({'a': [1]})}, "
        "runtime=tdm.Runtime())"
    )
    banned = ("tdm.effects.http", "tdm.effects.rest", "httpx", "ssl", "yaml", "sqlite3", "rich")
    assert _loaded(code, banned) == []


def test_a_local_file_run_loads_neither_fsspec_nor_the_retry_library(tmp_path: Path) -> None:
    # fsspec costs ~70 ms and tenacity 25-50 ms per process: one local file is read and
    # written through the OS and pyarrow, and tenacity waits for a failure worth retrying.
    src, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    src.write_text("a\n1\n2\n")
    code = (
        "import tdm; from tdm import files; "
        f"r = tdm.run(files.read({str(src)!r}) >> files.write({str(out)!r})); assert r.ok"
    )
    assert _loaded(code, ("tenacity", "fsspec", "tdm.effects.files", "sqlite3")) == [
        "tdm.effects.files",
        "sqlite3",
    ]
    assert out.exists()


def test_cli_help_and_version_import_no_pandas() -> None:
    heavy = ("pandas", "numpy", "pyarrow", "yaml", "tdm.core", "tdm.config", "sqlite3", "ssl")
    for argv in (["--help"], ["--version"]):
        code = (
            "import sys, contextlib, io\n"
            "from tdm.cli import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    cli.main(args={argv!r}, prog_name='tdm', standalone_mode=False)\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "", (argv, out.stdout)


def test_importing_tdm_configures_no_logging() -> None:
    code = (
        "import logging; before = (logging.root.handlers[:], logging.root.level); import tdm; "
        "print(logging.root.handlers == before[0] and logging.root.level == before[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
