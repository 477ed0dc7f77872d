"""Progress: live on a terminal, compact in Jupyter, silent when nobody watches."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

import tdm
from tdm.interpreter.progress import TerminalProgress, progress_hook
from tests.observability.conftest import boom, identity


def test_terminal_progress_shows_nodes_statuses_and_rows(orders: pd.DataFrame) -> None:
    out = io.StringIO()
    hook = TerminalProgress(stream=out, force_terminal=True)
    p = tdm.inputs.frame("orders") >> identity() >> boom()
    report = tdm.run(p, inputs={"orders": orders}, runtime=tdm.Runtime(hooks=[hook]), run_id="r-p")
    text = out.getvalue()
    assert not report.ok
    for expected in (
        "identity",
        "SUCCESS",
        "boom",
        "FAILURE",
        "3/3 nodes",
        "1 failed",
        "run r-p FAILURE",
    ):
        assert expected in text, expected
    assert "\x1b[" in text  # drawn live, with colours


def test_progress_true_draws_on_stderr_even_without_a_terminal(
    orders: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    tdm.run(
        tdm.inputs.frame("orders") >> identity(),
        inputs={"orders": orders},
        runtime=tdm.Runtime(progress=True),
        run_id="r-t",
    )
    err = capsys.readouterr().err
    assert "identity" in err and "run r-t SUCCESS" in err and "\x1b[" not in err


def test_silent_when_not_interactive(
    orders: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    assert progress_hook(None, stream=io.StringIO()) is None
    assert progress_hook(False) is None
    assert isinstance(progress_hook(True, stream=io.StringIO()), TerminalProgress)
    tdm.run(tdm.inputs.frame("orders") >> identity(), inputs={"orders": orders})  # default: auto
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_compact_display_in_jupyter(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    repo = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {repo!r})\n"
        "import pandas as pd, tdm\n"
        "@tdm.transform\n"
        "def double(df):\n"
        "    return df * 2\n"
        "report = tdm.run(tdm.inputs.frame('x') >> double(), inputs={'x': pd.DataFrame({'a': [1]})},\n"
        "                 run_id='nb-run')\n"
        "print(report.status, type(tdm.interpreter.progress.progress_hook(None)).__name__)\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[0].outputs
    html = [o for o in outputs if o.get("output_type") in ("display_data", "update_display_data")]
    assert html, outputs
    final = html[-1]["data"]["text/html"]
    assert "run nb-run SUCCESS" in final
    stream = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "SUCCESS JupyterProgress" in stream
