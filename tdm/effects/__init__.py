"""Effect handlers: the only place tdm imports I/O libraries.

Handlers register on :func:`handle` (a ``functools.singledispatch`` table) for an effect type
from :mod:`tdm.core.effect`; the interpreter dispatches each effect node to its handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tdm.effects.dispatch import EffectEnv, handle

__all__ = ["EffectEnv", "handle"]


def __getattr__(name: str) -> Any:
    """``EffectEnv`` and ``handle`` on first use: a submodule such as ``tdm.effects.secrets``
    then loads without the dispatch table (and pandas)."""
    if name in __all__:
        from tdm.effects import dispatch

        return getattr(dispatch, name)
    raise AttributeError(f"module 'tdm.effects' has no attribute {name!r}")
