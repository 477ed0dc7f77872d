"""Small helpers shared by the REST effect tests (no mocks: they run real pipelines)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

import tdm
from tdm.effects.secrets import MappingSecrets


def runtime(secrets: Mapping[str, Mapping[str, Any]] | None = None) -> tdm.Runtime:
    return tdm.Runtime(secrets=MappingSecrets(secrets or {}))


def run(
    pipeline: tdm.Pipeline,
    secrets: Mapping[str, Mapping[str, Any]] | None = None,
    **inputs: pd.DataFrame,
) -> tdm.RunReport:
    return tdm.run(pipeline, inputs=inputs or None, runtime=runtime(secrets))


def output(
    pipeline: tdm.Pipeline,
    secrets: Mapping[str, Mapping[str, Any]] | None = None,
    **inputs: pd.DataFrame,
) -> pd.DataFrame:
    report = run(pipeline, secrets, **inputs)
    assert report.ok, report.error
    return report.output


def error(
    pipeline: tdm.Pipeline,
    secrets: Mapping[str, Mapping[str, Any]] | None = None,
    **inputs: pd.DataFrame,
) -> str:
    report = run(pipeline, secrets, **inputs)
    assert not report.ok, "the run should have failed"
    assert report.error is not None
    return report.error
