"""tdm: composable, typed data pipelines.

Pure steps (``Frame -> Result[Frame]``) compose with ``>>`` into immutable :class:`Pipeline`
values; :func:`run` interprets them, performing effects (files, REST) through a :class:`Runtime`
and reporting on every node.

>>> import pandas as pd, tdm
>>> @tdm.transform
... def add_total(df, *, cols: list[str]):
...     return df.assign(total=df[cols].sum(axis=1))
>>> p = tdm.inputs.frame("orders") >> add_total(cols=["a", "b"])
>>> tdm.run(p, inputs={"orders": pd.DataFrame({"a": [1], "b": [2]})}).output["total"].tolist()
[3]
"""

# Only the pure algebra is imported eagerly. Everything else (the interpreter, effects, YAML,
# the audit store, alerts, logging) loads on first attribute access, so ``import tdm`` costs
# little on top of pandas and ``tdm --help`` needs no pandas at all.
from __future__ import annotations

import importlib
import logging as _logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tdm import (
        alerts,
        checkpoints,
        errors,
        executors,
        files,
        inputs,
        logging,
        rest,
        secrets,
        state,
        transforms,
    )
    from tdm._types import Frame
    from tdm.config import load_yaml
    from tdm.config.job import Job, load
    from tdm.core import (
        Pipe,
        PipeError,
        Pipeline,
        RunContext,
        SecretRef,
        Skip,
        pipe,
        transform,
        transform_with_context,
    )
    from tdm.core.custom import Secrets, sink, source
    from tdm.core.incremental import incremental
    from tdm.interpreter import Hook, NodeReport, RunReport, Runtime, Status
    from tdm.interpreter.partitions import run_partitions
    from tdm.interpreter.run import run
    from tdm.state import history
    from tdm.transforms import concat, join

# A library's loggers get a NullHandler: without one, Python's last-resort handler prints every
# warning and error a run logs to stderr a second time (next to the report and the progress line).
_logging.getLogger("tdm").addHandler(_logging.NullHandler())

__version__ = "1.0.0.dev0"

__all__ = [
    "Frame",
    "Hook",
    "Job",
    "NodeReport",
    "Pipe",
    "PipeError",
    "Pipeline",
    "RunContext",
    "RunReport",
    "Runtime",
    "SecretRef",
    "Secrets",
    "Skip",
    "Status",
    "__version__",
    "alerts",
    "checkpoints",
    "concat",
    "errors",
    "executors",
    "files",
    "history",
    "incremental",
    "inputs",
    "join",
    "load",
    "load_yaml",
    "logging",
    "pipe",
    "rest",
    "run",
    "run_partitions",
    "secrets",
    "sink",
    "source",
    "state",
    "transform",
    "transform_with_context",
    "transforms",
]

_SUBMODULES = frozenset(
    {
        "alerts",
        "checkpoints",
        "errors",
        "executors",
        "files",
        "inputs",
        "logging",
        "rest",
        "secrets",
        "state",
        "transforms",
    }
)
_ATTRIBUTES: dict[str, str] = {
    "Frame": "tdm._types",
    "load_yaml": "tdm.config",
    "Job": "tdm.config.job",
    "load": "tdm.config.job",
    "Pipe": "tdm.core",
    "PipeError": "tdm.core",
    "Pipeline": "tdm.core",
    "RunContext": "tdm.core",
    "SecretRef": "tdm.core",
    "Skip": "tdm.core",
    "pipe": "tdm.core",
    "transform": "tdm.core",
    "transform_with_context": "tdm.core",
    "Secrets": "tdm.core.custom",
    "sink": "tdm.core.custom",
    "source": "tdm.core.custom",
    "Hook": "tdm.interpreter",
    "NodeReport": "tdm.interpreter",
    "RunReport": "tdm.interpreter",
    "Runtime": "tdm.interpreter",
    "Status": "tdm.interpreter",
    "run": "tdm.interpreter",
    "run_partitions": "tdm.interpreter.partitions",
    "history": "tdm.state",
    "incremental": "tdm.core.incremental",
    "concat": "tdm.transforms",
    "join": "tdm.transforms",
}


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562) and keep it as a plain attribute."""
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"tdm.{name}")
    elif name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    else:
        raise AttributeError(f"module 'tdm' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
