"""``tdm.run_partitions``: one source-to-sink pipeline mapped over the files of a dataset.

The pipeline's file source (``files.read("s3://raw/events/date=*/*.parquet")``) is expanded on
the client into its files; each file becomes a *partition*: a copy of the pipeline that reads
that file only and writes its own output file. Each partition is one node of an outer run
(one task on a Dask cluster, where the whole partition runs on a worker, its frames never
leaving it), so the report has one entry per partition, hooks, audit trail and alerts see
partitions, a failing partition fails alone, and ``partitions=[...]`` re-runs chosen ones.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pandas as pd
from returns.result import Failure, Result

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.effect import Effect
from tdm.core.factories import transform
from tdm.core.pipe import Op, PipeError
from tdm.core.pipeline import ARGUMENT, Node, Pipeline
from tdm.effects.dispatch import EffectEnv, handle
from tdm.errors import DefinitionError, InputError
from tdm.interpreter.executors import Executor
from tdm.interpreter.report import RunReport
from tdm.interpreter.run import _scheduler_for, run
from tdm.interpreter.runtime import Runtime

if TYPE_CHECKING:
    from tdm.core.files import Read, Write

__all__ = ["Partition", "PartitionSpec", "partition_pipelines", "run_partitions"]


@dataclass(frozen=True, slots=True)
class Partition(Effect):
    """One partition's whole pipeline, run as one node (on one worker, with Dask).

    Attributes:
        key: the partition's name: its file's path under the dataset's root.
        uri: the file the partition reads.
        pipeline: the partition's own pipeline (reads ``uri``, writes its own output).
        inputs: frames for the pipeline's ``tdm.inputs.frame`` nodes (sent with the task).
    """

    key: str
    uri: str
    pipeline: Pipeline
    inputs: Mapping[str, Frame] = field(default_factory=dict, compare=False, repr=False)

    def default_name(self) -> str:
        return self.key

    def describe(self) -> str:
        return f"partition {self.uri}"


class _Clock:
    """The outer run's start time, so every partition's steps see the same run time."""

    __slots__ = ("at",)

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@handle.register
def _run_partition(
    effect: Partition, frames: tuple[Frame, ...], env: EffectEnv
) -> Result[Frame, PipeError] | Frame:
    ctx = env.context
    # The outer run's observers (hooks, audit, alerts) see the partition, not its nodes.
    runtime = env.runtime.evolve(
        hooks=(), state=None, alerters=(), progress=False, clock=_Clock(ctx.started_at)
    )
    inner = run(
        effect.pipeline,
        inputs=effect.inputs or None,
        params=ctx.params,
        runtime=runtime,
        executor="sequential",
        run_id=ctx.run_id,
        job_id=ctx.job_id,
        pipeline_id=ctx.pipeline_id,
    )
    if inner.ok:
        return inner.output
    failed = inner.failed[0] if inner.failed else None
    if failed is not None and failed.error is not None:
        return Failure(PipeError(env.node, f"{failed.name}: {failed.error.message}"))
    return Failure(PipeError(env.node, inner.error or "the partition's run failed"))


# --------------------------------------------------------------------------------------------
# splitting a pipeline into partitions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """One file of the dataset and the pipeline that processes it."""

    key: str
    uri: str
    values: tuple[tuple[str, str], ...]
    pipeline: Pipeline


@transform(name="partition_values")
def _with_values(df: pd.DataFrame, *, values: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    """Adds a partition's ``key=value`` folder names as columns (like a folder read does)."""
    missing = {k: _typed(v) for k, v in values if k not in df.columns}
    return df.assign(**missing) if missing else df


def _typed(value: str) -> Any:
    for caster in (int, float):
        try:
            return caster(value)
        except ValueError:
            continue
    return value


def _drop(columns: tuple[str, ...]) -> Op:
    return _drop_columns(columns=columns)


@transform(name="drop_partition_columns")
def _drop_columns(df: pd.DataFrame, *, columns: tuple[str, ...]) -> pd.DataFrame:
    """The partition columns live in the folder names of a partitioned write, not in files."""
    return df.drop(columns=[c for c in columns if c in df.columns])


def _file_effects() -> tuple[type[Read], type[Write]]:
    from tdm.core.files import Read, Write

    return Read, Write


def _source(pipeline: Pipeline) -> tuple[int, Read]:
    """The position and effect of the pipeline's one dataset read."""
    read_type, _ = _file_effects()
    plan = pipeline.plan
    reads = [(i, n.op) for i, n in enumerate(plan.nodes) if type(n.op) is read_type]
    if len(reads) != 1:
        found = ", ".join(plan.names[i] for i, _ in reads) or "none"
        raise DefinitionError(
            "tdm.run_partitions maps a pipeline over the files of one dataset, so the pipeline "
            f"must start at exactly one files.read(...) (found: {found}); e.g. "
            "run_partitions(files.read('s3://raw/events/*.parquet') >> clean, write=...)"
        )
    i, op = reads[0]
    assert isinstance(op, read_type)
    return i, op


