"""Email alerts over real TLS: aiosmtpd with a throwaway CA, SMTP over SSL and STARTTLS + AUTH.

The certificate (for 127.0.0.1 and localhost) is made in the session by ``tls_files``; the
servers are ``smtp_ssl_server`` (implicit TLS) and ``smtp_starttls_server`` (STARTTLS required,
AUTH offered only after it), both in tests/servers/fixtures.py.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pytest

import tdm
from tdm.effects.alerts import Alert
from tdm.effects.secrets import MappingSecrets
from tdm.errors import DefinitionError
from tests.observability.conftest import PLANTED, boom, identity
from tests.servers.fixtures import (
    SMTP_PASSWORD,
    SMTP_USERNAME,
    SmtpServer,
    TlsFiles,
    make_tls_files,
)

Mode = Literal["ssl", "starttls"]
MODES: tuple[Mode, ...] = ("ssl", "starttls")
WRONG = "wrong-Passw0rd-5150"


def failing() -> tdm.Pipeline:
    src = tdm.inputs.frame("orders")
    return tdm.Pipeline.of(src >> boom() >> identity(), src >> identity().named("other"))


def smtp_secrets(password: str = SMTP_PASSWORD) -> MappingSecrets:
    return MappingSecrets(
        {"SMTP": {"username": SMTP_USERNAME, "password": password}, "API": {"token": PLANTED}}
    )


def server_for(request: pytest.FixtureRequest, mode: Mode) -> SmtpServer:
    server: SmtpServer = request.getfixturevalue(f"smtp_{mode}_server")
    server.clear()
    return server


def alerter(server: SmtpServer, mode: Mode, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"host": "127.0.0.1", "secret": "SMTP"}
    options.update(kwargs)
    return tdm.alerts.email("ops@example.com", port=server.port, security=mode, **options)


def forms(secret: str) -> list[str]:
    """The value and the encodings AUTH PLAIN / LOGIN would put on the wire."""
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(b"\0" + SMTP_USERNAME.encode() + b"\0" + raw).decode(),
    ]


def assert_nowhere(secret: str, *texts: str) -> None:
    for text in texts:
        for form in forms(secret):
            assert form not in text


class _Raw(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.__dict__}")


@pytest.fixture
def raw_tdm_logs(log_stream: io.StringIO) -> Iterator[_Raw]:
    """Every record of tdm's loggers as logged, before any handler's secret scrubbing (a
    handler on the "tdm" logger runs before the root's, whose SecretFilter edits records)."""
    handler = _Raw()
    logging.getLogger("tdm").addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger("tdm").removeHandler(handler)


@pytest.mark.parametrize("mode", MODES)
def test_failed_run_alert_is_delivered_over_tls_with_login_from_a_secret(
    request: pytest.FixtureRequest,
    mode: Mode,
    tls_files: TlsFiles,
    orders: pd.DataFrame,
    log_stream: io.StringIO,
    raw_tdm_logs: _Raw,
) -> None:
    server = server_for(request, mode)
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        run_id=f"run-{mode}",
        pipeline_id="orders",
        runtime=tdm.Runtime(
            alerters=[alerter(server, mode, ca_file=tls_files.ca_file)], secrets=smtp_secrets()
        ),
    )
    assert report.status is tdm.Status.FAILURE and "text in row 7" in (report.error or "")
    assert report.hook_errors == []
    (msg,) = server.wait_for(1)
    (mail,) = server.mails
    assert mail.tls in {"TLSv1.2", "TLSv1.3"}  # it came over TLS, not in the clear
    assert mail.username == SMTP_USERNAME and mail.mail_from == SMTP_USERNAME
    assert [(a.username, a.success) for a in server.auth_attempts] == [(SMTP_USERNAME, True)]
    assert msg["Subject"] == f"[tdm] FAILURE: orders (run run-{mode})"
    assert "Failed nodes: boom: ValueError: column 'price' has text in row 7" in msg.get_content()
    logs = log_stream.getvalue()
    assert '"event": "alert_sent"' in logs and f"via 127.0.0.1:{server.port}" in logs
    raw = "\n".join(raw_tdm_logs.lines)
    assert "failure alert sent via email to ops@example.com" in raw  # the handler sees tdm's logs
    assert_nowhere(SMTP_PASSWORD, mail.data.decode(), logs, raw, str(report))
    assert PLANTED not in mail.data.decode()


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_password_over_tls_is_recorded_and_never_masks_the_run(
    request: pytest.FixtureRequest,
    mode: Mode,
    tls_files: TlsFiles,
    orders: pd.DataFrame,
    log_stream: io.StringIO,
    raw_tdm_logs: _Raw,
) -> None:
    server = server_for(request, mode)
    store = tdm.state.memory()
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        run_id=f"r-auth-{mode}",
        runtime=tdm.Runtime(
            alerters=[alerter(server, mode, ca_file=str(tls_files.ca_file))],
            state=store,
            secrets=smtp_secrets(WRONG),
        ),
    )
    assert report.status is tdm.Status.FAILURE and "text in row 7" in (report.error or "")
    assert report.outputs["other"].equals(orders)
    (problem,) = report.hook_errors
    assert f"127.0.0.1:{server.port} refused the login of 'tdm' (535" in problem
    assert "check secret 'SMTP'" in problem
    assert server.messages == []
    assert server.auth_attempts and not any(a.success for a in server.auth_attempts)
    record = store.get(f"r-auth-{mode}")
    assert record.status == "FAILURE" and record.hook_errors == (problem,)
    logs = log_stream.getvalue()
    assert '"event": "alert_failed"' in logs
    raw = "\n".join(raw_tdm_logs.lines)
    assert "refused the login of 'tdm'" in raw
    assert_nowhere(WRONG, problem, logs, raw, str(report), str(record))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trust", ["system", "other CA"])
