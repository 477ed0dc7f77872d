"""The catalog of bad configuration files: each fails to load with its expected message.

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

from tdm.config import load_yaml
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


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_config(path: Path, tmp_path: Path) -> None:
    header = _header(path)
    if "secrets" in header:
        home = Path(os.environ["TDM_HOME"])
        secrets = home / "secrets.yml"
        data = {"version": 1, **json.loads(header["secrets"][0])}
        secrets.write_text(json.dumps(data))
        secrets.chmod(0o600)
    rel = os.path.relpath(path)
    with pytest.raises(ConfigError) as info:
        project = load_yaml(rel)
        if "check" in header:
            project.check_secrets()
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
