"""The persistent name map behaves like a dict, shares structure, and finds clashes on merge."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tdm
from tdm.core._names import NameMap
from tdm.errors import DuplicateNameError

keys = st.text(min_size=1, max_size=3)
ops = st.lists(st.tuples(keys, st.integers(0, 3)), max_size=60)


def _build(pairs: list[tuple[str, int]]) -> tuple[NameMap, dict[str, int]]:
    m, d = NameMap.EMPTY, {}
    for k, v in pairs:
        m, d[k] = m.set(k, v), v
    return m, d


@settings(deadline=None)  # shared, noisy machines
@given(ops, ops)
def test_set_get_and_merge_agree_with_a_dict(
    a: list[tuple[str, int]], b: list[tuple[str, int]]
) -> None:
    ma, da = _build(a)
    mb, db = _build(b)
    assert len(ma) == len(da) and dict(ma.items()) == da
    assert all(ma.get(k) == v and k in ma for k, v in da.items())
    merged, clash = ma.merge(mb)
    clashes = {k for k in da.keys() & db.keys() if da[k] is not db[k]}
    if clashes:
        assert clash is not None and clash[0] in clashes
        assert (clash[1], clash[2]) == (da[clash[0]], db[clash[0]])
    else:
        assert clash is None
        assert dict(merged.items()) == {**db, **da} and len(merged) == len({**db, **da})


@settings(deadline=None)  # shared, noisy machines
@given(ops, ops)
def test_maps_grown_from_one_ancestor_merge_without_clashes(
    base: list[tuple[str, int]], more: list[tuple[str, int]]
) -> None:
    ancestor, _ = _build(base)
    left = ancestor
    for k, v in more:
        if k not in ancestor:
            left = left.set(k, v)
    merged, clash = ancestor.merge(left)
    assert clash is None and dict(merged.items()) == dict(left.items())


def test_a_long_named_chain_still_catches_a_duplicate_name() -> None:
    step = tdm.transforms.limit(5)
    chain = tdm.inputs.frame("src")
    for i in range(3000):
        chain = chain >> step.named(f"s{i}")
    with pytest.raises(DuplicateNameError, match="'s7'"):
        chain >> step.named("s7")
    other = tdm.inputs.frame("other") >> step.named("s42")
    with pytest.raises(DuplicateNameError, match="'s42'"):
        tdm.concat()(chain, other)
    assert len(chain.plan.nodes) == 3001
    assert tdm.run(chain, inputs={"src": pd.DataFrame({"a": range(9)})}).output.shape == (5, 1)
