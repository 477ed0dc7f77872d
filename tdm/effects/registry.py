"""The built-in effect handler modules, imported on first need so the interpreter has them.

Importing a handler module registers its handlers on :func:`tdm.effects.handle`. The dispatch
fallback calls :func:`load` the first time an effect type has no handler, so ``import tdm``
does not import fsspec, pyarrow's readers or tenacity until a file is read or written. Add a
module here when it provides handlers for effects that ``tdm`` itself builds.
"""

from __future__ import annotations

import importlib
import threading

__all__ = ["BUILTIN_HANDLERS", "load"]

BUILTIN_HANDLERS: tuple[str, ...] = (
    "tdm.effects.inputs",
    "tdm.effects.files",
    "tdm.effects.rest",
    "tdm.effects.custom",
)

_lock = threading.Lock()
_loaded = False


def load() -> bool:
    """Import every built-in handler module; True only on the call that imported them."""
    global _loaded
    with _lock:
        if _loaded:
            return False
        for module in BUILTIN_HANDLERS:
            importlib.import_module(module)
        _loaded = True
        return True
