"""The type registry: YAML ``type`` names -> factories of pipes, effects and services.

A name resolves, in order, to:

1. a **dotted path** ``package.module:factory`` naming a *tdm factory*: one made by
   ``@tdm.transform``, ``@tdm.transform_with_context`` or a source/sink decorator (see
   :mod:`tdm.core.marks`); it never collides with anything. This is the trust boundary of YAML
   files: the mark is checked before the factory is called, and a path into the standard library
   is refused before anything is imported, so a file cannot name ``subprocess:run``;
2. a **built-in** (``rename_columns``, ``join``, ``read``, ...) or an original tdm class name kept
   as an alias (``renamecolumns``, ``filewriter``, ...);
3. an **entry point** in the group ``tdm.pipes`` (``tdm.alerts`` / ``tdm.state`` for those
   kinds) published by a plugin package.

Names are matched without regard to case, ``_``, ``-`` or spaces, so ``rename_columns``,
``RenameColumns`` and ``renamecolumns`` are one name. Targets are *strings* imported on first
use: a built-in that this installation does not have gives a clear error, not a crash.

>>> reg = Registry()
>>> reg.lookup("RenameColumns").name
'rename_columns'
>>> reg.lookup("union").target
'tdm.transforms:union'
>>> reg.lookup("my_pkg.steps:clean").origin
'dotted path'
>>> reg.lookup("subprocess:run")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tdm.errors.ConfigError: subprocess:run is not a tdm step factory: ... nothing was imported
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import re
import sys
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

from tdm.core.marks import factory_kind
from tdm.errors import ConfigError

__all__ = ["Kind", "Registry", "TypeEntry", "default_registry", "normalize"]

Kind = Literal["pipe", "alert", "state"]

ENTRY_POINT_GROUPS: dict[str, str] = {
    "pipe": "tdm.pipes",
    "alert": "tdm.alerts",
    "state": "tdm.state",
}

FIRST_POSITIONAL = 0
"""A rename target meaning "the factory's first positional parameter" (or its ``*args``)."""


def normalize(name: str) -> str:
    """The lookup key of a type name: lower case, without ``_``, ``-``, ``.`` or spaces.

    >>> normalize("Rename_Columns"), normalize("gmail-email alert manager")
    ('renamecolumns', 'gmailemailalertmanager')
    """
    return re.sub(r"[\s_\-.]", "", name).lower()


@dataclass(frozen=True, slots=True)
class TypeEntry:
    """What a type name stands for.

    Attributes:
        name: the canonical name shown in messages (``rename_columns``).
        target: ``"module:attribute"`` of the factory, imported on first use.
        kind: ``"pipe"`` (pipes and effects), ``"alert"`` or ``"state"``.
        renames: original config keys -> candidate parameter names of the factory; the first
            candidate the factory accepts is used (``0`` = its first positional parameter).
        defaults: config values used when the YAML leaves them out (original behaviour).
        adapter: the name of a config translator in :mod:`tdm.config.compat`, if any.
        origin: ``"built-in"``, ``"alias of X"``, ``"dotted path"`` or ``"entry point (dist)"``.
    """

    name: str
    target: str
    kind: Kind = "pipe"
    renames: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    adapter: str | None = None
    origin: str = "built-in"

    def load(self) -> Callable[..., Any]:
        """Import the factory; a clear ``ConfigError`` if it cannot be found."""
        return _import(self)


_import_lock = threading.Lock()


def _import(entry: TypeEntry) -> Callable[..., Any]:
    module_name, _, attr = entry.target.partition(":")
    builtin = entry.origin == "built-in" or entry.origin.startswith("alias")
    try:
        with _import_lock:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if builtin and exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(
                f"type {entry.name!r} is a tdm built-in ({entry.target}) that this installation "
                "does not provide yet; upgrade tdm, or point `type:` at your own factory as "
                "package.module:factory"
            ) from None
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(
                f"cannot import module {module_name!r} for type {entry.target!r}: no such module; "
                "check the spelling, and run tdm from your project's root (or put the package on "
                "PYTHONPATH / pip install it)"
            ) from None
        raise ConfigError(
            f"importing {module_name!r} for type {entry.target!r} failed: {exc}; "
            f"install the missing package ({exc.name})"
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"importing {module_name!r} for type {entry.target!r} failed: {exc}"
        ) from None
    except Exception as exc:  # the user's module raised while importing
        raise ConfigError(
            f"importing {module_name!r} for type {entry.target!r} raised "
            f"{type(exc).__name__}: {exc}; fix the module so that it imports cleanly"
        ) from None
    try:
        found = getattr(module, attr)
    except AttributeError:
        if builtin:
            raise ConfigError(
                f"type {entry.name!r} is a tdm built-in ({entry.target}) that this installation "
                "does not provide yet; upgrade tdm, or point `type:` at your own factory as "
                "package.module:factory"
            ) from None
        names = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=3)
        hint = (
            f"; did you mean {', '.join(repr(f'{module_name}:{c}') for c in close)}?"
            if close
            else ""
        )
        raise ConfigError(
            f"module {module_name!r} has no attribute {attr!r} (type {entry.target!r}){hint}"
        ) from None
    if entry.origin == "dotted path" and entry.target not in _builtin_targets():
        _check_tdm_factory(entry, found)
    elif not callable(found):
        raise ConfigError(
            f"type {entry.target!r} is a {type(found).__name__}, not a factory; point it at a "
            "@tdm.transform function"
        )
    return typing.cast(Callable[..., Any], found)


_WHAT_KIND = {"pipe": "tdm step factory", "alert": "tdm alert manager", "state": "tdm state store"}


def _check_tdm_factory(entry: TypeEntry, found: object) -> None:
    """Refuse a dotted path to anything but a factory a tdm decorator made (before calling it)."""
    kind = factory_kind(found)
    if entry.kind == "pipe" and kind is not None:
        return
    what = _WHAT_KIND[entry.kind]
    if entry.kind != "pipe":
        raise ConfigError(
            f"{entry.target} is not a {what}: a YAML file names alert managers and state stores "
            f"by their built-in type (`tdm types --kind {entry.kind}`) or by a plugin's entry "
            f"point (group {ENTRY_POINT_GROUPS[entry.kind]}); nothing was called"
        )
    if inspect.isfunction(found) and _takes_a_frame(found):
        fix = (
            "it is a plain function of a frame: decorate it with @tdm.transform so that YAML can "
            "configure it (its keyword parameters become `config` keys)"
        )
    else:
        found_what = (
            "a function"
            if inspect.isfunction(found) or inspect.isbuiltin(found)
            else "a class"
            if inspect.isclass(found)
            else _with_article(type(found).__name__)
        )
        fix = (
            f"it is {found_what}; a YAML type may name only tdm steps: a built-in, a plugin's "
            "entry point (group tdm.pipes), or a @tdm.transform / @tdm.transform_with_context "
            "function"
        )
    raise ConfigError(f"{entry.target} is not a {what}: {fix}; nothing was called")


def _takes_a_frame(fn: Callable[..., Any]) -> bool:
    from tdm.config.calls import _looks_like_plain_step  # calls imports this module

    try:
        return _looks_like_plain_step(inspect.signature(fn))
    except (TypeError, ValueError):
        return False


def _dotted_path_problem(name: str) -> str | None:
    """Why ``module:attr`` may not be imported at all, or None."""
    module, _, attr = name.partition(":")
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts) or not attr.isidentifier():
        return f"type {name!r} is not a valid dotted path; write package.module:factory"
    top = parts[0]
    if top in sys.stdlib_module_names or top in ("__main__", "builtins"):
        return (
            f"{name} is not a tdm step factory: {top!r} is a Python standard-library module, and "
            "a YAML type may name only tdm steps (a built-in, a plugin, or your own "
            "@tdm.transform function as package.module:factory); nothing was imported"
        )
    return None


def _entry(
    name: str,
    target: str,
    kind: Kind = "pipe",
    *,
    renames: Mapping[str, Sequence[str | int]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    adapter: str | None = None,
) -> TypeEntry:
    return TypeEntry(
        name=name,
        target=target,
        kind=kind,
        renames={k: tuple(v) for k, v in (renames or {}).items()},
        defaults=dict(defaults or {}),
        adapter=adapter,
    )


_TRANSFORMS = [
    "select",
    "drop",
    "rename_columns",
    "cast",
    "assign",
    "with_columns",
    "append_date_column",
    "add_date_from_filename",
    "map_values",
    "standardize_us_state",
    "filter_rows",
    "drop_nulls",
    "deduplicate",
    "sort",
    "limit",
    "sample",
    "join",
    "concat",
    "union",
    "flatten_json",
    "explode",
    "pivot",
    "unpivot",
    "aggregate",
    "expect_columns",
    "expect_schema",
    "expect_not_empty",
    "expect_unique",
    "expect_no_nulls",
    "expect_values_in",
    "expect_range",
    "skip_if_empty",
    "guard",
    "when",
]


_RECIPIENTS = {"email_addresses": ("recipients", "to", "email_addresses")}


def _email_preset(service: str, host: str, port: int, security: str) -> TypeEntry:
    """The original tdm's Gmail/Outlook alert managers: ``email`` with that server."""
    entry = _entry(
        "email",
        "tdm.alerts:email",
        "alert",
        renames=_RECIPIENTS,
        defaults={"host": host, "port": port, security: True},
    )
    return dataclasses.replace(entry, origin=f"alias of email ({service})")


