"""The interpreter against a reference: random DAGs, every executor, the same answer.

Hypothesis draws small pipelines (shared sub-pipelines, a node read twice by one step,
variadic ``concat``, ``join`` of a node with itself, failing steps, guards, ``memory://``
reads and writes). A reference evaluator written here, in a dozen lines of plain pandas,
says what every node should end as; each executor (sequential, threads, a real Dask
LocalCluster) must agree on the status of every node and on every output frame.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fsspec
import pandas as pd
import pytest
from distributed import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tdm
from tdm import Pipeline, Runtime, Status, files, transform
from tdm.executors import Dask
from tdm.transforms import concat, join, skip_if_empty

SEED_DIR = "memory://tdm-reference-seed"
SEEDS = {
    "s0": pd.DataFrame({"k": [1, 2, 3], "v": [10, 20, 30]}),
    "s1": pd.DataFrame({"k": [2, 3, 4, 5], "v": [7, 8, 9, 10]}),
}
INPUTS = {
    "i0": pd.DataFrame({"k": [1, 3, 5], "v": [1, 2, 3]}),
    "i1": pd.DataFrame({"k": [4], "v": [100]}),
}


# steps (module level: Dask workers import them from here) ---------------------------------
@transform
def add_const(df: pd.DataFrame, *, c: int) -> pd.DataFrame:
    return _add(df, c)


@transform
def keep_rows(df: pd.DataFrame, *, m: int, r: int) -> pd.DataFrame:
    return _keep(df, m, r)


@transform
def explode_on_purpose(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("this step always fails")


def _add(df: pd.DataFrame, c: int) -> pd.DataFrame:
    values = [col for col in df.columns if col != "k"]
    return df.assign(**{col: df[col] + c for col in values})


def _keep(df: pd.DataFrame, m: int, r: int) -> pd.DataFrame:
    return df[df["k"] % m != r].reset_index(drop=True)


def seed_memory() -> None:
    """Write the seed files into this process's ``memory://`` (the client's or a worker's)."""
    for name, frame in SEEDS.items():
        frame.to_parquet(f"{SEED_DIR}/{name}.parquet")


# the drawn DAG ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One node: what it does, its argument, the positions of its parents (earlier nodes)."""

    kind: str
    arg: Any
    parents: tuple[int, ...]


UNARY = ("add", "keep", "fail", "guard", "write")


@st.composite
def dags(draw: st.DrawFn) -> list[Spec]:
    specs: list[Spec] = []
    size = draw(st.integers(min_value=2, max_value=9))
    for j in range(size):
        choices = ["source"] if j == 0 else ["source", *UNARY, "concat", "join"]
        kind = draw(st.sampled_from(choices))
        earlier = st.integers(min_value=0, max_value=j - 1) if j else st.nothing()
        if kind == "source":
            specs.append(Spec("source", draw(st.sampled_from([*SEEDS, *INPUTS])), ()))
        elif kind in UNARY:
            arg: Any = None
            if kind == "add":
                arg = draw(st.integers(-3, 3))
            elif kind == "keep":
                arg = (draw(st.integers(1, 3)), draw(st.integers(0, 2)))
            specs.append(Spec(kind, arg, (draw(earlier),)))
        elif kind == "concat":
            first = draw(earlier)
            rest = draw(st.lists(st.one_of(st.just(first), earlier), max_size=2))
            specs.append(Spec("concat", None, (first, *rest)))
        else:
            left = draw(earlier)
            right = draw(st.one_of(st.just(left), earlier))
            specs.append(
                Spec("join", draw(st.sampled_from(["inner", "left", "outer"])), (left, right))
            )
    return specs


def build(specs: list[Spec], out_dir: str) -> tuple[Pipeline, list[str]]:
    """The tdm pipeline of ``specs`` (outputs: the nodes nothing reads) and each node's name."""
    made: list[Pipeline] = []
    names = [f"n{j}" for j in range(len(specs))]
    for j, spec in enumerate(specs):
        ps = [made[p] for p in spec.parents]
        name = names[j]
        if spec.kind == "source":
            if spec.arg in SEEDS:
                made.append(files.read(f"{SEED_DIR}/{spec.arg}.parquet", label=name))
            else:
                made.append(tdm.inputs.frame(spec.arg))
                names[j] = spec.arg
        elif spec.kind == "add":
            made.append(ps[0] >> add_const(c=spec.arg).named(name))
        elif spec.kind == "keep":
            made.append(ps[0] >> keep_rows(m=spec.arg[0], r=spec.arg[1]).named(name))
        elif spec.kind == "fail":
            made.append(ps[0] >> explode_on_purpose().named(name))
        elif spec.kind == "guard":
            made.append(ps[0] >> skip_if_empty().named(name))
        elif spec.kind == "write":
            made.append(ps[0] >> files.write(f"{out_dir}/{name}.parquet", label=name))
        elif spec.kind == "concat":
            made.append(concat().named(name)(*ps))
        else:
            made.append(join(on="k", how=spec.arg).named(name)(*ps))
    used = {p for spec in specs for p in spec.parents}
    leaves = [made[j] for j in range(len(specs)) if j not in used]
    return Pipeline.of(*leaves), names