def _expand(read: Read, runtime: Runtime) -> tuple[list[tuple[str, str]], str]:
    """The dataset's files as (display URI, path under the root), and the root, in order."""
    from tdm.effects import file_reads
    from tdm.effects.storage import open_target

    ctx = RunContext(started_at=runtime.clock(), run_id="list-partitions")
    env = EffectEnv(node="list-partitions", context=ctx, runtime=runtime)
    target = open_target(read.uri, read.secret, read.options, env)
    paths, root, _ = file_reads._expand(target, read.format)
    base = root if root is not None else _glob_root(target.path)
    out = []
    for path in paths:
        rel = path[len(base) :].lstrip("/") if path.startswith(base) else path.rsplit("/", 1)[-1]
        out.append((target.display(path), rel))
    return out, target.display(base)


def _glob_root(path: str) -> str:
    """The folder part of a glob pattern before its first wildcard."""
    segments = path.split("/")
    for k, segment in enumerate(segments):
        if any(c in segment for c in "*?["):
            return "/".join(segments[:k])
    return posixpath.dirname(path)


def _folder_values(rel: str) -> tuple[tuple[str, str], ...]:
    values = []
    for segment in rel.split("/")[:-1]:
        key, sep, value = segment.partition("=")
        if sep and key:
            values.append((unquote(key), unquote(value)))
    return tuple(values)


def _output_uri(write: Write, rel: str, values: Mapping[str, str]) -> str:
    """Where one partition writes: its own file under ``write``'s folder."""
    from tdm.core.files import split_compression

    folder, _, name = rel.rpartition("/")
    stem = split_compression(name)[0].rsplit(".", 1)[0] or name
    suffix = {"csv": ".csv", "parquet": ".parquet", "json": ".json", "jsonl": ".jsonl"}[
        write.format
    ]
    if write.partition_by:
        missing = [c for c in write.partition_by if c not in values]
        if missing:
            raise DefinitionError(
                f"run_partitions writes one file per input file, so partition_by columns must "
                f"be key=value folder names of the input (found: {', '.join(values) or 'none'}); "
                f"{', '.join(missing)} is not one. Partition the input by it, or write without "
                "partition_by"
            )
        folder = "/".join(f"{c}={values[c]}" for c in write.partition_by)
    root = write.uri.rstrip("/")
    return "/".join(p for p in (root, folder, stem + suffix) if p)


def _map_ops(pipeline: Pipeline, rewrite: Callable[[int, Op, Node], Node | None]) -> Pipeline:
    """A copy of ``pipeline`` where ``rewrite`` may replace a node (given its new parents)."""
    plan = pipeline.plan
    made: list[Node] = []
    for i, node in enumerate(plan.nodes):
        if node.op is ARGUMENT:
            made.append(node)
            continue
        parents = tuple(made[p] for p in plan.parents[i])
        fresh = Node.make(node.op, parents)
        replaced = rewrite(i, node.op, fresh)
        made.append(replaced if replaced is not None else fresh)
    return Pipeline(tuple(made[i] for i in plan.outputs))


def partition_pipelines(
    pipeline: Pipeline, *, write: Write | None = None, runtime: Runtime | None = None
) -> list[PartitionSpec]:
    """The per-file pipelines ``run_partitions`` would run (lists the dataset's files).

    Every file under the read's glob or folder becomes one pipeline that reads only that
    file, gets the file's ``key=value`` folder names as columns, and writes to its own file
    under each write's folder (mirroring the input layout, or ``col=value`` folders for
    ``partition_by``).
    """
    runtime = runtime if runtime is not None else Runtime.default()
    _, write_type = _file_effects()
    if len(pipeline.outputs) != 1:
        outs = ", ".join(pipeline.plan.names[i] for i in pipeline.plan.outputs)
        raise DefinitionError(
            f"run_partitions needs a pipeline with one output; this one has "
            f"{len(pipeline.outputs)} ({outs}); pick one with pipeline['name']"
        )
    if write is not None:
        if not isinstance(write, write_type):
            raise DefinitionError(
                f"write= takes a files.write(...) effect, got {type(write).__name__}"
            )
        pipeline = pipeline >> write
    position, read = _source(pipeline)
    files, _ = _expand(read, runtime)
    specs = []
    for uri, rel in files:
        values = _folder_values(rel)
        by_key = dict(values)

        def rewrite(
            i: int, op: Op, fresh: Node, *, uri: str = uri, rel: str = rel, by_key: Any = by_key
        ) -> Node | None:
            if i == position:
                node = Node.make(dataclasses.replace(op, uri=uri), ())  # type: ignore[type-var]
                if by_key:
                    node = Node.make(_with_values(values=tuple(by_key.items())), (node,))
                return node
            if isinstance(op, write_type):
                target = dataclasses.replace(
                    op, uri=_output_uri(op, rel, by_key), partition_by=None
                )
                parents = fresh.parents
                if op.partition_by:
                    parents = (Node.make(_drop(op.partition_by), parents),)
                return Node.make(target, parents)
            return None

        specs.append(PartitionSpec(rel, uri, values, _map_ops(pipeline, rewrite)))
    return specs


