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


def test_file_provider_warns_when_readable_by_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "version: 1\nS3: {key: abcd}\n", mode=0o644)
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="tdm.secrets"):
        warnings.simplefilter("error")  # a log line, never a raw UserWarning
        FileSecrets(path).section("S3")
        FileSecrets(path).section("S3")  # once per file and process
    assert [r.getMessage() for r in caplog.records] == [
        f"secrets file {path} is readable by other users; run: chmod 600 {path}"
    ]
    caplog.clear()
    (tmp_path / "private").mkdir()
    private = _write(tmp_path / "private", "version: 1\nS3: {key: abcd}\n", mode=0o600)
    with caplog.at_level("WARNING", logger="tdm.secrets"):
        FileSecrets(private).section("S3")
    assert caplog.records == []


def test_the_readable_secrets_file_warning_is_one_clean_line(tmp_path: Path) -> None:
    """What a user sees on stderr from a plain script: the line, no warnings-module source."""
    import subprocess
    import sys

    path = _write(tmp_path, "version: 1\nS3: {key: abcd}\n", mode=0o644)
    script = (
        f"from tdm.effects.secrets import FileSecrets\nFileSecrets({str(path)!r}).section('S3')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stderr == (
        f"secrets file {path} is readable by other users; run: chmod 600 {path}\n"
    )


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


def test_scrub_knows_the_percent_encoded_forms_of_a_value() -> None:
    Secret("acct/42+x=y value")
    assert scrub("GET /a?ref=acct%2F42%2Bx%3Dy%20value") == "GET /a?ref=***"
    assert scrub("POST body ref=acct%2F42%2Bx%3Dy+value") == "POST body ref=***"
    assert scrub("GET /acct/42%2Bx%3Dy%20value") == "GET /***"


class _Refused(Exception):
    def __init__(self, token: str) -> None:
        super().__init__("refused")  # the message is clean; an attribute holds the value
        self.token = token


def _raise_chain(token: str) -> BaseException:
    try:
        try:
            raise _Refused(token)
        except _Refused as inner:
            raise RuntimeError(f"login with {token} failed") from inner
    except RuntimeError as exc:
        return exc


def test_scrub_exception_replaces_a_chain_that_holds_a_secret() -> None:
    import traceback

    from tdm.effects.secrets import ScrubbedError, scrub_exception

    token = "tok-" + VALUE
    Secret(token)
    safe = scrub_exception(_raise_chain(token))
    assert isinstance(safe, ScrubbedError) and safe.type_name == "RuntimeError"
    assert str(safe) == "RuntimeError: login with *** failed"
    assert isinstance(safe.__cause__, ScrubbedError) and "_Refused" in str(safe.__cause__)
    shown = "".join(traceback.format_exception(safe))
    assert "_raise_chain" in shown  # the traceback still says where it happened
    assert token not in shown and token.encode() not in pickle.dumps(safe)
    assert str(pickle.loads(pickle.dumps(safe))) == str(safe)
    # Only an attribute holds it: the exception would pickle it, so it is replaced too.
    assert isinstance(scrub_exception(_Refused(token)), ScrubbedError)
    clean = ValueError("column 'price' has text")
    assert scrub_exception(clean) is clean


def test_a_failed_step_keeps_no_secret_in_its_report() -> None:
    import traceback

    import pandas as pd

    import tdm

    token = "step-" + VALUE
    Secret(token)

    @tdm.transform
    def check(df: pd.DataFrame) -> pd.DataFrame:
        raise PermissionError(f"token {token} expired")

    report = tdm.run(tdm.inputs.frame("x") >> check(), inputs={"x": pd.DataFrame({"a": [1]})})
    error = report.nodes["check"].error
    assert error is not None and error.message == "PermissionError: token *** expired"
    assert error.cause is not None and token not in "".join(traceback.format_exception(error.cause))
    assert token not in repr(report) + report.to_frame().to_string()


def test_a_hook_failing_with_a_secret_leaves_none_in_the_report() -> None:
    import pandas as pd

    import tdm

    token = "hook-" + VALUE
    Secret(token)

    class Strict(tdm.Hook):
        def before_node(self, **kwargs: object) -> None:
            raise RuntimeError(f"token {token} is not allowed here")

    pipeline = tdm.inputs.frame("x") >> tdm.transforms.select(["a"])
    report = tdm.run(
        pipeline, inputs={"x": pd.DataFrame({"a": [1]})}, runtime=tdm.Runtime(hooks=[Strict()])
    )
    assert report.status is tdm.Status.FAILURE
    assert report.error is not None and "token *** is not allowed" in report.error
    assert token not in repr(report) + report.to_frame().to_string()
