"""A YAML loader that remembers the line of every mapping, key and list item.

Config errors must name the line they are about, so mappings load as :class:`LineDict` (a ``dict``
with ``.line`` and ``.key_line(key)``) and sequences as :class:`LineList`. Duplicate keys in one
mapping are an error (PyYAML silently keeps the last one).

Parsing is linear in the size of the text (libyaml's parser) and bounded by :class:`YamlLimits`:
file size, nesting depth, alias count and the number of values aliases expand to.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode
from yaml.resolver import Resolver

from tdm.errors import ConfigError

__all__ = ["LineDict", "LineList", "YamlLimits", "check_size", "gc_paused", "parse_yaml"]


class LineDict(dict[Any, Any]):
    """A mapping loaded from YAML, with the 1-based line of itself and of each key."""

    line: int | None
    lines: dict[Any, int]
    placeholders: bool = True
    """False on a document the event builder saw no ``${`` in (nothing to substitute)."""

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


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """How big a YAML file may be, and how much its aliases may expand.

    The defaults admit any hand-written or generated pipeline file (50,000 pipes is ~5 MB) and
    stop hostile ones (an "alias bomb" whose anchors expand to billions of values, or nesting
    thousands deep) in milliseconds. ``from_env`` reads overrides from ``TDM_YAML_MAX_BYTES``
    (``16MB``, ``500k`` or a number), ``TDM_YAML_MAX_DEPTH``, ``TDM_YAML_MAX_ALIASES`` and
    ``TDM_YAML_MAX_ALIAS_VALUES``.

    Attributes:
        max_bytes: the largest file (in bytes of UTF-8).
        max_depth: the deepest nesting of mappings and lists (aliases included).
        max_aliases: how many ``*alias`` references one file may use.
        max_alias_values: how many values all aliases together may stand for, once expanded.

    >>> YamlLimits.from_env({"TDM_YAML_MAX_BYTES": "2MB"}).max_bytes
    2097152
    """

    max_bytes: int = 8 * 1024 * 1024
    max_depth: int = 100
    max_aliases: int = 100_000
    max_alias_values: int = 1_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> YamlLimits:
        """The defaults, with the ``TDM_YAML_*`` variables of ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for field_name, var in _LIMIT_VARIABLES.items():
            raw = env.get(var)
            if raw is None or not raw.strip():
                continue
            values[field_name] = _parse_amount(raw, var)
        return cls(**values)


_LIMIT_VARIABLES = {
    "max_bytes": "TDM_YAML_MAX_BYTES",
    "max_depth": "TDM_YAML_MAX_DEPTH",
    "max_aliases": "TDM_YAML_MAX_ALIASES",
    "max_alias_values": "TDM_YAML_MAX_ALIAS_VALUES",
}
_UNITS = {"": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def _parse_amount(raw: str, var: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", raw)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS or int(match.group(1)) <= 0:
        raise ConfigError(
            f"environment variable {var}={raw!r} is not a positive number; write e.g. "
            f"{var}=1000 (sizes may end in k, MB or GB)"
        )
    return int(match.group(1)) * _UNITS[unit]


def _megabytes(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n:,} bytes"


def check_size(size: int, *, source: str | None, limits: YamlLimits) -> None:
    """A ``ConfigError`` when a file of ``size`` bytes is over ``limits.max_bytes``."""
    if size > limits.max_bytes:
        raise ConfigError(
            f"the YAML is {_megabytes(size)}, over the limit of {_megabytes(limits.max_bytes)}; "
            "split it into several files, or raise the limit with TDM_YAML_MAX_BYTES "
            "(e.g. TDM_YAML_MAX_BYTES=64MB) if the file is trusted",
            file=source,
        )


class _Composer(Composer):
    """PyYAML's composer, bounded: nesting depth, alias count, values that aliases expand to.

    Aliases are the only way a small YAML text stands for a huge value: ``b: [*a, *a, ...]``
    nested eight deep is billions of values that every later walk over the document visits. The
    composer knows the expanded size and depth of each anchored node, so it refuses the alias
    that goes over a limit before anything walks the document.
    """

    limits: YamlLimits
    source: str | None
    # provided by the parser the composer is mixed with
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def _setup_limits(self, limits: YamlLimits, source: str | None) -> None:
        self.limits, self.source = limits, source
        self._depth = 0
        self._count = 0  # values composed so far, aliases counted expanded
        self._alias_uses = 0
        self._alias_values = 0
        self._heights: list[int] = [0]  # the deepest child of each open collection
        self._anchored: dict[int, tuple[int, int]] = {}  # id(node) -> (size, height)

    def fail_depth(self, mark: Any) -> ConfigError:
        """The error for a value nested deeper than the limit, at ``mark``."""
        return self._fail(
            f"the YAML is nested more than {self.limits.max_depth} levels deep; a pipeline "
            "file needs a handful of levels: flatten this value (or raise TDM_YAML_MAX_DEPTH)",
            mark,
        )

    def _fail(self, message: str, mark: Any) -> ConfigError:
        line = mark.line + 1 if mark is not None else None
        return ConfigError(message, file=self.source, line=line)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            return self._alias(node, event)
        event = self.peek_event()
        if self._depth >= self.limits.max_depth:
            raise self.fail_depth(event.start_mark)
        self._depth += 1
        self._heights.append(0)
        start = self._count
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            height = self._heights.pop() + 1
        self._count += 1
        self._heights[-1] = max(self._heights[-1], height)
        if event.anchor is not None:
            # known once complete: an alias met before that is inside its own anchor
            self._anchored[id(node)] = (self._count - start, height)
        return node

    def _alias(self, node: Any, event: Any) -> Any:
        known = self._anchored.get(id(node))
        if known is None:
            raise self._fail(
                f"alias *{event.anchor} is used inside the value it names (a recursive "
                "value); YAML for tdm cannot loop: copy the value instead",
                event.start_mark,
            )
        size, height = known
        self._alias_uses += 1
        self._alias_values += size
        self._count += size
        limits = self.limits
        if self._alias_uses > limits.max_aliases:
            raise self._fail(
                f"the YAML uses more than {limits.max_aliases:,} aliases (*name); write the "
                "values out, or raise TDM_YAML_MAX_ALIASES if the file is trusted",
                event.start_mark,
            )
        if self._alias_values > limits.max_alias_values:
            raise self._fail(
                f"alias *{event.anchor} takes the values that aliases stand for past "
                f"{limits.max_alias_values:,} (an alias bomb: anchors that repeat anchors); "
                "write the values out, or raise TDM_YAML_MAX_ALIAS_VALUES if the file is trusted",
                event.start_mark,
            )
        if self._depth + height > limits.max_depth:
            raise self._fail(
                f"alias *{event.anchor} nests the YAML more than {limits.max_depth} levels deep; "
                "flatten the value it names (or raise TDM_YAML_MAX_DEPTH)",
                event.start_mark,
            )
        self._heights[-1] = max(self._heights[-1], height)
        return node


class _Loader(CParser, _Composer, SafeConstructor, Resolver):
    """libyaml's parser (linear, fast) + the bounded composer + line numbers + YAML 1.2 booleans.

    Only ``true``/``false`` are booleans: in YAML 1.1 ``on``, ``no``, ``yes``, ``off`` are too,
    which turns ``join``'s ``on: id`` key and a country code ``NO`` into booleans.
    """

    def __init__(self, text: str, *, source: str | None, limits: YamlLimits) -> None:
        CParser.__init__(self, text)
        _Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._setup_limits(limits, source)
        # Without an anchor there is no alias to bound, and libyaml composes several times
        # faster than the bounded composer; the constructors still bound the depth.
        self._anchor_free = "&" not in text
        self.construct_depth = 0
        self._resolved: dict[str, str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # Called for every node of the document: most plain scalars (names, types) start with
        # a character no implicit resolver claims, and the rest repeat (true, null, numbers).
        if self.yaml_path_resolvers:
            return _resolve(self, kind, value, implicit)
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR_TAG
            if value and value[0] not in _RESOLVER_STARTS:
                return _STR_TAG
            tag = self._resolved.get(value)
            if tag is None:
                tag = self._resolved[value] = _resolve(self, kind, value, implicit)
            return tag
        return _MAP_TAG if kind is MappingNode else _SEQ_TAG

    def get_single_node(self) -> Any:
        if self._anchor_free:
            return CParser.get_single_node(self)
        return _Composer.get_single_node(self)

    compose_document = _Composer.compose_document
    compose_node = _Composer.compose_node
    check_node = _Composer.check_node
    get_node = _Composer.get_node


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# The first characters implicit resolvers claim (there is no wildcard resolver among them).
_RESOLVER_STARTS = frozenset(_Loader.yaml_implicit_resolvers)
_resolve: Callable[..., Any] = Resolver.resolve
_STR_TAG = Resolver.DEFAULT_SCALAR_TAG
_MAP_TAG = Resolver.DEFAULT_MAPPING_TAG
_SEQ_TAG = Resolver.DEFAULT_SEQUENCE_TAG
_SCALAR_RESOLVER = Resolver()  # resolves as _Loader does (its implicit resolvers)
_SCALAR_RESOLVER.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


class _Unplain(Exception):
    """The document holds something only the full loader builds (or reports) exactly."""


# What implicit resolution may give a plain scalar that the fast builder constructs itself.
_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "timestamp")
)
_SCALARS = SafeConstructor()


def _build_plain(text: str, limits: YamlLimits) -> Any:
    """The document built straight from libyaml's events, as the full loader would build it.

    The full loader composes a node tree, then constructs values from it; a plain pipeline file
    (no anchors, aliases, tags or merge keys, which is nearly every file) needs neither step:
    this builds the :class:`LineDict`/:class:`LineList` values from the parser's events. Anything
    else, and every problem (a syntax error, a duplicate key, nesting past the limit), raises
    :class:`_Unplain`, and the full loader then builds or reports it.
    """
    parser = CParser(text)
    try:
        return _from_events(parser.get_event, limits.max_depth)
    except Exception as exc:
        raise _Unplain from exc
    finally:
        parser.dispose()


def _from_events(get: Callable[[], Any], max_depth: int) -> Any:
    if type(get()) is not StreamStartEvent:
        raise _Unplain
    event = get()
    if type(event) is StreamEndEvent:
        return None
    if type(event) is not DocumentStartEvent:
        raise _Unplain
    resolved: dict[str, Any] = {}  # plain scalar text -> its value, when it is not text
    stack: list[Any] = []  # the open collections, innermost last
    top: Any = None  # the innermost open collection
    is_map = False
    key: Any = _NO_KEY  # a mapping's key waiting for its value
    key_line = 0
    root: Any = _NO_KEY
    placeholders = False
    while True:
        event = get()
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Unplain
            value = event.value
            if "${" in value:
                placeholders = True
            if event.implicit[0] and (not value or value[0] in _RESOLVER_STARTS):
                value = _plain_scalar(value, resolved)
            line = event.start_mark.line + 1
            if is_map and key is _NO_KEY:
                if value in top:
                    raise _Unplain  # the full loader reports it (after any syntax error)
                key, key_line = value, line
                continue
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or len(stack) >= max_depth:
                raise _Unplain
            value = LineDict() if kind is MappingStartEvent else LineList()
            line = value.line = event.start_mark.line + 1
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            done = stack.pop()
            top = stack[-1] if stack else None
            is_map = type(top) is LineDict
            key = _NO_KEY
            if not stack:
                root = done
            continue
        elif kind is DocumentEndEvent:
            break
        else:  # an alias, or anything this builder does not expect
            raise _Unplain
        if top is None:
            root = value
        elif is_map:
            if key is _NO_KEY:  # a mapping or list as a key
                raise _Unplain
            top[key] = value
            top.lines[key] = key_line
            key = _NO_KEY
        else:
            top.append(value)
            top.lines.append(line)
        if kind is not ScalarEvent:
            stack.append(value)
            top, is_map = value, kind is MappingStartEvent
    if type(get()) is not StreamEndEvent:  # a second document: the full loader says so
        raise _Unplain
    if type(root) is LineDict:
        root.placeholders = placeholders
    return root


_NO_KEY: Any = object()


def _plain_scalar(text: str, resolved: dict[str, Any]) -> Any:
    """A plain scalar that an implicit resolver may claim: text, a number, a bool, null..."""
    try:
        return resolved[text]
    except KeyError:
        pass
    tag = _resolve(_SCALAR_RESOLVER, ScalarNode, text, (True, False))
    if tag not in _PLAIN_TAGS:
        raise _Unplain  # a merge key (<<), `=` or `!`: what the full loader handles
    value = (
        text if tag == _STR_TAG else _Loader.yaml_constructors[tag](_SCALARS, ScalarNode(tag, text))
    )
    resolved[text] = value
    return value


def _value(loader: _Loader, node: yaml.Node) -> Any:
    """The value of a child node; a plain text directly (most of a pipeline file)."""
    if node.tag == _STR_TAG and type(node) is ScalarNode:
        return node.value
    return loader.construct_object(node, deep=True)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.construct_depth += 1
    try:
        if loader.construct_depth > loader.limits.max_depth:
            raise loader.fail_depth(node.start_mark)
        return _mapping(loader, node)
    finally:
        loader.construct_depth -= 1


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    lines = result.lines
    for key_node, value_node in node.value:
        key = _value(loader, key_node)
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
                f"duplicate key {key!r} (first on line {lines[key]}); "
                "each key may appear once per mapping: remove or rename one of them",
                file=loader.source,
                line=line,
            )
        result[key] = _value(loader, value_node)
        lines[key] = line
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    loader.construct_depth += 1
    try:
        if loader.construct_depth > loader.limits.max_depth:
            raise loader.fail_depth(node.start_mark)
        result = LineList([_value(loader, child) for child in node.value])
        result.line = node.start_mark.line + 1
        result.lines = [child.start_mark.line + 1 for child in node.value]
        return result
    finally:
        loader.construct_depth -= 1


_Loader.add_constructor(  # type: ignore[type-var]
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
_Loader.add_constructor(  # type: ignore[type-var]
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence
)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a document is loaded and built.

    Loading allocates hundreds of thousands of small containers that all stay alive, and the
    collector would walk the growing heap again and again (it was most of the time of a 20,000
    pipe file); they form no reference cycles, so there is nothing to collect. On the way out
    everything is moved to the oldest generation, so that the next collections do not walk it
    either. Re-entrant, and a no-op when the collector is already off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            # What the load built sits in the youngest generation, which the next collection
            # would walk whole (and again as it ages): move it to the oldest at once (a list
            # splice, nothing walked). Skipped when the application froze objects itself.
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def parse_yaml(text: str, *, source: str | None = None, limits: YamlLimits | None = None) -> Any:
    """Parse one YAML document, keeping line numbers; syntax errors become ``ConfigError``.

    ``limits`` (default: :meth:`YamlLimits.from_env`) bound the size, depth and aliases.

    >>> doc = parse_yaml("a: 1\\nb:\\n  - x\\n  - y\\n")
    >>> doc.key_line("b"), doc["b"].item_line(1)
    (2, 4)
    >>> parse_yaml("{on: id, country: NO, ok: true}")
    {'on': 'id', 'country': 'NO', 'ok': True}
    """
    limits = limits if limits is not None else YamlLimits.from_env()
    check_size(len(text.encode("utf-8", "surrogatepass")), source=source, limits=limits)
    with gc_paused():
        try:
            return _build_plain(text, limits)
        except _Unplain:
            pass
    loader = _Loader(text, source=source, limits=limits)
    try:
        with gc_paused():
            return loader.get_single_data()
    except RecursionError:  # a last resort: the depth limit stops nesting long before this
        raise ConfigError(
            "the YAML is nested too deeply to load; flatten it (or lower TDM_YAML_MAX_DEPTH)",
            file=source,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem:  # libyaml's own guard, past ours for flow collections
            raise ConfigError(
                f"the YAML is nested more than {limits.max_depth} levels deep; a pipeline "
                "file needs a handful of levels: flatten this value",
                file=source,
                line=line,
            ) from None
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
    except UnicodeEncodeError as exc:
        raise ConfigError(f"the YAML is not valid text: {exc}", file=source) from None
    finally:
        loader.dispose()
