"""The YAML loader: equality with Python, original-format compatibility, substitution."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

import tdm
from tdm.config import Registry, load_yaml
from tdm.config.compat import translate
from tdm.errors import ConfigError
from tdm.inputs import frame
from tests.config.sample_pipes import Numbers, Sink, add_total, numbers, scale, sink

SP = "tests.config.sample_pipes"


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip()


EQUAL_YAML = y(f"""
    version: 1
    pipelines:
      - name: Orders
        pipes:
          - name: orders
            type: input
          - name: customers
            type: input
          - name: Joined
            type: join
            config:
              parents: [orders, customers]
              on: id
              how: left
          - name: Totals
            type: {SP}:add_total
            config:
              parents: [Joined]
              cols: [a, b]
          - name: Both
            type: union
            config:
              parents: [Totals, orders]
""")


def test_loaded_pipeline_equals_the_python_one() -> None:
    project = load_yaml(EQUAL_YAML)
    orders, customers = frame("orders"), frame("customers")
    joined = tdm.join(on="id", how="left").named("Joined")(orders, customers)
    totals = joined >> add_total(cols=["a", "b"]).named("Totals")
    expected = tdm.transforms.union().named("Both")(totals, orders)
    assert project.pipeline("Orders") == expected
    assert hash(project.pipeline("Orders")) == hash(expected)
    # and a different parameter makes a different pipeline
    assert project.pipeline("Orders") != tdm.concat().named("Both")(
        joined >> add_total(cols=["a"]).named("Totals"), orders
    )


def test_loaded_pipeline_runs() -> None:
    project = load_yaml(EQUAL_YAML)
    report = tdm.run(
        project.pipeline(),
        inputs={
            "orders": pd.DataFrame({"id": [1, 2], "a": [1, 2]}),
            "customers": pd.DataFrame({"id": [1], "b": [10]}),
        },
    )
    assert report.status is tdm.Status.SUCCESS
    assert len(report.output) == 4
    assert report.nodes["Totals"].rows_out == 2


def test_effects_get_the_yaml_name_as_label_and_equal_python(tmp_path: Path) -> None:
    text = y(f"""
        pipelines:
          - name: P
            pipes:
              - name: Numbers
                type: {SP}:numbers
                config: {{n: 4}}
              - name: Double
                type: {SP}:scale
                config: {{parents: [Numbers]}}
              - name: Out
                type: {SP}:sink
                config:
                  parents: [Double]
                  target: out.csv
                  secrets: {{type: yamlconfigreader, name: Store}}
    """)
    project = load_yaml(text)
    expected = (
        numbers(n=4, label="Numbers")
        >> scale().named("Double")
        >> sink("out.csv", secret="Store", label="Out")
    )
    assert project.pipeline("P") == expected
    assert project["P"].secrets == ("Store",)
    assert project.secret_names() == ["Store"]
    assert isinstance(project.pipeline("P").plan.nodes[0].op, Numbers)
    assert isinstance(project.pipeline("P").plan.nodes[-1].op, Sink)


def test_original_readme_declarative_example_adapted() -> None:
    # The commented-out declarative example of the original README, with its custom readers
    # (QueryDI/QueryTD) replaced by a user's source and original type names kept.
    text = y(f"""
        version: v1

        alert_managers:
          - name: Email Alert Manager
            type: gmailemailalertmanager
            config:
              email_addresses:
                - alert_email@some_email.something
              mode: mfa
              secrets:
                type: yamlconfigreader
                name: Gmail Secrets

        pipelines:
          - name: Device Inventory
            pipes:
              - name: Query Inventory
                type: {SP}:numbers
                config:
                  secrets_free: true
              - name: Add Total
                type: {SP}:add_total
                config:
                  parents:
                    - Query Inventory
                  cols: [a, b]
    """)
    with pytest.raises(ConfigError, match="unknown config key 'secrets_free' for"):
        load_yaml(text)
    project = load_yaml(text.replace("secrets_free: true", "n: 2"))
    assert project.names() == ["Device Inventory"]
    (alert,) = project.alert_managers
    assert alert.target == "tdm.alerts:email"
    assert alert.defaults["host"] == "smtp.gmail.com"
    assert alert.config["secret"] == "Gmail Secrets"
    assert "Gmail Secrets" in project.secret_names()
    assert tdm.run(project.pipeline()).output["total"].tolist() == [0, 2]


def test_pipeline_drivers_and_original_per_pipe_ids_are_accepted() -> None:
    text = y(f"""
        pipeline_drivers:
          - name: Demo
            pipes:
              - name: Write
                type: union
                config: {{job_id: j, pipeline_id: p, parents: [Rename, Read]}}
              - name: Read
                type: {SP}:numbers
                config: {{job_id: j, pipeline_id: p}}
              - name: Rename
                type: {SP}:scale
                config: {{job_id: j, pipeline_id: p, parents: [Read]}}
    """)
    project = load_yaml(text)
    report = tdm.run(project.pipeline("Demo"))
    assert report.status is tdm.Status.SUCCESS
    assert list(project.pipeline().names()) == ["Read", "Rename", "Write"]
    assert project["Demo"].pipeline_id == "demo"


def test_type_names_are_case_insensitive_and_user_names_do_not_collide() -> None:
    text = y(f"""
        pipelines:
          - name: P
            pipes:
              - {{name: a, type: INPUT}}
              - {{name: b, type: Input}}
              - name: j
                type: JOIN
                config: {{parents: [a, b], on: k}}
              - name: mine
                type: {SP}:Select
                config: {{parents: [j], keep: [k]}}
    """)
    pipeline = load_yaml(text).pipeline()
    out = tdm.run(
        pipeline, inputs={"a": pd.DataFrame({"k": [1], "x": [2]}), "b": pd.DataFrame({"k": [1]})}
    ).output
    assert out.columns.tolist() == ["k"]


def test_params_and_env_substitution() -> None:
    text = y(f"""
        params:
          factor: 3
        pipelines:
          - name: ${{params.name:-Scaled}}
            pipes:
              - {{name: n, type: {SP}:numbers}}
              - name: s
                type: {SP}:scale
                config: {{parents: [n], factor: "${{params.factor}}", how: "${{env.HOW}}"}}
    """)
    project = load_yaml(text, env={"HOW": "div"})
    assert project.names() == ["Scaled"]
    assert project.pipeline() == numbers(label="n") >> scale(factor=3, how="div").named("s")
    project = load_yaml(text, params={"factor": 0.5, "name": "Halved"}, env={"HOW": "mul"})
    assert project.names() == ["Halved"]
    assert project.params == {"factor": 0.5, "name": "Halved"}
    with pytest.raises(
        ConfigError,
        match=r"<yaml text>:9: pipeline 'Scaled', pipe 's': environment variable 'HOW' is not set",
    ):
        load_yaml(text, env={})


def test_interpolation_inside_text_and_escapes_and_secrets_left_alone() -> None:
    text = y(f"""
        params: {{day: "2024-01-02"}}
        pipelines:
          - name: P
            pipes:
              - {{name: n, type: {SP}:numbers}}
              - name: out
                type: {SP}:sink
                config: {{parents: [n], target: "s3://b/${{params.day}}/$${{x}}/${{secrets.token}}"}}
    """)
    op = load_yaml(text).pipeline().plan.nodes[-1].op
    assert isinstance(op, Sink)
    assert op.target == "s3://b/2024-01-02/${x}/${secrets.token}"


def test_load_from_a_path_reports_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("pipelines:\n  - name: P\n    pipes:\n      - {name: x, type: nope}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.file == str(path)
    assert info.value.line == 4
    assert str(info.value).startswith(f"{path}:4: pipeline 'P', pipe 'x': unknown pipe type")


def test_registry_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "tdm_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tdm-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[tdm.pipes]\nscale_it = {SP}:scale\njoin = {SP}:Select\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    entry = registry.lookup("Scale-It")
    assert entry.origin == "entry point (tdm-plugin-demo)"
    assert registry.lookup("join").origin == "built-in"  # built-ins win over plugins
    text = (
        f"pipelines:\n  - name: P\n    pipes:\n      - {{name: n, type: {SP}:numbers}}\n"
        "      - {name: s, type: scale_it, config: {parents: [n], factor: 4}}\n"
    )
    assert load_yaml(text, registry=registry).pipeline() == numbers(label="n") >> scale(
        factor=4
    ).named("s")
    assert "scale_it" in registry.names()


def test_registry_with_types_and_collisions() -> None:
    registry = Registry().with_types({"totals": add_total})
    assert registry.resolve(registry.lookup("totals")) is add_total
    with pytest.raises(ConfigError, match="already a built-in"):
        Registry().with_types({"Join": add_total})


def test_a_missing_builtin_is_a_clear_error() -> None:
    registry = Registry()
    entry = registry.lookup("rename_columns")
    import importlib.util

    if importlib.util.find_spec("tdm.transforms") and hasattr(tdm.transforms, "rename_columns"):
        pytest.skip("rename_columns has landed")
    with pytest.raises(ConfigError, match=r"built-in .* does not provide yet"):
        entry.load()
    text = (
        "pipelines:\n  - name: P\n    pipes:\n      - {name: a, type: input}\n"
        "      - {name: r, type: renamecolumns, config: {parents: [a], column_map: {x: y}}}\n"
    )
    with pytest.raises(ConfigError, match=r":5: pipeline 'P', pipe 'r': type 'rename_columns'"):
        load_yaml(text)


def test_compat_translations_for_original_readers_and_writers() -> None:
    assert translate(
        "file_write:localcsvwriter", {"folder": "out", "filename": "a.csv"}, node="w"
    ) == (
        (),
        {"uri": "out/a.csv", "format": "csv"},
    )
    _, kwargs = translate(
        "file_write:filewriter",
        {
            "filename": "x.parquet",
            "writer": {
                "type": "AzureBlobParquetWriter",
                "config": {
                    "container": "data",
                    "secrets": {"type": "yamlconfigreader", "name": "Az"},
                },
            },
        },
        node="w",
    )
    assert kwargs == {
        "uri": "az://data/x.parquet",
        "format": "parquet",
        "secrets": {"type": "yamlconfigreader", "name": "Az"},
    }
    assert translate("file_read:reads3", {"bucket": "b", "filename": "k.csv"}, node="r")[1] == {
        "uri": "s3://b/k.csv"
    }
    assert translate("file_read:read", {"path": "in.csv", "sep": ";"}, node="r")[1] == {
        "uri": "in.csv",
        "sep": ";",
    }
    with pytest.raises(ConfigError, match="missing the file to write"):
        translate("file_write:filewriter", {"writer": {"type": "localcsvwriter"}}, node="w")
    with pytest.raises(ConfigError, match="unknown writer type 'xmlwriter'"):
        translate("file_write:filewriter", {"writer": {"type": "xmlwriter"}}, node="w")


def test_services_and_settings_parse_into_plain_values() -> None:
    text = y(f"""
        alert_managers:
          - {{name: Null, type: nullalertmanager}}
          - name: Ops
            type: emailalertmanager
            config: {{email_addresses: [ops@example.com], secrets: {{type: env, name: SMTP}}}}
        state_manager:
          type: filestatemanager
          config: {{path: "s3://state/tdm/", secrets: {{type: yamlconfigreader, name: S3}}}}
        secrets:
          order: [env, file]
          aws: {{region: eu-west-1}}
        deploy: {{image: reg/x:1, namespace: data}}
        pipelines:
          - name: P
            schedule: "20 * * * *"
            pipes:
              - {{name: n, type: {SP}:numbers}}
    """)
    project = load_yaml(text)
    assert [a.target for a in project.alert_managers] == ["tdm.alerts:null", "tdm.alerts:email"]
    assert project.alert_managers[1].config == {
        "email_addresses": ["ops@example.com"],
        "secret": "SMTP",
    }
    assert project.state_manager is not None
    assert project.state_manager.target == "tdm.state:files"
    assert project.secret_routes == {"SMTP": "env", "S3": "default"}
    assert project.secrets == {"order": ["env", "file"], "aws": {"region": "eu-west-1"}}
    assert project.deploy == {"image": "reg/x:1", "namespace": "data"}
    assert project["P"].schedule == "20 * * * *"
    assert project.secret_names() == ["S3", "SMTP"]


def test_project_lookup_errors_suggest() -> None:
    project = load_yaml(
        f"pipelines:\n  - name: Device Inventory\n    pipes:\n      - {{name: n, type: {SP}:numbers}}\n"
    )
    with pytest.raises(ConfigError, match="did you mean 'Device Inventory'"):
        project["Device Inventroy"]
    assert project["device-inventory"].name == "Device Inventory"


def test_original_config_keys_map_onto_new_parameters() -> None:
    # `columns:` of the original Select lands on a factory taking *columns, `column_map:` of
    # RenameColumns on the first parameter, whatever the new factories call them.
    registry = Registry().with_types({"pick": f"{SP}:pick", "rename": f"{SP}:rename"})
    from tdm.config.registry import FIRST_POSITIONAL, TypeEntry

    pick = TypeEntry("pick", f"{SP}:pick", renames={"columns": ("columns", FIRST_POSITIONAL)})
    rename = TypeEntry("rename", f"{SP}:rename", renames={"column_map": (FIRST_POSITIONAL,)})
    registry._table[("pipe", "pick")] = pick
    registry._table[("pipe", "rename")] = rename
    text = y(f"""
        pipelines:
          - name: P
            pipes:
              - {{name: n, type: {SP}:numbers}}
              - {{name: p, type: Pick, config: {{parents: [n], columns: [b, a]}}}}
              - {{name: r, type: rename, config: {{parents: [p], column_map: {{a: A}}}}}}
    """)
    out = tdm.run(load_yaml(text, registry=registry).pipeline()).output
    assert out.columns.tolist() == ["b", "A"]