def _builtins() -> list[tuple[TypeEntry, tuple[str, ...]]]:
    """Built-in entries with their aliases (original tdm class names first)."""
    t = "tdm.transforms:"
    out: list[tuple[TypeEntry, tuple[str, ...]]] = []
    # Original tdm transformers share their key with the new name (case, `_` are ignored);
    # renames map their original config keys onto the new factories' parameters.
    special = {
        "rename_columns": _entry(
            "rename_columns",
            t + "rename_columns",
            renames={"column_map": ("mapping", "columns", "column_map", FIRST_POSITIONAL)},
        ),
        "select": _entry(
            "select", t + "select", renames={"columns": ("columns", FIRST_POSITIONAL)}
        ),
    }
    extra_aliases = {  # original class names, listed by `tdm types`
        "flatten_json": ("FlattenJSONToTable",),
        "select": ("Select", "selectcolumns"),
        "rename_columns": ("RenameColumns",),
        "append_date_column": ("AppendDateColumn",),
        "add_date_from_filename": ("AddDateFromFilename",),
        "join": ("Join",),
        "union": ("Union",),
    }
    for name in _TRANSFORMS:
        target = t + name
        entry = special.get(name) or _entry(name, target)
        out.append((entry, extra_aliases.get(name, ())))
    # inputs, files, rest ------------------------------------------------------------------
    out += [
        (_entry("input", "tdm.inputs:frame", adapter="input"), ("frame", "inputframe")),
        (_entry("read", "tdm.files:read", adapter="file_read"), ("fileread", "readfile")),
        (_entry("write", "tdm.files:write", adapter="file_write"), ("filewrite", "writefile")),
        (_entry("rest_get", "tdm.rest:get"), ("restreader", "queryrestapi", "rest", "get")),
        (_entry("fetch_each", "tdm.rest:fetch_each"), ("restfetcheach",)),
    ]
    files_compat = [
        ("filewriter", "file_write"),
        ("localfilewriter", "file_write"),
        ("s3writer", "file_write"),
        ("azureblobwriter", "file_write"),
        ("writelocalfile", "file_write"),
        ("localcsvwriter", "file_write"),
        ("s3csvwriter", "file_write"),
        ("azureblobcsvwriter", "file_write"),
        ("parquetwriter", "file_write"),
        ("s3parquetwriter", "file_write"),
        ("azureblobparquetwriter", "file_write"),
        ("readlocalfile", "file_read"),
        ("reads3", "file_read"),
        ("localcsvreader", "file_read"),
        ("s3csvreader", "file_read"),
        ("azureblobcsvreader", "file_read"),
        ("parquetreader", "file_read"),
        ("s3parquetreader", "file_read"),
        ("azureblobparquetreader", "file_read"),
    ]
    for alias, adapter in files_compat:
        target = "tdm.files:write" if adapter == "file_write" else "tdm.files:read"
        canonical = "write" if adapter == "file_write" else "read"
        entry = TypeEntry(
            name=canonical,
            target=target,
            adapter=f"{adapter}:{alias}",
            origin=f"alias of {canonical}",
        )
        out.append((entry, (alias,)))
    # alert managers -------------------------------------------------------------------------
    out += [
        (_entry("null", "tdm.alerts:null", "alert"), ("nullalertmanager", "none")),
        (_entry("email", "tdm.alerts:email", "alert", renames=_RECIPIENTS), ("emailalertmanager",)),
        (_email_preset("Gmail", "smtp.gmail.com", 465, "ssl"), ("gmailemailalertmanager", "gmail")),
        (
            _email_preset("Outlook", "smtp.office365.com", 587, "starttls"),
            ("outlookemailalertmanager", "outlook"),
        ),
        (_entry("webhook", "tdm.alerts:webhook", "alert"), ("slackalertmanager", "slack")),
    ]
    # state managers -------------------------------------------------------------------------
    out += [
        (_entry("sqlite", "tdm.state:sqlite", "state"), ("sqlitestatemanager",)),
        (
            _entry("files", "tdm.state:files", "state", renames={"path": ("url", "path")}),
            (
                "filestatemanager",
                "dataframestatemanager",
                "s3statemanager",
                "azureblobstatemanager",
            ),
        ),
        (_entry("memory", "tdm.state:memory", "state"), ("memorystatemanager",)),
    ]
    return out


