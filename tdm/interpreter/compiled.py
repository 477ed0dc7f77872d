"""A pipeline compiled once for the sequential executor's lean loop: flat per-node arrays.

Kept per :class:`~tdm.core.pipeline.Pipeline` value (weakly), so a pipeline run many times is
compiled once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from tdm.core.pipe import Op, Pipe
from tdm.core.pipeline import Pipeline

# Whether this pandas lays frames out in blocks; without them, statistics are always computed.
_BLOCKS = isinstance(getattr(getattr(pd.DataFrame(), "_mgr", None), "blocks", None), tuple)


class _Compiled:
    """A pipeline laid out once for the sequential loop: flat per-node arrays, no objects."""

    __slots__ = ("direct", "evaluate", "index", "no_copy", "ops", "roots", "waiting")

    def __init__(self, pipeline: Pipeline) -> None:
        plan = pipeline.plan
        self.ops: list[Op] = [node.op for node in plan.nodes]
        self.evaluate: list[Callable[..., Any] | None] = [
            op.evaluate if isinstance(op, Pipe) else None for op in self.ops
        ]
        # Built-in steps never mutate their input frames, so a frame shared with other
        # consumers needs no Copy-on-Write shallow copy for them. Not when they call user code
        # (a predicate, a callable expression): that code could.
        self.no_copy: list[bool] = [_builtin_without_callables(op) for op in self.ops]
        self.roots: list[int] = [i for i, ps in enumerate(plan.parents) if not ps]
        self.waiting: list[int] = [len(ps) for ps in plan.parents]
        self.index: dict[str, int] = {name: i for i, name in enumerate(plan.names)}
        # One-input steps without the run context whose evaluation is Pipe's own: the loop
        # calls their body directly (what Pipe.evaluate would do, minus its checks).
        self.direct: list[tuple[Any, ...] | None] = [
            (op.fn, op.call_args, op.call_kwargs, op)
            if isinstance(op, Pipe)
            and type(op).evaluate is Pipe.evaluate
            and op.arity == 1
            and not op.needs_context
            and len(plan.parents[i]) == 1
            else None
            for i, op in enumerate(self.ops)
        ]


def _builtin_without_callables(op: Op) -> bool:
    if not isinstance(op, Pipe):
        return False
    module = getattr(op.fn, "__module__", None) or ""
    if not module.startswith("tdm.transforms."):
        return False
    values = [*op.call_args, *op.call_kwargs.values()]
    while values:
        value = values.pop()
        if callable(value) and not isinstance(value, type):
            return False
        if isinstance(value, list | tuple | set | frozenset):
            values.extend(value)
        elif isinstance(value, Mapping):
            values.extend(value.values())
    return True


_COMPILED: weakref.WeakKeyDictionary[Pipeline, _Compiled] = weakref.WeakKeyDictionary()


def _compiled(pipeline: Pipeline) -> _Compiled:
    compiled = _COMPILED.get(pipeline)
    if compiled is None:
        compiled = _COMPILED[pipeline] = _Compiled(pipeline)
    return compiled
