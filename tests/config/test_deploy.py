"""``tdm deploy``: every manifest is schema-valid, mounts every secret, says what would fail."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from tdm.cli import cli
from tdm.config import load_yaml
from tdm.config.deploy import deployment, overrides_from_cli, schedule_problem
from tdm.errors import ConfigError

from .manifest_schemas import validate_manifest

SP = "tests.config.sample_pipes"

FULL = textwrap.dedent(f"""\
    alert_managers:
      - name: Ops
        type: emailalertmanager
        config: {{email_addresses: [ops@example.com], secrets: {{type: yamlconfigreader, name: SMTP}}}}
    state_manager:
      type: filestatemanager
      config: {{path: "s3://audit/tdm/", secrets: {{type: yamlconfigreader, name: Audit Store}}}}
    deploy:
      image: registry.example.com/team/pipes:1.4
      namespace: data
      workdir: /app
      service_account: tdm-runner
      image_pull_secrets: [regcred]
      env: {{TZ: Europe/Berlin, LOG_SAMPLE: 5, FEATURE: true}}
      resources: {{requests: {{cpu: 250m, memory: 512Mi}}, limits: {{cpu: 1, memory: 1Gi}}}}
      time_zone: Europe/Berlin
      concurrency_policy: Replace
      starting_deadline_seconds: 120
      active_deadline_seconds: 3600
      backoff_limit: 2
      successful_jobs_history_limit: 5
      failed_jobs_history_limit: 2
    pipelines:
      - name: Nightly
        schedule: "@daily"
        pipes:
          - {{name: n, type: {SP}:numbers}}
          - name: out
            type: {SP}:sink
            config: {{parents: [n], target: "s3://b/x.csv", secrets: {{type: yamlconfigreader, name: Store}}}}
      - name: Hourly Weekdays
        pipeline_id: hourly
        schedule: "15 6-18/2 * * MON-FRI"
        pipes:
          - {{name: n, type: {SP}:numbers}}
""")

MINIMAL = textwrap.dedent(f"""\
    pipelines:
      - name: P
        schedule: "*/10 * * * *"
        pipes:
          - {{name: n, type: {SP}:numbers}}
""")


def pods(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, container) of a CronJob or CronWorkflow."""
    if doc["kind"] == "CronWorkflow":
        spec = doc["spec"]["workflowSpec"]
        return spec, spec["templates"][0]["container"]
    spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


@pytest.mark.parametrize("kind", ["cronjob", "argo"])
@pytest.mark.parametrize("text", [FULL, MINIMAL], ids=["all-settings", "minimal"])
def test_every_manifest_is_schema_valid(kind: Any, text: str) -> None:
    project = load_yaml(text)
    plan = deployment(project, kind=kind, file="pipelines/p.yml", image="reg/x:1")
    assert plan.manifests
    for doc in plan.manifests:
        validate_manifest(doc)
    # the rendered text is what users apply: it parses back to the same documents
    assert list(yaml.safe_load_all(plan.render())) == list(plan.manifests)


