"""``tdm run --checkpoints URL --resume`` and ``tdm checkpoints prune`` from the command line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tests.servers.fixtures import FakeApi


def project(tmp_path: Path, api: FakeApi) -> Path:
    spec = tmp_path / "fan.yml"
    spec.write_text(
        "version: 1\n"
        f"checkpoints: file://{tmp_path}/ckpt\n"
        "pipelines:\n"
        "  - name: Fan\n"
        "    pipeline_id: fan\n"
        "    pipes:\n"
        "      - name: list\n"
        "        type: restreader\n"
        f"        config: {{url: '{api.url}/items', records: data,"
        " paginate: {type: page_number, size: 50, total: total}}\n"
        "      - name: details\n"
        "        type: fetch_each\n"
        f"        config: {{parents: [list], template: '{api.url}/items/{{id}}'}}\n"
        "      - name: late\n"
        "        type: tests.memory.steps:fail_when\n"
        "        config: {parents: [details]}\n"
        "      - name: write\n"
        "        type: filewriter\n"
        f"        config: {{parents: [late], path: '{tmp_path}/out.parquet'}}\n"
    )
    return spec


def test_cli_resume_defaults_to_the_last_failed_run(
    fresh_fake_api: FakeApi, tmp_path: Path
) -> None:
    api = fresh_fake_api
    api.total = 40
    spec = project(tmp_path, api)
    runner = CliRunner()
    failed = runner.invoke(cli, ["run", str(spec), "--param", "fail=true", "--log-level", "error"])
    assert failed.exit_code == 1, failed.output
    assert sum(1 for r in api.log if r.path.startswith("/items/")) == 40
    before = api.count
    resumed = runner.invoke(cli, ["run", str(spec), "--resume", "--log-level", "error"])
    assert resumed.exit_code == 0, resumed.output
    assert api.count == before
    assert "RESTORED details" in resumed.output.replace("  ", " ").replace("  ", " ")
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 40
    runs = tdm.history(pipeline="fan")
    assert runs.iloc[0]["resumed_from"] == runs.iloc[1]["run_id"]
    again = runner.invoke(cli, ["run", str(spec), "--resume", "--log-level", "error"])
    # The failed run's checkpoints went with the successful resume: nothing left to resume.
    assert again.exit_code == 2 and "kept no checkpoints" in again.output


def test_checkpoints_prune_removes_old_files(tmp_path: Path) -> None:
    store = tdm.checkpoints.store(f"file://{tmp_path}/ck")
    store.save("p", "old", pd.DataFrame({"a": [1]}))
    store.save("p", "new", pd.DataFrame({"a": [2]}))
    old = tmp_path / "ck" / "p" / "objects" / "old.parquet"
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    out = CliRunner().invoke(
        cli,
        ["checkpoints", "prune", "--older-than", "7d", "--checkpoints", f"file://{tmp_path}/ck"],
    )
    assert out.exit_code == 0 and "removed 1 checkpoint file(s)" in out.output
    assert store.keys("p") == {"new"}
    bad = CliRunner().invoke(
        cli, ["checkpoints", "prune", "--older-than", "soon", "--checkpoints", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "like 7d or 12h" in bad.output
