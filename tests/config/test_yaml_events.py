"""The event builder (the fast path of ``parse_yaml``) builds what the full loader builds.

``parse_yaml`` first builds a plain document straight from libyaml's events; anything else (and
every problem) goes to the full loader (composer + constructors). Both must give equal values with
equal line numbers, and a file the fast path declines must load or fail exactly as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tdm.config import _yaml
from tdm.config._yaml import LineDict, LineList, YamlLimits, parse_yaml
from tdm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
LIMITS = YamlLimits()


def _full(text: str) -> Any:
    loader = _yaml._Loader(text, source=None, limits=LIMITS)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, LineDict):
        return (a.line, a.lines, list(a)) == (b.line, b.lines, list(b)) and all(
            _same(a[k], b[k]) for k in a
        )
    if isinstance(a, LineList):
        return (a.line, a.lines, len(a)) == (b.line, b.lines, len(b)) and all(
            _same(x, y) for x, y in zip(a, b, strict=True)
        )
    return bool(a == b) or (a != a and b != b)  # nan


def _check(text: str) -> bool:
    """Whether the fast path took ``text``; when it did, it built what the full loader builds."""
    try:
        fast = _yaml._build_plain(text, LIMITS)
    except _yaml._Unplain:
        return False
    full = _full(text)
    assert _same(fast, full), (text, fast, full)
    return True


def test_every_yaml_file_of_the_repository_builds_alike() -> None:
    files = [
        p
        for pattern in ("*.yml", "*.yaml")
        for p in ROOT.rglob(pattern)
        if ".venv" not in p.parts and ".git" not in p.parts
    ]
    taken = [p for p in files if _check(p.read_text(encoding="utf-8"))]
    assert len(files) > 20 and len(taken) > len(files) // 2


TRICKY = [
    "yes", "no", "on", "off", "true", "False", "TRUE", "null", "Null", "~", "", "NaN", ".nan",
    ".inf", "-.Inf", "0", "-0", "+12", "0x1F", "0o17", "017", "1_000", "1e3", "1.5e-3", "3.",
    "2020-01-02", "2020-01-02 03:04:05", "2020-01-02T03:04:05Z", "12:30", "1:20:30", "n", "y",
    "name", "type", "nullable", "true_value", "-", "+", ".", "0.1.2", "p1", "a b", "x: y",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(TRICKY),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(min_size=0, max_size=12),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY)), inner, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(documents, st.booleans())
def test_generated_documents_build_alike(doc: Any, flow: bool) -> None:
    _check(yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True, sort_keys=False))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TRICKY), st.sampled_from(TRICKY)), max_size=6))
def test_plain_scalars_resolve_alike(pairs: list[tuple[str, str]]) -> None:
    # written unquoted, so implicit resolution decides what they are (1.2 booleans, null...)
    values = dict(pairs)
    text = "".join(f"{k}: {v}\n" for k, v in values.items()) + "list:\n"
    text += "".join(f"  - {v}\n" for v in values.values())
    try:
        _full(text)
    except (yaml.YAMLError, ConfigError):  # `x: y` as a value; `null` and `~` as keys
        with pytest.raises(_yaml._Unplain):
            _yaml._build_plain(text, LIMITS)
        return
    _check(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1]\nb: *x\n",  # anchors and aliases: the bounded composer counts them
        "base: &b {x: 1}\nderived: {<<: *b, y: 2}\n",  # merge keys
        "a: !!str 12\n",  # explicit tags
        "a: !custom x\n",
        "a: 1\na: 2\n",  # a duplicate key
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [1\nb: 2\n",  # a syntax error
        "? [a, b]\n: 1\n",  # a list as a key
        "= : 1\n",  # the YAML `value` key
        "a: " + "[" * 120 + "]" * 120 + "\n",  # nesting past the limit
    ],
)
def test_what_the_fast_path_declines_loads_or_fails_as_before(text: str) -> None:
    with pytest.raises(_yaml._Unplain):
        _yaml._build_plain(text, LIMITS)
    try:
        expected: Any = _full(text)
    except (yaml.YAMLError, ConfigError) as exc:
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(ConfigError):
            parse_yaml(text)
    else:
        assert _same(parse_yaml(text), expected)


def test_an_error_in_a_plain_file_is_the_full_loaders_error() -> None:
    # the duplicate key comes first, the syntax error later: the full loader composes the whole
    # document before it constructs anything, so it reports the syntax error
    text = "a: 1\na: 2\nb: [1\nc: 3\n"
    with pytest.raises(ConfigError, match="YAML syntax error") as info:
        parse_yaml(text, source="f.yml")
    assert info.value.line is not None and info.value.line > 2


def test_a_document_says_whether_it_may_hold_placeholders() -> None:
    assert parse_yaml("a: b\nc: [d, {e: f}]\n").placeholders is False
    assert parse_yaml("a: b\nc: [d, {e: 'x ${params.y}'}]\n").placeholders is True
    assert parse_yaml('a: "\\x24{env.HOME}"\n').placeholders is True  # an escaped `$`
    assert parse_yaml("a: &x b\nc: *x\n").placeholders is True  # the full loader: not known


def test_placeholders_are_substituted_and_plain_files_untouched(tmp_path: Path) -> None:
    from tdm.config import load_yaml

    text = (
        "params: {col: total}\n"
        "pipelines:\n"
        "  - name: P\n"
        "    pipes:\n"
        "      - {name: src, type: input}\n"
        '      - {name: r, type: rename_columns, config: {parents: [src], mapping: {a: "\\x24{params.col}"}}}\n'
    )
    spec = load_yaml(text).pipeline("P")
    assert "total" in spec.to_text()
    plain = load_yaml(text.replace('"\\x24{params.col}"', "b")).pipeline("P")
    assert "'b'" in plain.to_text() and "total" not in plain.to_text()


def test_gc_paused_restores_the_collector_and_ages_what_was_built() -> None:
    import gc

    from tdm.config._yaml import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # re-entrant: the inner one leaves the collector to the outer
            built = [[i] for i in range(100)]
        assert not gc.isenabled()
    assert gc.isenabled()
    young = {id(o) for o in gc.get_objects(generation=0)}
    assert id(built) not in young and id(built[0]) not in young  # in the oldest generation


def test_gc_paused_leaves_an_applications_frozen_objects_frozen() -> None:
    import gc

    from tdm.config._yaml import gc_paused

    sentinel = [object()]
    gc.freeze()  # e.g. a server that froze its heap before forking workers
    try:
        with gc_paused():
            built = [[i] for i in range(100)]
        assert gc.isenabled() and built and gc.get_freeze_count() > 0
        assert all(o is not sentinel for o in gc.get_objects())  # still frozen
    finally:
        gc.unfreeze()
