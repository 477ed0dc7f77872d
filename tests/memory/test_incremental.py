"""Incremental REST sources with cursors in the audit store, and upsert writes (fake API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import tdm
from tdm import files, rest
from tdm.cli import cli
from tdm.errors import DefinitionError
from tests.servers.fixtures import FakeApi, RequestInfo


class Incidents:
    """A table on the fake API: ``GET /incidents?since=T`` answers rows updated after T."""

    def __init__(self, api: FakeApi, count: int) -> None:
        self.api = api
        self.rows = {i: {"sys_id": i, "state": "new", "updated": _ts(i)} for i in range(count)}
        self.clock = count
        self.answered: list[int] = []
        api.route("/incidents", self.handle)

    def handle(self, req: RequestInfo) -> Any:
        since = req.query.get("since", "")
        found = [r for r in self.rows.values() if r["updated"] > since]
        found.sort(key=lambda r: r["updated"])
        self.answered.append(len(found))
        return {"result": found}

    def touch(self, *ids: int, state: str = "changed") -> None:
        for i in ids:
            self.clock += 1
            self.rows[i] = {"sys_id": i, "state": state, "updated": _ts(self.clock)}


def _ts(n: int) -> str:
    return f"2024-01-01 {n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}"


@tdm.transform_with_context
def fail_if_asked(df: pd.DataFrame, context: tdm.RunContext) -> pd.DataFrame:
    if context.params.get("fail"):
        raise RuntimeError("asked to fail after the fetch")
    return df


def pipeline(api: FakeApi, out: str) -> tdm.Pipeline:
    changed = rest.get(
        f"{api.url}/incidents",
        params={"since": "{cursor}"},
        records="result",
        incremental=tdm.incremental("updated", initial="2000-01-01 00:00:00"),
        label="incidents",
    )
    return changed >> fail_if_asked() >> files.write(out, mode="upsert", key=["sys_id"])


def stored(out: str, **options: Any) -> pd.DataFrame:
    frame = pd.read_parquet(out, **options)
    return frame.sort_values("sys_id").reset_index(drop=True)


def test_second_run_asks_only_for_changes_and_failed_runs_lose_nothing(
    fresh_fake_api: FakeApi, tmp_path: Path
) -> None:
    api, table = fresh_fake_api, Incidents(fresh_fake_api, 30)
    store = tdm.state.sqlite(tmp_path / "audit.db")
    rt = tdm.Runtime(state=store)
    out = str(tmp_path / "lake" / "incidents.parquet")
    p = pipeline(api, out)

    first = tdm.run(p, runtime=rt, pipeline_id="incidents")
    assert first.ok and table.answered == [30]
    assert api.log[-1].query["since"] == "2000-01-01 00:00:00"
    assert first.cursors == {"incidents": _ts(29)}
    assert store.cursors("incidents")["incidents"].value == _ts(29)

    table.touch(3, 7, 11)
    table.touch(30, state="new")
    second = tdm.run(p, runtime=rt, pipeline_id="incidents")
    assert second.ok and table.answered[-1] == 4  # only the changed and the new rows
    assert api.log[-1].query["since"] == _ts(29)
    assert second.nodes["incidents"].rows_out == 4
    data = stored(out)
    assert len(data) == 31 and data["sys_id"].is_unique
    assert data.set_index("sys_id").loc[[3, 7, 11], "state"].tolist() == ["changed"] * 3

    # A run that fails after fetching leaves the cursor where it was...
    table.touch(5, 6, state="late")
    before = store.cursors("incidents")["incidents"]
    failed = tdm.run(p, runtime=rt, pipeline_id="incidents", params={"fail": True})
    assert not failed.ok and failed.cursors == {}
    assert store.cursors("incidents")["incidents"] == before
    assert stored(out).set_index("sys_id").loc[[5, 6], "state"].tolist() == ["new", "new"]

    # ...so the next successful run picks up every change: nothing lost, nothing doubled.
    third = tdm.run(p, runtime=rt, pipeline_id="incidents")
    assert third.ok and table.answered[-1] == 2
    assert third.nodes["incidents"].rows_out == 2
    data = stored(out)
    assert len(data) == 31 and data["sys_id"].is_unique
    assert data.set_index("sys_id").loc[[5, 6], "state"].tolist() == ["late", "late"]
    expected = pd.DataFrame(sorted(table.rows.values(), key=lambda r: r["sys_id"]))
    pd.testing.assert_frame_equal(data[expected.columns], expected, check_dtype=False)

    # A re-run after a crash between publish and cursor commit duplicates nothing (upsert).
    store.commit_cursors("incidents", "crashed", {"incidents": before.value}, at="x")
    again = tdm.run(p, runtime=rt, pipeline_id="incidents")
    assert again.ok and len(stored(out)) == 31 and stored(out)["sys_id"].is_unique


def test_run_context_gives_the_previous_successful_run_and_cursors(
    fresh_fake_api: FakeApi, tmp_path: Path
) -> None:
    Incidents(fresh_fake_api, 3)
    seen: list[tdm.RunContext] = []

    @tdm.transform_with_context
    def look(df: pd.DataFrame, context: tdm.RunContext) -> pd.DataFrame:
        seen.append(context)
        return df

    src = rest.get(
        f"{fresh_fake_api.url}/incidents",
        params={"since": "{cursor}"},
        records="result",
        incremental=tdm.incremental("updated", initial="2000"),
        label="incidents",
    )
    rt = tdm.Runtime(state=tdm.state.memory())
    first = tdm.run(src >> look(), runtime=rt, pipeline_id="ctx")
    second = tdm.run(src >> look(), runtime=rt, pipeline_id="ctx")
    assert first.ok and second.ok
    assert (seen[0].previous_run_id, dict(seen[0].cursors)) == (None, {})
    assert seen[1].previous_run_id == first.run_id
    assert dict(seen[1].cursors) == {"incidents": _ts(2)}


@pytest.mark.parametrize("kind", ["files", "memory"])
def test_cursors_live_in_every_store(kind: str, fresh_fake_api: FakeApi, tmp_path: Path) -> None:
    table = Incidents(fresh_fake_api, 5)
    store = tdm.state.files(f"file://{tmp_path}/audit") if kind == "files" else tdm.state.memory()
    rt = tdm.Runtime(state=store)
    p = pipeline(fresh_fake_api, f"memory://incr-{kind}/out.parquet")
    assert tdm.run(p, runtime=rt, pipeline_id="p").ok
    assert tdm.run(p, runtime=rt, pipeline_id="p").ok
    assert table.answered == [5, 0]
    assert store.reset_cursors("p") == ["incidents"]
    assert tdm.run(p, runtime=rt, pipeline_id="p").ok and table.answered[-1] == 5


def test_cursor_in_the_url_and_a_missing_placeholder(fresh_fake_api: FakeApi) -> None:
    seen: list[str] = []
    fresh_fake_api.route("/since/{ts}", lambda req: seen.append(req.path_params["ts"]) or [])
    src = rest.get(
        f"{fresh_fake_api.url}/since/{{cursor}}",
        incremental=tdm.incremental("ts", initial="2024-01-01 10:00"),
    )
    assert tdm.run(src, runtime=tdm.Runtime(state=tdm.state.memory())).ok
    assert seen == ["2024-01-01 10:00"]
    with pytest.raises(DefinitionError, match=r"needs a \{cursor\} placeholder"):
        rest.get("https://x.test/items", incremental=tdm.incremental("ts", initial=0))
    with pytest.raises(DefinitionError, match="needs key="):
        files.write("out.parquet", mode="upsert")


def test_state_show_and_reset_commands(fresh_fake_api: FakeApi, tmp_path: Path) -> None:
    Incidents(fresh_fake_api, 4)
    db = tmp_path / "audit.db"
    rt = tdm.Runtime(state=tdm.state.sqlite(db))
    assert tdm.run(pipeline(fresh_fake_api, str(tmp_path / "o.parquet")), runtime=rt,
                   pipeline_id="incidents").ok  # fmt: skip
    runner = CliRunner()
    shown = runner.invoke(cli, ["state", "show", "incidents", "--state", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "incidents" in shown.output and _ts(3) in shown.output
    assert tdm.state.show("incidents", store=rt.state)["value"].tolist() == [_ts(3)]
    reset = runner.invoke(cli, ["state", "reset", "incidents", "--node", "incidents",
                                "--state", str(db)])  # fmt: skip
    assert reset.exit_code == 0 and "reset incidents" in reset.output
    assert tdm.state.show("incidents", store=rt.state).empty
    unknown = runner.invoke(cli, ["state", "reset", "incidents", "--node", "nope",
                                  "--state", str(db)])  # fmt: skip
    assert unknown.exit_code == 2 and "no cursor" in unknown.output


def test_yaml_incremental_sources_equal_python(tmp_path: Path) -> None:
    spec = tmp_path / "p.yml"
    spec.write_text(
        "version: 1\n"
        "pipelines:\n"
        "  - name: Incidents\n"
        "    pipes:\n"
        "      - name: incidents\n"
        "        type: restreader\n"
        "        config:\n"
        "          url: https://api.example.com/incidents\n"
        "          params: {since: '{cursor}'}\n"
        "          records: result\n"
        "          incremental: {cursor: updated, initial: '2000-01-01'}\n"
        "      - name: landing\n"
        "        type: fileread\n"
        f"        config: {{path: '{tmp_path}/*.csv', incremental: true}}\n"
    )
    project = tdm.load_yaml(str(spec))
    ops = {n: project["Incidents"].pipeline.plan.nodes[i].op
           for i, n in enumerate(project["Incidents"].pipeline.names())}  # fmt: skip
    python = rest.get(
        "https://api.example.com/incidents",
        params={"since": "{cursor}"},
        records="result",
        incremental=tdm.incremental("updated", initial="2000-01-01"),
        label="incidents",
    )
    assert ops["incidents"] == python.plan.nodes[0].op
    assert ops["landing"].incremental is True  # type: ignore[attr-defined]
    bad = tmp_path / "bad.yml"
    bad.write_text(spec.read_text().replace("initial: '2000-01-01'", "start: 1"))
    out = CliRunner().invoke(cli, ["validate", str(bad)])
    assert out.exit_code == 2 and "incremental takes {cursor:" in out.output
