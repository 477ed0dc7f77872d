"""The Dask executor on a real 2-process LocalCluster (session fixtures ``dask_client``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import cloudpickle
import pandas as pd
import pytest
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

import tdm
from tdm import Hook, Runtime, Status, transform
from tdm.core.effect import Effect
from tdm.effects.dispatch import EffectEnv, handle
from tdm.effects.secret_routing import AwsSecrets, RoutedSecrets
from tdm.effects.secrets import (
    ChainSecrets,
    DirectorySecrets,
    EnvSecrets,
    FileSecrets,
    MappingSecrets,
)
from tdm.errors import ConfigError, EffectError
from tdm.executors import Dask, from_cli
from tdm.interpreter.dask import for_workers

# --------------------------------------------------------------------------------------------
# steps and effects (module level: the workers import them from here)
# --------------------------------------------------------------------------------------------


@transform
def add_total(df: pd.DataFrame, *, cols: list[str]) -> pd.DataFrame:
    return df.assign(total=df[cols].sum(axis=1))


@transform
def scale(df: pd.DataFrame, *, column: str, by: float) -> pd.DataFrame:
    return df.assign(**{column: df[column] * by})


@transform
def mutate_in_place(df: pd.DataFrame) -> pd.DataFrame:
    df["a"] = -1
    df["injected"] = True
    return df


@transform
def boom(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("bad data in column a")


@transform
def where_am_i(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(pid=os.getpid())


@dataclass(frozen=True, slots=True)
class Numbers(Effect):
    """A source effect made for these tests: ``n`` rows of numbers."""

    n: int

    def default_name(self) -> str:
        return f"numbers_{self.n}"

    def describe(self) -> str:
        return f"numbers({self.n})"


@handle.register
def _numbers(effect: Numbers, frames: tuple[pd.DataFrame, ...], env: EffectEnv) -> pd.DataFrame:
    return pd.DataFrame({"a": range(effect.n), "b": [i * 10 for i in range(effect.n)]})


@dataclass(frozen=True, slots=True)
class SecretProbe(Effect):
    """Resolves ``secret``'s ``token`` where it runs; returns its digest (never the value)."""

    secret: str
    leak_in_error: bool = False

    def default_name(self) -> str:
        return "probe"

    def describe(self) -> str:
        return f"probe(secret={self.secret!r})"


@handle.register
def _probe(effect: SecretProbe, frames: tuple[pd.DataFrame, ...], env: EffectEnv) -> pd.DataFrame:
    token = env.secret(effect.secret)["token"].reveal()
    if effect.leak_in_error:
        raise EffectError(f"the API refused token {token}", node=env.node)
    digest = hashlib.sha256(token.encode()).hexdigest()
    return pd.DataFrame({"digest": [digest], "pid": [os.getpid()]})


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class GraphRecorder(SchedulerPlugin):
    """Keeps, on the scheduler, every task that reaches it, pickled (the task graph as sent)."""

    name: ClassVar[str] = "tdm-test-graph-recorder"

    def __init__(self) -> None:
        self.specs: list[bytes] = []
        self.keys: list[str] = []

    def update_graph(self, scheduler: Any, *, tasks: list[Any], **kwargs: Any) -> None:
        for key in tasks:
            self.keys.append(str(key))
            state = scheduler.tasks.get(key)
            if state is not None:
                self.specs.append(cloudpickle.dumps(state.run_spec))

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "memory" and start == "released":  # scattered data arrives like this
            self.keys.append(str(key))


def _recorded(dask_scheduler: Any) -> tuple[list[bytes], list[str]]:
    plugin = dask_scheduler.plugins[GraphRecorder.name]
    return list(plugin.specs), list(plugin.keys)


@pytest.fixture
def recorder(dask_client: Client) -> Iterator[Client]:
    dask_client.register_plugin(GraphRecorder(), name=GraphRecorder.name)
    try:
        yield dask_client
    finally:
        dask_client.unregister_scheduler_plugin(GraphRecorder.name)


def _recorded_graph(client: Client) -> tuple[list[bytes], list[str]]:
    specs, keys = client.run_on_scheduler(_recorded)
    return specs, keys


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _diamond() -> tdm.Pipeline:
    base = Numbers(50) >> add_total(cols=["a", "b"])
    left = base >> scale(column="total", by=2.0)
    right = base >> mutate_in_place()
    joined = tdm.join(left, right, on="b", how="inner")
    return tdm.Pipeline.of(joined, base >> where_am_i())


