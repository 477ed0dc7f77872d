"""YAML features next to their Python twins: equal pipelines, and the same verdict from
``tdm validate`` and ``tdm run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tdm
from tdm.errors import ConfigError
from tdm.transforms import aggregate, assign, filter_rows, guard, rename_columns, when


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tdm", *args],
        cwd=cwd,
        env={**os.environ, "TDM_HOME": str(cwd / "home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


ORDERS = "amount,state,team,number\n5,CA,a,1\n200,TX,a,2\n30,TX,b,3\n"


def _project(tmp_path: Path, pipes: str) -> Path:
    (tmp_path / "orders.csv").write_text(ORDERS)
    config = tmp_path / "pipelines.yml"
    config.write_text(
        "version: 1\npipelines:\n  - name: P\n    pipes:\n"
        "      - name: Orders\n        type: input\n        config: {name: orders}\n" + pipes
    )
    return config


def test_when_and_guard_in_yaml_equal_python(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        """      - name: Size
        type: when
        config:
          parents: [Orders]
          predicate: "amount.sum() > 100"
          then:
            - {type: assign, config: {size: "'big'"}}
            - {type: filter_rows, config: {predicate: "amount > 10"}}
          otherwise: {type: assign, config: {size: "'small'"}}
      - name: Only TX
        type: guard
        config: {parents: [Size], predicate: "(state == 'TX').any()", reason: no Texas orders}
""",
    )
    from_yaml = tdm.load_yaml(config).pipeline("P")
    in_python = (
        tdm.inputs.frame("Orders")
        >> when(
            "amount.sum() > 100",
            then=assign(size="'big'") >> filter_rows("amount > 10"),
            otherwise=assign(size="'small'"),
        ).named("Size")
        >> guard("(state == 'TX').any()", reason="no Texas orders").named("Only TX")
    )
    assert from_yaml == in_python
    orders = pd.read_csv(tmp_path / "orders.csv")
    report = tdm.run(from_yaml, inputs={"Orders": orders})
    assert report.output["size"].tolist() == ["big", "big"]
    skipped = tdm.run(from_yaml, inputs={"Orders": orders[orders["state"] == "CA"]})
    assert skipped.ok and skipped.nodes["Only TX"].status is tdm.Status.SKIPPED


def test_file_placeholders_load_mappings_and_lists(tmp_path: Path) -> None:
    (tmp_path / "columns.json").write_text(json.dumps({"amount": "total", "state": "st"}))
    (tmp_path / "keep.csv").write_text("column\ntotal\nst\n")
    (tmp_path / "aliases.csv").write_text("spelling,code\nLone Star,TX\n")
    config = _project(
        tmp_path,
        """      - name: Rename
        type: rename_columns
        config: {parents: [Orders], column_map: "${file:columns.json}"}
      - name: Keep
        type: select
        config: {parents: [Rename], columns: "${file:keep.csv}"}
      - name: States
        type: standardize_us_state
        config: {parents: [Keep], column: st, aliases: "${file:aliases.csv}"}
""",
    )
    from tdm.transforms import select, standardize_us_state

    in_python = (
        tdm.inputs.frame("Orders")
        >> rename_columns({"amount": "total", "state": "st"}).named("Rename")
        >> select(["total", "st"]).named("Keep")
        >> standardize_us_state("st", aliases={"Lone Star": "TX"}).named("States")
    )
    assert tdm.load_yaml(config).pipeline("P") == in_python


@pytest.mark.parametrize(
    ("placeholder", "message"),
    [
        ("${file:missing.json}", "no file"),
        ("${file:../outside.json}", "outside the config's folder"),
        ("${file:/etc/hosts.json}", "relative to the config's folder"),
        ("${file:notes.txt}", "use a .json, .yml/.yaml or .csv file"),
        ("prefix ${file:columns.json}", "must be the whole value"),
    ],
)
def test_bad_file_placeholders_fail_validate_and_run_alike(
    tmp_path: Path, placeholder: str, message: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "outside.json").write_text("{}")
    (project / "columns.json").write_text("{}")
    (project / "notes.txt").write_text("x")
    config = _project(
        project,
        f"""      - name: Rename
        type: rename_columns
        config: {{parents: [Orders], column_map: "{placeholder}"}}
""",
    )
    outcomes = [_cli([cmd, str(config)], project) for cmd in ("validate", "run")]
    for done in outcomes:
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr
        assert "pipelines.yml:" in done.stderr and "Traceback" not in done.stderr
    assert outcomes[0].stderr == outcomes[1].stderr


def test_named_aggregations_in_yaml(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        """      - name: Counts
        type: aggregate
        config:
          parents: [Orders]
          by: team
          aggs: {incident_count: {column: number, func: size}, total: {column: amount, func: sum}}
""",
    )
    from_yaml = tdm.load_yaml(config).pipeline("P")
    in_python = tdm.inputs.frame("Orders") >> aggregate(
        "team", {"incident_count": ("number", "size"), "total": ("amount", "sum")}
    ).named("Counts")
    orders = pd.read_csv(tmp_path / "orders.csv")
    got = tdm.run(from_yaml, inputs={"Orders": orders}).output
    assert got.equals(tdm.run(in_python, inputs={"Orders": orders}).output)
    assert got.to_dict("records") == [
        {"team": "a", "incident_count": 2, "total": 205},
        {"team": "b", "incident_count": 1, "total": 30},
    ]


def test_the_ambiguous_list_aggregation_fails_validate_with_the_fix(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        """      - name: Counts
        type: aggregate
        config: {parents: [Orders], by: team, aggs: {incident_count: [number, size]}}
""",
    )
    outcomes = [_cli([cmd, str(config)], tmp_path) for cmd in ("validate", "run")]
    for done in outcomes:
        assert done.returncode == 2, done.stdout + done.stderr
        assert "'number' is not an aggregation function" in done.stderr
        assert "{'incident_count': {'column': 'number', 'func': 'size'}}" in done.stderr


def test_a_step_inside_when_follows_the_same_rules(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        """      - name: Size
        type: when
        config:
          parents: [Orders]
          predicate: "amount.sum() > 100"
          then: {type: subprocess:run, config: {args: [touch, PWNED]}}
""",
    )
    with pytest.raises(ConfigError):
        tdm.load_yaml(config)
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
