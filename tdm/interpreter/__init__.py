"""The effects interpreter: ``run``, the ``Runtime``, executors, reports and hooks."""

from tdm.interpreter.executors import Executor, Sequential, Threads
from tdm.interpreter.hooks import Hook
from tdm.interpreter.report import NodeReport, RunReport, Status
from tdm.interpreter.run import run
from tdm.interpreter.runtime import Runtime

__all__ = [
    "Executor",
    "Hook",
    "NodeReport",
    "RunReport",
    "Runtime",
    "Sequential",
    "Status",
    "Threads",
    "run",
]
