"""Helpers shared by the observability tests: a leaky effect, log capture, pipelines."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import pytest

import tdm
from tdm.core.effect import Effect
from tdm.effects import EffectEnv, handle
from tests.json_logs import json_logs

PLANTED = "planted-S3cr3t-9f8e7d"


@dataclass(frozen=True, slots=True)
class LeakySource(Effect):
    """A source whose handler (badly) puts its secret into a log line and its error."""

    arity: ClassVar[int] = 0  # type: ignore[misc]
    secret: str = "API"
    fail: bool = True

    def default_name(self) -> str:
        return "leaky"

    def describe(self) -> str:
        return f"leaky(secret={self.secret!r})"


@handle.register
def _leaky(effect: LeakySource, frames: tuple[pd.DataFrame, ...], env: EffectEnv) -> Any:
    token = env.secret(effect.secret)["token"].reveal()
    logging.getLogger("tests.leaky").warning("calling the API with token %s", token)
    if effect.fail:
        raise RuntimeError(f"server rejected token {token}")
    return pd.DataFrame({"token_len": [len(token)], "n": [1]})


@tdm.transform
def identity(df: pd.DataFrame) -> pd.DataFrame:
    return df


@tdm.transform
def boom(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("column 'price' has text in row 7")


@tdm.transform
def chatty(df: pd.DataFrame) -> pd.DataFrame:
    logging.getLogger("user.step").info("processing %d rows", len(df))
    return df


def secrets() -> tdm.effects.secrets.MappingSecrets:
    from tdm.effects.secrets import MappingSecrets

    return MappingSecrets({"API": {"token": PLANTED}})


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logs of the root logger at DEBUG into a string; removed afterwards."""
    with json_logs("DEBUG") as stream:
        yield stream
