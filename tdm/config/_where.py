"""Locations and small helpers shared by the YAML loader's parts: file, line, pipeline, pipe."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tdm.config._yaml import LineDict, LineList
from tdm.errors import ConfigError, TdmError


class _Where:
    """A location for messages: file, line, pipeline and pipe."""

    __slots__ = ("file", "line", "pipe", "pipeline")

    def __init__(
        self,
        file: str | None,
        line: int | None,
        pipeline: str | None = None,
        pipe: str | None = None,
    ) -> None:
        self.file, self.line, self.pipeline, self.pipe = file, line, pipeline, pipe

    def at(self, line: int | None) -> _Where:
        return _Where(self.file, line if line is not None else self.line, self.pipeline, self.pipe)

    def error(self, message: str) -> ConfigError:
        parts = []
        if self.pipeline is not None:
            parts.append(f"pipeline {self.pipeline!r}")
        if self.pipe is not None:
            parts.append(f"pipe {self.pipe!r}")
        prefix = ", ".join(parts) + ": " if parts else ""
        return ConfigError(prefix + message, file=self.file, line=self.line)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"did you mean {', '.join(map(repr, close))}? " if close else ""


def _check_keys(node: LineDict, allowed: Sequence[str], what: str, where: _Where) -> None:
    for key in node:
        if key not in allowed:
            raise where.at(node.key_line(key)).error(
                f"unknown key {key!r} in {what}; {_suggest(str(key), allowed)}"
                f"allowed keys: {', '.join(allowed)}"
            )


def _type_name(value: Any) -> str:
    if isinstance(value, LineDict | dict):
        return "a mapping"
    if isinstance(value, LineList | list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


def _bare(exc: TdmError) -> str:
    text = str(exc)
    if isinstance(exc, ConfigError) and exc.file is not None:
        prefix = f"{exc.file}:{exc.line}: " if exc.line is not None else f"{exc.file}: "
        return text.removeprefix(prefix)
    return text


def _plain_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in value.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "pipeline"
