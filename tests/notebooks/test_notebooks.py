"""The notebooks in notebooks/ run top to bottom (their cells hold asserts), with no outputs
committed. They run in a real Jupyter kernel ("python3" of this virtualenv) whose working
directory is the repository root and which imports this checkout's tdm.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert "01_compose_interactively.ipynb" in names
    assert "02_test_pure_steps.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_no_committed_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: clear outputs before committing"
            assert cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.timeout(180)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import tdm; print(tdm.__file__)"))
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors
    printed = "".join(out.get("text", "") for out in nb.cells[-1].outputs)
    assert Path(printed.strip()).resolve().is_relative_to(ROOT), (printed, sys.executable)


@pytest.mark.timeout(180)
def test_a_failing_run_shows_its_error_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress line, stderr and the report's display: the error text is visible once."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import pandas as pd, tdm\n"
                "@tdm.source\n"
                "def broken(*, project: str) -> pd.DataFrame:\n"
                "    raise ConnectionError(f'tracker for {project} is down')\n"
                "tdm.run(broken(project='OPS') >> tdm.transforms.limit(1))"
            )
        ]
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    visible = []
    for out in nb.cells[0].outputs:
        if out.output_type == "stream":
            visible.append(out.text)
        elif "text/html" in out.get("data", {}):
            page = out["data"]["text/html"]
            # what a reader sees: not the tooltip (<title>) nor the collapsed run page
            page = page.split("<details>")[0]
            visible.append(re.sub(r"<title>.*?</title>", "", page, flags=re.S))
    text = "\n".join(visible)
    assert text.count("tracker for OPS is down") == 1, text
    assert not any(out.output_type == "stream" for out in nb.cells[0].outputs)
