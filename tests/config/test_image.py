"""The Dockerfile ``tdm init`` and ``tdm deploy dockerfile`` write: pinned, non-root, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.config.image import dockerfile
from tdm.config.scaffold import scaffold
from tdm.errors import ConfigError


def instructions(text: str) -> list[tuple[str, str]]:
    joined = text.replace("\\\n", " ")
    return [
        (line.split()[0], line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_scaffolded_dockerfile_is_pinned_non_root_and_copies_no_secret(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    scaffold(root)
    (root / ".tdm" / "secrets.yml").write_text("S3: {key: AKIA-not-for-images}\n")
    text = (root / "Dockerfile").read_text()
    steps = instructions(text)
    base = dict(steps)["ARG"]
    assert re.fullmatch(r"BASE=python:\d+\.\d+\.\d+-slim-[a-z]+", base), base
    assert ("FROM", "${BASE}") in steps
    copies = [args for op, args in steps if op == "COPY"]
    assert copies == [
        "pyproject.toml ./",
        "README.md ./",
        "demo/ demo/",
        "wheels/ wheels/",
        "pipelines/ pipelines/",
        ".tdm/config.yml .tdm/config.yml",
    ]
    assert not any(args.startswith(".") and "config.yml" not in args for args in copies)
    users = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    runs = [i for i, (op, _) in enumerate(steps) if op == "RUN"]
    assert steps[users[-1]] == ("USER", "10001") and users[-1] > runs[-1]
    env = " ".join(args for op, args in steps if op == "ENV")
    assert not re.search(r"SECRET|PASSWORD|TOKEN|KEY", env)
    assert steps[-1] == ("CMD", '["run", "pipelines/example.yml", "--log-format", "json"]')
    assert ("RUN", "pip install --find-links=wheels .") in steps
    ignore = (root / ".dockerignore").read_text().splitlines()
    assert ".tdm/secrets.yml" in ignore and "**/.env" in ignore
    # `tdm deploy dockerfile` writes the same file for the same project
    result = CliRunner().invoke(cli, ["deploy", "dockerfile", str(root / "pipelines/example.yml")])
    assert result.exit_code == 0, result.output
    assert result.stdout == text


def test_a_secret_in_a_copied_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    scaffold(root)
    (root / "pipelines" / "secrets.yml").write_text("x: {y: z}\n")
    with pytest.raises(ConfigError, match=r"pipelines/secrets.yml looks like a secret"):
        dockerfile(root / "pipelines" / "example.yml")
    result = CliRunner().invoke(cli, ["deploy", "dockerfile", str(root / "pipelines/example.yml")])
    assert result.exit_code == 2 and "looks like a secret" in result.stderr


def test_a_folder_without_pyproject_installs_this_tdm(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "daily.yml").write_text("")
    steps = instructions(dockerfile(tmp_path / "jobs" / "daily.yml", root=tmp_path))
    assert ("RUN", f'pip install "tdm-pipelines>={tdm.__version__}"') in steps
    assert [a for op, a in steps if op == "COPY"] == ["jobs/ jobs/"]
