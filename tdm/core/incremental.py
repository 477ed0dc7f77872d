"""Incremental loading: which column a source's cursor follows, and where its value goes.

An :class:`Incremental` is part of a source's description (data, like the rest of it). The
interpreter looks up the cursor a previous successful run stored for the node, puts it in the
``{cursor}`` placeholder of the request, and stores the new value only when the whole run
succeeded. Nothing here reads a store or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

__all__ = ["CURSOR", "Incremental", "fill_cursor", "incremental", "next_cursor"]

CURSOR = "{cursor}"
"""The placeholder a request's URL, params or body holds for the cursor value."""


@dataclass(frozen=True, slots=True)
class Incremental:
    """A cursor over ``column``: the next run asks only for rows after ``last_value`` of it.

    Attributes:
        cursor: the output column whose values advance the cursor (e.g. ``updated_at``).
        initial: the cursor of the first run (nothing stored yet).
        last_value: ``"max"`` (default: the newest value seen) or ``"min"``.
    """

    cursor: str
    initial: Any
    last_value: Literal["max", "min"] = "max"

    def __post_init__(self) -> None:
        if not isinstance(self.cursor, str) or not self.cursor:
            raise ValueError(
                f"incremental cursor must be a column name, got {self.cursor!r}; "
                "e.g. tdm.incremental('updated_at', initial='2024-01-01')"
            )
        if self.last_value not in ("max", "min"):
            raise ValueError(
                f"incremental last_value must be 'max' or 'min', got {self.last_value!r}"
            )
        if self.initial is None or not isinstance(self.initial, str | int | float):
            raise ValueError(
                f"incremental initial= must be a string or a number (the first run's cursor), "
                f"got {self.initial!r}"
            )

    def describe(self) -> str:
        extra = "" if self.last_value == "max" else f", last_value={self.last_value!r}"
        return f"incremental({self.cursor!r}, initial={self.initial!r}{extra})"


def incremental(
    cursor_column: str, *, initial: Any, last_value: Literal["max", "min"] = "max"
) -> Incremental:
    """Load only what changed since the last successful run, following ``cursor_column``.

    Pass it to a REST source (``rest.get(..., incremental=...)``) whose URL, params or body
    holds ``{cursor}``: the first run sends ``initial``, each later run the largest (or
    smallest, with ``last_value="min"``) value of ``cursor_column`` that the last successful
    run read. The cursor is kept per pipeline id and node in the audit store and advances
    only when the whole run succeeded, so a failed run loses nothing: pair it with an
    idempotent write (``files.write(..., mode="upsert", key=[...])``).

    >>> incremental("updated_at", initial="2024-01-01")
    Incremental(cursor='updated_at', initial='2024-01-01', last_value='max')
    """
    return Incremental(cursor_column, initial, last_value)


def _text(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def fill_cursor(text: str, value: Any, *, in_url: bool = False) -> str:
    """``text`` with ``{cursor}`` replaced by ``value`` (URL-quoted inside a URL).

    >>> fill_cursor("updated>{cursor}", "2024-01-01 10:00")
    'updated>2024-01-01 10:00'
    >>> fill_cursor("https://x.test/since/{cursor}", "2024-01-01 10:00", in_url=True)
    'https://x.test/since/2024-01-01%2010%3A00'
    """
    shown = _text(value)
    return text.replace(CURSOR, quote(shown, safe="") if in_url else shown)


def next_cursor(spec: Incremental, values: Any, current: Any) -> Any:
    """The cursor after a run that read ``values`` of the cursor column (``current`` if none).

    >>> next_cursor(incremental("n", initial=0), [3, 9, 4], 5)
    9
    >>> next_cursor(incremental("n", initial=0), [], 5)
    5
    """
    present = [v for v in values if v is not None and v == v]  # v == v drops NaN
    if not present:
        return current
    best = max(present) if spec.last_value == "max" else min(present)
    if hasattr(best, "item"):  # a numpy scalar: a plain Python value for the store
        best = best.item()
    if hasattr(best, "isoformat"):
        best = best.isoformat()
    if current is None:
        return best
    try:
        better = best > current if spec.last_value == "max" else best < current
    except TypeError:  # a stored text cursor and a typed column: compare as text
        better = str(best) > str(current) if spec.last_value == "max" else str(best) < str(current)
    return best if better else current
