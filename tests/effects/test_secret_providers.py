"""Mounted-files, AWS Secrets Manager (moto server), routed and configured providers."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

import tdm
from tdm.config import load_yaml
from tdm.effects.secret_routing import AwsSecrets, RoutedSecrets, providers_from_settings
from tdm.effects.secrets import (
    ChainSecrets,
    DirectorySecrets,
    EnvSecrets,
    FileSecrets,
    MappingSecrets,
    default_secrets,
    scrub,
)
from tdm.errors import SecretNotFoundError


def _mount(root: Path, name: str, **keys: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in keys.items():
        (folder / key).write_text(value)
    # what a Kubernetes secret volume also contains
    (root / "..data").mkdir(exist_ok=True)


def test_directory_provider_reads_mounted_files(tmp_path: Path) -> None:
    _mount(tmp_path, "air-watch", username="api-user\n", password="hunter2-mounted")
    section = DirectorySecrets(tmp_path).section("Air Watch")
    assert sorted(section) == ["password", "username"]
    assert section["username"].reveal() == "api-user"
    assert repr(section["password"]) == "Secret('***')"
    assert scrub("pw=hunter2-mounted") == "pw=***"
    with pytest.raises(SecretNotFoundError, match="did you mean 'air-watch'") as info:
        DirectorySecrets(tmp_path).section("air-wach")
    assert "hunter2" not in str(info.value)
    with pytest.raises(SecretNotFoundError, match="does not exist; mount"):
        DirectorySecrets(tmp_path / "nope").section("x")


def test_default_order_includes_the_directory_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mount(tmp_path, "S3", key="from-dir-1234")
    monkeypatch.setenv("TDM_SECRETS_DIR", str(tmp_path))
    assert default_secrets().section("s3")["key"].reveal() == "from-dir-1234"
    monkeypatch.setenv("TDM_SECRET__S3__KEY", "from-env-1234")
    assert default_secrets().section("S3")["key"].reveal() == "from-env-1234"


@pytest.fixture
def aws(s3_server) -> AwsSecrets:  # type: ignore[no-untyped-def]
    import boto3

    client = boto3.client(
        "secretsmanager", endpoint_url=s3_server.endpoint_url, region_name="us-east-1"
    )
    for name, value in {
        "prod/AirWatch": json.dumps({"username": "aw-user", "password": "aw-pass-9876"}),
        "prod/token": "plain-token-5555",
    }.items():
        try:
            client.create_secret(Name=name, SecretString=value)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=value)
    return AwsSecrets(region="us-east-1", endpoint_url=s3_server.endpoint_url, prefix="prod/")


def test_aws_secrets_manager(aws: AwsSecrets) -> None:
    section = aws.section("AirWatch")
    assert section["username"].reveal() == "aw-user"
    assert aws.section("token")["value"].reveal() == "plain-token-5555"
    assert scrub("token plain-token-5555 aw-pass-9876") == "token *** ***"
    with pytest.raises(SecretNotFoundError, match="did you mean 'AirWatch'") as info:
        aws.section("AirWach")
    assert "aw-pass" not in str(info.value)
    assert "AWS Secrets Manager (us-east-1)" in aws.describe()
    with pytest.raises(TypeError):
        pickle.dumps(section["password"])


def test_aws_unreachable_is_a_clear_error() -> None:
    provider = AwsSecrets(region="us-east-1", endpoint_url="http://127.0.0.1:9", attempts=1)
    with pytest.raises(
        SecretNotFoundError, match="cannot read secret 'x' from AWS Secrets Manager"
    ):
        provider.section("x")


def test_routed_and_configured_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text("version: 1\nDB:\n  password: file-pw-1111\n")
    secrets_file.chmod(0o600)
    monkeypatch.setenv("TDM_SECRET__DB__PASSWORD", "env-pw-2222")
    chain = providers_from_settings({"file": str(secrets_file)})
    assert isinstance(chain, ChainSecrets)
    assert chain.section("DB")["password"].reveal() == "env-pw-2222"  # env first
    routed = providers_from_settings({"file": str(secrets_file)}, routes={"DB": "file"})
    assert isinstance(routed, RoutedSecrets)
    assert routed.section("DB")["password"].reveal() == "file-pw-1111"
    only_file = providers_from_settings({"order": ["file"], "file": str(secrets_file)})
    assert only_file.section("DB")["password"].reveal() == "file-pw-1111"
    r = RoutedSecrets({"X": MappingSecrets({"X": {"k": "v-1234"}})}, EnvSecrets())
    assert r.section("X")["k"].reveal() == "v-1234"


def test_project_routes_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _mount(tmp_path, "warehouse", password="dir-pw-3333")
    text = f"""
secrets:
  directory: {tmp_path}
pipelines:
  - name: P
    pipes:
      - {{name: n, type: tests.config.sample_pipes:numbers}}
      - name: out
        type: tests.config.sample_pipes:sink
        config: {{parents: [n], target: x, secrets: {{type: kubernetes, name: Warehouse}}}}
"""
    project = load_yaml(text)
    assert project.secret_routes == {"Warehouse": "directory"}
    provider = project.secrets_provider()
    assert provider.section("Warehouse")["password"].reveal() == "dir-pw-3333"
    tdm.load(text).validate()  # found: no error


def test_file_provider_warns_when_readable_by_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secrets.yml"
    path.write_text("version: 1\nA: {k: provider-value-7c1f}\n")
    os.chmod(path, 0o644)
    with caplog.at_level("WARNING", logger="tdm.secrets"):
        FileSecrets(path).section("A")
    assert [r.getMessage() for r in caplog.records] == [
        f"secrets file {path} is readable by other users; run: chmod 600 {path}"
    ]
