"""Alerts: tell someone when a run fails (and optionally when it succeeds or recovers).

An :class:`Alert` is built by the interpreter from the run's report: pipeline, run and job
ids, the failed nodes with their one-line errors, the error summary, the duration and where to
look (audit store, ids to search the logs for). It never holds a secret value or a traceback.
Alerters send it: :class:`EmailAlerter` (SMTP over SSL or STARTTLS, login from a secret),
:class:`WebhookAlerter` (Slack, Microsoft Teams or generic JSON, via httpx) and
:class:`NullAlerter`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from tdm.core.effect import SecretNeed
from tdm.effects.secrets import Secret, SecretsProvider, default_secrets, scrub
from tdm.errors import AlertError

if TYPE_CHECKING:
    import ssl

__all__ = ["Alert", "Alerter", "EmailAlerter", "NullAlerter", "WebhookAlerter"]

Kind = Literal["failure", "success", "recovery"]
_MAX_ERROR: Final = 500
# OpenSSL verify codes meaning "no trusted CA signed this": unable to get issuer certificate
# (locally), self-signed certificate (in the chain), unable to verify the first certificate.
_UNKNOWN_ISSUER: Final = frozenset({2, 18, 19, 20, 21})


def _short(text: str | None, limit: int = _MAX_ERROR) -> str:
    if not text:
        return ""
    text = scrub(str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class Alert:
    """What an alerter sends: a summary of one run, with no secret and no traceback.

    >>> a = Alert("failure", "FAILURE", "orders", "Orders", "r1", "r1", ("load: file missing",),
    ...           "load: file missing", 1.5, "2026-01-01T00:00:00+00:00", "memory")
    >>> a.subject
    '[tdm] FAILURE: Orders (run r1)'
    """

    kind: Kind
    status: str
    pipeline_id: str
    pipeline_name: str
    run_id: str
    job_id: str
    failed: tuple[str, ...]
    error: str | None
    duration_s: float | None
    started_at: str
    audit: str
    host: str = ""
    nodes: int = 0
    skipped: int = 0
    drift: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """A one-line title."""
        word = {"failure": "FAILURE", "success": "SUCCESS", "recovery": "RECOVERED"}[self.kind]
        return f"[tdm] {word}: {self.pipeline_name} (run {self.run_id})"

    def facts(self) -> list[tuple[str, str]]:
        """Label/value pairs: pipeline, ids, timing, failed nodes, where to look."""
        took = f"{self.duration_s:.3f} s" if self.duration_s is not None else "unknown"
        out = [
            ("Pipeline", f"{self.pipeline_name} (id {self.pipeline_id})"),
            ("Status", self.status),
            ("Run id", self.run_id),
            ("Job id", self.job_id),
            ("Started", self.started_at),
            ("Duration", took),
        ]
        if self.host:
            out.append(("Host", self.host))
        if self.failed:
            out.append(("Failed nodes", "; ".join(_short(f, 300) for f in self.failed)))
        if self.skipped:
            out.append(("Skipped nodes", str(self.skipped)))
        if self.error:
            out.append(("Error", _short(self.error)))
        if self.drift:
            out.append(("Schema drift", "; ".join(_short(d, 300) for d in self.drift)))
        out.append(("Audit record", f"{self.audit} (run_id {self.run_id})"))
        out.append(("Logs", f"search for run_id={self.run_id}"))
        return out

    def text(self) -> str:
        """The plain-text body."""
        lines = [self.subject, ""]
        lines += [f"{label}: {value}" for label, value in self.facts()]
        if self.kind == "failure":
            lines += ["", f"History: tdm history --pipeline {self.pipeline_id}"]
        return scrub("\n".join(lines)) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the generic webhook body)."""
        return {
            "kind": self.kind,
            "status": self.status,
            "subject": scrub(self.subject),
            "pipeline_id": self.pipeline_id,
            "pipeline_name": self.pipeline_name,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "failed_nodes": [_short(f, 300) for f in self.failed],
            "error": _short(self.error) or None,
            "duration_s": self.duration_s,
            "started_at": self.started_at,
            "host": self.host,
            "nodes": self.nodes,
            "skipped": self.skipped,
            "drift": [_short(d, 300) for d in self.drift],
            "audit": self.audit,
        }


