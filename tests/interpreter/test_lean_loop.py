"""The sequential executor's lean loop keeps every semantics of the general scheduler.

``executor="sequential"`` runs through a flat, compiled loop; a subclass of the same executor
runs through the general scheduler (submit, handles, outcome objects), as every executor did. Over generated pipelines (user
steps that mutate their input, built-ins, failures, skips, shared nodes, several outputs) both
must produce the same statuses, errors, row counts, schemas and output frames, and neither
may let a mutation reach a sibling or the caller.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tdm
from tdm import Hook, Status, transform
from tdm.executors import Sequential
from tdm.transforms import expect_columns, rename_columns, select, skip_if_empty


@transform
def mutate_in_place(df: pd.DataFrame) -> pd.DataFrame:
    df["a"] = -1
    df["injected"] = True
    return df


@transform
def identity(df: pd.DataFrame) -> pd.DataFrame:
    return df


@transform
def boom(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("bad data in column a")


@transform
def empty(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[0:0]


@transform
def stack(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([left, right], ignore_index=True)


ONE_INPUT = {
    "mutate": mutate_in_place,
    "identity": identity,
    "boom": boom,
    "empty": empty,
    "skip_if_empty": skip_if_empty,
    "expect_columns": lambda: expect_columns(["a"]),  # a built-in that hands back its input
    "select": lambda: select(["a", "b"]),
    "rename": lambda: rename_columns({"b": "bee"}),
}


@st.composite
def pipelines(draw: st.DrawFn) -> tdm.Pipeline:
    nodes: list[tdm.Pipeline] = [tdm.inputs.frame("orders")]
    for k in range(draw(st.integers(1, 8))):
        if len(nodes) > 1 and draw(st.booleans()) and draw(st.booleans()):
            left, right = draw(st.permutations(nodes))[:2]
            nodes.append(stack().named(f"stack{k}")(left, right))
            continue
        parent = draw(st.sampled_from(nodes))
        kind = draw(st.sampled_from(sorted(ONE_INPUT)))
        nodes.append(parent >> ONE_INPUT[kind]().named(f"{kind}{k}"))
    outputs = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=3, unique_by=id))
    return tdm.Pipeline.of(*outputs)


class GeneralSequential(Sequential):
    """The sequential executor as the general scheduler drives it (no lean loop)."""


class Recorder(Hook):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def before_node(self, **kwargs: Any) -> None:
        node = kwargs["node"]
        self.events.append(("before", node.name, str(node.status)))

    def after_node(self, **kwargs: Any) -> None:
        node = kwargs["node"]
        self.events.append(("after", node.name, str(node.status)))


def _summary(report: tdm.RunReport) -> list[tuple[Any, ...]]:
    return [
        (
            n.name,
            n.status,
            n.error.message if n.error else None,
            n.rows_in,
            n.rows_out,
            n.columns,
            n.dtypes,
            n.supplied,
        )
        for n in report.nodes.values()
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines(), st.booleans())
def test_lean_loop_matches_the_general_scheduler(pipeline: tdm.Pipeline, fail_fast: bool) -> None:
    orders = pd.DataFrame({"a": [1, 2, 3], "b": [10, 20, 30]})
    original = orders.copy()
    reports = {}
    for name, executor in (("lean", "sequential"), ("general", GeneralSequential())):
        hook = Recorder()
        report = tdm.run(
            pipeline,
            inputs={"orders": orders},
            executor=executor,
            fail_fast=fail_fast,
            runtime=tdm.Runtime(hooks=[hook]),
        )
        reports[name] = (report, hook.events)
        pd.testing.assert_frame_equal(orders, original)  # the caller's frame is untouched
    (lean, lean_events), (general, general_events) = reports["lean"], reports["general"]
    assert lean.status is general.status and lean.error == general.error
    assert _summary(lean) == _summary(general)
    assert lean_events == general_events
    assert sorted(lean.outputs) == sorted(general.outputs)
    for name, frame in lean.outputs.items():
        pd.testing.assert_frame_equal(frame, general.outputs[name])


def test_a_built_in_that_hands_back_a_shared_frame_still_isolates_it() -> None:
    orders = pd.DataFrame({"a": [1, 2, 3], "b": [10, 20, 30]})
    src = tdm.inputs.frame("orders")
    checked = src >> expect_columns(["a"])  # no copy taken for a built-in; it returns its input
    p = tdm.Pipeline.of(checked >> mutate_in_place(), src >> identity(), checked)
    report = tdm.run(p, inputs={"orders": orders})
    assert report.status is Status.SUCCESS
    assert report.outputs["identity"]["a"].tolist() == [1, 2, 3]
    assert report.outputs["expect_columns"]["a"].tolist() == [1, 2, 3]
    assert "injected" not in report.outputs["expect_columns"]
    assert report.outputs["mutate_in_place"]["a"].tolist() == [-1, -1, -1]
    assert orders["a"].tolist() == [1, 2, 3]


def test_statistics_are_reused_only_for_the_same_frame() -> None:
    orders = pd.DataFrame({"a": [1, 2, 3], "b": [10, 20, 30]})
    p = tdm.inputs.frame("orders") >> identity() >> select(["a"]) >> empty()
    report = tdm.run(p, inputs={"orders": orders})
    nodes = report.nodes
    assert nodes["identity"].columns == ("a", "b") and nodes["identity"].rows_out == 3
    assert nodes["select"].columns == ("a",) and nodes["select"].rows_in == 3
    assert nodes["empty"].rows_in == 3 and nodes["empty"].rows_out == 0
    assert nodes["empty"].dtypes == ("int64",)


@transform
def retype_in_place(df: pd.DataFrame) -> pd.DataFrame:
    df["a"] = df["a"].astype("float64")
    return df


@transform
def drop_row_in_place(df: pd.DataFrame) -> pd.DataFrame:
    df.drop(index=df.index[:1], inplace=True)
    return df


def test_a_frame_changed_in_place_gets_fresh_statistics() -> None:
    orders = pd.DataFrame({"a": [1, 2, 3], "b": [10, 20, 30]})
    p = tdm.inputs.frame("orders") >> retype_in_place() >> drop_row_in_place()
    report = tdm.run(p, inputs={"orders": orders})
    assert report.nodes["retype_in_place"].dtypes == ("float64", "int64")
    assert report.nodes["drop_row_in_place"].rows_out == 2
    assert orders["a"].dtype == "int64" and len(orders) == 3