def _select(specs: list[PartitionSpec], wanted: Iterable[str] | None) -> list[PartitionSpec]:
    if wanted is None:
        return specs
    by_name = {s.key: s for s in specs} | {s.uri: s for s in specs}
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        import difflib

        keys = [s.key for s in specs]
        close = difflib.get_close_matches(unknown[0], keys, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(
            f"partitions= names {', '.join(map(repr, unknown))}, which the dataset does not "
            f"have{hint}; its partitions are: {', '.join(keys[:8])}"
            f"{', ...' if len(keys) > 8 else ''}"
        )
    chosen = {id(by_name[n]) for n in names}
    return [s for s in specs if id(s) in chosen]


def run_partitions(
    pipeline: Pipeline,
    *,
    write: Write | None = None,
    executor: str | Executor = "sequential",
    max_parallel: int | None = None,
    partitions: Sequence[str] | None = None,
    inputs: Mapping[str, Frame] | None = None,
    params: Mapping[str, Any] | None = None,
    runtime: Runtime | None = None,
    fail_fast: bool = False,
    pipeline_id: str | None = None,
    job_id: str | None = None,
    run_id: str | None = None,
    pipeline_name: str | None = None,
) -> RunReport:
    """Run ``pipeline`` once per file of its dataset: one task per partition, in parallel.

    Args:
        pipeline: a pipeline starting at one ``files.read(...)`` of a glob or folder.
        write: the sink, e.g. ``files.write("s3://curated/events/", format="parquet",
            partition_by=["date"])``; appended to ``pipeline`` (or let the pipeline end with
            its own ``files.write``). Each partition writes its own file under the folder,
            atomically: ``<folder>/<input path>`` with the output's extension, or
            ``<folder>/date=.../<input name>`` with ``partition_by`` (whose columns must be
            ``key=value`` folder names of the input). Without any write, each partition's
            output frame is returned in ``report.outputs``.
        executor: ``"sequential"``, ``"threads"``, or ``tdm.executors.Dask(client)``, where a
            whole partition runs on one worker and only its metadata comes back.
        max_parallel: at most this many partitions running at once (default: as many as the
            executor runs; with ``"threads"`` also the pool size).
        partitions: run only these partitions (names from a report, or file URIs), e.g.
            ``partitions=[n.name for n in report.failed]`` to re-run the failed ones.
        inputs / params / runtime / fail_fast / pipeline_id / job_id / run_id /
            pipeline_name: as for :func:`tdm.run` (``inputs`` feed the
            ``tdm.inputs.frame`` nodes of every partition).

    Returns:
        A :class:`RunReport` with one node per partition (named by its path under the
        dataset root): status, timings, ``rows_out`` (rows written) and the error naming the
        partition's failing step. Each partition's ``key=value`` folder names are columns.

    >>> import pandas as pd, tdm
    >>> from tdm import files
    >>> for day in (1, 2):
    ...     _ = tdm.run(tdm.inputs.frame("x") >> files.write(f"memory://rp/raw/day={day}/a.csv"),
    ...                 inputs={"x": pd.DataFrame({"n": [day, day * 10]})})
    >>> report = tdm.run_partitions(files.read("memory://rp/raw/*/*.csv"),
    ...                             write=files.write("memory://rp/out/", format="parquet"))
    >>> report.status, list(report.nodes), [n.rows_out for n in report.nodes.values()]
    (<Status.SUCCESS: 'SUCCESS'>, ['day=1/a.csv', 'day=2/a.csv'], [2, 2])
    >>> tdm.run(files.read("memory://rp/out/day=2/a.parquet")).output.to_dict("list")
    {'n': [2, 20], 'day': [2, 2]}
    """
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    if not isinstance(pipeline, Pipeline):
        pipeline = Pipeline.of(pipeline)
    runtime = runtime if runtime is not None else Runtime.default()
    every = partition_pipelines(pipeline, write=write, runtime=runtime)
    specs = _select(every, partitions)
    if not specs:
        if every and partitions is not None:
            raise InputError(
                "partitions= selects no partition (it is empty); pass the names of the "
                "partitions to re-run, e.g. partitions=[n.name for n in report.failed], "
                "or leave it out to run them all"
            )
        raise InputError("the dataset has no files to process")
    supplied = dict(inputs or {})
    outer = Pipeline.of(*(Partition(s.key, s.uri, s.pipeline, supplied) for s in specs))
    _, write_type = _file_effects()
    writes = any(isinstance(n.op, write_type) for n in specs[0].pipeline.plan.nodes)
    scheduler = _scheduler_for(
        outer,
        inputs=None,
        params=params,
        runtime=runtime,
        executor=executor,
        fail_fast=fail_fast,
        max_workers=max_parallel,
        pipeline_id=pipeline_id or pipeline.fingerprint(),
        job_id=job_id,
        run_id=run_id,
        pipeline_name=pipeline_name,
    )
    scheduler.max_in_flight = max_parallel
    scheduler.collect_outputs = not writes  # written data stays where it was processed
    return scheduler.run()
