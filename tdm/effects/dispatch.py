"""The dispatch table from effect descriptions to the handlers that perform them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returns.result import Result

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.effect import Effect
from tdm.core.pipe import PipeError
from tdm.effects.secrets import Secret, default_secrets
from tdm.errors import NoHandlerError

if TYPE_CHECKING:
    from tdm.interpreter.runtime import Runtime

__all__ = ["EffectEnv", "HandlerResult", "handle"]

HandlerResult = Frame | Result[Frame, PipeError]


@dataclass(frozen=True, slots=True)
class EffectEnv:
    """What a handler gets besides its effect and input frames.

    Attributes:
        node: the effect node's name in the pipeline (for messages).
        context: the run's parameters.
        runtime: the services of the run (secrets, file roots, HTTP settings, ...).
        supplied: frames passed to ``tdm.run(inputs=...)``, by name.
    """

    node: str
    context: RunContext
    runtime: Runtime
    supplied: dict[str, Frame] = field(default_factory=dict)

    def secret(self, name: str) -> Mapping[str, Secret]:
        """The secret section ``name`` from the run's provider (default: env, then file).

        Raises ``SecretNotFoundError`` (a message with names only, never values).
        """
        provider = self.runtime.secrets if self.runtime.secrets is not None else default_secrets()
        return provider.section(name)


@functools.singledispatch
def handle(effect: Effect, frames: tuple[Frame, ...], env: EffectEnv) -> Any:
    """Perform ``effect`` on ``frames``; return a frame, a ``Result`` or raise ``EffectError``.

    Register a handler for a new effect type with ``@handle.register``. The built-in handler
    modules (``tdm.effects.registry``) are imported on the first miss, so ``import tdm`` stays
    free of I/O libraries and every process (a Dask worker too) finds them.
    """
    from tdm.effects import registry

    if registry.load(type(effect)) or registry.load():
        return handle(effect, frames, env)
    raise NoHandlerError(
        f"no handler for {type(effect).__name__} effects (node {env.node!r}); "
        f"register one with @tdm.effects.handle.register on a function taking a "
        f"{type(effect).__name__}, or import the module that provides it",
        node=env.node,
    )
