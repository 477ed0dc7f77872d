"""Config translators for original tdm type names (``filewriter``, ``s3csvreader``, ...).

Each translator turns the YAML ``config`` of an original type into the arguments of the new
factory, so files written for tdm 0.2 keep working:

>>> translate("file_write:filewriter", {"filename": "devices.csv",
...     "writer": {"type": "S3CSVWriter", "config": {"bucket": "data"}}}, node="Write")
((), {'uri': 's3://data/devices.csv', 'format': 'csv'})
>>> translate("input", {}, node="orders")
(('orders',), {})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tdm.errors import ConfigError

__all__ = ["translate"]

# original persistence operator -> (location key, URI scheme, format)
_OPERATORS: dict[str, tuple[str, str, str]] = {
    "localcsvwriter": ("folder", "", "csv"),
    "localcsvreader": ("folder", "", "csv"),
    "parquetwriter": ("folder", "", "parquet"),
    "parquetreader": ("folder", "", "parquet"),
    "s3csvwriter": ("bucket", "s3://", "csv"),
    "s3csvreader": ("bucket", "s3://", "csv"),
    "s3parquetwriter": ("bucket", "s3://", "parquet"),
    "s3parquetreader": ("bucket", "s3://", "parquet"),
    "azureblobcsvwriter": ("container", "az://", "csv"),
    "azureblobcsvreader": ("container", "az://", "csv"),
    "azureblobparquetwriter": ("container", "az://", "parquet"),
    "azureblobparquetreader": ("container", "az://", "parquet"),
}
# original pipe types -> the scheme their location key implies
_PIPES: dict[str, tuple[str, str]] = {
    "s3writer": ("bucket", "s3://"),
    "reads3": ("bucket", "s3://"),
    "azureblobwriter": ("container", "az://"),
    "localfilewriter": ("folder", ""),
    "writelocalfile": ("directory", ""),
    "readlocalfile": ("folder", ""),
}
_LOCATION_KEYS = ("folder", "directory", "bucket", "container")
_URI_KEYS = ("uri", "path", "url")


def translate(
    adapter: str, config: Mapping[str, Any], *, node: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for the new factory, from an original type's ``config``."""
    kind, _, alias = adapter.partition(":")
    if kind == "input":
        rest = dict(config)
        name = rest.pop("name", None) or node
        if rest:
            raise ConfigError(
                f"an input takes no config besides `name` (got {', '.join(sorted(rest))}); "
                "remove those keys"
            )
        return (name,), {}
    if kind in ("file_write", "file_read"):
        return (), _files(alias, dict(config), writing=kind == "file_write")
    raise ConfigError(f"internal: no config translator named {adapter!r}")


def _files(alias: str, config: dict[str, Any], *, writing: bool) -> dict[str, Any]:
    nested_key = "writer" if writing else "reader"
    scheme, fmt = "", None
    if alias in _OPERATORS:
        _, scheme, fmt = _OPERATORS[alias]
    elif alias in _PIPES:
        _, scheme = _PIPES[alias]
    nested = config.pop(nested_key, None)
    if nested is not None:
        if not isinstance(nested, Mapping) or "type" not in nested:
            raise ConfigError(
                f"`{nested_key}` must be a mapping with `type` and `config`, e.g. "
                f"{nested_key}: {{type: localcsvwriter, config: {{folder: out}}}}"
            )
        op = str(nested["type"]).replace("_", "").lower()
        if op not in _OPERATORS:
            role = "writer" if writing else "reader"
            known = ", ".join(sorted(k for k in _OPERATORS if k.endswith(role)))
            raise ConfigError(f"unknown {nested_key} type {nested['type']!r}; known: {known}")
        _, scheme, fmt = _OPERATORS[op]
        inner = dict(nested.get("config") or {})
        secrets = inner.pop("secrets", None) or nested.get("secrets")
        if secrets is not None and "secrets" not in config:
            config["secrets"] = secrets
        for key, value in inner.items():
            config.setdefault(key, value)
    out: dict[str, Any] = {}
    uri = next((config.pop(k) for k in _URI_KEYS if k in config), None)
    filename = config.pop("filename", None) or config.pop("file", None)
    location = None
    for key in _LOCATION_KEYS:
        if key in config:
            location = config.pop(key)
            break
    if uri is None:
        if filename is None:
            raise ConfigError(
                "missing the file to "
                + ("write" if writing else "read")
                + ": add `path: folder/file.csv` (or s3://bucket/key, az://container/blob), "
                "or the original `filename:` with a folder/bucket/container"
            )
        if location is None:
            uri = str(filename)
        else:
            base = str(location).rstrip("/")
            if scheme and not base.startswith(scheme):
                base = scheme + base
            uri = f"{base}/{str(filename).lstrip('/')}"
    elif filename is not None:
        uri = f"{str(uri).rstrip('/')}/{str(filename).lstrip('/')}"
    out["uri"] = uri
    if fmt is not None and "format" not in config:
        out["format"] = fmt
    out.update(config)
    return out
