"""Effect descriptions: frozen, picklable values that *say* what I/O to do, and never do it.

An effect node holds URIs, options and the *names* of secrets; the interpreter hands it to a
handler registered for its type (``tdm.effects.handle``) at run time. Each kind of effect has
three layers with one name: the public factories (``tdm/files.py``), the descriptions
(``tdm/core/files.py``) and the handlers (``tdm/effects/files.py``); likewise ``rest`` and
``inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from tdm.core.pipe import Op

__all__ = ["Effect", "SecretNeed", "SecretRef"]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A reference to a secret: a section ``name`` (and optionally one ``key`` in it).

    Only the reference travels in a pipeline; the value is looked up inside an effect handler.

    >>> SecretRef("AirWatch", "password")
    SecretRef(name='AirWatch', key='password')
    """

    name: str
    key: str | None = None

    def __str__(self) -> str:
        return f"secret:{self.name}" + (f".{self.key}" if self.key else "")


class SecretNeed(NamedTuple):
    """What a step or service needs from a secret section: one of ``any_of`` keys (or, with no
    keys, just the section). ``tdm validate`` checks these before anything runs.

    >>> SecretNeed("AirWatch", ("password",))
    SecretNeed(section='AirWatch', any_of=('password',), ignore_case=False)
    """

    section: str
    any_of: tuple[str, ...] = ()
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class Effect(Op):
    """Base class of effect descriptions. Subclasses are frozen dataclasses.

    Class attributes:
        arity: how many input frames the effect consumes (0 for a source, 1 for a sink).
    """

    kind: ClassVar[str] = "effect"
    arity: ClassVar[int] = 0  # type: ignore[misc]

    label: str | None = field(default=None, kw_only=True, repr=False)
    """A name chosen by the user for this node (must then be unique in its pipeline)."""

    def default_name(self) -> str:
        """The node's name when the user gave none; subclasses refine it."""
        return type(self).__name__.lower()

    @property
    def name(self) -> str:  # type: ignore[override]
        """The node's name: the user's ``label`` or :meth:`default_name`."""
        return self.label if self.label is not None else self.default_name()

    @property
    def explicit_name(self) -> bool:  # type: ignore[override]
        return self.label is not None
