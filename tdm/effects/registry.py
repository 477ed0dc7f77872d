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

_BY_CORE_MODULE: dict[str, str] = {
    "tdm.core.inputs": "tdm.effects.inputs",
    "tdm.core.files": "tdm.effects.files",
    "tdm.core.rest": "tdm.effects.rest",
    "tdm.core.custom": "tdm.effects.custom",
}
"""Where each built-in effect type's handlers live: a file read need not import the REST
client (and a REST call need not import pyarrow's readers)."""

_lock = threading.Lock()
_imported: set[str] = set()


def load(effect_type: type | None = None) -> bool:
    """Import the built-in handler module for ``effect_type`` (every one when it is not a
    built-in type or None); True only when that imported a module not imported before."""
    wanted = _BY_CORE_MODULE.get(getattr(effect_type, "__module__", ""))
    modules = (wanted,) if wanted is not None else BUILTIN_HANDLERS
    with _lock:
        fresh = [m for m in modules if m not in _imported]
        for module in fresh:
            importlib.import_module(module)
            _imported.add(module)
        return bool(fresh)
