"""The catalog of bad configuration files: each fails to load with its expected message, and
``tdm validate`` and ``tdm run`` reject it with exactly the same error (exit 2, nothing run).

Every file in tests/resources/bad_configs/ starts with comment lines:
``# expect: TEXT`` (one or more; each must appear in the message), ``# line: N`` (the line the
error points at), ``# check: secrets`` (the problem shows when secrets are checked) and
``# secrets: {JSON}`` (the secrets file to create first).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.errors import ConfigError

CATALOG = Path(__file__).resolve().parents[1] / "resources" / "bad_configs"
FILES = sorted(CATALOG.glob("*.yml"))


def _header(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        out.setdefault(key, []).append(value)
    return out


def test_catalog_is_big_enough() -> None:
    assert len(FILES) >= 20
    for path in FILES:
        assert _header(path).get("expect"), f"{path.name} has no '# expect:' line"


def _write_secrets(header: dict[str, list[str]]) -> None:
    if "secrets" in header:
        home = Path(os.environ["TDM_HOME"])
        secrets = home / "secrets.yml"
        data = {"version": 1, **json.loads(header["secrets"][0])}
        secrets.write_text(json.dumps(data))
        secrets.chmod(0o600)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_config(path: Path) -> None:
    header = _header(path)
    _write_secrets(header)
    rel = os.path.relpath(path)
    with pytest.raises(ConfigError) as info:
        job = tdm.load(rel)
        if "check" in header:
            job.validate()
        else:
            pytest.fail("loaded without error")
    message = str(info.value)
    for expected in header["expect"]:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert info.value.file == rel
    assert message.startswith(rel + ":")
    if "line" in header:
        assert info.value.line == int(header["line"][0]), message
        assert message.startswith(f"{rel}:{header['line'][0]}: ")
    assert "Traceback" not in message


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_and_run_reject_alike(path: Path) -> None:
    """What `tdm validate` accepts, `tdm run` accepts: the same error, exit 2, no output."""
    header = _header(path)
    _write_secrets(header)
    rel = os.path.relpath(path)
    runner = CliRunner()
    validated = runner.invoke(cli, ["validate", rel], prog_name="tdm")
    ran = runner.invoke(cli, ["run", rel, "--no-progress"], prog_name="tdm")
    assert (validated.exit_code, ran.exit_code) == (2, 2), validated.stderr + ran.stderr
    assert validated.stderr == ran.stderr
    assert ran.stdout == ""
    for expected in header["expect"]:
        assert expected in ran.stderr
