"""Secrets: named sections of key/value pairs, resolved only inside effect handlers.

A pipeline holds secret *names* (``secret="AirWatch"``); a handler asks the run's provider for
the section and gets :class:`Secret` values, whose repr, str, pickle and JSON never show the
value. Every value revealed is remembered so logs, errors and reports can be scrubbed of it
(:func:`scrub`).

The file provider reads ``$TDM_HOME/secrets.yml`` (default ``~/.tdm/secrets.yml``)::

    version: 1
    AirWatch:
      username: api-user
      password: hunter2
    S3:
      key: AKIA...
      secret: ...

The environment provider reads ``TDM_SECRET__<NAME>__<KEY>=value`` (names are matched without
regard to case).
"""

from __future__ import annotations

import os
import re
import stat
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol, runtime_checkable

from tdm.errors import SecretNotFoundError

__all__ = [
    "ChainSecrets",
    "EnvSecrets",
    "FileSecrets",
    "MappingSecrets",
    "Secret",
    "SecretsProvider",
    "default_secrets",
    "known_values",
    "remember",
    "scrub",
    "tdm_home",
]

REDACTED = "***"


class Secret:
    """A secret value that never shows itself: ``repr``, ``str``, pickle and JSON all hide it.

    >>> s = Secret("hunter2")
    >>> s, str(s), f"{s}"
    (Secret('***'), '***', '***')
    >>> s.reveal()
    'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)
        remember(self._value)

    def reveal(self) -> str:
        """The value itself; use it only at the call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a Secret cannot be pickled: send the secret's name and resolve it where it is used"
        )

    def __bool__(self) -> bool:
        return bool(self._value)


_known: set[str] = set()
_known_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

# Values this short would scrub ordinary words and digits out of every message.
_MIN_SCRUB_LENGTH = 4


def remember(value: str) -> None:
    """Register a secret value so that :func:`scrub` removes it from text."""
    global _pattern
    if len(value) < _MIN_SCRUB_LENGTH:
        return
    with _known_lock:
        if value not in _known:
            _known.add(value)
            _pattern = None


def known_values() -> frozenset[str]:
    """The secret values seen so far in this process."""
    with _known_lock:
        return frozenset(_known)