# the reference ----------------------------------------------------------------------------
def reference(specs: list[Spec]) -> tuple[list[Status], list[pd.DataFrame | None]]:
    """What each node should end as, computed directly from the specs with pandas."""
    ops: dict[str, Callable[..., pd.DataFrame]] = {
        "add": lambda arg, df: _add(df, arg),
        "keep": lambda arg, df: _keep(df, *arg),
        "write": lambda arg, df: df,
        "concat": lambda arg, *fs: pd.concat(fs, ignore_index=True, sort=False),
        "join": lambda arg, left, right: left.merge(right, on="k", how=arg),
    }
    status: list[Status] = []
    frames: list[pd.DataFrame | None] = []
    for spec in specs:
        frame: pd.DataFrame | None = None
        if any(status[p] is not Status.SUCCESS for p in spec.parents):
            state = Status.SKIPPED
        elif spec.kind == "source":
            state, frame = Status.SUCCESS, {**SEEDS, **INPUTS}[spec.arg]
        elif spec.kind == "fail":
            state = Status.FAILURE
        elif spec.kind == "guard":
            parent = frames[spec.parents[0]]
            assert parent is not None
            state, frame = (Status.SKIPPED, None) if parent.empty else (Status.SUCCESS, parent)
        else:
            try:
                frame = ops[spec.kind](spec.arg, *(frames[p] for p in spec.parents))
                state = Status.SUCCESS
            except Exception:  # the same pandas error tdm's step would report
                state, frame = Status.FAILURE, None
        status.append(state)
        frames.append(frame)
    return status, frames


def check(specs: list[Spec], executor: Any, *, local: bool) -> None:
    out_dir = f"memory://tdm-reference-out/{uuid.uuid4().hex}"
    pipeline, names = build(specs, out_dir)
    wanted = {name for name in names if name in INPUTS}
    report = tdm.run(
        pipeline,
        inputs={name: INPUTS[name] for name in wanted},
        executor=executor,
        runtime=Runtime(),
    )
    status, frames = reference(specs)
    got = {name: report.nodes[name].status for name in names}
    assert got == dict(zip(names, status, strict=True)), pipeline.to_text()
    outputs = set(report.outputs)
    for j, name in enumerate(names):
        if name in outputs:
            expected = frames[j]
            assert expected is not None
            pd.testing.assert_frame_equal(report.outputs[name], expected)
        if local and specs[j].kind == "write":
            fs = fsspec.filesystem("memory")
            path = f"{out_dir}/{name}.parquet".removeprefix("memory://")
            if status[j] is Status.SUCCESS:
                written = pd.read_parquet(f"memory://{path}")
                expected = frames[j]
                assert expected is not None
                pd.testing.assert_frame_equal(written, expected, check_dtype=False)
            else:
                assert not fs.exists(path)
    overall = Status.FAILURE if Status.FAILURE in status else Status.SUCCESS
    assert report.status is overall


@pytest.fixture(scope="module", autouse=True)
def _seeded() -> None:
    seed_memory()


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@examples(80)
@given(specs=dags())
def test_local_executors_agree_with_the_reference(specs: list[Spec]) -> None:
    check(specs, "sequential", local=True)
    check(specs, "threads", local=True)


@pytest.fixture(scope="module")
def seeded_workers(dask_client: Client) -> Client:
    dask_client.run(seed_memory)
    return dask_client


@examples(8)  # each example is a few round trips to the cluster: a few seconds in all
@given(specs=dags())
def test_dask_agrees_with_the_reference(seeded_workers: Client, specs: list[Spec]) -> None:
    check(specs, Dask(seeded_workers), local=False)


@pytest.mark.parametrize("executor", ["sequential", "threads"])
@pytest.mark.parametrize("combine", ["concat", "join"])
def test_a_step_may_read_one_node_twice(executor: str, combine: str) -> None:
    b = tdm.inputs.frame("x") >> add_const(c=1)
    both = concat(b, b) if combine == "concat" else join(b, b, on="k")
    report = tdm.run(both, inputs={"x": INPUTS["i0"]}, executor=executor)
    assert report.status is Status.SUCCESS, report.error
    assert len(report.output) == (6 if combine == "concat" else 3)
