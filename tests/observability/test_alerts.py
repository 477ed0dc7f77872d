"""Alerts against real local services: aiosmtpd for email, the fake REST API for webhooks."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm.effects.secrets import MappingSecrets
from tdm.errors import DefinitionError
from tests.observability.conftest import PLANTED, LeakySource, boom, identity
from tests.servers.fixtures import SMTP_PASSWORD, SMTP_USERNAME


def failing() -> tdm.Pipeline:
    src = tdm.inputs.frame("orders")
    return tdm.Pipeline.of(src >> boom() >> identity(), src >> identity().named("other"))


def smtp_secrets(password: str = SMTP_PASSWORD) -> MappingSecrets:
    return MappingSecrets(
        {"SMTP": {"username": SMTP_USERNAME, "password": password}, "API": {"token": PLANTED}}
    )


def test_one_email_per_failed_run_with_what_to_look_at(
    fresh_smtp_server: Any, orders: pd.DataFrame, tmp_path: Any
) -> None:
    alerter = tdm.alerts.email(
        ["ops@example.com", "dev@example.com"],
        host="127.0.0.1",
        port=fresh_smtp_server.port,
        security="none",
        sender="tdm@example.com",
    )
    rt = tdm.Runtime(alerters=[alerter], state=tdm.state.sqlite(tmp_path / "a.db"))
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        runtime=rt,
        run_id="run-42",
        job_id="job-7",
        pipeline_id="orders",
        pipeline_name="Orders nightly",
    )
    assert not report.ok and not report.hook_errors
    ok = tdm.run(tdm.inputs.frame("orders") >> identity(), inputs={"orders": orders}, runtime=rt)
    assert ok.ok
    (msg,) = fresh_smtp_server.wait_for(1)
    mail = fresh_smtp_server.mails[0]
    assert len(fresh_smtp_server.messages) == 1  # the successful run sent nothing
    assert msg["Subject"] == "[tdm] FAILURE: Orders nightly (run run-42)"
    assert sorted(mail.rcpt_tos) == ["dev@example.com", "ops@example.com"]
    assert mail.mail_from == "tdm@example.com"
    body = msg.get_content()
    assert "Pipeline: Orders nightly (id orders)" in body
    assert "Run id: run-42" in body and "Job id: job-7" in body
    assert "Failed nodes: boom: ValueError: column 'price' has text in row 7" in body
    assert "Skipped nodes: 1" in body and "Duration: " in body
    assert f"Audit record: sqlite:{tmp_path / 'a.db'} (run_id run-42)" in body
    assert "Traceback" not in body and "tdm history --pipeline orders" in body


def test_email_login_from_a_secret(smtp_auth_server: Any, orders: pd.DataFrame) -> None:
    smtp_auth_server.clear()
    alerter = tdm.alerts.email(
        "ops@example.com",
        host="127.0.0.1",
        port=smtp_auth_server.port,
        security="none",
        secret="SMTP",
    )
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        runtime=tdm.Runtime(alerters=[alerter], secrets=smtp_secrets()),
    )
    assert not report.hook_errors
    smtp_auth_server.wait_for(1)
    assert smtp_auth_server.mails[0].username == SMTP_USERNAME
    assert smtp_auth_server.mails[0].mail_from == SMTP_USERNAME
    assert SMTP_PASSWORD not in smtp_auth_server.mails[0].data.decode()


def test_smtp_auth_failure_is_recorded_and_never_masks_the_run(
    smtp_auth_server: Any, orders: pd.DataFrame
) -> None:
    smtp_auth_server.clear()
    store = tdm.state.memory()
    alerter = tdm.alerts.email(
        "ops@example.com",
        host="127.0.0.1",
        port=smtp_auth_server.port,
        security="none",
        secret="SMTP",
    )
    webhook_never = tdm.alerts.null()
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        run_id="r-auth",
        runtime=tdm.Runtime(
            alerters=[alerter, webhook_never],
            state=store,
            secrets=smtp_secrets("wrong-password-123"),
        ),
    )
    assert report.status is tdm.Status.FAILURE and "text in row 7" in (report.error or "")
    assert report.outputs["other"].equals(orders)
    (problem,) = report.hook_errors
    assert "refused the login of 'tdm' (535" in problem and "check secret 'SMTP'" in problem
    assert "wrong-password-123" not in problem
    assert smtp_auth_server.messages == []
    attempts = smtp_auth_server.auth_attempts  # smtplib tries each mechanism the server offers
    assert attempts and not any(a.success for a in attempts)
    assert store.get("r-auth").hook_errors == (problem,)


def test_starttls_refused_by_the_server_is_an_alert_error(
    fresh_smtp_server: Any, orders: pd.DataFrame
) -> None:
    alerter = tdm.alerts.email(
        "ops@example.com", host="127.0.0.1", port=fresh_smtp_server.port, security="starttls"
    )
    report = tdm.run(failing(), inputs={"orders": orders}, runtime=tdm.Runtime(alerters=[alerter]))
    assert not report.ok and len(report.hook_errors) == 1
    assert "SMTPNotSupportedError" in report.hook_errors[0]


def test_plain_smtp_with_a_password_is_refused_off_this_machine() -> None:
    alerter = tdm.alerts.email(
        "ops@example.com", host="smtp.example.com", security="none", secret="SMTP"
    )
    from tdm.effects.alerts import Alert

    alert = Alert("failure", "FAILURE", "p", "p", "r", "r", (), "x", 1.0, "now", "memory")
    with pytest.raises(tdm.errors.AlertError, match="unencrypted; use security='starttls'"):
        alerter.send(alert, secrets=smtp_secrets())


def test_success_and_recovery_alerts(fresh_smtp_server: Any, orders: pd.DataFrame) -> None:
    recovery = tdm.alerts.email(
        "ops@example.com",
        host="127.0.0.1",
        port=fresh_smtp_server.port,
        security="none",
        on_recovery=True,
    )
    rt = tdm.Runtime(alerters=[recovery], state=tdm.state.memory())
    good = tdm.inputs.frame("orders") >> identity()
    bad = tdm.inputs.frame("orders") >> boom()
    for p in (good, bad, bad, good, good):
        tdm.run(p, inputs={"orders": orders}, runtime=rt, pipeline_id="flappy")
    subjects = [m["Subject"].split(" (run")[0] for m in fresh_smtp_server.wait_for(3)]
    assert subjects == ["[tdm] FAILURE: flappy", "[tdm] FAILURE: flappy", "[tdm] RECOVERED: flappy"]
    fresh_smtp_server.clear()
    every = tdm.alerts.email(
        "ops@example.com",
        host="127.0.0.1",
        port=fresh_smtp_server.port,
        security="none",
        on_success=True,
        on_failure=False,
    )
    tdm.run(good, inputs={"orders": orders}, runtime=tdm.Runtime(alerters=[every]))
    tdm.run(bad, inputs={"orders": orders}, runtime=tdm.Runtime(alerters=[every]))
    assert [m["Subject"][:18] for m in fresh_smtp_server.wait_for(1)] == ["[tdm] SUCCESS: ide"]


@pytest.mark.parametrize("style", ["slack", "teams", "json"])
def test_webhook_styles(fresh_fake_api: Any, orders: pd.DataFrame, style: str) -> None:
    received: list[Any] = []

    def hook(req: Any) -> Any:
        received.append(req)
        return 200, {"ok": True}

    fresh_fake_api.route("/hooks/ops", hook, methods=["POST"])
    alerter = tdm.alerts.webhook(f"{fresh_fake_api.url}/hooks/ops", style=style)  # type: ignore[arg-type]
    report = tdm.run(
        failing(),
        inputs={"orders": orders},
        run_id="r-web",
        pipeline_id="orders",
        runtime=tdm.Runtime(alerters=[alerter]),
    )
    assert not report.hook_errors
    (req,) = received
    assert req.headers["content-type"] == "application/json"
    body = req.json
    if style == "slack":
        assert body["text"].startswith(":red_circle: [tdm] FAILURE: orders (run r-web)")
        assert "*Failed nodes:* boom: ValueError" in body["blocks"][1]["text"]["text"]
    elif style == "teams":
        card = body["attachments"][0]["content"]
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
        assert facts["Run id"] == "r-web" and facts["Failed nodes"].startswith("boom: ")
    else:
        assert body["run_id"] == "r-web" and body["status"] == "FAILURE"
        assert body["failed_nodes"] == ["boom: ValueError: column 'price' has text in row 7"]
        assert body["skipped"] == 1 and body["kind"] == "failure"


def test_webhook_url_and_token_from_a_secret_and_retries(
    fresh_fake_api: Any, orders: pd.DataFrame
) -> None:
    calls: list[Any] = []

    def flaky(req: Any) -> Any:
        calls.append(req)
        return (503, {"error": "busy"}) if len(calls) == 1 else (204, None)

    fresh_fake_api.route("/secret-hook", flaky, methods=["POST"])
    creds = MappingSecrets(
        {"Hook": {"url": f"{fresh_fake_api.url}/secret-hook", "token": "tok-123456"}}
    )
    alerter = tdm.alerts.webhook(None, style="json", secret="Hook")
    report = tdm.run(
        failing(), inputs={"orders": orders}, runtime=tdm.Runtime(alerters=[alerter], secrets=creds)
    )
    assert not report.hook_errors and len(calls) == 2
    assert calls[-1].headers["authorization"] == "Bearer tok-123456"
    assert alerter.describe() == "json webhook (URL from secret 'Hook')"


def test_a_refused_webhook_is_recorded(fresh_fake_api: Any, orders: pd.DataFrame) -> None:
    fresh_fake_api.route("/gone", lambda req: (404, {"error": "no such hook"}), methods=["POST"])
    alerter = tdm.alerts.webhook(f"{fresh_fake_api.url}/gone", style="slack")
    report = tdm.run(failing(), inputs={"orders": orders}, runtime=tdm.Runtime(alerters=[alerter]))
    assert not report.ok and len(report.hook_errors) == 1
    assert "was refused: HTTP 404" in report.hook_errors[0]
    assert "/gone" not in report.hook_errors[0]  # a Slack URL is a credential: host only
    assert fresh_fake_api.hits("/gone", "POST") == 1


def test_planted_secret_appears_in_no_alert(fresh_smtp_server: Any, fresh_fake_api: Any) -> None:
    received: list[Any] = []
    fresh_fake_api.route(
        "/hook", lambda req: (received.append(req), (200, {}))[1], methods=["POST"]
    )
    alerters = [
        tdm.alerts.email(
            "ops@example.com", host="127.0.0.1", port=fresh_smtp_server.port, security="none"
        ),
        tdm.alerts.webhook(f"{fresh_fake_api.url}/hook", style="json"),
        tdm.alerts.webhook(f"{fresh_fake_api.url}/hook", style="slack"),
        tdm.alerts.webhook(f"{fresh_fake_api.url}/hook", style="teams"),
    ]
    report = tdm.run(
        LeakySource() >> identity(),
        params={"token": PLANTED},
        runtime=tdm.Runtime(alerters=alerters, secrets=smtp_secrets()),
    )
    assert not report.ok and not report.hook_errors
    (msg,) = fresh_smtp_server.wait_for(1)
    assert len(received) == 3
    texts = [fresh_smtp_server.mails[0].data.decode()] + [r.text for r in received]
    for text in texts:
        assert PLANTED not in text
    assert "server rejected token ***" in msg.get_content()
    assert json.loads(received[0].text)["error"].endswith("server rejected token ***")


def test_factories_validate_their_arguments() -> None:
    with pytest.raises(DefinitionError, match="needs an SMTP server"):
        tdm.alerts.email("ops@example.com")
    with pytest.raises(DefinitionError, match="'nobody' is not an email address"):
        tdm.alerts.email("nobody", preset="gmail")
    with pytest.raises(DefinitionError, match="unknown webhook style 'discord'"):
        tdm.alerts.webhook("https://x.test/h", style="discord")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"needs url=\.\.\. or a secret="):
        tdm.alerts.webhook(None)
    with pytest.raises(TypeError, match="takes alerters such as"):
        tdm.run(
            tdm.inputs.frame("x"),
            inputs={"x": pd.DataFrame({"a": [1]})},
            runtime=tdm.Runtime(alerters=["ops@example.com"]),
        )  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"takes a store such as tdm.state.sqlite\(\)"):
        tdm.run(
            tdm.inputs.frame("x"),
            inputs={"x": pd.DataFrame({"a": [1]})},
            runtime=tdm.Runtime(state="s3://bucket/audit"),
        )  # type: ignore[arg-type]
    assert tdm.alerts.gmail("a@b.c", secret="G").security == "ssl"
