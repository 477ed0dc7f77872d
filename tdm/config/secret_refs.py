"""A pipe's or service's ``secrets:`` block: which secret it names, read by which provider."""

from __future__ import annotations

import re
from typing import Any

from tdm.config._where import _check_keys, _suggest, _type_name, _Where
from tdm.config._yaml import LineDict

__all__ = ["SECRET_TYPES", "secret_name"]

SECRET_TYPES: dict[str, str] = {
    "yamlconfigreader": "default",
    "default": "default",
    "auto": "default",
    "file": "file",
    "yaml": "file",
    "secretsfile": "file",
    "env": "env",
    "environment": "env",
    "directory": "directory",
    "mounted": "directory",
    "kubernetes": "directory",
    "k8s": "directory",
    "aws": "aws",
    "awssecretsmanager": "aws",
    "awssecretconfigreader": "aws",
}


def secret_name(
    kwargs: dict[str, Any],
    config: LineDict,
    where: _Where,
    routes: dict[str, tuple[str, int | None]],
) -> str | None:
    """Pop ``secrets``/``secret`` from ``kwargs``: the secret's name, its provider in ``routes``."""
    raw = config.get("secrets") if "secrets" in kwargs else None
    kwargs.pop("secrets", None)
    direct = kwargs.pop("secret", None)
    if raw is not None and direct is not None:
        raise where.at(config.key_line("secret")).error(
            "both `secrets` and `secret` are given; keep one"
        )
    line = config.key_line("secrets" if raw is not None else "secret")
    where = where.at(line)
    if direct is not None:
        if isinstance(direct, str) and direct.strip():
            return direct
        raise where.error(f"`secret` must be a secret's name, got {_type_name(direct)}")
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip():
        return raw
    if not isinstance(raw, LineDict):
        raise where.error(
            f"`secrets` must be {{type: yamlconfigreader, name: SECTION}}, got {_type_name(raw)}"
        )
    _check_keys(raw, ("type", "name"), "`secrets`", where)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise where.at(raw.key_line("name")).error(
            "`secrets` needs a `name`: the section of secrets.yml (or the secret's name in "
            "its provider), e.g. secrets: {type: yamlconfigreader, name: AirWatch}"
        )
    kind_name = str(raw.get("type", "yamlconfigreader"))
    kind = SECRET_TYPES.get(re.sub(r"[\s_\-]", "", kind_name).lower())
    if kind is None:
        raise where.at(raw.key_line("type")).error(
            f"unknown secrets type {kind_name!r}; {_suggest(kind_name, list(SECRET_TYPES))}"
            f"use yamlconfigreader (the default order), file, env, directory or aws"
        )
    previous = routes.get(name)
    if previous is not None and previous[0] != kind:
        raise where.at(raw.key_line("type")).error(
            f"secret {name!r} is read from {previous[0]!r} on line {previous[1]} but from "
            f"{kind!r} here; use one secrets type per secret name"
        )
    routes[name] = (kind, where.line)
    return name
