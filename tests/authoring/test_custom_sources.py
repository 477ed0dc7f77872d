"""@tdm.source / @tdm.sink against real parts: the local REST API, SQLite, Dask, pickle."""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tdm
from tdm.core.custom import CustomSink, CustomSource
from tdm.effects.secrets import FileSecrets, MappingSecrets
from tdm.errors import StepArgumentError
from tdm.transforms import filter_rows
from tests.authoring.sources import api_items, echo_secret, stamped, to_sqlite

TOKEN = "tok-7f3a9c1e55"


def _runtime() -> tdm.Runtime:
    return tdm.Runtime(secrets=MappingSecrets({"Api": {"token": TOKEN}}))


def test_a_custom_source_and_sink_run_end_to_end(fresh_fake_api, tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    p = (
        api_items(base_url=fresh_fake_api.url, page_size=100, secret="Api")
        >> filter_rows("id % 2 == 0")
        >> to_sqlite(path=str(db), table="items")
    )
    report = tdm.run(p, runtime=_runtime())
    assert report.ok, report.error
    with sqlite3.connect(db) as conn:
        stored = pd.read_sql("select * from items", conn)
    assert len(stored) == fresh_fake_api.total // 2
    assert report.output.reset_index(drop=True).astype(object).equals(stored.astype(object))
    sent = {h.get("authorization") for (_m, _p, _q, h) in fresh_fake_api.log}
    assert sent == {f"Bearer {TOKEN}"}
    assert fresh_fake_api.count == 3  # 230 items at 100 per page


def test_descriptions_are_values(fresh_fake_api) -> None:
    a = api_items(base_url="http://x", secret="Api")
    assert a == api_items(base_url="http://x", secret="Api")
    assert a != api_items(base_url="http://y", secret="Api")
    node = a.plan.nodes[0].op
    assert isinstance(node, CustomSource)
    assert repr(node) == "api_items(base_url='http://x', page_size=50, secret='Api')"
    assert pickle.loads(pickle.dumps(node)) == node
    sink = to_sqlite(path="x.db", table="t")
    assert isinstance(sink, CustomSink) and pickle.loads(pickle.dumps(sink)) == sink
    assert hash(sink) == hash(to_sqlite(path="x.db", table="t"))


def test_building_calls_no_user_code_and_checks_arguments() -> None:
    with pytest.raises(StepArgumentError, match="did you mean 'page_size'"):
        api_items(base_url="http://x", page_sise=3, secret="Api")
    with pytest.raises(StepArgumentError, match="uses secrets: pass secret="):
        api_items(base_url="http://x")
    with pytest.raises(StepArgumentError, match="page_size='x' is a str, expected int"):
        api_items(base_url="http://x", page_size="x", secret="Api")


def test_a_source_gets_the_run_context_and_may_return_records() -> None:
    report = tdm.run(stamped(n=2), run_id="run-42")
    assert report.output.to_dict("records") == [
        {"i": 0, "run": "run-42"},
        {"i": 1, "run": "run-42"},
    ]


def test_a_failing_source_never_leaks_its_secret(fresh_fake_api, capsys) -> None:
    report = tdm.run(echo_secret(base_url=fresh_fake_api.url, secret="Api"), runtime=_runtime())
    assert report.status is tdm.Status.FAILURE
    node = report.nodes["echo_secret"]
    assert node.error is not None and "server said" in node.error.message
    rendered = [str(report.error), node.error.message, repr(report), report.to_frame().to_csv()]
    rendered.append(capsys.readouterr().err)
    for text in rendered:
        assert TOKEN not in text


def test_missing_secret_key_names_the_section_and_keys() -> None:
    runtime = tdm.Runtime(secrets=MappingSecrets({"Api": {"account_name": "u"}}))
    report = tdm.run(api_items(base_url="http://127.0.0.1:9", secret="Api"), runtime=runtime)
    assert "secret section 'Api' has no key 'token' (its keys: account_name)" in report.error


def test_custom_nodes_run_on_dask(dask_client, fresh_fake_api, tmp_path: Path) -> None:
    db = tmp_path / "dask.db"
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(f"version: 1\nApi:\n  token: {TOKEN}\n")
    secrets_file.chmod(0o600)
    runtime = tdm.Runtime(secrets=FileSecrets(secrets_file))  # workers read it themselves
    p = api_items(base_url=fresh_fake_api.url, secret="Api") >> to_sqlite(path=str(db), table="t")
    report = tdm.run(p, runtime=runtime, executor=tdm.executors.Dask(dask_client))
    assert report.ok, report.error
    with sqlite3.connect(db) as conn:
        assert pd.read_sql("select count(*) as n from t", conn)["n"][0] == fresh_fake_api.total


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    full = {**os.environ, "PYTHONPATH": str(root), **env}
    return subprocess.run(
        [sys.executable, "-m", "tdm", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_yaml_names_custom_sources_and_sinks_like_python(fresh_fake_api, tmp_path: Path) -> None:
    db = tmp_path / "yaml.db"
    config = tmp_path / "pipelines.yml"
    config.write_text(
        f"""version: 1
pipelines:
  - name: Custom
    pipes:
      - name: Items
        type: tests.authoring.sources:api_items
        config:
          base_url: {fresh_fake_api.url}
          page_size: 100
          secrets: {{type: yamlconfigreader, name: Api}}
      - name: Store
        type: tests.authoring.sources:to_sqlite
        config: {{parents: [Items], path: {db}, table: items}}
"""
    )
    from_yaml = tdm.load_yaml(config).pipeline("Custom")
    in_python = api_items(
        base_url=fresh_fake_api.url, page_size=100, secret="Api", label="Items"
    ) >> to_sqlite(path=str(db), table="items", label="Store")
    assert from_yaml == in_python

    checked = _cli(["validate", str(config)], tmp_path, TDM_SECRET__API__TOKEN=TOKEN)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert fresh_fake_api.count == 0  # validate calls no user code
    assert not db.exists()

    done = _cli(["run", str(config)], tmp_path, TDM_SECRET__API__TOKEN=TOKEN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr
    with sqlite3.connect(db) as conn:
        assert pd.read_sql("select count(*) as n from items", conn)["n"][0] == fresh_fake_api.total


def test_yaml_with_a_misspelled_source_option_fails_validate(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(
        """version: 1
pipelines:
  - name: Custom
    pipes:
      - name: Items
        type: tests.authoring.sources:api_items
        config:
          base_url: http://127.0.0.1:9
          page_sise: 100
          secrets: {type: yamlconfigreader, name: Api}
"""
    )
    for command in (["validate", str(config)], ["run", str(config)]):
        done = _cli(command, tmp_path, TDM_SECRET__API__TOKEN=TOKEN)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "page_sise" in done.stderr and "page_size" in done.stderr
        assert "Traceback" not in done.stderr
