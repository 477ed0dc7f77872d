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
from tdm.core.incremental import incremental
from tdm.interpreter import Hook, NodeReport, RunReport, Runtime, Status, run
from tdm.interpreter.partitions import run_partitions
from tdm.state import history
from tdm.transforms import concat, join

__version__ = "1.0.0.dev0"

__all__ = [
    "Frame",
    "Hook",
    "NodeReport",
    "Pipe",
    "PipeError",
    "Pipeline",
    "RunContext",
    "RunReport",
    "Runtime",
    "SecretRef",
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
    "load_yaml",
    "logging",
    "pipe",
    "rest",
    "run",
    "run_partitions",
    "secrets",
    "state",
    "transform",
    "transform_with_context",
    "transforms",
]
