"""Executors: how ready nodes are run. They share one small base and differ only in ``submit``.

* :class:`Sequential` runs each node as it is submitted, in the calling thread.
* :class:`Threads` runs independent nodes concurrently on a thread pool.

A distributed executor (:class:`tdm.interpreter.dask.Dask`) implements the same methods; node
tasks and effect descriptions are picklable so they can travel to a worker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

import pandas as pd
from returns.result import Failure, Result, Success

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.effect import Effect
from tdm.core.pipe import Op, Pipe, PipeError, Skip
from tdm.effects.dispatch import EffectEnv, handle
from tdm.effects.logging import RUN_CONTEXT
from tdm.effects.secrets import scrub, scrub_exception
from tdm.errors import TdmError
from tdm.interpreter.report import Status
from tdm.interpreter.runtime import Runtime

__all__ = ["Executor", "NodeOutcome", "NodeTask", "Sequential", "Threads", "execute", "resolve"]


class NodeTask(NamedTuple):
    """A node ready to run: everything an executor needs, picklable.

    Attributes:
        position: the node's position in the plan.
        name: the node's unique name.
        op: the pure step or effect description.
        context: the run's parameters.
        share: per parent, whether this consumer must get a shallow copy of the parent's frame
            (because another consumer, the report or the caller still holds it).
    """

    position: int
    name: str
    op: Op
    context: RunContext
    share: tuple[bool, ...]


@dataclass(slots=True)
class NodeOutcome:
    """What running one node produced (the frame may stay remote for distributed executors)."""

    status: Status
    frame: Frame | None
    error: PipeError | None
    start: float
    stop: float
    duration_s: float
    rows_in: int
    rows_out: int | None
    columns: Any
    """The output frame's column index (immutable, so kept as is; converted when read)."""
    dtypes: Any = None
    """The output frame's dtypes, one per column (an array; converted when read)."""

    def without_frame(self) -> NodeOutcome:
        """A copy without the frame (cheap metadata to send back from a worker)."""
        return NodeOutcome(
            self.status, None, self.error, self.start, self.stop, self.duration_s,
            self.rows_in, self.rows_out, self.columns, self.dtypes,
        )  # fmt: skip


def dtypes_of(frame: Frame) -> Any:
    """The dtypes of ``frame``'s columns, cheaply (``frame.dtypes`` builds a Series, 40x slower)."""
    try:
        return frame._mgr.get_dtypes()
    except AttributeError:  # another pandas layout: the public (slower) way
        return frame.dtypes.to_numpy()


def _error_of(exc: BaseException, name: str) -> PipeError:
    text = str(exc) if isinstance(exc, TdmError) else f"{type(exc).__name__}: {exc}"
    return PipeError(name, text, exc)


def _scrubbed(error: PipeError) -> PipeError:
    """``error`` without known secret values: in its message, and in its cause (replaced by a
    scrubbed stand-in if its text, arguments or chain hold one). Every failure of a node passes
    here: raised by a handler, returned by one, or returned by a pure step."""
    message = scrub(error.message)
    cause = scrub_exception(error.cause) if error.cause is not None else None
    if message == error.message and cause is error.cause:
        return error
    return dataclasses.replace(error, message=message, cause=cause)


# Wall-clock time = perf_counter() + offset: one clock read per node instead of two.
_WALL_OFFSET = time.time() - time.perf_counter()


def execute(
    task: NodeTask, frames: tuple[Frame, ...], runtime: Runtime, supplied: dict[str, Frame]
) -> NodeOutcome:
    """Run one node on its (already share-safe) parent frames; never raises ``Exception``."""
    rows_in = 0
    for f in frames:
        rows_in += len(f.index)
    op = task.op
    token = RUN_CONTEXT.set((task.context, task.name))  # log records carry the run's ids
    began = time.perf_counter()
    start = began + _WALL_OFFSET
    result: Frame | Result[Frame, PipeError]
    try:
        if isinstance(op, Pipe):
            result = op.evaluate(frames, task.context)
        elif isinstance(op, Effect):
            env = EffectEnv(
                node=task.name, context=task.context, runtime=runtime, supplied=supplied
            )
            result = _as_result(handle(op, frames, env), task.name)
        else:
            raise TypeError(f"cannot execute {op!r}")
    except Exception as exc:  # a handler's boundary: its failure becomes a value
        result = Failure(_error_of(exc, task.name))
    finally:
        RUN_CONTEXT.reset(token)
    duration = time.perf_counter() - began
    if isinstance(result, pd.DataFrame):
        frame = result
    elif isinstance(result, Success):
        frame = result.unwrap()
    else:
        error = failure_of(result, task.name)
        status = Status.SKIPPED if isinstance(error, Skip) else Status.FAILURE
        return NodeOutcome(
            status, None, error, start, start + duration, duration, rows_in, None, None
        )
    return NodeOutcome(
        Status.SUCCESS, frame, None, start, start + duration, duration,
        rows_in, len(frame.index), frame.columns, dtypes_of(frame),
    )  # fmt: skip


def failure_of(result: Any, name: str) -> PipeError:
    """The error of a failed node's ``Failure`` result, renamed to the node and scrubbed."""
    return _scrubbed(result.failure().renamed(name))


