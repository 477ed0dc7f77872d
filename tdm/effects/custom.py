"""The handlers of ``@tdm.source`` / ``@tdm.sink`` effects: call the user's function."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tdm._types import Frame
from tdm.core.custom import CustomSink, CustomSource, Secrets, _Custom
from tdm.effects.dispatch import EffectEnv, handle
from tdm.errors import EffectError


def _secrets(effect: _Custom, env: EffectEnv) -> Secrets | None:
    if not effect.wants_secrets:
        return None
    if effect.secret is None:
        return Secrets(None, {})
    return Secrets(effect.secret, env.secret(effect.secret))


@handle.register
def _source(effect: CustomSource, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    out = effect.call((), _secrets(effect, env), env.context)
    return _as_frame(effect, env, out)


@handle.register
def _sink(effect: CustomSink, frames: tuple[Frame, ...], env: EffectEnv) -> Frame:
    (df,) = frames
    effect.call((df,), _secrets(effect, env), env.context)
    return df


def _as_frame(effect: _Custom, env: EffectEnv, out: Any) -> Frame:
    if isinstance(out, pd.DataFrame):
        return out
    if isinstance(out, list) and all(isinstance(r, dict) for r in out):
        return pd.DataFrame.from_records(out)
    raise EffectError(
        f"source {env.node!r} ({effect.describe()}) returned {type(out).__name__}; a source "
        "function must return a pandas DataFrame (or a list of record dicts)",
        node=env.node,
    )
