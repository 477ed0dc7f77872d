"""``${file:NAME}`` in a config: a mapping or list loaded from a JSON, YAML or CSV file.

Rename maps and lookup tables live in their own files next to the config
(``column_map: ${file:column_mapping.json}``). The file is data: it is parsed, never executed,
and must sit in the config's folder (or below it).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

__all__ = ["MAX_DATA_FILE_BYTES", "load_data_file"]

MAX_DATA_FILE_BYTES = 10 * 1024 * 1024
_FORMATS = (".json", ".yml", ".yaml", ".csv")


class DataFileProblem(ValueError):
    """The file cannot be used; the message says why and how to fix it."""


def load_data_file(name: str, config_file: str | None) -> Any:
    """The value of ``${file:name}``: a mapping or a list.

    A CSV file starts with a header row; then two columns give a mapping from the first to
    the second, one column gives a list, more columns give a list of records.
    """
    base = Path(config_file).resolve().parent if config_file else Path.cwd().resolve()
    relative = Path(name.strip())
    if not name.strip():
        raise DataFileProblem("${file:} needs a file name, e.g. ${file:column_mapping.json}")
    if relative.is_absolute():
        raise DataFileProblem(
            f"${{file:{name}}}: use a path relative to the config's folder ({base}), not an "
            "absolute one"
        )
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise DataFileProblem(
            f"${{file:{name}}} points outside the config's folder ({base}); keep data files "
            "next to the config"
        )
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise DataFileProblem(
            f"${{file:{name}}}: unknown format {suffix or '(no extension)'!r}; use a .json, "
            ".yml/.yaml or .csv file"
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataFileProblem(f"${{file:{name}}}: no file {path}") from None
    if size > MAX_DATA_FILE_BYTES:
        raise DataFileProblem(
            f"${{file:{name}}}: {path} is {size:,} bytes, over the {MAX_DATA_FILE_BYTES:,}-byte "
            "limit for data files in a config; read large tables with files.read instead"
        )
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            value = json.loads(text)
        elif suffix == ".csv":
            value = _csv(text)
        else:
            from tdm.config._where import _plain
            from tdm.config._yaml import parse_yaml

            value = _plain(parse_yaml(text, source=str(path)))
    except DataFileProblem:
        raise
    except Exception as exc:
        raise DataFileProblem(f"${{file:{name}}}: cannot parse {path}: {exc}") from None
    if not isinstance(value, dict | list):
        raise DataFileProblem(
            f"${{file:{name}}}: {path} holds a {type(value).__name__}; a data file holds a "
            "mapping or a list"
        )
    return value


def _csv(text: str) -> Any:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        return []
    width = {len(r) for r in rows}
    if len(width) != 1:
        raise DataFileProblem(f"rows have different numbers of columns: {sorted(width)}")
    (n,) = width
    header, body = rows[0], rows[1:]
    if n == 1:
        return [r[0] for r in body]
    if n == 2:
        return {r[0]: r[1] for r in body}
    return [dict(zip(header, r, strict=True)) for r in body]