def _node_facts(report: tdm.RunReport) -> dict[str, tuple[Any, ...]]:
    return {
        name: (n.status, n.rows_in, n.rows_out, n.columns, n.error.message if n.error else None)
        for name, n in report.nodes.items()
    }


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_results_equal_sequential_on_a_dag(dask_client: Client) -> None:
    pipeline = _diamond()
    seq = tdm.run(pipeline)
    dsk = tdm.run(pipeline, executor=Dask(dask_client))
    assert seq.ok and dsk.ok, (seq.error, dsk.error)
    assert dsk.executor == "dask"
    assert _node_facts(dsk) == _node_facts(seq)
    for name in seq.outputs:
        left, right = seq.outputs[name], dsk.outputs[name]
        if "pid" in left:
            # the step ran on a worker process, not here
            assert set(right["pid"]) <= set(dask_client.run(os.getpid).values())
            left, right = left.drop(columns="pid"), right.drop(columns="pid")
        pd.testing.assert_frame_equal(left, right)
    for record in dsk.nodes.values():
        assert record.duration_s is not None and record.start is not None
        assert record.start <= record.stop  # type: ignore[operator]


def test_a_step_that_mutates_its_input_cannot_touch_its_siblings(dask_client: Client) -> None:
    base = Numbers(5) >> add_total(cols=["a", "b"])
    pipeline = tdm.Pipeline.of(base, base >> mutate_in_place(), base >> scale(column="a", by=1.0))
    report = tdm.run(pipeline, executor=Dask(dask_client))
    assert report.ok, report.error
    assert report.outputs["scale"]["a"].tolist() == [0, 1, 2, 3, 4]
    assert "injected" not in report.outputs["add_total"].columns
    assert report.outputs["mutate_in_place"]["a"].tolist() == [-1] * 5


def test_supplied_inputs_and_equal_results(dask_client: Client, orders: pd.DataFrame) -> None:
    pipeline = (
        tdm.inputs.frame("orders") >> add_total(cols=["a", "b"]) >> scale(column="total", by=0.5)
    )
    seq = tdm.run(pipeline, inputs={"orders": orders})
    dsk = tdm.run(pipeline, inputs={"orders": orders}, executor=Dask(dask_client))
    pd.testing.assert_frame_equal(seq.output, dsk.output)
    assert dsk.nodes["orders"].supplied and dsk.nodes["orders"].rows_out == 3
    assert orders.columns.tolist() == ["id", "a", "b"]  # the caller's frame is untouched


def test_a_supplied_input_is_scattered_once(recorder: Client, orders: pd.DataFrame) -> None:
    src = tdm.inputs.frame("orders")
    branches = [src >> scale(column="a", by=float(k)) for k in range(3)]
    report = tdm.run(tdm.Pipeline.of(*branches), inputs={"orders": orders}, executor=Dask(recorder))
    assert report.ok, report.error
    _, keys = _recorded_graph(recorder)
    ours = {k for k in keys if k.startswith("tdm-")}
    others = {k for k in keys if not k.startswith("tdm-")}
    assert len(ours) == 6  # three nodes, each a task and its metadata task
    assert len(others) == 1, others  # the input frame, sent once for its three consumers


def test_a_failing_node_skips_its_descendants_only(dask_client: Client) -> None:
    base = Numbers(10) >> add_total(cols=["a", "b"])
    bad = base >> boom() >> scale(column="a", by=2.0).named("scale_a")
    good = base >> scale(column="b", by=3.0).named("scale_b")
    pipeline = tdm.Pipeline.of(bad, good)
    seq = tdm.run(pipeline)
    dsk = tdm.run(pipeline, executor=Dask(dask_client))
    assert dsk.status is Status.FAILURE
    assert dsk.nodes["boom"].status is Status.FAILURE
    assert dsk.nodes["boom"].error is not None
    assert "ValueError: bad data in column a" in dsk.nodes["boom"].error.message
    assert dsk.nodes["scale_a"].status is Status.SKIPPED
    assert dsk.nodes["scale_b"].status is Status.SUCCESS
    assert dsk.outputs["scale_b"]["b"].tolist() == [i * 30 for i in range(10)]
    assert dsk.error == seq.error
    assert _node_facts(dsk) == _node_facts(seq)
    cause = dsk.nodes["boom"].error.cause
    assert cause is not None and "ValueError" in str(cause)


def test_hooks_run_on_the_client_and_see_every_node(dask_client: Client) -> None:
    seen: list[tuple[str, str, str, int]] = []

    class Recorder(Hook):
        def before_node(self, *, node: tdm.NodeReport, **_: Any) -> None:
            seen.append(("before", node.name, str(node.status), os.getpid()))

        def after_node(self, *, node: tdm.NodeReport, **_: Any) -> None:
            seen.append(("after", node.name, str(node.status), os.getpid()))

    pipeline = tdm.Pipeline.of(Numbers(3) >> boom() >> add_total(cols=["a"]), Numbers(4))
    report = tdm.run(pipeline, executor=Dask(dask_client), runtime=Runtime(hooks=[Recorder()]))
    assert report.status is Status.FAILURE
    assert {pid for *_, pid in seen} == {os.getpid()}
    assert sorted(s[:3] for s in seen) == sorted(
        [
            ("before", "numbers_3", "RUNNING"),
            ("after", "numbers_3", "SUCCESS"),
            ("before", "numbers_4", "RUNNING"),
            ("after", "numbers_4", "SUCCESS"),
            ("before", "boom", "RUNNING"),
            ("after", "boom", "FAILURE"),
            ("after", "add_total", "SKIPPED"),
        ]
    )


