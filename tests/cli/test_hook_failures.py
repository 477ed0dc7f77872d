"""What the audit store and the alerters failed to do shows in ``tdm run``'s summary.

Real parts: a corrupt SQLite file, a SQLite file made read-only (immutable for root), the
aiosmtpd server refusing STARTTLS and the local REST server answering a webhook with 404.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.errors import StateError


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="tdm")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _pipeline(tmp_path: Path, *, n: int = 1, extra: str = "") -> list[str]:
    """A one-pipeline file and the CLI arguments that run it (``n < 0`` fails the run)."""
    source = tmp_path / "in.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(source, index=False)
    path = tmp_path / "p.yml"
    path.write_text(
        extra
        + textwrap.dedent(
            f"""\
            pipelines:
              - name: P
                pipes:
                  - {{name: src, type: input}}
                  - {{name: L, type: limit, config: {{parents: [src], n: {n}}}}}
            """
        )
    )
    return [str(path), "--input", f"src={source}", "--log-format", "text"]


def _home() -> Path:
    return Path(os.environ["TDM_HOME"])


@contextlib.contextmanager
def _read_only(*paths: Path) -> Iterator[None]:
    """Make files and folders read-only for real, also for root (immutable attribute)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def test_a_corrupt_audit_db_is_reported_and_require_audit_fails(tmp_path: Path) -> None:
    (_home() / "state.db").write_bytes(b"this is not a SQLite database, just text " * 40)
    args = _pipeline(tmp_path)
    code, out, _ = _cli("run", *args)
    assert code == 0  # the run itself succeeded
    assert "pipeline 'P': SUCCESS" in out
    assert "AUDIT RECORD NOT SAVED: audit record of run" in out
    assert "DatabaseError: file is not a database" in out
    code, out, err = _cli("run", *args, "--require-audit")
    assert code == 1, err
    assert "AUDIT RECORD NOT SAVED" in out
    assert "StateError: the audit record of pipeline 'P' (run " in err
    assert "--require-audit" in err


@pytest.mark.parametrize("explicit", [False, True], ids=["default store", "--state"])
def test_history_on_a_corrupt_db_is_a_clear_error(explicit: bool) -> None:
    db = _home() / ("other.db" if explicit else "state.db")
    db.write_bytes(b"\x00garbage" * 100)
    code, out, err = _cli("history", *(["--state", str(db)] if explicit else []))
    assert code == 2, (out, err)
    assert err.startswith(f"StateError: cannot read the audit store sqlite:{db}: ")
    assert "file is not a database" in err and "move it aside" in err
    assert "InternalError" not in err and "Traceback" not in err
    with pytest.raises(StateError, match="cannot read the audit store"):
        tdm.history(store=tdm.state.sqlite(db))


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tdm`` in its own process (no connection survives from an earlier run)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "tdm", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )


def test_a_read_only_audit_db_is_reported_and_require_audit_fails(tmp_path: Path) -> None:
    args = _pipeline(tmp_path)
    done = _process("run", *args, "--require-audit")  # creates the database
    assert done.returncode == 0 and "NOT SAVED" not in done.stdout, done.stderr
    db = _home() / "state.db"
    files = sorted(_home().glob("state.db*"))
    before = {p: p.read_bytes() for p in files}
    with _read_only(*files, _home()):
        done = _process("run", *args, "--require-audit")
        assert done.returncode == 1, done.stderr
        assert "pipeline 'P': SUCCESS" in done.stdout
        assert "AUDIT RECORD NOT SAVED: audit record of run" in done.stdout
        assert f"not saved to sqlite:{db} after 3 attempt(s)" in done.stdout
        assert "StateError: the audit record of pipeline 'P'" in done.stderr
        done = _process("run", *args)
        assert done.returncode == 0 and "AUDIT RECORD NOT SAVED" in done.stdout
    assert {p: p.read_bytes() for p in files} == before


def test_every_alert_that_was_not_sent_is_listed(
    tmp_path: Path, fresh_smtp_server: Any, fresh_fake_api: Any
) -> None:
    fresh_fake_api.route("/gone", lambda req: (404, {"error": "no such hook"}), methods=["POST"])
    alerts = textwrap.dedent(
        f"""\
        alert_managers:
          - name: Mail
            type: email
            config: {{to: [ops@example.com], host: 127.0.0.1, port: {fresh_smtp_server.port},
                      security: starttls}}
          - name: Hook
            type: webhook
            config: {{url: "{fresh_fake_api.url}/gone", style: slack}}
        """
    )
    code, out, err = _cli("run", *_pipeline(tmp_path, n=-1, extra=alerts), "--require-audit")
    assert code == 1, err
    assert "pipeline 'P': FAILURE" in out and "limit needs n >= 0" in out
    lines = [line.strip() for line in out.splitlines() if "NOT SENT" in line]
    assert len(lines) == 2, out
    assert any("SMTPNotSupportedError" in line for line in lines), lines
    assert any("was refused: HTTP 404" in line for line in lines), lines
    assert "AUDIT RECORD NOT SAVED" not in out  # the audit store worked
    assert "StateError" not in err
    assert fresh_fake_api.hits("/gone", "POST") == 1
    assert fresh_smtp_server.messages == []
    (run,) = tdm.state.sqlite(_home() / "state.db").runs(limit=1)
    assert run.status == "FAILURE" and len(run.hook_errors) == 2  # the record says so too


def test_a_healthy_run_with_require_audit_is_recorded(tmp_path: Path) -> None:
    code, out, err = _cli("run", *_pipeline(tmp_path), "--require-audit")
    assert code == 0, err
    assert "not done" not in out
    code, out, _ = _cli("history")
    assert code == 0 and "SUCCESS" in out
