"""Schema checks for generated manifests, offline.

A CronJob is validated by ``kubernetes-validate`` in strict mode (unknown fields are errors)
against the Kubernetes schemas the package ships. A CronWorkflow is validated against the
Argo CronWorkflow model below, written from Argo's published CRD spec
(``io.argoproj.workflow.v1alpha1.CronWorkflow``: CronWorkflowSpec, WorkflowSpec, Template,
RetryStrategy), with its Kubernetes parts (ObjectMeta, Container, Volume, PodSecurityContext,
LocalObjectReference) checked against the same strict Kubernetes schemas.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import referencing

K8S_VERSION = "1.30.0"
_DEFS = "https://kubernetes.io/api/_definitions.json"


@functools.cache
def _k8s_registry() -> referencing.Registry[Any]:
    """The strict Kubernetes definitions kubernetes-validate ships (read from the package)."""
    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    defs = json.loads((folder / f"v{K8S_VERSION}-local-strict" / "_definitions.json").read_text())
    return referencing.Registry().with_resource(_DEFS, referencing.Resource.from_contents(defs))


def _k8s(type_name: str) -> dict[str, Any]:
    return {"$ref": f"{_DEFS}#/$defs/{type_name}"}


def _any(names: str) -> dict[str, Any]:
    """Properties the model has that tdm does not emit (any value accepted)."""
    return {name: {} for name in names.split()}


def argo_schema() -> dict[str, Any]:
    integer = {"type": "integer"}
    text = {"type": "string"}
    template = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": text,
            "container": _k8s("io.k8s.api.core.v1.Container"),
            "activeDeadlineSeconds": {"type": ["integer", "string"]},
            "retryStrategy": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "limit": {"type": ["integer", "string"]},
                    "retryPolicy": {"enum": ["Always", "OnFailure", "OnError", "OnTransientError"]},
                    **_any("affinity backoff expression"),
                },
            },
            **_any(
                "affinity archiveLocation automountServiceAccountToken containerSet daemon dag "
                "data executor failFast hostAliases http initContainers inputs memoize metadata "
                "metrics nodeSelector outputs parallelism plugin podSpecPatch priority "
                "priorityClassName resource schedulerName script securityContext "
                "serviceAccountName sidecars steps suspend synchronization timeout tolerations "
                "volumes"
            ),
        },
    }
    workflow_spec = {
        "type": "object",
        "additionalProperties": False,
        "required": ["templates"],
        "properties": {
            "entrypoint": text,
            "templates": {"type": "array", "minItems": 1, "items": template},
            "serviceAccountName": text,
            "imagePullSecrets": {
                "type": "array",
                "items": _k8s("io.k8s.api.core.v1.LocalObjectReference"),
            },
            "volumes": {"type": "array", "items": _k8s("io.k8s.api.core.v1.Volume")},
            "securityContext": _k8s("io.k8s.api.core.v1.PodSecurityContext"),
            "activeDeadlineSeconds": integer,
            **_any(
                "affinity archiveLogs arguments artifactGC artifactRepositoryRef "
                "automountServiceAccountToken dnsConfig dnsPolicy executor hooks hostAliases "
                "hostNetwork metrics nodeSelector onExit parallelism podDisruptionBudget podGC "
                "podMetadata podPriority podPriorityClassName podSpecPatch priority retryStrategy "
                "schedulerName shutdown suspend synchronization templateDefaults tolerations "
                "ttlStrategy volumeClaimGC volumeClaimTemplates workflowMetadata "
                "workflowTemplateRef"
            ),
        },
    }
    meta = _k8s("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "argoproj.io/v1alpha1"},
            "kind": {"const": "CronWorkflow"},
            "metadata": {"allOf": [meta, {"required": ["name"]}]},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["workflowSpec"],
                "anyOf": [{"required": ["schedule"]}, {"required": ["schedules"]}],
                "properties": {
                    "schedule": {"type": "string", "minLength": 1},
                    "schedules": {"type": "array", "items": text, "minItems": 1},
                    "timezone": text,
                    "concurrencyPolicy": {"enum": ["Allow", "Forbid", "Replace"]},
                    "startingDeadlineSeconds": {"type": "integer", "minimum": 0},
                    "successfulJobsHistoryLimit": {"type": "integer", "minimum": 0},
                    "failedJobsHistoryLimit": {"type": "integer", "minimum": 0},
                    "suspend": {"type": "boolean"},
                    "workflowMetadata": meta,
                    "workflowSpec": workflow_spec,
                    **_any("stopStrategy when"),
                },
            },
        },
    }


def validate_manifest(doc: dict[str, Any]) -> None:
    """Raise if ``doc`` is not a valid CronJob (Kubernetes, strict) or Argo CronWorkflow."""
    if doc.get("kind") == "CronWorkflow":
        validator = jsonschema.Draft202012Validator(argo_schema(), registry=_k8s_registry())
        validator.validate(doc)
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
