"""How a YAML ``config`` maps onto a registered factory: renames, signatures, type checks."""

from __future__ import annotations

import collections.abc
import contextlib
import inspect
import types
import typing
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tdm.config._where import _suggest, _type_name, _Where
from tdm.config.registry import FIRST_POSITIONAL, TypeEntry

_SIGNATURES: weakref.WeakKeyDictionary[Callable[..., Any], inspect.Signature | None] = (
    weakref.WeakKeyDictionary()
)


def _signature(factory: Callable[..., Any]) -> inspect.Signature | None:
    """The factory's signature, or None when it has none (cached: a file repeats its types)."""
    try:
        return _SIGNATURES[factory]
    except (KeyError, TypeError):
        pass
    try:
        sig: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    with contextlib.suppress(TypeError):
        _SIGNATURES[factory] = sig
    return sig


def _binds(sig: inspect.Signature, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """True when ``sig.bind(*args, **kwargs)`` surely succeeds: keywords only, each naming a
    keyword parameter (or caught by ``**``), no required one missing. False means "ask
    ``sig.bind``", which is several times slower and builds what this check does not need."""
    if args:
        return False
    named = 0
    var_keyword = False
    for name, param in sig.parameters.items():
        kind = param.kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif name in kwargs:
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                return False
            named += 1
        elif param.default is param.empty:
            return False
    return var_keyword or named == len(kwargs)


def _accepts(sig: inspect.Signature, name: str, *, explicit: bool = False) -> bool:
    param = sig.parameters.get(name)
    if param is not None and param.kind is not inspect.Parameter.VAR_POSITIONAL:
        return True
    if explicit:
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _looks_like_plain_step(sig: inspect.Signature) -> bool:
    params = list(sig.parameters.values())
    if not params:
        return False
    first = params[0]
    ann = first.annotation
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", "")
    return (
        first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)
        and first.default is first.empty
        and ("DataFrame" in str(text) or text == "Frame" or first.name in ("df", "frame"))
    )


def _apply_renames(
    entry: TypeEntry,
    sig: inspect.Signature | None,
    kwargs: dict[str, Any],
    lines: dict[str, int],
) -> dict[str, Any]:
    if sig is None or not any(old in kwargs for old in entry.renames):
        return kwargs
    out = dict(kwargs)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    named = {n for n, p in sig.parameters.items() if p.kind not in variadic}
    for old, candidates in entry.renames.items():
        if old not in out or (old in named and old in candidates):
            continue
        for candidate in candidates:
            if candidate == FIRST_POSITIONAL:
                first = next(iter(sig.parameters.values()), None)
                if first is None:
                    continue
                if first.kind is inspect.Parameter.VAR_POSITIONAL:
                    value = out.pop(old)
                    out["*"] = value
                    break
                candidate = first.name
            if isinstance(candidate, str) and candidate in named:
                out[candidate] = out.pop(old)
                if old in lines:
                    lines[candidate] = lines[old]
                break
    return out


_HINTS: weakref.WeakKeyDictionary[Callable[..., Any], dict[str, Any]] = weakref.WeakKeyDictionary()


def _hints(factory: Callable[..., Any], sig: inspect.Signature) -> dict[str, Any]:
    """The annotation of each parameter of ``factory`` that can be resolved (cached).

    Each parameter is resolved on its own, so one annotation that names something unknown at
    run time (a ``TYPE_CHECKING`` import, say) leaves the others checked. A string alias
    (``Columns: TypeAlias = "str | Sequence[str]"``) is resolved in the module that defines it.
    """
    try:
        return _HINTS[factory]
    except (KeyError, TypeError):
        pass
    fn = getattr(factory, "__wrapped__", factory)
    namespace = {**vars(typing), **vars(collections.abc), **getattr(fn, "__globals__", {})}
    out: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        hint = param.annotation
        for _ in range(3):  # a string alias may name another string alias
            if not isinstance(hint, str):
                break
            try:
                hint = eval(hint, namespace)
            except Exception:  # an annotation tdm cannot resolve is not checked
                hint = inspect.Parameter.empty
        if hint is not inspect.Parameter.empty and not isinstance(hint, str):
            out[name] = hint
    with contextlib.suppress(TypeError):
        _HINTS[factory] = out
    return out


def _matches(value: Any, hint: Any) -> bool:
    """A lenient structural check of a YAML value against an annotation."""
    if hint is str:  # the common leaf
        return isinstance(value, str)
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return True
    origin: Any
    args: tuple[Any, ...]
    if type(hint) is type:  # a plain class (the common leaf): no origin, no arguments
        origin, args = None, ()
    else:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    container = origin or hint
    if container in (list, tuple, Sequence, typing.Sequence, set, frozenset):
        if not isinstance(value, list | tuple):
            return False
        inner = args[0] if args and not (container is tuple and len(args) != 2) else Any
        if container is tuple and len(args) >= 1 and args[-1] is not Ellipsis:
            pairs = zip(value, args, strict=False)
            return len(value) == len(args) and all(_matches(v, a) for v, a in pairs)
        return all(_matches(v, inner) for v in value)
    if container in (dict, Mapping, typing.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    return True


def _describe_type(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else None
    return text or str(hint).replace("typing.", "").replace("collections.abc.", "")


def check_call(
    where: _Where,
    name: str,
    factory: Callable[..., Any],
    sig: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    lines: Mapping[str, int],
    *,
    key_line: int | None,
    config_line: int | None,
) -> None:
    """Raise ``ConfigError`` if ``factory(*args, **kwargs)`` would not bind or mistypes a value.

    ``name`` is how messages call the factory; a key's error points at its line in ``lines``
    (else ``key_line``); a missing key at ``config_line``.
    """
    params = sig.parameters
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not has_var_kw:
        for key in kwargs:
            if key not in params:
                accepted = [
                    n
                    for n, p in params.items()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                    and n not in ("label", "secret")
                ]
                raise where.at(lines.get(key, key_line)).error(
                    f"unknown config key {key!r} for {name}; "
                    f"{_suggest(key, accepted)}accepted keys: {', '.join(accepted) or '(none)'}"
                )
    try:
        if not _binds(sig, args, kwargs):
            sig.bind(*args, **kwargs)
    except TypeError:
        missing = [
            n
            for n, p in params.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in kwargs
        ][len(args) :]
        if missing:
            raise where.at(config_line).error(
                f"{name} needs config {', '.join(repr(m) for m in missing)}: add "
                f"{', '.join(f'{m}: ...' for m in missing)} under `config`"
            ) from None
        raise where.at(config_line).error(
            f"{name} cannot take this config; its parameters are {sig}"
        ) from None
    hints = _hints(factory, sig)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is None or key in ("label", "secret"):
            continue
        if not _matches(value, hint):
            raise where.at(lines.get(key, key_line)).error(
                f"config {key!r} of {name} must be {_describe_type(hint)}, got {_type_name(value)}"
            )