def _as_result(value: Any, name: str) -> Result[Frame, PipeError]:
    if isinstance(value, pd.DataFrame):
        return Success(value)
    if isinstance(value, Result):
        if isinstance(value, Failure) and not isinstance(value.failure(), PipeError):
            err = value.failure()
            return Failure(
                _error_of(err, name)
                if isinstance(err, BaseException)
                else PipeError(name, str(err))
            )
        return value
    return Failure(PipeError(name, f"handler returned {type(value).__name__}, not a DataFrame"))


class Executor:
    """Base of executors. Handles are opaque values the executor understands.

    Subclasses implement :meth:`submit`; local executors share everything else.
    """

    name = "executor"
    inline = False
    """True when :meth:`submit` has already run the node (the scheduler then looks at it first)."""

    def open(self) -> None:
        """Acquire resources (a pool, a client connection) before the first submit."""

    def close(self) -> None:
        """Release what :meth:`open` acquired."""

    def submit(
        self,
        task: NodeTask,
        parents: Sequence[Any],
        runtime: Runtime,
        supplied: dict[str, Frame],
    ) -> Any:
        """Start running ``task`` whose parents' handles are ``parents``; return a handle."""
        raise NotImplementedError

    def completed(self, handles: Collection[Any]) -> Iterable[Any]:
        """Block until at least one handle is done; return the done ones."""
        done, _ = futures.wait(handles, return_when=futures.FIRST_COMPLETED)
        return done

    def outcome(self, handle: Any) -> NodeOutcome:
        """The outcome of a done handle (its frame may be None if it lives elsewhere)."""
        outcome: NodeOutcome = handle.result()
        return outcome

    def fetch(self, handle: Any) -> Frame:
        """The frame of a successful node, brought to the caller."""
        frame = self.outcome(handle).frame
        assert frame is not None
        return frame

    def cancel(self, handle: Any) -> bool:
        """Try to stop a node that has not started; True if it will not run."""
        return bool(handle.cancel())

    def frames(self, task: NodeTask, parents: Sequence[Any]) -> tuple[Frame, ...]:
        """The parent frames for ``task``, copied (shallowly) where they are shared."""
        out = []
        for parent, share in zip(parents, task.share, strict=True):
            frame = self.fetch(parent)
            out.append(frame.copy(deep=False) if share else frame)
        return tuple(out)

    def done_handle(self, outcome: NodeOutcome) -> Any:
        """A handle for a node whose outcome is already known (a supplied input)."""
        return _Done(outcome)

    def __enter__(self) -> Executor:
        """Keep long-lived resources across several runs (a no-op for local executors)."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release what ``__enter__`` kept."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Done:
    """An already-completed handle (what the sequential executor returns)."""

    __slots__ = ("value",)

    def __init__(self, value: NodeOutcome) -> None:
        self.value = value

    def result(self) -> NodeOutcome:
        return self.value

    def done(self) -> bool:
        return True

    def cancel(self) -> bool:
        return False


class Sequential(Executor):
    """Runs one node at a time in the calling thread, in topological order."""

    name = "sequential"
    inline = True

    def submit(
        self,
        task: NodeTask,
        parents: Sequence[Any],
        runtime: Runtime,
        supplied: dict[str, Frame],
    ) -> Any:
        if len(parents) == 1:  # the common case, without a generator
            frame = parents[0].value.frame
            frames: tuple[Frame, ...] = (frame.copy(deep=False) if task.share[0] else frame,)
        else:
            frames = tuple(
                h.value.frame.copy(deep=False) if share else h.value.frame
                for h, share in zip(parents, task.share, strict=True)
            )
        return _Done(execute(task, frames, runtime, supplied))

    def completed(self, handles: Collection[Any]) -> Iterable[Any]:
        return list(handles)


class Threads(Executor):
    """Runs independent nodes concurrently on a thread pool of ``max_workers`` threads.

    Good for I/O-bound effects and for steps that release the GIL (most pandas/Arrow kernels).

    >>> Threads(max_workers=4)
    Threads(max_workers=4)
    """

    name = "threads"

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._pool: futures.ThreadPoolExecutor | None = None

    def open(self) -> None:
        self._pool = futures.ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="tdm-node"
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(
        self,
        task: NodeTask,
        parents: Sequence[Any],
        runtime: Runtime,
        supplied: dict[str, Frame],
    ) -> Any:
        if self._pool is None:
            raise RuntimeError("Threads executor used outside open()/close()")
        # Copies are taken here, before any sibling can start and mutate a shared frame.
        return self._pool.submit(execute, task, self.frames(task, parents), runtime, supplied)

    def done_handle(self, outcome: NodeOutcome) -> Any:
        future: futures.Future[NodeOutcome] = futures.Future()
        future.set_result(outcome)
        return future

    def __repr__(self) -> str:
        return f"Threads(max_workers={self.max_workers})"


def resolve(executor: str | Executor, *, max_workers: int | None = None) -> Executor:
    """An executor from its name (``"sequential"``, ``"threads"``) or an instance."""
    if isinstance(executor, Executor):
        return executor
    if executor == "sequential":
        return Sequential()
    if executor == "threads":
        return Threads(max_workers=max_workers)
    if executor == "dask":
        # The current default client, or DASK_SCHEDULER_ADDRESS; a clear error otherwise.
        from tdm.interpreter.dask import Dask

        return Dask()
    raise ValueError(
        f"unknown executor {executor!r}; use 'sequential', 'threads', 'dask' "
        "or an Executor instance"
    )