def test_an_untrusted_certificate_is_refused_before_the_password_is_sent(
    request: pytest.FixtureRequest,
    mode: Mode,
    trust: str,
    tls_files: TlsFiles,
    orders: pd.DataFrame,
) -> None:
    server = server_for(request, mode)
    ca_file = None if trust == "system" else tls_files.other_ca_file
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        runtime=tdm.Runtime(
            alerters=[alerter(server, mode, ca_file=ca_file)], secrets=smtp_secrets()
        ),
    )
    assert report.status is tdm.Status.FAILURE and "text in row 7" in (report.error or "")
    (problem,) = report.hook_errors
    trusted = "the system's CAs" if ca_file is None else f"ca_file '{ca_file}'"
    assert (
        f"email alert via 127.0.0.1:{server.port}: refused the server's TLS certificate "
        f"(unable to get local issuer certificate): it is not signed by {trusted}; "
        "if the server uses a private or self-signed CA, pass ca_file='/path/to/ca.pem'"
    ) in problem
    assert server.auth_attempts == [] and server.messages == []  # nothing left the client


def test_a_certificate_for_another_name_is_refused(
    tmp_path: Path, tls_files: TlsFiles, orders: pd.DataFrame
) -> None:
    certs = make_tls_files(tmp_path, hosts=("localhost",))  # no 127.0.0.1 in it
    server = SmtpServer(
        username=SMTP_USERNAME, password=SMTP_PASSWORD, tls="starttls", certs=certs
    ).start()
    try:
        by_ip = alerter(server, "starttls", ca_file=certs.ca_file)
        report = tdm.run(
            failing(),
            inputs={"orders": orders},
            runtime=tdm.Runtime(alerters=[by_ip], secrets=smtp_secrets()),
        )
        (problem,) = report.hook_errors
        assert "refused the server's TLS certificate (IP address mismatch" in problem
        assert "connect with a host name the certificate names (host=...)" in problem
        assert server.auth_attempts == [] and server.messages == []
        by_name = alerter(server, "starttls", ca_file=certs.ca_file, host="localhost")
        report = tdm.run(
            failing(),
            inputs={"orders": orders},
            runtime=tdm.Runtime(alerters=[by_name], secrets=smtp_secrets()),
        )
        assert report.hook_errors == []
        assert server.wait_for(1) and server.mails[0].tls is not None
    finally:
        server.stop()


