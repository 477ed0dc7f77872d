from __future__ import annotations

import pickle
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tdm
from tdm import Pipeline, pipe, transform
from tdm.core.inputs import Input
from tdm.errors import ArityError, DefinitionError, DuplicateNameError


@transform
def add(df: pd.DataFrame, *, n: int) -> pd.DataFrame:
    return df + n


@transform
def mul(df: pd.DataFrame, *, n: int) -> pd.DataFrame:
    return df * n


@transform
def pair(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    return left + right


steps = st.builds(lambda f, n: f(n=n), st.sampled_from([add, mul]), st.integers(-3, 3))
chains = st.lists(steps, min_size=1, max_size=6).map(
    lambda s: pipe(*s) if len(s) > 1 else Pipeline.of(s[0])
)
frames = st.lists(st.integers(-100, 100), min_size=1, max_size=5).map(
    lambda xs: pd.DataFrame({"x": xs})
)


@settings(max_examples=60, deadline=None)
@given(chains)
def test_identity_laws(p: Pipeline) -> None:
    assert pipe() >> p == p
    assert p >> pipe() == p
    assert hash(pipe() >> p) == hash(p)


@settings(max_examples=60, deadline=None)
@given(chains, chains, chains, frames)
def test_associativity_equal_values_and_results(
    a: Pipeline, b: Pipeline, c: Pipeline, df: pd.DataFrame
) -> None:
    left, right = (a >> b) >> c, a >> (b >> c)
    assert left == right and hash(left) == hash(right)
    pd.testing.assert_frame_equal(left(df).unwrap(), right(df).unwrap())


@settings(max_examples=40, deadline=None)
@given(chains, frames)
def test_pipeline_call_equals_step_by_step_calls(p: Pipeline, df: pd.DataFrame) -> None:
    expected = df
    for node in p.plan.nodes[1:]:
        expected = node.op(expected).unwrap()  # type: ignore[operator,union-attr]
    pd.testing.assert_frame_equal(p(df).unwrap(), expected)


def test_pipe_of_one_returns_it_unchanged_and_empty_is_identity() -> None:
    step = add(n=1)
    assert pipe(step) is step
    df = pd.DataFrame({"x": [1]})
    assert pipe()(df).unwrap().equals(df)


def test_shared_subpipeline_is_one_node() -> None:
    base = tdm.inputs.frame("x") >> add(n=1)
    both = pair()(base >> mul(n=2), base >> mul(n=3))
    names = both.names()
    assert names.count("add") == 1
    assert len(both) == 5  # x, add, mul, mul_2, pair


def test_arity_is_checked_at_construction_with_a_fix() -> None:
    with pytest.raises(ArityError, match=r"takes 2 input frames.*connect all of them at once"):
        _ = tdm.inputs.frame("x") >> pair()
    with pytest.raises(ArityError, match="is a source and takes no input"):
        _ = tdm.inputs.frame("x") >> Input("y")


def test_duplicate_explicit_names_are_rejected_with_a_fix() -> None:
    a = tdm.inputs.frame("x") >> add(n=1).named("step")
    with pytest.raises(DuplicateNameError, match=r"both named 'step'.*\.named"):
        _ = a >> mul(n=2).named("step")
    with pytest.raises(DuplicateNameError):
        pair()(a, tdm.inputs.frame("y") >> mul(n=1).named("step"))


def test_implicit_names_get_suffixes() -> None:
    p = tdm.inputs.frame("x") >> add(n=1) >> add(n=2) >> add(n=3)
    assert p.names() == ("x", "add", "add_2", "add_3")


def test_several_outputs_and_subpipeline_by_name() -> None:
    base = tdm.inputs.frame("x") >> add(n=1)
    multi = Pipeline.of(base >> mul(n=2), base >> mul(n=3))
    assert len(multi.outputs) == 2
    assert multi["add"] == base
    with pytest.raises(DefinitionError, match="has 2 outputs"):
        _ = multi >> add(n=1)
    with pytest.raises(KeyError, match="no node named 'nope'"):
        multi["nope"]


def test_the_identity_also_leads_a_pipeline_that_starts_at_a_source() -> None:
    sourced = tdm.inputs.frame("x") >> add(n=1)
    assert pipe() >> sourced == sourced and sourced >> pipe() == sourced
    assert pipe(pipe(), sourced) == sourced


def test_feeding_a_sourced_pipeline_is_an_error() -> None:
    with pytest.raises(DefinitionError, match="already starts at a source"):
        _ = add(n=1) >> tdm.inputs.frame("x")


def test_calling_a_pipeline_with_effects_says_to_use_run() -> None:
    with pytest.raises(DefinitionError, match=r"tdm.run"):
        (tdm.inputs.frame("x") >> add(n=1))(pd.DataFrame({"x": [1]}))


def test_text_and_mermaid_rendering() -> None:
    p = tdm.join(tdm.inputs.frame("l") >> add(n=1), tdm.inputs.frame("r"), on="x")
    text = p.to_text()
    assert text.splitlines() == [
        "join: join(on='x')",
        "|-- add: add(n=1)",
        "|   l: inputs.frame('l')",
        "`-- r: inputs.frame('r')",
    ]
    mermaid = p.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert mermaid.count("-->") == 3
    assert p.to_mermaid().startswith("flowchart LR")
    assert p._repr_html_().startswith("<div><svg")


def test_pickle_roundtrip_keeps_equality() -> None:
    p = pair()(tdm.inputs.frame("x") >> add(n=1), tdm.inputs.frame("x") >> mul(n=2))
    assert pickle.loads(pickle.dumps(p)) == p


def _build(n: int) -> Pipeline:
    p = pipe(*[add(n=1) for _ in range(n)])
    q = pipe(*[add(n=1) for _ in range(n)])
    assert p == q and hash(p) == hash(q)
    return p


def _calls(n: int) -> int:
    """Python function calls made building, comparing and hashing two chains of n steps: an
    operation count (not a clock), so the linearity check holds on a busy machine."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        count += event == "call"

    sys.setprofile(profile)
    try:
        _build(n)
    finally:
        sys.setprofile(None)
    return count


def test_ten_thousand_steps_without_recursion_and_in_linear_work() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # anything recursive over the graph would fail at once
    try:
        p = _build(10_000)
        assert p(pd.DataFrame({"x": [0]})).unwrap()["x"].iloc[0] == 10_000
        clone = pickle.loads(pickle.dumps(p))
        assert len(clone) == 10_001
    finally:
        sys.setrecursionlimit(limit)
    small, large = _calls(1_000), _calls(4_000)
    assert large <= 4.4 * small, (small, large)  # linear: 4x the steps, ~4x the calls
