"""A YAML loader that remembers the line of every mapping, key and list item.

Config errors must name the line they are about, so mappings load as :class:`LineDict` (a ``dict``
with ``.line`` and ``.key_line(key)``) and sequences as :class:`LineList`. Duplicate keys in one
mapping are an error (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tdm.errors import ConfigError

__all__ = ["LineDict", "LineList", "parse_yaml"]


class LineDict(dict[Any, Any]):
    """A mapping loaded from YAML, with the 1-based line of itself and of each key."""

    line: int | None
    lines: dict[Any, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = None
        self.lines = {}

    def key_line(self, key: Any) -> int | None:
        """The line of ``key`` (or of the mapping itself when the key is absent)."""
        return self.lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence loaded from YAML, with the 1-based line of itself and of each item."""

    line: int | None
    lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = None
        self.lines = []

    def item_line(self, index: int) -> int | None:
        """The line of item ``index`` (or of the sequence itself)."""
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


class _Loader(yaml.SafeLoader):
    """SafeLoader + line numbers + duplicate-key detection + YAML 1.2 booleans.

    Only ``true``/``false`` are booleans: in YAML 1.1 ``on``, ``no``, ``yes``, ``off`` are too,
    which turns ``join``'s ``on: id`` key and a country code ``NO`` into booleans.
    """

    source: str | None = None


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ConfigError(
                "a mapping key must be a plain value (a name), not a list or mapping",
                file=loader.source,
                line=key_node.start_mark.line + 1,
            ) from None
        line = key_node.start_mark.line + 1
        if key in result:
            raise ConfigError(
                f"duplicate key {key!r} (first on line {result.lines[key]}); "
                "each key may appear once per mapping: remove or rename one of them",
                file=loader.source,
                line=line,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, *, source: str | None = None) -> Any:
    """Parse one YAML document, keeping line numbers; syntax errors become ``ConfigError``.

    >>> doc = parse_yaml("a: 1\\nb:\\n  - x\\n  - y\\n")
    >>> doc.key_line("b"), doc["b"].item_line(1)
    (2, 4)
    >>> parse_yaml("{on: id, country: NO, ok: true}")
    {'on': 'id', 'country': 'NO', 'ok': True}
    """
    loader = _Loader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        start = exc.context_mark
        if exc.problem and start is not None and mark is not None and start.line != mark.line:
            context = f" ({exc.context} that starts on line {start.line + 1})"
        raise ConfigError(
            f"YAML syntax error: {problem}{context}; check the indentation and quoting "
            "around this line",
            file=source,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=source) from None
    finally:
        loader.dispose()