def test_ssl_cert_file_extends_the_default_trust(
    smtp_ssl_server: SmtpServer, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_ssl_server.clear()
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_file))
    alert = Alert("failure", "FAILURE", "p", "P", "r1", "r1", (), "x", 1.0, "now", "memory")
    alerter(smtp_ssl_server, "ssl").send(alert, secrets=smtp_secrets())
    (msg,) = smtp_ssl_server.wait_for(1)
    assert msg["X-Tdm-Run-Id"] == "r1"


def test_verification_is_on_by_default() -> None:
    import ssl

    for a in (
        tdm.alerts.gmail("ops@example.com", secret="G"),
        tdm.alerts.outlook("ops@example.com", secret="O"),
        tdm.alerts.email("ops@example.com", host="smtp.example.com"),
    ):
        context = a.tls_context()
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_ca_file_problems_are_clear_errors(
    smtp_starttls_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_starttls_server.clear()
    alert = Alert("failure", "FAILURE", "p", "P", "r", "r", (), "x", 1.0, "now", "memory")
    missing = tmp_path / "nope.pem"
    with pytest.raises(tdm.errors.AlertError, match=r"ca_file '.*nope\.pem' of the email alerter "
                       r"does not exist; give the PEM file of the CA"):  # fmt: skip
        alerter(smtp_starttls_server, "starttls", ca_file=missing).send(
            alert, secrets=smtp_secrets()
        )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(tdm.errors.AlertError, match=r"junk\.pem' of the email alerter holds no "
                       r"usable CA certificate \(PEM expected\)"):  # fmt: skip
        alerter(smtp_starttls_server, "starttls", ca_file=junk).send(alert, secrets=smtp_secrets())
    assert smtp_starttls_server.auth_attempts == []
    with pytest.raises(DefinitionError, match="ca_file= needs security='ssl' or 'starttls'"):
        tdm.alerts.email("ops@example.com", host="127.0.0.1", security="none", ca_file=junk)


def test_the_wrong_security_for_the_port_is_a_clear_error(
    smtp_server: SmtpServer,
    smtp_starttls_server: SmtpServer,
    tls_files: TlsFiles,
) -> None:
    alert = Alert("failure", "FAILURE", "p", "P", "r", "r", (), "x", 1.0, "now", "memory")
    smtp_server.clear()
    smtp_starttls_server.clear()
    ssl_to_plain = alerter(smtp_server, "ssl", secret=None, ca_file=tls_files.ca_file)
    with pytest.raises(tdm.errors.AlertError) as info:
        ssl_to_plain.send(alert)
    assert f"127.0.0.1:{smtp_server.port}: the TLS handshake failed at connecting" in str(
        info.value
    )
    assert f"check that port {smtp_server.port} speaks security='ssl'" in str(info.value)
    clear = tdm.alerts.email(
        "ops@example.com", host="127.0.0.1", port=smtp_starttls_server.port, security="none",
        secret="SMTP",
    )  # fmt: skip
    with pytest.raises(tdm.errors.AlertError) as info:
        clear.send(alert, secrets=smtp_secrets())
    assert "failed at login: SMTPNotSupportedError: SMTP AUTH extension not supported by " in (
        str(info.value)
    )
    assert "offers no AUTH in the clear: use security='starttls'" in str(info.value)
    assert smtp_starttls_server.auth_attempts == []  # the password never went out in the clear
    assert smtp_server.messages == [] and smtp_starttls_server.messages == []


def test_ca_file_from_yaml_settings(tmp_path: Path, tls_files: TlsFiles) -> None:
    from tdm.config.loader import load_settings
    from tdm.config.registry import default_registry
    from tdm.config.services import build_service

    settings = tmp_path / "config.yml"
    settings.write_text(
        "alert_managers:\n"
        "  - name: Ops\n"
        "    type: emailalertmanager\n"
        "    config:\n"
        "      email_addresses: [ops@example.com]\n"
        "      host: 127.0.0.1\n"
        "      starttls: true\n"
        f"      ca_file: {tls_files.ca_file}\n"
        "      secrets: {type: env, name: SMTP}\n"
    )
    (spec,) = load_settings(settings).alert_managers
    built = build_service(spec, "alert", default_registry())
    assert built.ca_file == str(tls_files.ca_file)
    assert (built.security, built.port, built.secret) == ("starttls", 587, "SMTP")
