"""Why a frame may break a step: duplicate or non-string column names, all-null columns.

pandas reports these only indirectly (``'DataFrame' object has no attribute 'dtype'`` is what a
duplicate column name looks like from inside a step), so when a step fails the step wrapper
asks :func:`diagnose` and puts the real problem first in the failure message.

>>> import pandas as pd
>>> print(diagnose((pd.DataFrame([[1, 2]], columns=["a", "a"]),), ()))
the input frame has duplicate column names ['a'] (rename or drop them first)
>>> print(diagnose((pd.DataFrame({"a": [None], "b": [1]}),), (("column", "a"),)))
the input frame's column 'a' is entirely null
>>> diagnose((pd.DataFrame({"a": [1]}),), ())
''
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

__all__ = ["diagnose"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def diagnose(frames: tuple[pd.DataFrame, ...], params: Any, *, raised: bool = False) -> str:
    """What is hostile about ``frames`` for a step with ``params`` ('' when nothing is).

    All-null columns are named when ``params`` mention them (or, for a ``raised`` exception,
    whichever they are): an all-null column the step does not touch cannot explain its failure.
    """
    notes: list[str] = []
    mentioned = set(_mentions(params))
    for k, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            continue
        which = "the input frame" if len(frames) == 1 else f"input frame {k + 1}"
        notes.extend(_problems(frame, which, mentioned, raised))
    return "; ".join(notes)


def _problems(frame: pd.DataFrame, which: str, mentioned: set[Any], raised: bool) -> Iterator[str]:
    columns = frame.columns
    if isinstance(columns, pd.MultiIndex):
        yield (
            f"{which} has multi-level column names (tuples such as {_show(columns[:3])}); "
            "flatten them into strings first, e.g. df.columns = ['_'.join(c) for c in df.columns]"
        )
        return
    duplicated = list(dict.fromkeys(columns[columns.duplicated()]))
    if duplicated:
        yield f"{which} has duplicate column names {_show(duplicated)} (rename or drop them first)"
    odd = [c for c in columns if not isinstance(c, str)]
    if odd:
        yield (
            f"{which} has column names that are not strings: {_show(odd)} "
            "(steps name columns with strings; rename them first, e.g. "
            f"rename_columns({{{odd[0]!r}: 'name'}}))"
        )
    if len(frame) == 0:
        return
    unique = [c for c in dict.fromkeys(columns) if c not in duplicated]
    wanted = unique if raised else [c for c in unique if _hashable(c) and c in mentioned]
    empty = [c for c in wanted if bool(frame[c].isna().all())]
    if len(empty) == 1:
        yield f"{which}'s column {empty[0]!r} is entirely null"
    elif empty:
        yield f"{which}'s columns {_show(empty)} are entirely null"


def _mentions(value: Any, depth: int = 0) -> Iterator[Any]:
    """Every column name ``value`` (a step's parameters) could refer to."""
    if depth > 6:
        return
    if isinstance(value, str):
        yield value
        yield from _WORD.findall(value)  # an expression such as "amount > 0"
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _mentions(k, depth + 1)
            yield from _mentions(v, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _mentions(v, depth + 1)
    elif _hashable(value):
        yield value


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _show(values: Any) -> str:
    items = list(values)
    text = ", ".join(repr(v) for v in items[:10])
    return f"[{text}{', ...' if len(items) > 10 else ''}]"
