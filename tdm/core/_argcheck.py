"""Check a step factory's arguments against the step body's annotations, when it is built.

``rename_columns(["a", "b"])`` should fail where it is written, not in the middle of a run. The
check is conservative: it understands the annotations step authors write (``str``, ``int``,
``list[str]``, ``Mapping[str, str]``, ``Sequence[...]``, unions, ``Literal``, ``Callable``) and
accepts anything it does not understand, so it never rejects a value the body could take.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["argument_problems", "resolved_hints"]

_UNKNOWN = object()


def resolved_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' annotations as objects; one that cannot be resolved is left out."""
    hints: dict[str, Any] = {}
    namespace = dict(getattr(fn, "__globals__", {}))
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if name == "return":
            continue
        try:
            if isinstance(annotation, str):
                annotation = eval(annotation, namespace)
                if isinstance(annotation, str):  # a string alias such as RowPredicate
                    annotation = eval(annotation, namespace)
            hints[name] = annotation
        except Exception:  # a forward reference the module cannot resolve: check nothing
            continue
    return hints


def argument_problems(
    step_name: str, sig: inspect.Signature, hints: Mapping[str, Any], arguments: Mapping[str, Any]
) -> list[str]:
    """One message per argument whose value cannot match its annotation."""
    problems: list[str] = []
    for name, value in arguments.items():
        param = sig.parameters.get(name)
        if param is None or name not in hints:
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            hint, values = hints[name], list(value)
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            hint, values = hints[name], list(value.values())
        else:
            hint, values = hints[name], [value]
        if param.default is not inspect.Parameter.empty and value is param.default:
            continue
        for v in values:
            if _matches(v, hint) is False:
                problems.append(
                    f"{step_name}(): {name}={_short(v)} is {_kind(v)}, expected {_show(hint)}"
                )
                break
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _show(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


_SPECIAL = frozenset({float, int, bool, tuple})  # classes _matches checks in its own way


def _matches(value: Any, hint: Any) -> bool | None:
    """True/False when the annotation is understood, None when it is not (accept)."""
    if hint is Any or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    if type(hint) is type and hint not in _SPECIAL:  # a plain class: the common leaf
        return isinstance(value, hint)
    origin: Any
    args: tuple[Any, ...]
    if type(hint) is type:
        origin, args = None, ()
    else:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        results = [_matches(value, a) for a in args]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if origin is typing.Literal:
        return value in args
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"
    if hint is tuple:
        return isinstance(value, (tuple, list))
    if hint in (str, bytes, dict, list, set, frozenset):
        return isinstance(value, hint)
    if origin is None and hint in (cabc.Callable,):
        return callable(value)
    if origin is cabc.Callable:
        return callable(value)
    if origin in (list, set, frozenset):
        if not isinstance(value, origin):
            return False
        return _all_items(value, args[0] if args else Any)
    if origin is tuple:
        if isinstance(value, list):  # YAML has no tuples: a list is what a config can write
            return None
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return _all_items(value, args[0])
        return None
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, Mapping):
            return False
        if len(args) == 2:
            keys = _all_items(value.keys(), args[0])
            vals = _all_items(value.values(), args[1])
            if keys is False or vals is False:
                return False
        return True
    if origin in (cabc.Sequence, cabc.Iterable, cabc.Collection):
        if isinstance(value, (str, bytes, Mapping)) and origin is cabc.Sequence:
            # a str is a Sequence[str], but never what a step meant by a list of names
            return isinstance(value, str) and _matches("x", args[0] if args else Any) is not False
        if not isinstance(value, cabc.Iterable):
            return False
        if isinstance(value, (list, tuple, set, frozenset)) and args:
            return _all_items(value, args[0])
        return True
    if isinstance(hint, type):
        try:
            return isinstance(value, hint)
        except TypeError:
            return None
    return None


def _all_items(values: Any, hint: Any) -> bool | None:
    if type(hint) is type and hint not in _SPECIAL:  # as _matches decides a plain class
        return all(isinstance(v, hint) for v in values)
    unknown = False
    for v in values:
        r = _matches(v, hint)
        if r is False:
            return False
        unknown = unknown or r is None
    return None if unknown else True


def bind_problem(
    step_name: str, sig: inspect.Signature, kwargs: Mapping[str, Any], exc: TypeError
) -> str:
    """Say which argument is wrong: an unknown keyword first (with the closest known name)."""
    import difflib

    accepted = [
        p.name
        for p in sig.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [] if takes_any else [k for k in kwargs if k not in accepted]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            hints.append(f"unexpected {key!r}{hint}")
        return (
            f"{step_name}(): {'; '.join(hints)}; it accepts "
            f"{', '.join(repr(a) for a in accepted) or 'no parameters'}; "
            f"signature is {step_name}{sig}"
        )
    return f"{step_name}(): {exc}; signature is {step_name}{sig}"
