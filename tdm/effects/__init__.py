"""Effect handlers: the only place tdm imports I/O libraries.

Handlers register on :func:`handle` (a ``functools.singledispatch`` table) for an effect type
from :mod:`tdm.core.effect`; the interpreter dispatches each effect node to its handler.
"""

from tdm.effects.dispatch import EffectEnv, handle

__all__ = ["EffectEnv", "handle"]
