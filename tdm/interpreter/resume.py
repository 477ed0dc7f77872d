"""Resuming a failed run from checkpoints: which nodes to restore, which to run again.

Every node gets a key: a hash of its structure (name, op, parameters, the code of its step)
and of its inputs' keys; a source's inputs are the run that read it (its *epoch*), a supplied
frame's its content. A run with checkpoints stores each successful node's output under its key.
Resuming run R computes the keys again with R's epochs: a node whose key has an output stored
is restored from it (never re-requested, never re-written); the others run, and a source that
runs again gets this run's epoch, so everything downstream of it runs too. A changed step or
input changes its key and its descendants', and nothing else.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tdm._types import Frame
from tdm.core.inputs import Input
from tdm.core.pipe import Op, Pipe
from tdm.core.pipeline import ARGUMENT, Pipeline
from tdm.effects.checkpoints import CheckpointStore
from tdm.errors import InputError

__all__ = ["Resume", "node_hashes"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _code_text(fn: Any) -> str:
    """The identity of a function's code: where it lives and its bytecode (not its address)."""
    code = getattr(fn, "__code__", None)
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    if code is None:
        return name
    consts = _ADDRESS.sub("", repr(code.co_consts))
    return f"{name}:{code.co_code.hex()}:{consts}:{code.co_names}"


def _op_text(name: str, op: Op) -> str:
    parts = [name, op.kind, _ADDRESS.sub("", op.describe()), _ADDRESS.sub("", repr(op))]
    if isinstance(op, Pipe):
        parts.append(_code_text(op.fn))
        parts += [_code_text(v) for _, v in op.params if callable(v)]
    return "\x1f".join(parts)


_HASHES: weakref.WeakKeyDictionary[Pipeline, tuple[str, ...]] = weakref.WeakKeyDictionary()


def node_hashes(pipeline: Pipeline) -> tuple[str, ...]:
    """Each node's structural hash, in plan order (stable across processes)."""
    found = _HASHES.get(pipeline)
    if found is None:
        plan = pipeline.plan
        found = tuple(
            _digest(_op_text(plan.names[i], node.op)) for i, node in enumerate(plan.nodes)
        )
        _HASHES[pipeline] = found
    return found


def _digest(*parts: str) -> str:
    text = "\x1e".join(parts).encode()
    return hashlib.sha256(text, usedforsecurity=False).hexdigest()[:32]


def frame_fingerprint(frame: Frame) -> str:
    """A hash of a frame's content, columns and dtypes."""
    rows = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    shape = "\x1f".join(f"{c}:{t}" for c, t in zip(frame.columns, frame.dtypes, strict=True))
    return _digest(hashlib.sha256(rows, usedforsecurity=False).hexdigest(), shape)


class Resume:
    """The checkpoint side of one run: keys, what to restore, where to save."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: CheckpointStore,
        pipeline_id: str,
        run_id: str,
        supplied: Mapping[str, Frame],
        origin: str | None,
    ) -> None:
        plan = pipeline.plan
        self.store, self.pipeline_id, self.run_id, self.origin = store, pipeline_id, run_id, origin
        epochs: dict[str, str] = {}
        if origin is not None:
            kept = store.read_run(pipeline_id, origin)
            if kept is None:
                raise InputError(
                    f"run {origin!r} of pipeline {pipeline_id!r} kept no checkpoints in "
                    f"{store.url} (was it run with checkpoints=..., and was that pipeline id "
                    "used?); run the pipeline again instead"
                )
            epochs = dict(kept.get("epochs", {}))
        existing = store.keys(pipeline_id) if origin is not None else set()
        hashes = node_hashes(pipeline)
        self.keys: list[str] = []
        self.restorable: list[bool] = []
        self.epochs: dict[str, str] = {}
        for i, node in enumerate(plan.nodes):
            name = plan.names[i]
            if name in supplied or isinstance(node.op, Input) or node.op is ARGUMENT:
                frame = supplied.get(name)
                source = "supplied:" + (frame_fingerprint(frame) if frame is not None else "")
                key = _digest(hashes[i], source)
                restorable = False  # a supplied frame is given again, never restored
            elif not plan.parents[i]:
                epoch = epochs.get(name, run_id)
                key = _digest(hashes[i], "epoch:" + epoch)
                restorable = key in existing
                self.epochs[name] = epoch if restorable else run_id
                if not restorable:  # runs again: it reads the world anew
                    key = _digest(hashes[i], "epoch:" + run_id)
            else:
                key = _digest(hashes[i], *(self.keys[p] for p in plan.parents[i]))
                restorable = key in existing
            self.keys.append(key)
            self.restorable.append(restorable)
        outputs = set(plan.outputs)
        self.needed = [
            r and (i in outputs or any(not self.restorable[c] for c in plan.children[i]))
            for i, r in enumerate(self.restorable)
        ]
        store.write_run(pipeline_id, run_id, {"epochs": self.epochs, "resumed_from": origin})

    def load(self, i: int) -> Frame:
        return self.store.load(self.pipeline_id, self.keys[i])

    def save(self, i: int, frame: Frame) -> None:
        self.store.save(self.pipeline_id, self.keys[i], frame)

    def clear(self) -> None:
        self.store.clear(self.pipeline_id)