class Alerter:
    """Base class of alerters: :meth:`send` an :class:`Alert`; say which kinds it wants.

    Attributes:
        on_failure / on_success / on_recovery: which runs to alert on (a recovery is a
            successful run whose previous run of the same pipeline failed).
    """

    on_failure: bool = True
    on_success: bool = False
    on_recovery: bool = False

    def wants(self, kind: Kind) -> bool:
        """Whether this alerter fires for ``kind``."""
        if kind == "failure":
            return self.on_failure
        if kind == "success":
            return self.on_success
        return self.on_recovery or self.on_success

    def send(self, alert: Alert, *, secrets: SecretsProvider | None = None) -> None:
        """Deliver ``alert``; raise :class:`~tdm.errors.AlertError` saying why it failed."""
        raise NotImplementedError

    def describe(self) -> str:
        """The alerter for messages (never a secret)."""
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class NullAlerter(Alerter):
    """Sends nothing (the original ``nullalertmanager``)."""

    on_failure: bool = True
    on_success: bool = False
    on_recovery: bool = False

    def send(self, alert: Alert, *, secrets: SecretsProvider | None = None) -> None:
        return None

    def describe(self) -> str:
        return "null"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _first(section: Mapping[str, Secret], *keys: str) -> Secret | None:
    lowered = {k.lower(): v for k, v in section.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


@dataclass(frozen=True, slots=True)
class EmailAlerter(Alerter):
    """Email over SMTP: ``security="ssl"`` (port 465), ``"starttls"`` (587) or ``"none"``.

    The login comes from the secret section ``secret``: ``username`` (or the original
    ``sender``) and ``password`` (or the original ``app_password``). ``"none"`` sends in the
    clear and is refused with a login unless the server is on this machine.

    With ``"ssl"`` and ``"starttls"`` the server's certificate is always verified, against the
    system's CAs (or ``$SSL_CERT_FILE``), or only against ``ca_file`` (a PEM bundle) for a
    server with a private CA.
    """

    to: tuple[str, ...]
    host: str
    port: int
    security: Literal["ssl", "starttls", "none"] = "starttls"
    secret: str | None = None
    sender: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None
    on_failure: bool = True
    on_success: bool = False
    on_recovery: bool = False
    preset: str | None = field(default=None, compare=False)

    def secret_needs(self) -> tuple[SecretNeed, ...]:
        """The login keys the secret must hold (names only)."""
        if self.secret is None:
            return ()
        return (SecretNeed(self.secret, ("username", "user", "login", "sender"), True),
                SecretNeed(self.secret, ("password", "app_password"), True))  # fmt: skip

    def _login(self, secrets: SecretsProvider | None) -> tuple[str, str] | None:
        if self.secret is None:
            return None
        provider = secrets if secrets is not None else default_secrets()
        section = provider.section(self.secret)
        user = _first(section, "username", "user", "login", "sender")
        password = _first(section, "password", "app_password")
        if user is None or password is None:
            raise AlertError(
                f"secret {self.secret!r} for the email alerter needs keys 'username' (or "
                f"'sender') and 'password' (or 'app_password'); it has: "
                f"{', '.join(sorted(section)) or 'none'}"
            )
        return user.reveal(), password.reveal()

    def _message(self, alert: Alert, sender: str) -> Any:
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["Subject"] = scrub(alert.subject)
        msg["From"] = sender
        msg["To"] = ", ".join(self.to)
        msg["X-Tdm-Run-Id"] = alert.run_id
        msg.set_content(alert.text())
        return msg

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context: certificate and host name verified, ``ca_file`` if given.

        >>> EmailAlerter(("a@b.c",), "smtp.example.com", 587).tls_context().check_hostname
        True
        """
        import os
        import ssl

        if self.ca_file is None:
            return ssl.create_default_context()
        path = os.path.expanduser(self.ca_file)
        if not os.path.exists(path):
            raise AlertError(
                f"ca_file {self.ca_file!r} of the email alerter does not exist; give the PEM "
                "file of the CA that signed the SMTP server's certificate"
            )
        try:
            return ssl.create_default_context(cafile=path)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise AlertError(
                f"ca_file {self.ca_file!r} of the email alerter holds no usable CA "
                f"certificate (PEM expected): {_short(str(exc), 200)}"
            ) from None

    def send(self, alert: Alert, *, secrets: SecretsProvider | None = None) -> None:
        import smtplib
        import ssl

        login = self._login(secrets)
        if login is not None and self.security == "none" and not _is_loopback(self.host):
            raise AlertError(
                f"refusing to send the SMTP password to {self.host} unencrypted; "
                "use security='starttls' or 'ssl'"
            )
        context = self.tls_context() if self.security != "none" else None
        sender = self.sender or (login[0] if login else None) or f"tdm@{alert.host or 'localhost'}"
        message = self._message(alert, sender)
        where = f"{self.host}:{self.port}"
        step = "connecting"
        smtp: smtplib.SMTP | None = None
        try:
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                step = "STARTTLS"
                smtp.starttls(context=context)
            if login is not None:
                step = "login"
                smtp.login(*login)
            step = "sending"
            smtp.send_message(message)
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()  # the mail is accepted: a failed goodbye is no failure
        except smtplib.SMTPAuthenticationError as exc:
            user = login[0] if login else "?"
            raise AlertError(
                f"email alert: {where} refused the login of {user!r} "
                f"({exc.smtp_code} {_reply(exc.smtp_error)}); check secret {self.secret!r}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise AlertError(self._untrusted(where, exc)) from None
        except ssl.SSLError as exc:
            raise AlertError(
                f"email alert via {where}: the TLS handshake failed at {step} "
                f"({exc.reason or _short(str(exc), 200)}); check that port {self.port} speaks "
                f"security={self.security!r} (usually 465 = 'ssl', 587 = 'starttls')"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            hint = ""
            if step == "STARTTLS":
                hint = "; the server does not offer STARTTLS: use security='ssl' if it is TLS-only"
            elif step == "login" and self.security == "none":
                hint = "; the server offers no AUTH in the clear: use security='starttls'"
            elif step == "login":
                hint = "; the server offers no AUTH: check its settings, or drop secret="
            raise AlertError(
                f"email alert to {', '.join(self.to)} via {where} failed at {step}: "
                f"SMTPNotSupportedError: {_short(str(exc), 200).rstrip('.')}{hint}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            hint = ""
            if step == "connecting" and self.security != "ssl" and "timed out" in str(exc):
                hint = (
                    f"; no SMTP greeting within {self.timeout:g} s: if port {self.port} is "
                    "SMTP over SSL (usually 465), use security='ssl'"
                )
            raise AlertError(
                f"email alert to {', '.join(self.to)} via {where} failed at {step}: "
                f"{type(exc).__name__}: {_short(str(exc), 200)}{hint}"
            ) from None
        finally:
            if smtp is not None:
                smtp.close()

    def _untrusted(self, where: str, exc: ssl.SSLCertVerificationError) -> str:
        reason = exc.verify_message or exc.reason or str(exc)
        head = f"email alert via {where}: refused the server's TLS certificate ({reason})"
        if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH
            return (
                f"{head}; connect with a host name the certificate names (host=...), "
                "not an alias or an IP address it does not list"
            )
        if exc.verify_code not in _UNKNOWN_ISSUER:
            return head
        trusted = f"ca_file {self.ca_file!r}" if self.ca_file else "the system's CAs"
        return (
            f"{head}: it is not signed by {trusted}; if the server uses a private or "
            "self-signed CA, pass ca_file='/path/to/ca.pem' (its CA certificate, PEM)"
        )

    def describe(self) -> str:
        name = f"{self.preset} " if self.preset else ""
        return f"{name}email to {', '.join(self.to)} via {self.host}:{self.port}"


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return _short(text, 200)


def _slack(alert: Alert) -> dict[str, Any]:
    icon = {
        "failure": ":red_circle:",
        "success": ":white_check_mark:",
        "recovery": ":large_green_circle:",
    }
    facts = "\n".join(f"*{label}:* {value}" for label, value in alert.facts())
    return {
        "text": f"{icon[alert.kind]} {alert.subject}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts[:2900]}},
        ],
    }


def _teams(alert: Alert) -> dict[str, Any]:
    colour = {"failure": "Attention", "success": "Good", "recovery": "Good"}[alert.kind]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": alert.subject,
                "weight": "Bolder",
                "size": "Medium",
                "color": colour,
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in alert.facts()],
            },
        ],
    }
    return {
        "type": "message",
        "summary": alert.subject,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


@dataclass(frozen=True, slots=True)
class WebhookAlerter(Alerter):
    """An HTTP POST of the alert as JSON: Slack blocks, a Teams Adaptive Card, or plain JSON.

    The secret section (optional) may hold ``url`` (the webhook URL itself, since Slack and
    Teams URLs are credentials) and ``token`` (sent as ``Authorization: Bearer``).
    """

    url: str | None
    style: Literal["slack", "teams", "json"] = "json"
    secret: str | None = None
    timeout: float = 10.0
    attempts: int = 3
    on_failure: bool = True
    on_success: bool = False
    on_recovery: bool = False

    STYLES: ClassVar[tuple[str, ...]] = ("slack", "teams", "json")

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body sent for ``alert``."""
        if self.style == "slack":
            body = _slack(alert)
        elif self.style == "teams":
            body = _teams(alert)
        else:
            body = alert.as_dict()
        return dict(json.loads(scrub(json.dumps(body))))

    def send(self, alert: Alert, *, secrets: SecretsProvider | None = None) -> None:
        import httpx
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        from tdm.effects import http as _http  # noqa: F401  (redacts httpx's own log records)

        url, headers = self.url, {"User-Agent": "tdm-alerts"}
        if self.secret is not None:
            provider = secrets if secrets is not None else default_secrets()
            section = provider.section(self.secret)
            if (u := _first(section, "url", "webhook_url", "webhook")) is not None:
                url = u.reveal()
            if (t := _first(section, "token", "bearer")) is not None:
                headers["Authorization"] = f"Bearer {t.reveal()}"
        if not url:
            raise AlertError(
                f"webhook alerter has no URL: pass url=... or put 'url' in secret {self.secret!r}"
            )
        where = self.describe()

        class _Retryable(Exception):
            pass

        def post() -> None:
            try:
                response = httpx.post(url, json=self.payload(alert), headers=headers,
                                      timeout=self.timeout)  # fmt: skip
            except httpx.HTTPError as exc:
                raise _Retryable(f"{type(exc).__name__}: {_short(str(exc), 200)}") from None
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}")
            if response.status_code >= 300:
                raise AlertError(
                    f"webhook alert via {where} was refused: HTTP {response.status_code} "
                    f"{_short(response.text, 200)}"
                )

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(max(1, self.attempts)),
                wait=wait_exponential(multiplier=0.2, max=5),
                retry=retry_if_exception_type(_Retryable),
                reraise=True,
            ):
                with attempt:
                    post()
        except _Retryable as exc:
            raise AlertError(
                f"webhook alert via {where} failed after {self.attempts} attempt(s): {exc}"
            ) from None

    def describe(self) -> str:
        from urllib.parse import urlsplit

        if not self.url:
            return f"{self.style} webhook (URL from secret {self.secret!r})"
        parts = urlsplit(self.url)
        base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        # Slack and Teams webhook URLs carry their credential in the path: show the host only.
        shown = base + "/..." if self.style in ("slack", "teams") else base + parts.path
        return f"{self.style} webhook {scrub(shown)}"


def build_alerters(items: Sequence[Alerter]) -> tuple[Alerter, ...]:
    """Check that every item is an alerter (a clear error otherwise)."""
    for item in items:
        if not isinstance(item, Alerter):
            raise TypeError(
                f"Runtime(alerters=...) takes alerters such as tdm.alerts.email(...) or "
                f"tdm.alerts.webhook(...), got {type(item).__name__}"
            )
    return tuple(items)
