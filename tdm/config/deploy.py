"""Kubernetes manifests for scheduled pipelines: Argo CronWorkflows and CronJobs.

Each pipeline with a ``schedule`` becomes one manifest whose container runs
``tdm run FILE --pipeline NAME --log-format json``. Every secret the file uses (its pipes, alert
managers and state store) is mounted from a Kubernetes secret named ``tdm-<secret>`` under
``/var/run/secrets/tdm/<secret>/`` and read by tdm's directory provider (``TDM_SECRETS_DIR``).

The ``deploy:`` settings of a file (see :data:`DEPLOY_KEYS`) are checked when the file loads, so
``tdm validate`` rejects what ``tdm deploy`` would; ``tdm deploy --set KEY=VALUE`` overrides one.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from tdm.config.project import ComponentSpec, PipelineSpec, Project
from tdm.errors import ConfigError

__all__ = [
    "DEPLOY_KEYS",
    "Deployment",
    "DeploySettings",
    "SettingError",
    "deployment",
    "manifests",
    "overrides_from_cli",
    "parse_settings",
    "schedule_problem",
]

SECRETS_MOUNT = "/var/run/secrets/tdm"

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
    tdm.config.deploy.SettingError: `deploy.backoff_limit` must be a whole number >= 0 ...
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
def _dns(name: str, limit: int = 52) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "pipeline"
    return slug[:limit].rstrip("-")


@dataclass(frozen=True, slots=True)
class Deployment:
    """What ``tdm deploy`` produces: manifests, the secrets they mount, and warnings.

    Attributes:
        manifests: one CronWorkflow or CronJob per scheduled pipeline.
        secrets: the tdm secret names mounted (create ``tdm-<name>`` secrets for them).
        warnings: things that would make a pod fail or lose data, said before it runs.
        source: the pipeline file.
    """

    manifests: tuple[dict[str, Any], ...]
    secrets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    source: str | None = None

    def render(self) -> str:
        """The manifests as one multi-document YAML text, with a header on the secrets."""
        header = ["# generated by `tdm deploy` from " + (self.source or "<text>")]
        if self.secrets:
            header.append("# create the secrets it mounts first, one key per file, e.g.:")
            header += [
                f"#   kubectl create secret generic tdm-{_dns(s, 200)} --from-literal=KEY=VALUE"
                for s in self.secrets
            ]
        body = yaml.safe_dump_all(list(self.manifests), sort_keys=False, default_flow_style=False)
        return "\n".join(header) + "\n" + body


def _settings(project: Project, overrides: Mapping[str, Any]) -> DeploySettings:
    merged: dict[str, Any] = dict(project.deploy)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            inner = {k: dict(v) if isinstance(v, Mapping) else v for k, v in merged[key].items()}
            for sub, subvalue in value.items():
                if isinstance(subvalue, Mapping) and isinstance(inner.get(sub), Mapping):
                    inner[sub] = {**inner[sub], **subvalue}
                else:
                    inner[sub] = subvalue
            merged[key] = inner
        else:
            merged[key] = value
    try:
        return parse_settings(merged)
    except SettingError as exc:
        where = " (given on the command line)" if exc.key in overrides else ""
        raise ConfigError(f"{exc}{where}", file=project.source) from None


def _local_state(spec: ComponentSpec | None) -> str | None:
    """Why the audit store would live and die inside the container (None if it is remote)."""
    if spec is None:
        return "the audit trail defaults to SQLite under $TDM_HOME"
    if spec.target.endswith((":sqlite", ":memory")):
        return f"state manager {spec.name!r} ({spec.type}) keeps the audit trail in the container"
    url = spec.config.get("url", spec.config.get("path"))
    if isinstance(url, str):
        scheme = url.partition("://")[0].lower() if "://" in url else "file"
        if scheme in ("file", "local", "memory"):
            return f"state manager {spec.name!r} writes to {url!r}, inside the container"
    return None


def _secrets_plan(project: Project, settings: DeploySettings) -> tuple[list[str], list[str], str]:
    """The secrets to mount, warnings about the others, and the mount folder."""
    mounted: list[str] = []
    warnings: list[str] = []
    for name in project.secret_names():
        route = project.secret_routes.get(name, "default")
        if route in ("default", "directory"):
            mounted.append(name)
        elif route == "file":
            warnings.append(
                f"secret {name!r} is read from the secrets file, which the image does not (and "
                "must not) contain; use `secrets: {type: yamlconfigreader, name: ...}` so the "
                "mounted Kubernetes secret is used"
            )
        elif route == "env":
            warnings.append(
                f"secret {name!r} is read from TDM_SECRET__ environment variables only; the pod "
                "must get them from elsewhere (or use the default secrets type to mount it)"
            )
    order = project.secrets.get("order")
    if mounted and order is not None and "directory" not in order:
        warnings.append(
            f"`secrets.order` ({', '.join(order)}) leaves out `directory`, so the pod ignores "
            "the mounted secrets; add directory to the order"
        )
    directory = project.secrets.get("directory")
    mount = settings.secrets_mount or directory or SECRETS_MOUNT
    if directory and settings.secrets_mount and directory != settings.secrets_mount:
        raise ConfigError(
            f"`deploy.secrets_mount` ({settings.secrets_mount}) differs from "
            f"`secrets.directory` ({directory}), where the pod reads secrets; keep one",
            file=project.source,
        )
    return mounted, warnings, str(mount)


def _outside_file(project: Project) -> list[str]:
    state = [project.state_manager] if project.state_manager else []
    services = [*project.alert_managers, *state]
    return [
        f"{'state manager' if c is project.state_manager else 'alert manager'} {c.name!r} "
        f"comes from {c.file}, not from {project.source}: the pod sees it only if the image "
        "has that settings file (the Dockerfile of `tdm deploy dockerfile` copies the "
        "project's .tdm/config.yml and sets TDM_HOME)"
        for c in services
        if c.file and project.source and c.file != project.source
    ]


def deployment(
    project: Project,
    *,
    kind: Literal["argo", "cronjob"],
    file: str,
    image: str | None = None,
    namespace: str | None = None,
    pipelines: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    state: tuple[str, str | None] | None = None,
) -> Deployment:
    """Manifests for the scheduled pipelines (all of them, or those named in ``pipelines``).

    Args:
        kind: ``"argo"`` (Argo CronWorkflow) or ``"cronjob"`` (Kubernetes CronJob).
        file: the pipeline file's path inside the image (relative to the image's workdir).
        image: the container image (default: the file's ``deploy.image``).
        namespace: the namespace (default: ``deploy.namespace``).
        pipelines: names of the pipelines to deploy (default: every one with a schedule).
        params: ``--param`` values baked into the command line.
        overrides: ``deploy`` settings that replace the file's (nested mappings merge).
        state: ``(url, secret)`` of the audit store the pods use, passed as ``tdm run --state``
            (already applied to ``project`` by :meth:`Project.with_state`).
    """
    if kind not in ("argo", "cronjob"):
        raise ConfigError(f"unknown deploy target {kind!r}; use argo or cronjob")
    given = {"image": image, "namespace": namespace}
    settings = _settings(project, {**(overrides or {}), **{k: v for k, v in given.items() if v}})
    if not settings.image:
        raise ConfigError(
            "no container image: pass --image registry/name:tag or set `deploy: {image: ...}` "
            "in the file (`tdm deploy dockerfile` writes a Dockerfile that builds one)",
            file=project.source,
        )
    chosen = _chosen(project, pipelines)
    mounted, warnings, mount = _secrets_plan(project, settings)
    local = _local_state(project.state_manager)
    if local is not None:
        warnings.append(
            f"{local}, which is lost when the pod ends: pass --state s3://bucket/tdm-audit "
            "--state-secret S3 (or az://...), or set a remote `state_manager` "
            "(type: files, config: {url: s3://...}) in the file"
        )
    warnings += _outside_file(project)
    run_args: list[str] = []
    if state is not None:
        run_args += ["--state", state[0]]
        if state[1]:
            run_args += ["--state-secret", state[1]]
    docs = tuple(
        _manifest(spec, kind, file, settings, mounted, mount, dict(params or {}), run_args)
        for spec in chosen
    )
    return Deployment(docs, tuple(mounted), tuple(warnings), project.source)


def _chosen(project: Project, pipelines: Sequence[str]) -> list[PipelineSpec]:
    if pipelines:
        chosen = [project[name] for name in pipelines]
        for spec in chosen:
            if not spec.schedule:
                raise ConfigError(
                    f'pipeline {spec.name!r} has no `schedule`; add schedule: "20 * * * *" '
                    '(a cron expression) or schedule: "@daily" to deploy it',
                    file=project.source,
                    line=spec.line,
                )
        return chosen
    chosen = [spec for spec in project.pipelines if spec.schedule]
    if not chosen:
        raise ConfigError(
            'no pipeline has a `schedule`; add schedule: "20 * * * *" (a cron expression) or '
            'schedule: "@daily" to the pipelines to deploy',
            file=project.source,
        )
    return chosen


def manifests(project: Project, **options: Any) -> list[dict[str, Any]]:
    """The manifests of :func:`deployment` as a list (same arguments)."""
    return list(deployment(project, **options).manifests)


def _container(
    spec: PipelineSpec,
    file: str,
    settings: DeploySettings,
    mounted: Sequence[str],
    mount: str,
    params: Mapping[str, str],
    run_args: Sequence[str],
) -> dict[str, Any]:
    args = ["run", file, "--pipeline", spec.name, "--log-format", settings.log_format]
    args += run_args
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    env = [{"name": "TDM_SECRETS_DIR", "value": mount}]
    env += [{"name": k, "value": v} for k, v in settings.env.items() if k != "TDM_SECRETS_DIR"]
    container: dict[str, Any] = {
        "name": "tdm",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["tdm"],
        "args": args,
        "env": env,
    }
    if settings.workdir:
        container["workingDir"] = settings.workdir
    if settings.resources:
        container["resources"] = {k: dict(v) for k, v in settings.resources.items()}
    if mounted:
        container["volumeMounts"] = [
            {"name": f"secret-{_dns(s, 40)}", "mountPath": f"{mount}/{_dns(s, 200)}",
             "readOnly": True}
            for s in mounted
        ]  # fmt: skip
    if settings.run_as_non_root:
        container["securityContext"] = {"allowPrivilegeEscalation": False}
    return container


def _pod(settings: DeploySettings, mounted: Sequence[str]) -> dict[str, Any]:
    pod: dict[str, Any] = {}
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": p} for p in settings.image_pull_secrets]
    if settings.run_as_non_root:
        pod["securityContext"] = {"runAsNonRoot": True}
    if mounted:
        pod["volumes"] = [
            {"name": f"secret-{_dns(s, 40)}", "secret": {"secretName": f"tdm-{_dns(s, 200)}"}}
            for s in mounted
        ]
    return pod


def _manifest(
    spec: PipelineSpec,
    kind: str,
    file: str,
    settings: DeploySettings,
    mounted: Sequence[str],
    mount: str,
    params: Mapping[str, str],
    run_args: Sequence[str],
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "tdm", "tdm/pipeline-id": _dns(spec.pipeline_id, 63)}
    metadata: dict[str, Any] = {
        "name": _dns(spec.pipeline_id),
        "labels": labels,
        "annotations": {"tdm/pipeline": spec.name},
    }
    if settings.namespace:
        metadata["namespace"] = settings.namespace
    container = _container(spec, file, settings, mounted, mount, params, run_args)
    pod = _pod(settings, mounted)
    schedule: dict[str, Any] = {"schedule": spec.schedule}
    limits = {
        "concurrencyPolicy": settings.concurrency_policy,
        "startingDeadlineSeconds": settings.starting_deadline_seconds,
        "successfulJobsHistoryLimit": settings.successful_jobs_history_limit,
        "failedJobsHistoryLimit": settings.failed_jobs_history_limit,
    }
    deadline = (
        {"activeDeadlineSeconds": settings.active_deadline_seconds}
        if settings.active_deadline_seconds
        else {}
    )
    if kind == "argo":
        limit = settings.backoff_limit
        retry = {"retryStrategy": {"limit": limit}} if limit else {}
        if settings.time_zone:
            schedule["timezone"] = settings.time_zone
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "CronWorkflow",
            "metadata": metadata,
            "spec": {
                **schedule,
                **limits,
                "workflowMetadata": {"labels": dict(labels)},
                "workflowSpec": {
                    "entrypoint": "run",
                    **deadline,
                    **pod,
                    "templates": [{"name": "run", **retry, "container": container}],
                },
            },
        }
    if settings.time_zone:
        schedule["timeZone"] = settings.time_zone
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata,
        "spec": {
            **schedule,
            **limits,
            "jobTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "backoffLimit": settings.backoff_limit,
                    **deadline,
                    "template": {
                        "metadata": {"labels": dict(labels)},
                        "spec": {"restartPolicy": "Never", **pod, "containers": [container]},
                    },
                },
            },
        },
    }