class Registry:
    """Maps type names to factories; immutable (``with_types`` returns a new registry).

    Args:
        types: extra ``{name: "module:factory" or callable}`` pipe types (they may not shadow
            a built-in; choose another name or use a dotted path).
        entry_points: whether to look up plugin entry points (``tdm.pipes`` ...).
    """

    def __init__(
        self,
        types: Mapping[str, str | Callable[..., Any]] | None = None,
        *,
        entry_points: bool = True,
    ) -> None:
        self._table: dict[tuple[str, str], TypeEntry] = {}
        for entry, aliases in _builtins():
            for name in (entry.name, *aliases):
                key = (entry.kind, normalize(name))
                if name == entry.name and key in self._table:
                    continue  # the canonical entry stays the plain one
                self._table[key] = entry
        self._extra: dict[str, Callable[..., Any]] = {}
        for name, target in (types or {}).items():
            self._add_user_type(name, target)
        self._use_entry_points = entry_points
        self._entry_points: dict[tuple[str, str], TypeEntry] | None = None

    def _add_user_type(self, name: str, target: str | Callable[..., Any]) -> None:
        key = ("pipe", normalize(name))
        if key in self._table:
            raise ConfigError(
                f"type name {name!r} is already a built-in ({self._table[key].target}); "
                "choose another name, or refer to your factory by its dotted path"
            )
        if callable(target):
            dotted = f"{target.__module__}:{target.__qualname__}"
            self._extra[dotted] = target
            target = dotted
        self._table[key] = TypeEntry(name=name, target=target, origin="registered")

    def with_types(self, types: Mapping[str, str | Callable[..., Any]]) -> Registry:
        """A registry that also knows ``types`` (``{name: "module:factory" or factory}``)."""
        new = Registry(entry_points=self._use_entry_points)
        new._table.update(self._table)
        new._extra.update(self._extra)
        for name, target in types.items():
            new._add_user_type(name, target)
        return new

    # lookup -----------------------------------------------------------------------------
    def lookup(self, type_name: str, kind: Kind = "pipe") -> TypeEntry:
        """The entry for ``type_name``; ``ConfigError`` with close matches if unknown."""
        if not isinstance(type_name, str) or not type_name.strip():
            raise ConfigError(f"`type` must be a non-empty name, got {type_name!r}")
        name = type_name.strip()
        if ":" in name:
            problem = _dotted_path_problem(name)
            if problem is not None:
                raise ConfigError(problem)
            return TypeEntry(name=name, target=name, kind=kind, origin="dotted path")
        key = (kind, normalize(name))
        found = self._table.get(key) or self._plugins().get(key)
        if found is not None:
            return found
        raise ConfigError(self._unknown_message(name, kind))

    def _unknown_message(self, name: str, kind: Kind) -> str:
        what = {"pipe": "pipe type", "alert": "alert manager type", "state": "state manager type"}
        by_key: dict[str, str] = {}
        for n, entry in self.entries(kind):
            if normalize(n) == normalize(entry.name):
                by_key[normalize(n)] = entry.name  # suggest the canonical spelling
            else:
                by_key.setdefault(normalize(n), n)
        close = difflib.get_close_matches(normalize(name), list(by_key), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(by_key[c]) for c in close)}? " if close else ""
        extra = (
            "; for your own pipe write package.module:factory (a @tdm.transform function)"
            if kind == "pipe"
            else ""
        )
        if "." in name:
            extra = (
                f"; to name a Python factory write {name.rpartition('.')[0]}:"
                + (name.rpartition(".")[2])
            )
        return f"unknown {what[kind]} {name!r}; {hint}list the known types with `tdm types`{extra}"

    def names(self, kind: Kind = "pipe") -> list[str]:
        """Every name this registry knows for ``kind`` (canonical names and aliases)."""
        return [name for name, _ in self.entries(kind)]

    def entries(self, kind: Kind = "pipe") -> list[tuple[str, TypeEntry]]:
        """``(name, entry)`` for every known name of ``kind``, sorted by name."""
        rows: dict[str, TypeEntry] = {}
        for entry, aliases in _builtins():
            if entry.kind == kind:
                for n in (entry.name, *aliases):
                    rows.setdefault(n, self._table[(kind, normalize(n))])
        for (k, _), entry in {**self._table, **self._plugins()}.items():
            if k == kind and entry.name not in rows:
                rows[entry.name] = entry
        return sorted(rows.items())

    def table(self, kind: Kind = "pipe") -> list[tuple[str, str, str, str]]:
        """What ``tdm types`` shows: (name, factory, origin, "yes"/"no" installed) rows."""
        return [
            (name, entry.target, entry.origin, "yes" if _available(entry.target) else "no")
            for name, entry in self.entries(kind)
        ]

    def _plugins(self) -> dict[tuple[str, str], TypeEntry]:
        if not self._use_entry_points:
            return {}
        if self._entry_points is None:
            self._entry_points = dict(_discover(self._table))
        return self._entry_points

    def resolve(self, entry: TypeEntry) -> Callable[..., Any]:
        """The factory an entry names (imported now)."""
        if entry.target in self._extra:
            return self._extra[entry.target]
        return entry.load()


