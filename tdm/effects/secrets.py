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
regard to case). The directory provider reads Kubernetes-style mounted secrets, one folder per
secret and one file per key (``$TDM_SECRETS_DIR/<name>/<key>``). AWS Secrets Manager and the
``secrets:`` settings that choose providers live in :mod:`tdm.effects.secret_routing`.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol, runtime_checkable

from tdm.effects.scrubbing import MIN_LENGTH, REDACTED, Scrubber
from tdm.errors import SecretNotFoundError

__all__ = [
    "ChainSecrets",
    "DirectorySecrets",
    "EnvSecrets",
    "FileSecrets",
    "MappingSecrets",
    "REDACTED",
    "Secret",
    "SecretsProvider",
    "default_secrets",
    "known_values",
    "remember",
    "scrub",
    "scrub_exception",
    "ScrubbedError",
    "tdm_home",
]


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


_SCRUBBER = Scrubber()


def remember(value: str) -> None:
    """Register a secret value so that :func:`scrub` removes it from text, in every form it
    is rendered in (see :mod:`tdm.effects.scrubbing`): percent-encoded in either case,
    JSON- or repr-escaped, HTML-escaped, Base64-encoded, and line by line.

    >>> remember("tok/en+1=="); scrub("GET /x?ref=tok%2fen%2B1%3D%3D")
    'GET /x?ref=***'
    >>> scrub('{"detail": "bad key tok\\\\/en+1=="}')
    '{"detail": "bad key ***"}'
    """
    _SCRUBBER.add(value)


def known_values() -> frozenset[str]:
    """The secret values seen so far in this process."""
    return _SCRUBBER.values()


def scrub(text: str) -> str:
    """``text`` with every rendering of every known secret value replaced by ``***``.

    >>> _ = Secret("correct-horse-battery")
    >>> scrub("login with correct-horse-battery failed")
    'login with *** failed'
    """
    return _SCRUBBER.scrub(text)


class ScrubbedError(Exception):
    """Stands in for an exception whose text held a secret value: the same type name and
    traceback, the message with every known secret replaced by ``***``.

    Attributes:
        type_name: the qualified name of the original exception's type.

    >>> ScrubbedError("PermissionError", "token *** rejected")
    ScrubbedError('PermissionError: token *** rejected')
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (ScrubbedError, (self.type_name, str(self).removeprefix(f"{self.type_name}: ")))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions a traceback of it shows (causes and contexts)."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in out):
        out.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return out


def _holds_secret(exc: BaseException) -> bool:
    """Whether the text, arguments or attributes of ``exc`` (what a traceback prints and a
    pickle keeps) hold a known secret value."""
    try:
        texts = [str(exc), repr(exc.args), repr(getattr(exc, "__dict__", ""))]
    except Exception:  # an exception whose str() fails: its text cannot be checked
        return True
    return any(scrub(text) != text for text in texts)


def scrub_exception(exc: BaseException) -> BaseException:
    """``exc`` itself when neither it nor its causes hold a known secret value; otherwise a
    :class:`ScrubbedError` chain with the same type names, scrubbed messages and tracebacks.

    So an exception kept for debugging (``PipeError.cause``) shows no secret when printed as
    a traceback, formatted or pickled.

    >>> _ = Secret("hunter2-horse")
    >>> err = scrub_exception(ValueError("bad password hunter2-horse"))
    >>> type(err).__name__, str(err)
    ('ScrubbedError', 'ValueError: bad password ***')
    >>> clean = KeyError("price")
    >>> scrub_exception(clean) is clean
    True
    """
    if not _SCRUBBER:
        return exc
    chain = _chain(exc)
    if not any(_holds_secret(e) for e in chain):
        return exc
    safe: list[BaseException] = []
    for original in chain:
        try:
            text = str(original)
        except Exception:
            text = "<unprintable>"
        stand_in = ScrubbedError(type(original).__qualname__, scrub(text))
        safe.append(stand_in.with_traceback(original.__traceback__))
    for i, (original, copy) in enumerate(zip(chain, safe, strict=True)):
        copy.__suppress_context__ = original.__suppress_context__
        if i + 1 < len(safe):
            if original.__cause__ is not None:
                copy.__cause__ = safe[i + 1]
            else:
                copy.__context__ = safe[i + 1]
    return safe[0]


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
    return {str(k): _secret(name, str(k), "" if v is None else str(v)) for k, v in raw.items()}


log = logging.getLogger("tdm.secrets")
_warned: set[tuple[str, ...]] = set()
_warned_lock = threading.Lock()


def _warn_once(key: tuple[str, ...], message: str) -> None:
    """One log line per ``key`` and process (a provider is asked again on every run)."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    if _handled(log):
        log.warning("%s", message)
    else:  # tdm's loggers only have a NullHandler: one plain line on stderr, not silence
        print(message, file=sys.stderr)


