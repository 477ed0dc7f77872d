"""``tdm.load`` -> Job: a YAML project run from Python is exactly what ``tdm run`` does."""

from __future__ import annotations

import json
import logging
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.effects.alerts import EmailAlerter
from tdm.effects.state import FileStore
from tdm.errors import ConfigError, SecretNotFoundError


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _secrets(data: dict[str, dict[str, str]]) -> None:
    path = Path(os.environ["TDM_HOME"]) / "secrets.yml"
    path.write_text(json.dumps({"version": 1, **data}))
    path.chmod(0o600)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    _write(tmp_path / "orders.csv", "id,a,b\n1,1,10\n2,2,20\n3,3,30\n")
    return _write(
        tmp_path / "pipelines.yml",
        f"""
        params: {{factor: 2}}
        state_manager:
          type: filestatemanager
          config: {{path: "{tmp_path / "audit"}"}}
        pipelines:
          - name: Orders
            pipeline_id: orders
            pipes:
              - name: Read
                type: read
                config: {{path: "{tmp_path / "orders.csv"}"}}
              - name: Total
                type: rename_columns
                config: {{parents: [Read], column_map: {{a: alpha}}}}
              - name: Write
                type: filewriter
                config: {{parents: [Total], path: "{tmp_path / "out" / "totals.csv"}"}}
        """,
    )


def _audit(job: tdm.Job) -> list[tuple[str, str, str, list[tuple[str, str, int | None]]]]:
    assert isinstance(job.state, FileStore)
    return [
        (
            r.pipeline_id,
            r.pipeline_name,
            r.status,
            [(n.name, n.status, n.rows_out) for n in r.nodes],
        )
        for r in sorted(job.state.runs(), key=lambda r: r.started_at)
    ]


def test_python_run_is_what_the_cli_runs(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(project), "--no-progress"], prog_name="tdm")
    assert result.exit_code == 0, result.stderr
    by_cli = (tmp_path / "out" / "totals.csv").read_text()
    (tmp_path / "out" / "totals.csv").unlink()

    job = tdm.load(project)
    report = job.run("Orders")
    assert report.status is tdm.Status.SUCCESS
    assert (tmp_path / "out" / "totals.csv").read_text() == by_cli
    first, second = _audit(job)  # both runs in the same audit store, recorded alike
    assert first == second
    assert first[:3] == ("orders", "Orders", "SUCCESS")
    assert [n for n, _, _ in first[3]] == ["Read", "Total", "Write"]


def test_a_job_is_frozen_and_holds_built_services(project: Path) -> None:
    job = tdm.load(project)
    assert job.names() == ["Orders"]
    assert isinstance(job.state, FileStore)
    assert job.runtime().state is job.state
    with pytest.raises(AttributeError):
        job.executor = "threads"  # type: ignore[misc]
    assert job.evolve(executor="threads").executor == "threads"


def test_original_alert_and_state_keys_work_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(
        tmp_path / "p.yml",
        f"""
        alert_managers:
          - name: Email Alert Manager
            type: gmailemailalertmanager
            config:
              email_addresses: [ops@example.com]
              mode: mfa
              secrets: {{type: yamlconfigreader, name: Gmail Secrets}}
        state_manager:
          type: s3statemanager
          config:
            name: State Manager for SNOW Data
            state_object_name: SNOW Data Pull
            path: "{tmp_path / "audit"}"
        pipelines:
          - name: P
            pipes:
              - {{name: x, type: input}}
        """,
    )
    with caplog.at_level(logging.WARNING, logger="tdm.config"):
        job = tdm.load(path)
    (alerter,) = job.alerters
    assert isinstance(alerter, EmailAlerter) and alerter.host == "smtp.gmail.com"
    assert isinstance(job.state, FileStore)
    notes = [r.getMessage() for r in caplog.records]
    assert any("`mode` is deprecated and ignored" in n and ":6:" in n for n in notes), notes
    assert any("`state_object_name` is deprecated and ignored" in n for n in notes), notes
    with pytest.raises(SecretNotFoundError, match="alert manager 'Email Alert Manager'"):
        job.validate()
    _secrets({"Gmail Secrets": {"username": "ops@example.com", "app_password": "pw-123456"}})
    job.validate()


