"""A user's own pipes, referenced from YAML by dotted path (tests.config.sample_pipes:...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

import tdm
from tdm.core import Effect
from tdm.core.marks import mark_factory
from tdm.effects import EffectEnv, handle


@tdm.transform
def add_total(df: pd.DataFrame, *, cols: list[str], column: str = "total") -> pd.DataFrame:
    return df.assign(**{column: df[cols].sum(axis=1)})


@tdm.transform
def scale(
    df: pd.DataFrame, *, factor: float = 2.0, how: Literal["mul", "div"] = "mul"
) -> pd.DataFrame:
    return df * factor if how == "mul" else df / factor


@tdm.transform
def Select(df: pd.DataFrame, *, keep: list[str]) -> pd.DataFrame:
    return df[keep]


def plain(df: pd.DataFrame, *, x: int = 1) -> pd.DataFrame:
    return df


NOT_A_FACTORY = 42


def returns_int() -> int:
    return 3


@dataclass(frozen=True, slots=True)
class Numbers(Effect):
    """A user-defined source effect."""

    n: int = 3

    def default_name(self) -> str:
        return "numbers"

    def describe(self) -> str:
        return f"numbers(n={self.n})"


@handle.register
def _numbers(effect: Numbers, frames: tuple[pd.DataFrame, ...], env: EffectEnv) -> pd.DataFrame:
    return pd.DataFrame({"a": range(effect.n), "b": range(effect.n)})


# Marked as the source/sink decorators will mark the factories they generate: YAML may name
# only marked factories.
def numbers(*, n: int = 3, label: str | None = None) -> tdm.Pipeline:
    return tdm.Pipeline.of(Numbers(n=n, label=label))


mark_factory(numbers, "source")


@dataclass(frozen=True, slots=True)
class Sink(Effect):
    """A user-defined arity-1 effect that uses a secret (stands in for a writer)."""

    target: str
    secret: str | None = None

    arity = 1  # type: ignore[misc]

    def describe(self) -> str:
        return f"sink({self.target!r}, secret={self.secret!r})"


@handle.register
def _sink(effect: Sink, frames: tuple[pd.DataFrame, ...], env: EffectEnv) -> pd.DataFrame:
    if effect.secret:
        env.secret(effect.secret)
    return frames[0]


def sink(target: str, *, secret: str | None = None, label: str | None = None) -> Sink:
    return Sink(target, secret=secret, label=label)


mark_factory(sink, "sink")


@tdm.transform
def boom(df: pd.DataFrame, *, message: str = "boom") -> pd.DataFrame:
    raise ValueError(message)


@tdm.transform
def pick(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return df[list(columns)]


@tdm.transform
def rename(df: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    return df.rename(columns=mapping)