def test_the_schemas_reject_what_kubernetes_and_argo_would() -> None:
    """The validators are not vacuous: a misspelt or mistyped field fails each of them."""
    project = load_yaml(FULL)
    cron = dict(deployment(project, kind="cronjob", file="p.yml").manifests[0])
    cron["spec"] = {**cron["spec"], "timezone": "UTC"}  # Kubernetes spells it timeZone
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_manifest(cron)
    argo = dict(deployment(project, kind="argo", file="p.yml").manifests[0])
    argo["spec"] = {**argo["spec"], "timeZone": "UTC"}  # Argo spells it timezone
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(argo)
    argo = dict(deployment(project, kind="argo", file="p.yml").manifests[0])
    spec = argo["spec"]["workflowSpec"]
    container = {**spec["templates"][0]["container"], "resource": {"cpu": 1}}
    argo["spec"] = {
        **argo["spec"],
        "workflowSpec": {**spec, "templates": [{**spec["templates"][0], "container": container}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(argo)  # a Kubernetes container field checked strictly inside Argo


def test_settings_land_in_both_manifests() -> None:
    project = load_yaml(FULL)
    cron, _ = deployment(project, kind="cronjob", file="pipelines/p.yml").manifests
    argo, _ = deployment(project, kind="argo", file="pipelines/p.yml").manifests
    assert cron["spec"]["schedule"] == argo["spec"]["schedule"] == "@daily"
    assert cron["spec"]["timeZone"] == argo["spec"]["timezone"] == "Europe/Berlin"
    for doc in (cron, argo):
        spec = doc["spec"]
        assert spec["concurrencyPolicy"] == "Replace"
        assert spec["startingDeadlineSeconds"] == 120
        assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (5, 2)
        assert doc["metadata"]["namespace"] == "data"
        pod, container = pods(doc)
        assert pod["serviceAccountName"] == "tdm-runner"
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["securityContext"] == {"runAsNonRoot": True}
        assert container["image"] == "registry.example.com/team/pipes:1.4"
        assert container["workingDir"] == "/app"
        assert container["resources"] == {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        }
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {
            "TDM_SECRETS_DIR": "/var/run/secrets/tdm",
            "TZ": "Europe/Berlin",
            "LOG_SAMPLE": "5",
            "FEATURE": "true",
        }
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 2
    assert argo["spec"]["workflowSpec"]["activeDeadlineSeconds"] == 3600
    assert argo["spec"]["workflowSpec"]["templates"][0]["retryStrategy"] == {"limit": 2}


def test_every_secret_the_job_uses_is_mounted() -> None:
    """Pipes, alert managers and the state store: `tdm run` checks them all before starting."""
    project = load_yaml(FULL)
    plan = deployment(project, kind="cronjob", file="p.yml")
    assert plan.secrets == ("Audit Store", "SMTP", "Store")
    for doc in plan.manifests:
        pod, container = pods(doc)
        assert [v["secret"]["secretName"] for v in pod["volumes"]] == [
            "tdm-audit-store",
            "tdm-smtp",
            "tdm-store",
        ]
        assert [m["mountPath"] for m in container["volumeMounts"]] == [
            "/var/run/secrets/tdm/audit-store",
            "/var/run/secrets/tdm/smtp",
            "/var/run/secrets/tdm/store",
        ]
        assert all(m["readOnly"] for m in container["volumeMounts"])
    text = plan.render()
    for name in ("tdm-audit-store", "tdm-smtp", "tdm-store"):
        assert f"kubectl create secret generic {name} " in text
    assert plan.warnings == ()  # remote audit store, every secret mounted


def test_a_mounted_secret_is_found_by_the_pod_provider(tmp_path: Path) -> None:
    """The mount layout is what tdm's directory provider reads (names match loosely)."""
    from tdm.effects.secrets import DirectorySecrets

    project = load_yaml(FULL)
    (doc, _) = deployment(project, kind="cronjob", file="p.yml").manifests
    _, container = pods(doc)
    root = tmp_path / "secrets"
    for mount in container["volumeMounts"]:
        folder = root / Path(mount["mountPath"]).name
        folder.mkdir(parents=True)
        (folder / "key").write_text("v\n")
    provider = DirectorySecrets(root)
    for name in project.secret_names():
        assert provider.section(name)["key"].reveal() == "v"


def test_routed_secrets_are_not_mounted_and_say_why() -> None:
    project = load_yaml(
        textwrap.dedent(f"""\
            pipelines:
              - name: P
                schedule: "@hourly"
                pipes:
                  - {{name: n, type: {SP}:numbers}}
                  - name: a
                    type: {SP}:sink
                    config: {{parents: [n], target: x, secrets: {{type: aws, name: Cloud}}}}
                  - name: b
                    type: {SP}:sink
                    config: {{parents: [n], target: y, secrets: {{type: file, name: Local}}}}
        """)
    )
    plan = deployment(project, kind="cronjob", file="p.yml", image="x")
    assert plan.secrets == ()  # AWS secrets come from AWS; a secrets file never enters a pod
    assert any("'Local' is read from the secrets file" in w for w in plan.warnings)
    assert not any("'Cloud'" in w for w in plan.warnings)


def test_secrets_order_without_directory_warns() -> None:
    project = load_yaml("secrets: {order: [env, file]}\n" + FULL)
    plan = deployment(project, kind="cronjob", file="p.yml")
    assert any("leaves out `directory`" in w for w in plan.warnings)


def test_container_local_audit_store_warns_and_state_flag_fixes_it() -> None:
    project = load_yaml(MINIMAL)
    plan = deployment(project, kind="cronjob", file="p.yml", image="x")
    assert any("defaults to SQLite" in w and "--state" in w for w in plan.warnings)
    sqlite = load_yaml("state_manager: {type: sqlitestatemanager}\n" + MINIMAL)
    plan = deployment(sqlite, kind="cronjob", file="p.yml", image="x")
    assert any("keeps the audit trail in the container" in w for w in plan.warnings)
    remote = project.with_state("az://audit/tdm", "Blob")
    plan = deployment(
        remote, kind="cronjob", file="p.yml", image="x", state=("az://audit/tdm", "Blob")
    )
    assert plan.warnings == ()
    assert plan.secrets == ("Blob",)
    _, container = pods(plan.manifests[0])
    assert container["args"][-4:] == ["--state", "az://audit/tdm", "--state-secret", "Blob"]


def test_cli_overrides_and_their_errors(tmp_path: Path) -> None:
    assert overrides_from_cli(
        ["active_deadline_seconds=600", "env.MODE=prod"], limits="memory=2Gi"
    ) == {
        "active_deadline_seconds": 600,
        "env": {"MODE": "prod"},
        "resources": {"limits": {"memory": "2Gi"}},
    }
    project = load_yaml(FULL)
    plan = deployment(
        project,
        kind="cronjob",
        file="p.yml",
        overrides=overrides_from_cli(["time_zone=UTC"], requests="cpu=2"),
    )
    doc = plan.manifests[0]
    _, container = pods(doc)
    assert doc["spec"]["timeZone"] == "UTC"
    # a nested override merges with the file's settings
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "512Mi"}
    with pytest.raises(ConfigError, match=r"quantity such as 500m.*given on the command line"):
        deployment(
            project,
            kind="cronjob",
            file="p.yml",
            overrides={"resources": {"limits": {"memory": "lots"}}},
        )
    path = tmp_path / "p.yml"
    path.write_text(MINIMAL)
    result = CliRunner().invoke(
        cli, ["deploy", "cronjob", str(path), "--image", "x", "--set", "time_zone=Mars/Base"]
    )
    assert result.exit_code == 2
    assert "unknown time zone 'Mars/Base'" in result.stderr


@pytest.mark.parametrize(
    ("setting", "message", "line"),
    [
        (
            "  resources: {limits: {memroy: 1Gi}}",
            "unknown resource 'memroy'; did you mean 'memory'?",
            2,
        ),
        ("  time_zone: Europe/Berln", "did you mean 'Europe/Berlin'", 2),
        ("  backoff_limit: -1", "`deploy.backoff_limit` must be a whole number >= 0", 2),
        ("  env: {TDM_SECRET__DB__PASSWORD: hunter2}", "plain text", 2),
        ("  namespace: Data_Team", "must be a namespace name", 2),
        ("  image: x\n  imagee: y", "unknown key 'imagee' in `deploy`; did you mean 'image'?", 3),
    ],
)
def test_bad_deploy_settings_fail_validate_with_file_and_line(
    tmp_path: Path, setting: str, message: str, line: int
) -> None:
    path = tmp_path / "p.yml"
    path.write_text(f"deploy:\n{setting}\n{MINIMAL}")
    result = CliRunner().invoke(cli, ["validate", str(path), "--no-secrets"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ConfigError: {path}:{line}:"), result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "schedule",
    ["@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@annually", "@midnight",
     "0 6 * * *", "*/5 * * * *", "0 0 1,15 * *", "30 2 * JAN-MAR SUN", "0 9-17/2 ? * 1-5"],
)  # fmt: skip
def test_accepted_schedules(schedule: str) -> None:
    assert schedule_problem(schedule) is None
    project = load_yaml(MINIMAL.replace('"*/10 * * * *"', f'"{schedule}"'))
    for kind in ("cronjob", "argo"):
        (doc,) = deployment(project, kind=kind, file="p.yml", image="x").manifests  # type: ignore[arg-type]
        validate_manifest(doc)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('"@dayly"', "did you mean '@daily'"),
        ('"@every 1h"', "write an interval as a cron step"),
        ('"every hour"', "a cron expression with 5 fields"),
        ('"0 0 * * * *"', "(6 fields)"),
        ('"61 * * * *"', "61 is out of range 0-59"),
        ('"0 6 * * FUNDAY"', "'FUNDAY' is not a number or a name"),
        ('"TZ=UTC 0 6 * * *"', "deploy: {time_zone"),
        ("20", "quote it in YAML"),
    ],
)
def test_rejected_schedules_say_what_to_write(schedule: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(MINIMAL.replace('"*/10 * * * *"', schedule))
    assert message in str(info.value)
    assert "line 3" in str(info.value) or ":3:" in str(info.value)
    if not schedule.startswith(('"20', "20")):
        assert "quote it" not in str(info.value)  # the old, misleading hint
