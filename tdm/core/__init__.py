"""The pure algebra of tdm: pipes, pipelines and effect descriptions.

Imports pandas and returns only; never fsspec, httpx, dask or any other I/O library.
"""

from tdm.core.context import RunContext
from tdm.core.effect import Effect, SecretRef
from tdm.core.factories import transform, transform_with_context
from tdm.core.inputs import Input
from tdm.core.pipe import VARIADIC, Op, Pipe, PipeError, Skip
from tdm.core.pipeline import Node, Pipeline, Plan, pipe

__all__ = [
    "VARIADIC",
    "Effect",
    "Input",
    "Node",
    "Op",
    "Pipe",
    "PipeError",
    "Pipeline",
    "Plan",
    "RunContext",
    "SecretRef",
    "Skip",
    "pipe",
    "transform",
    "transform_with_context",
]