def _handled(logger: logging.Logger) -> bool:
    """Whether a record of ``logger`` reaches a handler that shows it."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def _secret(name: str, key: str, value: str) -> Secret:
    """``Secret(value)``, warning once when the value is too short to be scrubbed."""
    if 0 < len(value) < MIN_LENGTH:
        _warn_once(
            ("short", name, key),
            f"secret {name!r} key {key!r} is shorter than {MIN_LENGTH} characters, too short "
            "to scrub from messages without garbling them: it may show in logs and errors; "
            "use a longer value if it is a credential",
        )
    return Secret(value)


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

    Logs one warning line when the file can be read by its group or others (it should be
    ``chmod 600``).
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
            _warn_once(
                ("readable", str(self.path.resolve())),
                f"secrets file {self.path} is readable by other users; run: chmod 600 {self.path}",
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
        return {k: _secret(name, k, v) for k, v in raw.items()}

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
    """The default order: environment variables, mounted files (when ``TDM_SECRETS_DIR`` is
    set), then ``$TDM_HOME/secrets.yml``."""
    providers: list[SecretsProvider] = [EnvSecrets()]
    if os.environ.get("TDM_SECRETS_DIR"):
        providers.append(DirectorySecrets())
    providers.append(FileSecrets())
    return ChainSecrets(*providers)


DEFAULT_SECRETS_DIR = "/var/run/secrets/tdm"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class DirectorySecrets:
    """Secrets mounted as files: ``<root>/<secret name>/<key>`` (Kubernetes secret volumes).

    The folder is matched to a secret name without regard to case or punctuation (the secret
    ``Air Watch`` may live in ``air-watch/``); one trailing newline is stripped from each value.
    Hidden entries (Kubernetes' ``..data`` links) are ignored.

    Args:
        root: the folder (default ``$TDM_SECRETS_DIR``, else ``/var/run/secrets/tdm``).

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "airwatch").mkdir(); _ = (root / "airwatch" / "token").write_text("s3cr3t-tok\\n")
    >>> DirectorySecrets(root).section("AirWatch")["token"].reveal()
    's3cr3t-tok'
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        default = os.environ.get("TDM_SECRETS_DIR") or DEFAULT_SECRETS_DIR
        self.root = Path(root if root is not None else default).expanduser()

    def section(self, name: str) -> Mapping[str, Secret]:
        if not self.root.is_dir():
            raise SecretNotFoundError(
                f"secret {name!r} not found: secrets directory {self.root} does not exist; mount "
                "the Kubernetes secret there or set TDM_SECRETS_DIR to the folder that has it"
            )
        folders = {
            entry.name: entry
            for entry in self.root.iterdir()
            if not entry.name.startswith(".") and entry.is_dir()
        }
        wanted = _slug(name)
        match = folders.get(name) or next(
            (d for n, d in sorted(folders.items()) if _slug(n) == wanted), None
        )
        if match is None:
            _missing(name, self.describe(), folders)
        values: dict[str, Secret] = {}
        for item in sorted(match.iterdir()):
            if item.name.startswith(".") or not item.is_file():
                continue
            text = item.read_text(encoding="utf-8")
            value = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
            values[item.name] = _secret(name, item.name, value)
        return values

    def describe(self) -> str:
        return f"secrets directory {self.root}"

    def __repr__(self) -> str:
        return f"DirectorySecrets({str(self.root)!r})"
