"""when / guard / skip_if_empty, on frames and through the interpreter."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

import tdm
from tdm.errors import DefinitionError
from tdm.transforms import (
    append_date_column,
    assign,
    filter_rows,
    guard,
    select,
    skip_if_empty,
    when,
)

DF = pd.DataFrame({"a": [1, 2, 3]})


def test_when_with_steps_pipelines_and_identity() -> None:
    branch = assign(b="a * 2") >> select(["b"])
    step = when("a.sum() > 5", then=branch, otherwise=None)
    assert step(DF).unwrap().columns.tolist() == ["b"]
    assert step(DF.head(1)).unwrap().columns.tolist() == ["a"]


def test_when_rejects_series_predicates_with_a_hint() -> None:
    err = when("a > 1", then=select(["a"]))(DF).failure()
    assert ".any()" in err.message and ".all()" in err.message


def test_when_rejects_branches_that_cannot_be_called_on_a_frame() -> None:
    with pytest.raises(DefinitionError, match="source"):
        when(lambda d: True, then=tdm.inputs.frame("x") >> select(["a"]))
    with pytest.raises(DefinitionError, match="takes a step"):
        when(lambda d: True, then="select")  # type: ignore[arg-type]
    from tdm.transforms import join

    with pytest.raises(DefinitionError, match="several"):
        when(lambda d: True, then=join(on="a"))


def test_when_branch_failure_names_the_inner_step() -> None:
    err = when(lambda d: True, then=select(["zz"]))(DF).failure()
    assert err.step == "when" and err.message.startswith("then select: column ['zz']")


def test_when_branch_gets_the_run_context() -> None:
    fixed = datetime(2021, 1, 1, tzinfo=UTC)
    p = tdm.inputs.frame("x") >> when(lambda d: True, then=append_date_column())
    report = tdm.run(p, inputs={"x": DF}, runtime=tdm.Runtime(clock=lambda: fixed))
    assert report.output["load_date"].tolist() == [pd.Timestamp(fixed)] * 3


def test_guard_skips_a_branch_on_purpose_and_the_run_still_succeeds() -> None:
    source = tdm.inputs.frame("x")
    guarded = source >> guard("a.sum() > 100", reason="not enough") >> assign(b=1)
    other = source >> assign(c=2)
    report = tdm.run(tdm.Pipeline.of(guarded, other), inputs={"x": DF})
    assert report.ok, report.error
    statuses = {name: node.status for name, node in report.nodes.items()}
    assert statuses["guard"] is tdm.Status.SKIPPED
    assert report.nodes["guard"].error is not None
    assert report.nodes["guard"].error.message == "not enough"
    assert statuses["assign"] is tdm.Status.SKIPPED  # downstream of the guard
    assert statuses["assign_2"] is tdm.Status.SUCCESS  # the independent branch ran
    assert "assign_2" in report.outputs and "assign" not in report.outputs


def test_guard_passes_when_true_and_default_reason() -> None:
    assert guard(lambda d: len(d) == 3)(DF).unwrap() is DF
    skip = guard(lambda d: False)(DF).failure()
    assert isinstance(skip, tdm.Skip) and "is false" in skip.message


def test_skip_if_empty_after_a_filter() -> None:
    p = tdm.inputs.frame("x") >> filter_rows("a > 10") >> skip_if_empty() >> assign(b=1)
    report = tdm.run(p, inputs={"x": DF})
    assert report.ok
    assert report.nodes["skip_if_empty"].status is tdm.Status.SKIPPED
    assert report.nodes["assign"].status is tdm.Status.SKIPPED
    pure = (filter_rows("a > 10") >> skip_if_empty())(DF).failure()
    assert isinstance(pure, tdm.Skip)