def scrub(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``.

    >>> _ = Secret("correct-horse-battery")
    >>> scrub("login with correct-horse-battery failed")
    'login with *** failed'
    """
    global _pattern
    if not _known or not text:
        return text
    pattern = _pattern
    if pattern is None:
        with _known_lock:
            ordered = sorted(_known, key=len, reverse=True)
            pattern = _pattern = re.compile("|".join(map(re.escape, ordered)))
    return pattern.sub(REDACTED, text)


@runtime_checkable
class SecretsProvider(Protocol):
    """Where secrets come from. ``section(name)`` raises ``SecretNotFoundError`` if absent."""

    def section(self, name: str) -> Mapping[str, Secret]:
        """All keys of the secret called ``name``."""
        ...

    def describe(self) -> str:
        """Where this provider looks (for error messages; never a value)."""
        ...


def _secrets_of(name: str, raw: Mapping[str, Any], where: str) -> dict[str, Secret]:
    if not isinstance(raw, Mapping):
        raise SecretNotFoundError(
            f"secret {name!r} in {where} must be a mapping of keys to values, "
            f"got {type(raw).__name__}"
        )
    return {str(k): Secret("" if v is None else str(v)) for k, v in raw.items()}


def tdm_home() -> Path:
    """``$TDM_HOME`` or ``~/.tdm``: where tdm keeps secrets, the audit store and settings."""
    home = os.environ.get("TDM_HOME")
    return Path(home).expanduser() if home else Path.home() / ".tdm"


class MappingSecrets:
    """Secrets from a mapping in memory (tests, notebooks).

    >>> MappingSecrets({"S3": {"key": "abc"}}).section("S3")["key"].reveal()
    'abc'
    """

    def __init__(self, sections: Mapping[str, Mapping[str, Any]], *, where: str = "memory") -> None:
        self._where = where
        self._sections = {str(k): _secrets_of(str(k), v, where) for k, v in sections.items()}

    def section(self, name: str) -> Mapping[str, Secret]:
        try:
            return self._sections[name]
        except KeyError:
            _missing(name, self._where, self._sections)

    def names(self) -> list[str]:
        """The section names (never values)."""
        return sorted(self._sections)

    def describe(self) -> str:
        return self._where

    def __repr__(self) -> str:
        return f"MappingSecrets(<{len(self._sections)} sections>)"


def _missing(name: str, where: str, available: Iterable[str]) -> NoReturn:
    import difflib

    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(names) if names else "none"
    raise SecretNotFoundError(
        f"secret {name!r} not found in {where} (sections there: {listed}){hint}; "
        f"add a section named {name!r} or fix the name"
    )


class FileSecrets:
    """Secrets from a YAML file with ``version: 1`` and one mapping per secret name.

    Warns when the file can be read by its group or others (it should be ``chmod 600``).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else tdm_home() / "secrets.yml"
        self._loaded: MappingSecrets | None = None

    def _load(self) -> MappingSecrets:
        if self._loaded is not None:
            return self._loaded
        import yaml

        if not self.path.exists():
            raise SecretNotFoundError(
                f"secrets file {self.path} does not exist; create it (version: 1, one section "
                "per secret name) or set TDM_HOME to the folder that has it",
                file=str(self.path),
            )
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.warn(
                f"secrets file {self.path} is readable by other users; run: chmod 600 {self.path}",
                stacklevel=3,
            )
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            # The parser's message may quote the file's text (a value): keep only the problem.
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise SecretNotFoundError(
                f"secrets file is not valid YAML: {problem}", file=str(self.path), line=line
            ) from None
        if not isinstance(data, Mapping):
            raise SecretNotFoundError(
                "secrets file must be a mapping of secret names to sections",
                file=str(self.path),
            )
        version = data.get("version", 1)
        if version != 1:
            raise SecretNotFoundError(
                f"secrets file has version {version!r}; this tdm reads version 1",
                file=str(self.path),
            )
        sections = {k: v for k, v in data.items() if k != "version"}
        self._loaded = MappingSecrets(sections, where=f"secrets file {self.path}")
        return self._loaded

    def section(self, name: str) -> Mapping[str, Secret]:
        return self._load().section(name)

    def describe(self) -> str:
        return f"secrets file {self.path}"

    def __repr__(self) -> str:
        return f"FileSecrets({str(self.path)!r})"


class EnvSecrets:
    """Secrets from environment variables ``TDM_SECRET__<NAME>__<KEY>``.

    >>> import os
    >>> os.environ["TDM_SECRET__DEMO__TOKEN"] = "t0k3n-value"
    >>> EnvSecrets().section("demo")["token"].reveal()
    't0k3n-value'
    """

    def __init__(
        self, prefix: str = "TDM_SECRET__", environ: Mapping[str, str] | None = None
    ) -> None:
        self.prefix = prefix
        self._environ = environ

    def _sections(self) -> dict[str, dict[str, str]]:
        env = self._environ if self._environ is not None else os.environ
        sections: dict[str, dict[str, str]] = {}
        for var, value in env.items():
            if not var.startswith(self.prefix):
                continue
            rest = var[len(self.prefix) :]
            name, sep, key = rest.partition("__")
            if sep and name and key:
                sections.setdefault(name.lower(), {})[key.lower()] = value
        return sections

    def section(self, name: str) -> Mapping[str, Secret]:
        sections = self._sections()
        try:
            raw = sections[name.lower()]
        except KeyError:
            _missing(name, f"environment variables {self.prefix}<NAME>__<KEY>", sections)
        return {k: Secret(v) for k, v in raw.items()}

    def describe(self) -> str:
        return f"environment variables {self.prefix}<NAME>__<KEY>"

    def __repr__(self) -> str:
        return f"EnvSecrets(prefix={self.prefix!r})"


class ChainSecrets:
    """Asks providers in order; the first that has the section wins."""

    def __init__(self, *providers: SecretsProvider) -> None:
        if not providers:
            raise ValueError("ChainSecrets needs at least one provider")
        self.providers = providers

    def section(self, name: str) -> Mapping[str, Secret]:
        problems = []
        for provider in self.providers:
            try:
                return provider.section(name)
            except SecretNotFoundError as exc:
                problems.append(str(exc))
        raise SecretNotFoundError(
            f"secret {name!r} not found in any provider:\n  - " + "\n  - ".join(problems)
        )

    def describe(self) -> str:
        return " then ".join(p.describe() for p in self.providers)

    def __repr__(self) -> str:
        return f"ChainSecrets{self.providers!r}"


def default_secrets() -> SecretsProvider:
    """The default order: environment variables, then ``$TDM_HOME/secrets.yml``."""
    return ChainSecrets(EnvSecrets(), FileSecrets())
