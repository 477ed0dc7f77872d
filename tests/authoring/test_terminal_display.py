"""On a terminal, ``tdm run`` shows each node once: the live table, not logs and a second table."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """version: 1
pipelines:
  - name: Terminal
    pipes:
      - name: Numbers
        type: read
        config: {path: numbers.csv}
      - name: Big Ones
        type: filter_rows
        config: {parents: [Numbers], predicate: "n > 1"}
      - name: Write Out
        type: write
        config: {parents: [Big Ones], path: out.csv}
"""


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tdm", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TDM_HOME": str(cwd / "home"), "COLUMNS": "120"},
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_the_live_table_is_the_display(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text("n\n1\n2\n3\n")
    (tmp_path / "p.yml").write_text(CONFIG)
    code, screen = _run_on_a_terminal(["run", "p.yml"], tmp_path)
    assert code == 0, screen
    summary = screen[screen.rindex("pipeline 'Terminal': SUCCESS") :]
    for node in ("Numbers", "Big Ones", "Write Out"):
        assert node not in summary  # the table showed them; the summary does not repeat them
    assert " INFO " not in screen and '"level": "INFO"' not in screen  # logs at WARNING
    assert (tmp_path / "out.csv").read_text().splitlines() == ["n", "2", "3"]


def test_asking_for_info_logs_brings_them_back(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text("n\n1\n2\n3\n")
    (tmp_path / "p.yml").write_text(CONFIG)
    code, screen = _run_on_a_terminal(["run", "p.yml", "--log-level", "info"], tmp_path)
    assert code == 0, screen
    assert "INFO" in screen