def test_a_secret_resolved_on_a_worker_never_travels(recorder: Client) -> None:
    value = "planted-" + hashlib.sha256(os.urandom(16)).hexdigest()[:20]
    var = "TDM_SECRET__PLANT__TOKEN"
    assert var not in os.environ  # only the workers have it
    recorder.run(_set_env, var, value)
    try:
        ok = tdm.Pipeline.of(SecretProbe("plant") >> where_am_i())
        leaky = SecretProbe("plant", leak_in_error=True, label="leaky")
        for runtime in (Runtime(), Runtime(secrets=EnvSecrets())):
            report = tdm.run(tdm.Pipeline.of(ok, leaky), executor=Dask(recorder), runtime=runtime)
            out = report.outputs["where_am_i"]
            assert out["digest"].tolist() == [hashlib.sha256(value.encode()).hexdigest()]
            assert set(out["pid"]) <= set(recorder.run(os.getpid).values())
            error = report.nodes["leaky"].error
            assert error is not None and "the API refused token ***" in error.message
            shown = [report.error, error.message, str(error.cause), repr(report.to_frame())]
            assert not any(value in (text or "") for text in shown)
        specs, keys = _recorded_graph(recorder)
    finally:
        recorder.run(_set_env, var, None)
    assert specs and any(b"plant" in spec for spec in specs)  # the graph names the secret...
    assert not any(value.encode() in spec for spec in specs)  # ...and never holds its value
    assert len({k for k in keys if k.startswith("tdm-")}) == 12  # 2 runs x 3 nodes x 2 tasks


def test_secret_values_held_by_the_client_are_not_sent(recorder: Client) -> None:
    value = "in-memory-" + hashlib.sha256(os.urandom(16)).hexdigest()[:20]
    runtime = Runtime(secrets=MappingSecrets({"plant": {"token": value}}))
    report = tdm.run(SecretProbe("plant"), executor=Dask(recorder), runtime=runtime)
    assert report.status is Status.FAILURE
    message = report.nodes["probe"].error.message  # type: ignore[union-attr]
    assert "holds values in the client's memory" in message
    assert "TDM_SECRET__PLANT__<KEY>" in message
    specs, _ = _recorded_graph(recorder)
    assert specs and not any(value.encode() in spec for spec in specs)
    # the same runtime works locally, where the values are
    assert tdm.run(SecretProbe("plant"), runtime=runtime).ok


def test_fail_fast_stops_starting_nodes(dask_client: Client) -> None:
    pipeline = Numbers(3) >> boom() >> add_total(cols=["a"]) >> scale(column="a", by=1.0)
    report = tdm.run(pipeline, executor=Dask(dask_client), fail_fast=True)
    assert report.status is Status.FAILURE
    assert [n.status for n in report.nodes.values()] == [
        Status.SUCCESS,
        Status.FAILURE,
        Status.SKIPPED,
        Status.SKIPPED,
    ]


