"""Alerts: who to tell when a run fails (and, if asked, when it succeeds or recovers).

Pass alerters to the runtime; each fires once per failed run with the pipeline, run and job
ids, the failed node(s) with their one-line errors, the duration and where to look. An alert
never holds a secret value or a traceback, and an alerter that fails is logged and listed in
``report.hook_errors``; the run's own result is never affected::

    rt = tdm.Runtime.default().evolve(alerters=[
        tdm.alerts.gmail("data-ops@example.com", secret="SMTP"),
        tdm.alerts.webhook(None, style="slack", secret="SlackOps", on_recovery=True),
    ])

The original tdm's alert managers map as: ``gmailemailalertmanager`` → :func:`gmail`,
``outlookemailalertmanager`` → :func:`outlook`, ``slackalertmanager`` →
``webhook(style="slack")`` (it now works), ``nullalertmanager`` → :func:`null`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final, Literal

from tdm.effects.alerts import Alert, Alerter, EmailAlerter, NullAlerter, WebhookAlerter
from tdm.errors import DefinitionError

__all__ = [
    "Alert",
    "Alerter",
    "EmailAlerter",
    "NullAlerter",
    "WebhookAlerter",
    "email",
    "gmail",
    "null",
    "outlook",
    "webhook",
]

PRESETS: Final[dict[str, tuple[str, int, Literal["ssl", "starttls", "none"]]]] = {
    "gmail": ("smtp.gmail.com", 465, "ssl"),
    "outlook": ("smtp.office365.com", 587, "starttls"),
}
_DEFAULT_PORTS: Final = {"ssl": 465, "starttls": 587, "none": 25}


def _recipients(to: str | Sequence[str]) -> tuple[str, ...]:
    items = (to,) if isinstance(to, str) else tuple(to)
    items = tuple(a.strip() for a in items if a and a.strip())
    if not items:
        raise DefinitionError("an email alerter needs at least one address: to='ops@example.com'")
    for address in items:
        if "@" not in address:
            raise DefinitionError(f"{address!r} is not an email address (expected name@domain)")
    return items


def email(
    to: str | Sequence[str],
    *,
    secret: str | None = None,
    host: str | None = None,
    port: int | None = None,
    security: Literal["ssl", "starttls", "none"] | None = None,
    preset: Literal["gmail", "outlook"] | None = None,
    sender: str | None = None,
    timeout: float = 30.0,
    ca_file: str | os.PathLike[str] | None = None,
    on_failure: bool = True,
    on_success: bool = False,
    on_recovery: bool = False,
    ssl: bool | None = None,
    starttls: bool | None = None,
) -> EmailAlerter:
    """Email alerts over SMTP with SSL (465) or STARTTLS (587), logging in with a secret.

    Args:
        to: one address or several (the original ``email_addresses``).
        secret: the secret section with ``username`` (or ``sender``) and ``password`` (or
            ``app_password``); None sends without logging in.
        host / port / security: the SMTP server; or ``preset="gmail"`` / ``"outlook"``.
            ``security="none"`` (plain SMTP) is only allowed with a login on this machine.
        sender: the From address (default: the login).
        ca_file: a PEM file of the CA certificate(s) to verify the server's certificate
            against instead of the system's CAs (or ``$SSL_CERT_FILE``): for a server with a
            private or self-signed CA. The certificate and the host name are always verified
            with ``"ssl"`` and ``"starttls"``.
        on_failure / on_success / on_recovery: which runs to alert on.
        ssl / starttls: the YAML spellings of ``security="ssl"`` / ``"starttls"``. Without
            any of them, port 465 means SSL and any other port STARTTLS.

    >>> a = email(["ops@example.com"], preset="outlook", secret="SMTP")
    >>> a.describe()
    'outlook email to ops@example.com via smtp.office365.com:587'
    """
    if preset is not None:
        if preset not in PRESETS:
            raise DefinitionError(f"unknown email preset {preset!r}; use 'gmail' or 'outlook'")
        p_host, p_port, p_security = PRESETS[preset]
        host, port, security = host or p_host, port or p_port, security or p_security
    if security is None and ssl:
        security = "ssl"
    elif security is None and starttls:
        security = "starttls"
    if host is None:
        raise DefinitionError(
            "an email alerter needs an SMTP server: host='smtp.example.com' (with port= and "
            "security='ssl'|'starttls'), or preset='gmail' / 'outlook'"
        )
    security = security or ("ssl" if port == 465 else "starttls")
    if security not in _DEFAULT_PORTS:
        raise DefinitionError(
            f"unknown SMTP security {security!r}; use 'ssl', 'starttls' or 'none'"
        )
    if ca_file is not None and security == "none":
        raise DefinitionError("ca_file= needs security='ssl' or 'starttls' (plain SMTP has no TLS)")
    return EmailAlerter(
        to=_recipients(to),
        host=host,
        port=port or _DEFAULT_PORTS[security],
        security=security,
        secret=secret,
        sender=sender,
        timeout=timeout,
        ca_file=None if ca_file is None else os.fspath(ca_file),
        on_failure=on_failure,
        on_success=on_success,
        on_recovery=on_recovery,
        preset=preset,
    )


def gmail(
    to: str | Sequence[str],
    *,
    secret: str,
    on_failure: bool = True,
    on_success: bool = False,
    on_recovery: bool = False,
) -> EmailAlerter:
    """Email through Gmail (smtp.gmail.com:465, SSL); the secret has ``sender`` and
    ``app_password`` (the original ``gmailemailalertmanager``).

    >>> gmail("ops@example.com", secret="Gmail").describe()
    'gmail email to ops@example.com via smtp.gmail.com:465'
    """
    return email(to, secret=secret, preset="gmail", on_failure=on_failure,
                 on_success=on_success, on_recovery=on_recovery)  # fmt: skip


def outlook(
    to: str | Sequence[str],
    *,
    secret: str,
    on_failure: bool = True,
    on_success: bool = False,
    on_recovery: bool = False,
) -> EmailAlerter:
    """Email through Outlook/Office 365 (smtp.office365.com:587, STARTTLS); the secret has
    ``sender`` and ``password`` (the original ``outlookemailalertmanager``).

    >>> outlook("ops@example.com", secret="O365").security
    'starttls'
    """
    return email(to, secret=secret, preset="outlook", on_failure=on_failure,
                 on_success=on_success, on_recovery=on_recovery)  # fmt: skip


def webhook(
    url: str | None = None,
    *,
    style: Literal["slack", "teams", "json"] = "slack",
    secret: str | None = None,
    timeout: float = 10.0,
    on_failure: bool = True,
    on_success: bool = False,
    on_recovery: bool = False,
) -> WebhookAlerter:
    """Alerts POSTed as JSON: a Slack message, a Teams Adaptive Card, or the plain alert.

    Args:
        url: the webhook URL; None to take it from the secret (``url`` key): Slack and Teams
            webhook URLs are credentials, so keep them in a secret.
        style: ``"slack"`` (incoming webhook), ``"teams"`` (Workflows/Power Automate webhook,
            Adaptive Card) or ``"json"`` (the alert's fields, for your own service).
        secret: a secret section with ``url`` and/or ``token`` (sent as a Bearer token).

    A 429 or 5xx answer is retried (3 attempts); any other non-2xx answer is an error.

    >>> webhook("https://hooks.slack.com/services/T0/B0/XYZ").describe()
    'slack webhook https://hooks.slack.com/...'
    """
    if style not in WebhookAlerter.STYLES:
        raise DefinitionError(f"unknown webhook style {style!r}; use 'slack', 'teams' or 'json'")
    if url is None and secret is None:
        raise DefinitionError("a webhook alerter needs url=... or a secret= holding its 'url'")
    if url is not None and not url.startswith(("http://", "https://")):
        raise DefinitionError(f"webhook url must start with http:// or https://, got {url!r}")
    return WebhookAlerter(url=url, style=style, secret=secret, timeout=timeout,
                          on_failure=on_failure, on_success=on_success,
                          on_recovery=on_recovery)  # fmt: skip


def null(*, secret: str | None = None) -> NullAlerter:
    """An alerter that sends nothing (the original ``nullalertmanager``; ``secret``, which the
    original required, is accepted and ignored).

    >>> null().describe()
    'null'
    """
    return NullAlerter()
