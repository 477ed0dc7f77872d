"""Building a project's services (alert managers, the state store) from their YAML specs.

The same registry, renames and call checks that build pipes (:mod:`tdm.config.calls`) build
services, so ``tdm validate`` and ``tdm.load`` reject exactly what ``tdm run`` would. Errors name
the file and line that declared the service (``$TDM_HOME/config.yml`` for shared settings).
"""

from __future__ import annotations

import logging
from typing import Any

from tdm.config._where import _bare, _Where
from tdm.config.calls import _apply_renames, _signature, check_call
from tdm.config.project import ComponentSpec
from tdm.config.registry import Kind, Registry, TypeEntry
from tdm.errors import ConfigError, TdmError

__all__ = ["DEPRECATED_KEYS", "build_service"]

log = logging.getLogger("tdm.config")

DEPRECATED_KEYS: dict[tuple[Kind, str], str] = {
    ("alert", "mode"): "the original Gmail `mode` (e.g. mfa) is not needed: put an app "
    "password in the secret",
    ("state", "state_object_name"): "the original `state_object_name` is not needed: runs are "
    "stored by pipeline_id",
}
"""Original config keys that are accepted, ignored, and reported with a one-line note."""


def build_service(spec: ComponentSpec, kind: Kind, registry: Registry) -> Any:
    """The alerter or state store ``spec`` describes, built by its registered factory.

    Raises:
        ConfigError: naming the service, its file and line, what is wrong and how to fix it.
    """
    what = "alert manager" if kind == "alert" else "state manager"
    where = _Where(spec.file, spec.line)
    try:
        entry = registry.lookup(spec.type, kind)
        factory = registry.resolve(entry)
    except ConfigError as exc:
        raise where.error(f"{what} {spec.name!r}: {_bare(exc)}") from None
    entry = TypeEntry(
        name=entry.name,
        target=entry.target,
        kind=kind,
        renames=spec.renames,
        defaults=spec.defaults,
        origin=entry.origin,
    )
    kwargs = dict(spec.config)
    lines = dict(spec.lines)
    for key in list(kwargs):
        note = DEPRECATED_KEYS.get((kind, key))
        if note is not None:
            del kwargs[key]
            line = lines.get(key, spec.line)
            log.warning(
                "%s:%s: %s %r: `%s` is deprecated and ignored; %s",
                spec.file or "<yaml text>", line, what, spec.name, key, note,
            )  # fmt: skip
    sig = _signature(factory)
    kwargs = _apply_renames(entry, sig, kwargs, lines)
    for key, value in spec.defaults.items():
        if key not in kwargs and sig is not None and key in sig.parameters:
            kwargs[key] = value  # an implied default this factory takes (Gmail's host, say)
    if sig is not None:
        check_call(
            where.at(spec.line),
            f"{what} {spec.name!r} ({spec.type})",
            factory,
            sig,
            (),
            kwargs,
            lines,
            key_line=spec.line,
            config_line=spec.line,
        )
    try:
        return factory(**kwargs)
    except TdmError as exc:
        raise where.error(f"{what} {spec.name!r}: {_bare(exc)}") from None
    except Exception as exc:
        raise where.error(
            f"{what} {spec.name!r} ({spec.type}) rejected its config: {type(exc).__name__}: {exc}"
        ) from None
