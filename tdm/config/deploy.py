"""Kubernetes manifests for scheduled pipelines: Argo CronWorkflows and CronJobs.

Each pipeline with a ``schedule`` becomes one manifest whose container runs
``tdm run FILE --pipeline NAME --log-format json``. Secrets are mounted from Kubernetes secrets
named ``tdm-<secret>`` under ``/var/run/secrets/tdm/<secret>/`` and read by tdm's directory
provider (``TDM_SECRETS_DIR``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml

from tdm.config.project import PipelineSpec, Project
from tdm.errors import ConfigError

__all__ = ["manifests", "render"]

SECRETS_MOUNT = "/var/run/secrets/tdm"


def _dns(name: str, limit: int = 52) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "pipeline"
    return slug[:limit].rstrip("-")


def manifests(
    project: Project,
    *,
    kind: Literal["argo", "cronjob"],
    file: str,
    image: str | None = None,
    namespace: str | None = None,
    pipelines: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One manifest per scheduled pipeline (all of them, or those named in ``pipelines``).

    Args:
        kind: ``"argo"`` (Argo CronWorkflow) or ``"cronjob"`` (Kubernetes CronJob).
        file: the pipeline file's path inside the image (relative to ``deploy.workdir``).
        image: the container image (default: the file's ``deploy.image``).
        namespace: the namespace (default: ``deploy.namespace``).
        pipelines: names of the pipelines to deploy (default: every one with a schedule).
        params: ``--param`` values baked into the command line.
    """
    settings = dict(project.deploy)
    image = image or settings.get("image")
    if not image:
        raise ConfigError(
            "no container image: pass --image registry/name:tag or set `deploy: {image: ...}` "
            "in the file",
            file=project.source,
        )
    namespace = namespace or settings.get("namespace")
    if pipelines:
        chosen = [project[name] for name in pipelines]
        for spec in chosen:
            if not spec.schedule:
                raise ConfigError(
                    f'pipeline {spec.name!r} has no `schedule`; add schedule: "20 * * * *" '
                    "(a cron expression) to deploy it",
                    file=project.source,
                    line=spec.line,
                )
    else:
        chosen = [spec for spec in project.pipelines if spec.schedule]
        if not chosen:
            raise ConfigError(
                'no pipeline has a `schedule`; add schedule: "20 * * * *" (a cron '
                "expression) to the pipelines to deploy",
                file=project.source,
            )
    return [
        _manifest(spec, kind, file, str(image), namespace, settings, dict(params or {}))
        for spec in chosen
    ]


def _container(
    spec: PipelineSpec,
    file: str,
    image: str,
    settings: Mapping[str, Any],
    params: Mapping[str, str],
) -> dict[str, Any]:
    args = [
        "run",
        file,
        "--pipeline",
        spec.name,
        "--log-format",
        settings.get("log_format", "json"),
    ]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    env = [{"name": "TDM_SECRETS_DIR", "value": settings.get("secrets_mount", SECRETS_MOUNT)}]
    for key, value in dict(settings.get("env") or {}).items():
        env.append({"name": str(key), "value": str(value)})
    container: dict[str, Any] = {
        "name": "tdm",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tdm"],
        "args": args,
        "env": env,
    }
    if settings.get("workdir"):
        container["workingDir"] = settings["workdir"]
    if spec.secrets:
        mount = settings.get("secrets_mount", SECRETS_MOUNT)
        container["volumeMounts"] = [
            {
                "name": f"secret-{_dns(s, 40)}",
                "mountPath": f"{mount}/{_dns(s, 200)}",
                "readOnly": True,
            }
            for s in spec.secrets
        ]
    return container


def _pod_extras(spec: PipelineSpec, settings: Mapping[str, Any]) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if settings.get("service_account"):
        extras["serviceAccountName"] = settings["service_account"]
    if settings.get("image_pull_secrets"):
        pulls = settings["image_pull_secrets"]
        pulls = [pulls] if isinstance(pulls, str) else list(pulls)
        extras["imagePullSecrets"] = [{"name": p} for p in pulls]
    if spec.secrets:
        extras["volumes"] = [
            {"name": f"secret-{_dns(s, 40)}", "secret": {"secretName": f"tdm-{_dns(s, 200)}"}}
            for s in spec.secrets
        ]
    return extras


def _manifest(
    spec: PipelineSpec,
    kind: str,
    file: str,
    image: str,
    namespace: str | None,
    settings: Mapping[str, Any],
    params: Mapping[str, str],
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": _dns(spec.pipeline_id),
        "labels": {
            "app.kubernetes.io/managed-by": "tdm",
            "tdm/pipeline-id": _dns(spec.pipeline_id, 63),
        },
        "annotations": {"tdm/pipeline": spec.name},
    }
    if namespace:
        metadata["namespace"] = namespace
    container = _container(spec, file, image, settings, params)
    extras = _pod_extras(spec, settings)
    if kind == "argo":
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "CronWorkflow",
            "metadata": metadata,
            "spec": {
                "schedule": spec.schedule,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "workflowSpec": {
                    "entrypoint": "run",
                    **extras,
                    "templates": [{"name": "run", "container": container}],
                },
            },
        }
    if kind == "cronjob":
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": metadata,
            "spec": {
                "schedule": spec.schedule,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "spec": {"restartPolicy": "Never", "containers": [container], **extras}
                        },
                    }
                },
            },
        }
    raise ConfigError(f"unknown deploy target {kind!r}; use argo or cronjob")


def render(docs: Sequence[Mapping[str, Any]], project: Project) -> str:
    """The manifests as one multi-document YAML text, with a header on the secrets to create."""
    header = ["# generated by `tdm deploy` from " + (project.source or "<text>")]
    secrets = sorted({s for d in docs for s in _secret_names(d, project)})
    if secrets:
        header.append("# create the secrets it mounts first, e.g.:")
        header += [
            f"#   kubectl create secret generic tdm-{_dns(s, 200)} --from-literal=KEY=VALUE"
            for s in secrets
        ]
    body = yaml.safe_dump_all(list(docs), sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def _secret_names(doc: Mapping[str, Any], project: Project) -> list[str]:
    name = doc["metadata"]["annotations"]["tdm/pipeline"]
    return list(project[name].secrets)
