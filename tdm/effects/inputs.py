"""The handler for :class:`~tdm.core.effect.Input`: frames supplied to ``tdm.run``."""

from __future__ import annotations

from tdm._types import Frame
from tdm.core.inputs import Input
from tdm.effects.dispatch import EffectEnv, handle
from tdm.errors import InputError


@handle.register
def _input(effect: Input, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    try:
        return env.supplied[effect.input_name]
    except KeyError:
        raise InputError(
            f"input {effect.input_name!r} was not supplied; "
            f"pass tdm.run(pipeline, inputs={{{effect.input_name!r}: frame}})",
            run_id=env.context.run_id,
        ) from None