def _available(target: str) -> bool:
    module_name, _, attr = target.partition(":")
    try:
        return hasattr(importlib.import_module(module_name), attr)
    except ImportError:
        return False


def _discover(
    taken: Mapping[tuple[str, str], TypeEntry],
) -> Iterable[tuple[tuple[str, str], TypeEntry]]:
    for kind, group in ENTRY_POINT_GROUPS.items():
        for ep in metadata.entry_points(group=group):
            key = (kind, normalize(ep.name))
            if key in taken:
                continue  # built-ins win; the plugin stays reachable by its dotted path
            dist = getattr(getattr(ep, "dist", None), "name", None) or "a plugin"
            yield (
                key,
                TypeEntry(
                    name=ep.name,
                    target=ep.value.replace(" ", ""),
                    kind=typing.cast(Kind, kind),
                    origin=f"entry point ({dist})",
                ),
            )


_BUILTIN_TARGETS: frozenset[str] | None = None


def _builtin_targets() -> frozenset[str]:
    """The factories behind the built-in names: trusted under their dotted paths too."""
    global _BUILTIN_TARGETS
    if _BUILTIN_TARGETS is None:
        _BUILTIN_TARGETS = frozenset(entry.target for entry, _ in _builtins())
    return _BUILTIN_TARGETS


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry (built-ins + entry points found at first use)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def signature_of(factory: Callable[..., Any]) -> inspect.Signature | None:
    """The factory's call signature, or None when it cannot be inspected."""
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return None


def _with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
