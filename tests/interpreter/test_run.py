from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import Hook, Runtime, Status, transform, transform_with_context
from tdm.core.effect import Effect
from tdm.errors import InputError, NoHandlerError


@transform
def add_total(df: pd.DataFrame, *, cols: list[str], out: str = "total") -> pd.DataFrame:
    return df.assign(**{out: df[cols].sum(axis=1)})


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


class Calls:
    """A side channel compared by identity (a list would compare by value)."""

    def __init__(self) -> None:
        self.names: list[str] = []


@transform
def count_calls(df: pd.DataFrame, *, log: Calls) -> pd.DataFrame:
    log.names.append("called")
    return df


@transform
def nap(df: pd.DataFrame, *, seconds: float, tag: str) -> pd.DataFrame:
    time.sleep(seconds)
    return df.assign(tag=tag)


@transform_with_context
def stamp(df: pd.DataFrame, context: tdm.RunContext) -> pd.DataFrame:
    return df.assign(at=context.started_at, run=context.run_id, who=context.params.get("who"))


def test_run_linear_pipeline_reports_every_node(orders: pd.DataFrame) -> None:
    p = tdm.inputs.frame("orders") >> add_total(cols=["a", "b"]) >> identity()
    report = tdm.run(p, inputs={"orders": orders})
    assert report.status is Status.SUCCESS and report.ok
    assert report.output["total"].tolist() == [11, 22, 33]
    assert list(report.nodes) == ["orders", "add_total", "identity"]
    node = report.nodes["add_total"]
    assert node.status is Status.SUCCESS and node.rows_in == 3 and node.rows_out == 3
    assert node.duration_s is not None and node.duration_s >= 0
    frame = report.to_frame()
    assert frame["status"].tolist() == ["SUCCESS"] * 3
    assert "add_total" in report._repr_html_()


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_in_place_mutation_never_reaches_a_sibling_or_the_caller(
    orders: pd.DataFrame, executor: str
) -> None:
    original = orders.copy()
    src = tdm.inputs.frame("orders")
    p = tdm.Pipeline.of(
        src >> mutate_in_place(), src >> identity(), src >> add_total(cols=["a", "b"])
    )
    report = tdm.run(p, inputs={"orders": orders}, executor=executor)
    assert report.ok
    assert report.outputs["identity"].equals(original)
    assert report.outputs["add_total"]["total"].tolist() == [11, 22, 33]
    assert report.outputs["mutate_in_place"]["a"].tolist() == [-1, -1, -1]
    pd.testing.assert_frame_equal(orders, original)


def test_output_that_is_also_consumed_is_not_mutated_by_its_consumer(orders: pd.DataFrame) -> None:
    mid = tdm.inputs.frame("orders") >> identity()
    report = tdm.run(tdm.Pipeline.of(mid, mid >> mutate_in_place()), inputs={"orders": orders})
    assert "injected" not in report.outputs["identity"]


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_failure_skips_only_descendants(orders: pd.DataFrame, executor: str) -> None:
    src = tdm.inputs.frame("orders")
    bad = src >> boom() >> identity()
    good = src >> add_total(cols=["a", "b"])
    report = tdm.run(tdm.Pipeline.of(bad, good), inputs={"orders": orders}, executor=executor)
    assert report.status is Status.FAILURE
    assert report.nodes["boom"].status is Status.FAILURE
    assert report.nodes["identity"].status is Status.SKIPPED
    assert "parent 'boom' failure" in report.nodes["identity"].error.message  # type: ignore[union-attr]
    assert report.nodes["add_total"].status is Status.SUCCESS
    assert report.outputs["add_total"]["total"].tolist() == [11, 22, 33]
    err = report.nodes["boom"].error
    assert (
        err is not None and err.step == "boom" and "ValueError: bad data in column a" in err.message
    )
    assert isinstance(err.cause, ValueError)
    assert report.error == "boom: ValueError: bad data in column a"
    with pytest.raises(tdm.errors.RunError, match="output 'identity' was not produced"):
        _ = tdm.run(bad, inputs={"orders": orders}).output


def test_fail_fast_stops_the_rest(orders: pd.DataFrame) -> None:
    src = tdm.inputs.frame("orders")
    calls = Calls()
    p = tdm.Pipeline.of(src >> boom(), src >> count_calls(log=calls))
    report = tdm.run(p, inputs={"orders": orders}, fail_fast=True)
    assert report.nodes["count_calls"].status is Status.SKIPPED
    assert "fail_fast" in report.nodes["count_calls"].error.message  # type: ignore[union-attr]
    assert calls.names == []
    tdm.run(p, inputs={"orders": orders})
    assert calls.names == ["called"]


def test_shared_subpipeline_runs_once(orders: pd.DataFrame) -> None:
    calls = Calls()
    base = tdm.inputs.frame("orders") >> count_calls(log=calls)
    p = tdm.join(
        base >> add_total(cols=["a"], out="x"), base >> add_total(cols=["b"], out="y"), on="id"
    )
    report = tdm.run(p, inputs={"orders": orders})
    assert report.ok and calls.names == ["called"]
    assert report.output[["x", "y"]].to_dict("list") == {"x": [1, 2, 3], "y": [10, 20, 30]}