def test_filewriter_with_secrets_inside_the_writer_block(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.yml",
        f"""
        pipelines:
          - name: P
            pipes:
              - {{name: x, type: input}}
              - name: Write
                type: filewriter
                config:
                  parents: [x]
                  filename: out.csv
                  writer:
                    type: localcsvwriter
                    config:
                      folder: "{tmp_path / "out"}"
                      secrets: {{type: yamlconfigreader, name: Local}}
        """,
    )
    job = tdm.load(path)
    assert [p.secret for p in job["P"].pipes] == [None, "Local"]
    with pytest.raises(SecretNotFoundError, match="pipe 'Write': secret 'Local' not found"):
        job.validate()
    _secrets({"Local": {"auto_mkdir": "1"}})  # short: never registered for scrubbing
    report = job.run("P", inputs={"x": pd.DataFrame({"a": [1, 2]})})
    assert report.status is tdm.Status.SUCCESS, report.error
    assert (tmp_path / "out" / "out.csv").read_text().splitlines() == ["a", "1", "2"]


def test_null_alert_manager_needs_no_secret(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.yml",
        """
        alert_managers:
          - name: Quiet
            type: nullalertmanager
            config: {secrets: {type: yamlconfigreader, name: Nowhere}}
        pipelines:
          - name: P
            pipes:
              - {name: x, type: input}
        """,
    )
    job = tdm.load(path)
    assert job.alerters == ()
    job.validate()  # no secrets file at all: the null alerter reads nothing


def test_service_errors_in_the_settings_file_name_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(os.environ["TDM_HOME"])
    settings = _write(
        home / "config.yml",
        """
        alert_managers:
          - name: Ops
            type: emailalertmanager
            config:
              email_addresses: [ops@example.com]
              host: smtp.example.com
              secrets: {type: yamlconfigreader, name: SMTP}
        """,
    )
    text = "pipelines:\n  - name: P\n    pipes:\n      - {name: x, type: input}\n"
    path = _write(tmp_path / "p.yml", text)
    job = tdm.load(path)
    with pytest.raises(SecretNotFoundError) as info:
        job.validate()
    assert info.value.file == str(settings) and info.value.line == 2
    assert str(info.value).startswith(f"{settings}:2: alert manager 'Ops': secret 'SMTP'")
    settings.write_text(settings.read_text().replace("host:", "hots:"))
    with pytest.raises(ConfigError) as info:
        tdm.load(path)
    assert (info.value.file, info.value.line) == (str(settings), 6)
    assert "unknown config key 'hots'" in str(info.value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "p.yml"], prog_name="tdm")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ConfigError: {settings}:6: ")


def test_run_names_a_pipeline_when_there_are_several(project: Path) -> None:
    other = "  - name: Other\n    pipes:\n      - {name: y, type: input}\n  - name: Orders\n"
    project.write_text(project.read_text().replace("  - name: Orders\n", other, 1))
    job = tdm.load(project)
    with pytest.raises(ConfigError, match="declares 2 pipelines"):
        job.run()


def test_after_makes_a_read_back_wait_for_the_write(tmp_path: Path) -> None:
    out = tmp_path / "out" / "devices.csv"
    path = _write(
        tmp_path / "p.yml",
        f"""
        pipelines:
          - name: P
            pipes:
              - name: Read Back
                type: read
                after: Write
                config: {{path: "{out}"}}
              - {{name: x, type: input}}
              - name: Write
                type: write
                config: {{parents: [x], path: "{out}"}}
        """,
    )
    job = tdm.load(path)
    pipeline = job["P"].pipeline
    assert pipeline.names().index("Write") < pipeline.names().index("Read Back")
    frame = pd.DataFrame({"id": range(50)})
    report = job.run("P", inputs={"x": frame}, executor="threads")
    assert report.ok, report.error
    assert report.outputs["Read Back"]["id"].tolist() == list(range(50))
    with pytest.raises(
        ConfigError, match="`after` names an unknown pipe 'Wrte'; did you mean 'Write'"
    ):
        tdm.load(path.read_text().replace("after: Write", "after: Wrte"))
    step = textwrap.dedent("""
        pipelines:
          - name: P
            pipes:
              - {name: x, type: input}
              - {name: y, type: input}
              - {name: Sorted, type: sort, after: y, config: {parents: [x], by: [id]}}
        """)
    with pytest.raises(ConfigError, match="sort does not wait for other pipes"):
        tdm.load(step)


def test_the_cli_resume_flag_means_the_jobs_last_failed_run() -> None:
    from tdm import cli
    from tdm.config.job import LAST_FAILED

    assert cli._LAST_FAILED == LAST_FAILED
