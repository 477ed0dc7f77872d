"""The :class:`Input` description: a frame supplied by the caller of ``tdm.run``.

Built with :func:`tdm.inputs.frame`; performed by ``tdm.effects.inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdm.core.effect import Effect
from tdm.errors import DefinitionError

__all__ = ["Input"]


@dataclass(frozen=True, slots=True)
class Input(Effect):
    """A frame supplied at run time: ``tdm.run(p, inputs={"orders": df})``.

    >>> Input("orders")
    Input(input_name='orders')
    >>> Input("orders").describe()
    "inputs.frame('orders')"
    """

    input_name: str

    def __post_init__(self) -> None:
        if not self.input_name or not isinstance(self.input_name, str):
            raise DefinitionError(
                f"an input name must be a non-empty string, got {self.input_name!r}"
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.input_name

    @property
    def explicit_name(self) -> bool:  # type: ignore[override]
        return True

    def describe(self) -> str:
        return f"inputs.frame({self.input_name!r})"