def test_an_address_connects_for_the_run_and_a_with_block_keeps_it(
    dask_cluster: Any, orders: pd.DataFrame
) -> None:
    pipeline = tdm.inputs.frame("orders") >> add_total(cols=["a", "b"])
    executor = Dask(address=dask_cluster.scheduler_address)
    assert tdm.run(pipeline, inputs={"orders": orders}, executor=executor).output[
        "total"
    ].tolist() == [11, 22, 33]
    with pytest.raises(RuntimeError, match="not open"):
        _ = executor.client  # the run's own connection was closed
    with executor:
        first = executor.client
        for _ in range(2):
            assert tdm.run(pipeline, inputs={"orders": orders}, executor=executor).ok
        assert executor.client is first
    assert first.status == "closed"


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    from tests.servers.fixtures import free_port

    executor = Dask(address=f"tcp://127.0.0.1:{free_port()}", timeout=0.5)
    with pytest.raises(ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1"):
        executor.open()


def test_a_runtime_that_cannot_travel_names_its_field(dask_client: Client) -> None:
    runtime = Runtime(options={"lock": threading.Lock()})
    report = tdm.run(Numbers(2), executor=Dask(dask_client), runtime=runtime)
    assert report.status is Status.FAILURE
    assert "Runtime.options cannot be sent to Dask workers" in (report.error or "")


def test_executor_dask_by_name_uses_the_default_client(dask_default_client: Client) -> None:
    report = tdm.run(Numbers(3) >> add_total(cols=["a", "b"]), executor="dask")
    assert report.ok and report.executor == "dask"
    assert dask_default_client.status == "running"  # not ours to close


def test_from_cli(dask_client: Client) -> None:
    assert from_cli("sequential").name == "sequential"
    assert repr(from_cli("Threads", max_workers=3)) == "Threads(max_workers=3)"
    assert repr(from_cli("dask", scheduler="tcp://10.0.0.1:8786")) == (
        "Dask(address='tcp://10.0.0.1:8786')"
    )
    with pytest.raises(ConfigError, match="--scheduler applies only to --executor dask"):
        from_cli("threads", scheduler="tcp://x:8786")
    with pytest.raises(ConfigError, match="choose one of: sequential, threads, dask"):
        from_cli("spark")
    with pytest.raises(ValueError, match="not both"):
        Dask(dask_client, address="tcp://x:1")
    with pytest.raises(TypeError, match=r"expects a distributed\.Client"):
        Dask("tcp://x:1")  # type: ignore[arg-type]


def test_a_missing_extra_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import tdm\n"
        "try:\n"
        "    tdm.executors.Dask(address='tcp://127.0.0.1:8786')\n"
        "except tdm.errors.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "pip install 'tdm-pipelines[dask]'" in out.stdout, out.stderr


def test_every_provider_travels_as_a_description(tmp_path: Any) -> None:
    value = "file-held-" + hashlib.sha256(os.urandom(8)).hexdigest()[:16]
    path = tmp_path / "secrets.yml"
    path.write_text(f"version: 1\nS3:\n  key: {value}\n")
    path.chmod(0o600)
    (tmp_path / "mounted" / "api").mkdir(parents=True)
    (tmp_path / "mounted" / "api" / "token").write_text(value)
    file, directory = FileSecrets(path), DirectorySecrets(tmp_path / "mounted")
    assert file.section("S3")["key"].reveal() == value  # loaded and cached on the client
    assert directory.section("api")["token"].reveal() == value
    in_memory = EnvSecrets(environ={"TDM_SECRET__X__K": value})
    provider = RoutedSecrets(
        {"api": directory},
        ChainSecrets(
            in_memory,
            file,
            MappingSecrets({"other": {"k": value}}),
            AwsSecrets(region="eu-west-1", prefix="prod/"),
        ),
    )
    blob = cloudpickle.dumps(for_workers(Runtime(secrets=provider, hooks=[Hook()])))
    assert value.encode() not in blob
    remote = cloudpickle.loads(blob)  # what a worker gets: it reads the file and folder again
    assert remote.hooks == ()
    assert "AWS Secrets Manager (eu-west-1) with prefix 'prod/'" in remote.secrets.describe()
    assert remote.secrets.section("S3")["key"].reveal() == value
    assert remote.secrets.section("api")["token"].reveal() == value
    with pytest.raises(tdm.errors.SecretNotFoundError, match="never sends secret values"):
        remote.secrets.section("other")


def test_the_audit_trail_records_a_dask_run(dask_client: Client) -> None:
    store = tdm.state.memory()
    pipeline = tdm.Pipeline.of(Numbers(3) >> boom(), Numbers(4) >> add_total(cols=["a", "b"]))
    report = tdm.run(pipeline, executor=Dask(dask_client), runtime=Runtime(state=store))
    record = store.get(report.run_id)
    assert (record.status, record.executor) == ("FAILURE", "dask")
    nodes = {n.name: (n.status, n.rows_out, n.columns) for n in record.nodes}
    assert nodes == {
        "numbers_3": ("SUCCESS", 3, ("a", "b")),
        "boom": ("FAILURE", None, None),
        "numbers_4": ("SUCCESS", 4, ("a", "b")),
        "add_total": ("SUCCESS", 4, ("a", "b", "total")),
    }


def test_the_local_cluster_s_workers_run_without_the_profiler_or_malloc_trim() -> None:
    """What ``Dask(address="local")`` starts: workers set up for CPU-bound pandas nodes."""
    import os

    import dask
    from distributed import Client

    from tdm.interpreter.dask import local_cluster

    with (
        local_cluster(n_workers=1, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        seen = client.run(
            lambda: (
                dask.config.get("distributed.worker.profile.enabled"),
                os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            )
        )
        # the nanny sets no MALLOC_TRIM_THRESHOLD_: a worker has only what this process has
        assert list(seen.values()) == [(False, os.environ.get("MALLOC_TRIM_THRESHOLD_"))]
        assert client.submit(sum, [1, 2]).result() == 3
    # the client process's own configuration is left as it was
    assert dask.config.get("distributed.worker.profile.enabled") is True
