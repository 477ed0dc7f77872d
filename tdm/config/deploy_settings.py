"""The ``deploy:`` settings of a pipeline file and cron schedules, checked when the file loads.

``tdm validate`` rejects what ``tdm deploy`` would: a misspelt setting, a malformed resource
quantity or name, an unknown time zone, a schedule Kubernetes would not accept.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from tdm.errors import ConfigError

__all__ = [
    "DEPLOY_KEYS",
    "DeploySettings",
    "SettingError",
    "overrides_from_cli",
    "parse_settings",
    "schedule_problem",
]


DEPLOY_KEYS = (
    "image",
    "namespace",
    "workdir",
    "service_account",
    "image_pull_secrets",
    "image_pull_policy",
    "env",
    "secrets_mount",
    "log_format",
    "resources",
    "time_zone",
    "concurrency_policy",
    "starting_deadline_seconds",
    "active_deadline_seconds",
    "backoff_limit",
    "successful_jobs_history_limit",
    "failed_jobs_history_limit",
    "run_as_non_root",
)
"""The keys a ``deploy:`` block may hold (documented in the README's deployment section)."""

RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class SettingError(ValueError):
    """A bad ``deploy`` setting: ``key`` is the top-level key, for the error's line number."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class DeploySettings:
    """The checked ``deploy:`` settings, with Kubernetes' names and tdm's defaults.

    >>> s = parse_settings({"resources": {"limits": {"memory": "1Gi"}}, "time_zone": "UTC"})
    >>> s.resources, s.time_zone, s.concurrency_policy
    ({'limits': {'memory': '1Gi'}}, 'UTC', 'Forbid')
    """

    image: str | None = None
    namespace: str | None = None
    workdir: str | None = None
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    image_pull_policy: str = "IfNotPresent"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets_mount: str | None = None
    log_format: str = "json"
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    time_zone: str | None = None
    concurrency_policy: str = "Forbid"
    starting_deadline_seconds: int = 300
    active_deadline_seconds: int | None = None
    backoff_limit: int = 0
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3
    run_as_non_root: bool = True


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=2)
    return f"did you mean {' or '.join(map(repr, close))}? " if close else ""


def _text(key: str, value: Any, what: str = "a text") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or str(value) == "":
        raise SettingError(key, f"`deploy.{key}` must be {what}, got {value!r}")
    return str(value)


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingError(
            key, f"`deploy.{key}` must be a whole number >= {minimum} (seconds or a count), "
            f"got {value!r}"
        )  # fmt: skip
    return value


def _name(key: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    text = _text(key, value)
    if not pattern.match(text):
        raise SettingError(
            key, f"`deploy.{key}` must be {what} (lowercase letters, digits and '-'), got {text!r}"
        )
    return text


def _path(key: str, value: Any) -> str:
    text = _text(key, value, "an absolute path")
    if not text.startswith("/"):
        raise SettingError(key, f"`deploy.{key}` must be an absolute path, got {text!r}")
    return text


def _resources(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        raise SettingError(
            "resources", "`deploy.resources` must be a mapping like "
            "{requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}"
        )  # fmt: skip
    out: dict[str, dict[str, str]] = {}
    for part, amounts in value.items():
        if part not in ("requests", "limits"):
            raise SettingError(
                "resources", f"`deploy.resources` takes requests and limits, not {part!r}; "
                f"{_suggest(str(part), ['requests', 'limits'])}"
            )  # fmt: skip
        if not isinstance(amounts, Mapping):
            raise SettingError(
                "resources", f"`deploy.resources.{part}` must be a mapping like {{cpu: 500m}}"
            )
        out[part] = {}
        for resource, amount in amounts.items():
            if resource not in RESOURCE_NAMES:
                raise SettingError(
                    "resources", f"`deploy.resources.{part}`: unknown resource {resource!r}; "
                    f"{_suggest(str(resource), RESOURCE_NAMES)}use {', '.join(RESOURCE_NAMES)}"
                )  # fmt: skip
            text = _text("resources", amount, "a quantity")
            if not _QUANTITY.match(text):
                raise SettingError(
                    "resources", f"`deploy.resources.{part}.{resource}` must be a Kubernetes "
                    f"quantity such as 500m, 2, 512Mi or 1Gi, got {text!r}"
                )  # fmt: skip
            out[part][str(resource)] = text
    return out


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise SettingError("env", "`deploy.env` must be a mapping of NAME: value")
    env: dict[str, str] = {}
    for name, raw in value.items():
        name = str(name)
        if not _ENV_NAME.match(name):
            raise SettingError("env", f"`deploy.env`: {name!r} is not a valid variable name")
        if name.upper().startswith("TDM_SECRET__"):
            raise SettingError(
                "env", f"`deploy.env`: {name} would write a secret into the manifest in plain "
                "text; reference the secret from the pipeline instead (it is mounted from a "
                "Kubernetes secret)"
            )  # fmt: skip
        if raw is None or isinstance(raw, Mapping | list):
            raise SettingError("env", f"`deploy.env.{name}` must be a text or a number")
        env[name] = str(raw).lower() if isinstance(raw, bool) else str(raw)
    return env


def parse_settings(raw: Mapping[str, Any]) -> DeploySettings:
    """Check a ``deploy:`` mapping and return :class:`DeploySettings`; raises :class:`SettingError`.

    >>> parse_settings({"backoff_limit": -1})
    Traceback (most recent call last):
    ...
    tdm.config.deploy_settings.SettingError: `deploy.backoff_limit` must be a whole number >= 0 ...
    """
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in DEPLOY_KEYS:
            raise SettingError(
                str(key), f"unknown key {key!r} in `deploy`; {_suggest(str(key), DEPLOY_KEYS)}"
                f"allowed: {', '.join(DEPLOY_KEYS)}"
            )  # fmt: skip
        if value is None:
            continue
        if key in ("image", "log_format", "concurrency_policy", "image_pull_policy", "time_zone"):
            values[key] = _text(key, value)
        elif key == "namespace":
            values[key] = _name(key, value, _DNS_LABEL, "a namespace name")
        elif key == "service_account":
            values[key] = _name(key, value, _DNS_SUBDOMAIN, "a service account name")
        elif key in ("workdir", "secrets_mount"):
            values[key] = _path(key, value)
        elif key == "image_pull_secrets":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list):
                raise SettingError(key, "`deploy.image_pull_secrets` must be a name or a list")
            values[key] = tuple(_name(key, n, _DNS_SUBDOMAIN, "a secret name") for n in names)
        elif key == "env":
            values[key] = _env(value)
        elif key == "resources":
            values[key] = _resources(value)
        elif key == "active_deadline_seconds":
            values[key] = _int(key, value, 1)
        elif key == "run_as_non_root":
            if not isinstance(value, bool):
                raise SettingError(key, f"`deploy.{key}` must be true or false, got {value!r}")
            values[key] = value
        else:  # the counts and deadlines
            values[key] = _int(key, value, 0)
    choices = {
        "log_format": ("json", "text"),
        "concurrency_policy": ("Forbid", "Allow", "Replace"),
        "image_pull_policy": ("IfNotPresent", "Always", "Never"),
    }
    for key, allowed in choices.items():
        if key in values and values[key] not in allowed:
            raise SettingError(
                key, f"`deploy.{key}` must be one of {', '.join(allowed)}, got {values[key]!r}"
            )
    zone = values.get("time_zone")
    if zone is not None and zoneinfo.available_timezones():  # no tz database here: no check
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            known = sorted(zoneinfo.available_timezones())
            raise SettingError(
                "time_zone", f"`deploy.time_zone`: unknown time zone {zone!r}; "
                f"{_suggest(zone, known)}use an IANA name such as Europe/Berlin or UTC"
            ) from None  # fmt: skip
    return DeploySettings(**values)


def overrides_from_cli(
    settings: Sequence[str], *, requests: str | None = None, limits: str | None = None
) -> dict[str, Any]:
    """``deploy`` settings from ``--set KEY=VALUE`` (dotted keys nest) and ``--requests`` /
    ``--limits`` (``cpu=500m,memory=1Gi``); values are read as YAML scalars.

    >>> overrides_from_cli(["time_zone=UTC", "resources.limits.cpu=1"], requests="memory=1Gi")
    {'time_zone': 'UTC', 'resources': {'limits': {'cpu': 1}, 'requests': {'memory': '1Gi'}}}
    """
    out: dict[str, Any] = {}

    def put(path: Sequence[str], value: Any, flag: str) -> None:
        node = out
        for part in path[:-1]:
            inner = node.setdefault(part, {})
            if not isinstance(inner, dict):
                raise ConfigError(f"{flag}: {'.'.join(path)} conflicts with another setting")
            node = inner
        node[path[-1]] = value

    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        put([p.strip() for p in key.split(".")], value, "--set")
    for flag, text in (("requests", requests), ("limits", limits)):
        for pair in (text or "").split(","):
            if not pair.strip():
                continue
            name, sep, amount = pair.partition("=")
            if not sep or not name.strip() or not amount.strip():
                raise ConfigError(f"--{flag} expects NAME=QUANTITY[,...], got {pair!r}")
            put(["resources", flag, name.strip()], amount.strip(), f"--{flag}")
    return out


# schedules ------------------------------------------------------------------------------------
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_SCHEDULE_HELP = (
    'a cron expression with 5 fields (minute hour day-of-month month day-of-week), e.g. '
    '"20 * * * *", or one of ' + ", ".join(MACROS)
)  # fmt: skip


def schedule_problem(schedule: Any) -> str | None:
    """What is wrong with a ``schedule`` (None when Kubernetes and Argo accept it).

    >>> schedule_problem("@daily") is None, schedule_problem("*/15 6-18 * * MON-FRI") is None
    (True, True)
    >>> schedule_problem("61 * * * *")
    '`schedule` field minute: 61 is out of range 0-59'
    """
    if not isinstance(schedule, str):
        return f"`schedule` must be text: {_SCHEDULE_HELP}; got {schedule!r} (quote it in YAML)"
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return (
            f"`schedule` {schedule!r}: Kubernetes rejects a time zone inside the schedule; "
            "set it with `deploy: {time_zone: Europe/Berlin}` instead"
        )
    if text.startswith("@"):
        if text in MACROS:
            return None
        hint = _suggest(text.lower(), MACROS)
        if text.startswith("@every"):
            hint = 'write an interval as a cron step, e.g. "*/15 * * * *"; '
        return f"`schedule` {schedule!r} is not a schedule macro; {hint}use {_SCHEDULE_HELP}"
    parts = text.split()
    if len(parts) != len(_FIELDS):
        return f"`schedule` must be {_SCHEDULE_HELP}; got {schedule!r} ({len(parts)} fields)"
    for part, spec in zip(parts, _FIELDS, strict=True):
        problem = _field_problem(part, *spec)
        if problem:
            return f"`schedule` field {spec[0]}: {problem}"
    return None


def _field_problem(text: str, what: str, low: int, high: int, names: Sequence[str]) -> str | None:
    def value(token: str) -> int | None:
        if token.isdigit():
            return int(token)
        if token.lower() in names:
            return names.index(token.lower()) + low
        return None

    for item in text.split(","):
        body, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"bad step {step!r} in {text!r}"
        if body in ("*", "?"):
            continue
        for token in body.split("-", 1):
            number = value(token)
            if number is None:
                return f"{token!r} is not a number{' or a name' if names else ''} in {text!r}"
            if not low <= number <= high:
                return f"{number} is out of range {low}-{high}"
    return None


# manifests ------------------------------------------------------------------------------------