def test_run_parameters_come_from_the_interpreter(orders: pd.DataFrame) -> None:
    fixed = datetime(2024, 2, 29, 12, tzinfo=UTC)
    runtime = Runtime(clock=lambda: fixed)
    report = tdm.run(
        tdm.inputs.frame("orders") >> stamp(),
        inputs={"orders": orders},
        runtime=runtime,
        params={"who": "ops"},
        run_id="run-1",
    )
    out = report.output
    assert (
        (out["at"] == fixed).all() and (out["run"] == "run-1").all() and (out["who"] == "ops").all()
    )
    assert (
        report.started_at == fixed and report.run_id == "run-1" and report.params == {"who": "ops"}
    )


def test_source_free_pipeline_takes_input_named_input(orders: pd.DataFrame) -> None:
    report = tdm.run(add_total(cols=["a"]) >> identity(), inputs={"input": orders})
    assert report.output["total"].tolist() == [1, 2, 3]


def test_unknown_and_missing_inputs_are_clear_errors(orders: pd.DataFrame) -> None:
    p = tdm.inputs.frame("orders") >> identity()
    with pytest.raises(InputError, match=r"'ordrs'.*its inputs are: orders"):
        tdm.run(p, inputs={"orders": orders, "ordrs": orders})
    with pytest.raises(InputError, match=r"needs input frame\(s\) 'orders'"):
        tdm.run(p)
    with pytest.raises(InputError, match="supply a pandas DataFrame"):
        tdm.run(p, inputs={"orders": [1, 2]})  # type: ignore[dict-item]


def test_inputs_may_replace_any_node_by_name(orders: pd.DataFrame) -> None:
    p = tdm.inputs.frame("orders") >> boom() >> identity()
    report = tdm.run(p, inputs={"orders": orders, "boom": orders.head(1)})
    assert report.ok and len(report.output) == 1 and report.nodes["boom"].supplied


class _Unhandled(Effect):
    pass


def test_effect_without_handler_fails_clearly(orders: pd.DataFrame) -> None:
    report = tdm.run(tdm.Pipeline.of(_Unhandled()))
    err = report.nodes["_unhandled"].error
    assert err is not None and "no handler for _Unhandled effects" in err.message
    assert isinstance(err.cause, NoHandlerError)


_MEET = threading.Barrier(4, timeout=30)


@tdm.transform
def meet(df: pd.DataFrame, *, tag: str) -> pd.DataFrame:
    """Waits until 4 branches are inside this step at once (fails if they run one by one)."""
    _MEET.wait()
    return df.assign(tag=tag)


def test_threads_run_independent_branches_concurrently(orders: pd.DataFrame) -> None:
    # No clock: the four branches can only pass the barrier if they run at the same time.
    _MEET.reset()
    src = tdm.inputs.frame("orders")
    p = tdm.Pipeline.of(*[src >> meet(tag=str(i)) for i in range(4)])
    report = tdm.run(p, inputs={"orders": orders}, executor="threads", max_workers=4)
    assert report.ok, report.error
    assert len(report.outputs) == 4


class Recorder(Hook):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def before_run(self, *, run: tdm.RunContext, **_: Any) -> None:
        self.events.append(("before_run", run.run_id))

    def before_node(self, *, node: tdm.NodeReport, **_: Any) -> None:
        self.events.append(("before_node", f"{node.name}:{node.status}"))

    def after_node(self, *, node: tdm.NodeReport, **_: Any) -> None:
        self.events.append(("after_node", f"{node.name}:{node.status}"))

    def after_run(self, *, report: tdm.RunReport, **_: Any) -> None:
        self.events.append(("after_run", str(report.status)))


def test_hooks_see_the_lifecycle_in_order(orders: pd.DataFrame) -> None:
    rec = Recorder()
    p = tdm.inputs.frame("orders") >> boom() >> identity()
    tdm.run(p, inputs={"orders": orders}, runtime=Runtime(hooks=[rec]), run_id="r9")
    assert rec.events == [
        ("before_run", "r9"),
        ("after_node", "orders:SUCCESS"),
        ("before_node", "boom:RUNNING"),
        ("after_node", "boom:FAILURE"),
        ("after_node", "identity:SKIPPED"),
        ("after_run", "FAILURE"),
    ]


class ExplodingHook(Hook):
    def __init__(self) -> None:
        self.finished: list[str] = []

    def before_node(self, **_: Any) -> None:
        raise RuntimeError("observer crashed")

    def after_run(self, *, report: tdm.RunReport, **_: Any) -> None:
        self.finished.append(str(report.status))


def test_exception_in_a_hook_stops_the_run_and_is_recorded(orders: pd.DataFrame) -> None:
    hook = ExplodingHook()
    report = tdm.run(
        tdm.inputs.frame("orders") >> identity(),
        inputs={"orders": orders},
        runtime=Runtime(hooks=[hook]),
    )
    assert report.status is Status.FAILURE
    assert "observer crashed" in (report.error or "")
    assert report.nodes["identity"].status is Status.SKIPPED
    assert hook.finished == ["FAILURE"]


class BrokenAfterRun(Hook):
    def after_run(self, **_: Any) -> None:
        raise OSError("audit store down")


def test_after_run_hook_failure_never_hides_the_result(orders: pd.DataFrame) -> None:
    report = tdm.run(
        tdm.inputs.frame("orders") >> identity(),
        inputs={"orders": orders},
        runtime=Runtime(hooks=[BrokenAfterRun()]),
    )
    assert report.ok and report.output.equals(orders)
    assert report.hook_errors and "audit store down" in report.hook_errors[0]


def test_unknown_executor_name_is_a_clear_error(orders: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown executor 'gpu'"):
        tdm.run(tdm.inputs.frame("orders"), inputs={"orders": orders}, executor="gpu")
