from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import pytest

from tdm.effects.secrets import (
    ChainSecrets,
    EnvSecrets,
    FileSecrets,
    MappingSecrets,
    Secret,
    default_secrets,
    scrub,
)
from tdm.errors import SecretNotFoundError

VALUE = "pl4nted-s3cret-value-9431"


def test_secret_never_shows_its_value() -> None:
    s = Secret(VALUE)
    for text in (repr(s), str(s), f"{s}", "%s" % (s,), repr([s]), repr({"k": s})):  # noqa: UP031
        assert VALUE not in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        json.dumps({"k": s})
    assert s.reveal() == VALUE


def test_scrub_replaces_every_known_value() -> None:
    Secret(VALUE)
    assert (
        scrub(f"GET https://u:{VALUE}@host failed ({VALUE})")
        == "GET https://u:***@host failed (***)"
    )


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.yml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_file_provider_reads_sections_and_hides_values(tmp_path: Path) -> None:
    path = _write(tmp_path, f"version: 1\nAirWatch:\n  username: api\n  password: {VALUE}\n")
    section = FileSecrets(path).section("AirWatch")
    assert section["password"].reveal() == VALUE and section["username"].reveal() == "api"
    assert VALUE not in repr(section)


def test_file_provider_missing_section_suggests_close_names(tmp_path: Path) -> None:
    path = _write(tmp_path, f"version: 1\nAirWatch:\n  password: {VALUE}\n")
    with pytest.raises(
        SecretNotFoundError, match=r"'Airwatch' not found.*did you mean 'AirWatch'"
    ) as err:
        FileSecrets(path).section("Airwatch")
    assert VALUE not in str(err.value)


def test_file_provider_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFoundError, match="does not exist; create it"):
        FileSecrets(tmp_path / "nope.yml").section("x")


def test_file_provider_bad_yaml_never_quotes_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, f"version: 1\nS3:\n  key: [{VALUE}\n")
    with pytest.raises(SecretNotFoundError, match="not valid YAML") as err:
        FileSecrets(path).section("S3")
    assert VALUE not in str(err.value) and err.value.line is not None


def test_file_provider_warns_when_readable_by_others(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nS3: {key: abcd}\n", mode=0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        FileSecrets(path).section("S3")
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FileSecrets(path).section("S3")


def test_env_provider_and_default_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDM_SECRET__SMTP__PASSWORD", VALUE)
    assert EnvSecrets().section("smtp")["password"].reveal() == VALUE
    _write(tmp_path, "version: 1\nS3:\n  key: from-file\n")
    monkeypatch.setenv("TDM_HOME", str(tmp_path))
    provider = default_secrets()
    assert provider.section("S3")["key"].reveal() == "from-file"
    assert provider.section("SMTP")["password"].reveal() == VALUE
    with pytest.raises(SecretNotFoundError, match="not found in any provider"):
        provider.section("Azure")
    assert os.environ["TDM_HOME"] == str(tmp_path)


def test_chain_prefers_the_first_provider() -> None:
    chain = ChainSecrets(
        MappingSecrets({"a": {"k": "first"}}), MappingSecrets({"a": {"k": "second"}})
    )
    assert chain.section("a")["k"].reveal() == "first"
