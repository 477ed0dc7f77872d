"""Executors for ``tdm.run(executor=...)``: where and how ready nodes run."""

from tdm.interpreter.executors import Executor, NodeOutcome, NodeTask, Sequential, Threads

__all__ = ["Executor", "NodeOutcome", "NodeTask", "Sequential", "Threads"]
