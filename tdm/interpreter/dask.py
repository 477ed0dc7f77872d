"""The Dask executor: ready nodes become tasks on a Dask ``distributed`` cluster.

What travels, and where (the client is the process that calls ``tdm.run``):

* client -> scheduler -> worker, per node: the :class:`~tdm.interpreter.executors.NodeTask`
  (the step or effect *description*, the run's parameters), a secret-free copy of the
  :class:`~tdm.interpreter.runtime.Runtime` (no hooks, audit store or alerters; the secrets
  provider reduced to a description such as "environment variables" or a file path) and the
  keys of the parent nodes' results. Never a secret value, never a frame.
* worker -> worker: parent frames, when a node runs on another worker than its parent.
* worker -> client: per node, its metadata (status, timings, rows, columns, a scrubbed error)
  from a tiny follow-up task; frames only for the pipeline's outputs.
* client -> worker, once per run: frames supplied with ``tdm.run(inputs=...)`` (scattered on
  first use).

Effects are performed on the workers: secrets are resolved there through the workers' own
provider (``TDM_SECRET__<NAME>__<KEY>`` environment variables or a secrets file), so workers
need that configuration, and the modules that define the pipeline's steps and effects.
Hooks (logging, audit trail, alerts) run on the client, exactly as with local executors.

``distributed`` is imported only when a :class:`Dask` executor is made
(``pip install 'tdm-pipelines[dask]'``).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from tdm._types import Frame
from tdm.core.effect import Effect
from tdm.core.pipe import PipeError
from tdm.effects.dispatch import handle as _dispatch
from tdm.effects.secret_routing import AwsSecrets, RoutedSecrets
from tdm.effects.secrets import (
    ChainSecrets,
    DirectorySecrets,
    EnvSecrets,
    FileSecrets,
    Secret,
    SecretsProvider,
    scrub,
)
from tdm.errors import ConfigError, SecretNotFoundError
from tdm.interpreter.executors import Executor, NodeOutcome, NodeTask, execute
from tdm.interpreter.report import Status
from tdm.interpreter.runtime import Runtime

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["INSTALL_HINT", "Dask", "RemoteError", "for_workers"]

INSTALL_HINT = "pip install 'tdm-pipelines[dask]'"


def distributed_module() -> ModuleType:
    """``distributed``, or a :class:`~tdm.errors.ConfigError` that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            f"the dask executor needs dask.distributed, which is not installed "
            f"({exc.name or 'distributed'} is missing); install it with: {INSTALL_HINT}"
        ) from None
    return distributed


class RemoteError(Exception):
    """An exception raised on a Dask worker, brought back as scrubbed text.

    Exceptions are not sent back as they were raised: their arguments may hold a secret the
    worker resolved (the client never saw it, so it could not scrub it).

    Attributes:
        type_name: the qualified name of the original exception's type.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name

    def __reduce__(self) -> tuple[Any, ...]:
        text = str(self)
        prefix = f"{self.type_name}: "
        return (RemoteError, (self.type_name, text.removeprefix(prefix)))


# --------------------------------------------------------------------------------------------
# what runs on a worker
# --------------------------------------------------------------------------------------------
def _run_remote(task: NodeTask, runtime: Runtime, handler: Any, *parents: Any) -> NodeOutcome:
    """Run one node on a worker; the outcome (with its frame) stays in the worker's memory."""
    op = task.op
    if (
        handler is not None
        and isinstance(op, Effect)
        and _dispatch.dispatch(type(op)) is not handler
    ):
        # A handler defined in the client's __main__ script arrives by value: register it here.
        _dispatch.register(type(op), handler)
    # Always a shallow copy (cheap under Copy-on-Write): a stored result may be read again by a
    # recomputed consumer after a worker is lost, so no step may mutate the object itself.
    frames = tuple(_frame_of(p).copy(deep=False) for p in parents)
    outcome = execute(task, frames, runtime, {})
    if outcome.error is not None and outcome.error.cause is not None:
        cause = outcome.error.cause
        safe = RemoteError(type(cause).__qualname__, scrub(str(cause)))
        outcome.error = dataclasses.replace(outcome.error, cause=safe)
    return outcome


def _frame_of(value: Any) -> Frame:
    if isinstance(value, NodeOutcome):
        assert value.frame is not None, "a node was given a parent that produced no frame"
        return value.frame
    frame: Frame = value  # a scattered input frame
    return frame


def _metadata(outcome: NodeOutcome) -> NodeOutcome:
    """The part of an outcome that comes back to the client: everything but the frame."""
    return outcome.without_frame()


# --------------------------------------------------------------------------------------------
# the runtime, as sent to workers
# --------------------------------------------------------------------------------------------
class SecretsNotOnWorkers:
    """The provider workers get when the client's provider holds secret values in memory."""

    def __init__(self, where: str) -> None:
        self.where = where

    def section(self, name: str) -> NoReturn:
        env = "".join(c if c.isalnum() else "_" for c in name).upper()
        raise SecretNotFoundError(
            f"secret {name!r} was asked for on a Dask worker, but the run's secrets provider "
            f"({self.where}) holds values in the client's memory and tdm never sends secret "
            f"values to workers; give the workers their own secrets (environment variables "
            f"TDM_SECRET__{env}__<KEY> or a secrets file at TDM_HOME/secrets.yml on each "
            f"worker) and run with Runtime(secrets=None), EnvSecrets() or FileSecrets(path)"
        )

    def describe(self) -> str:
        return f"(not available on workers: {self.where})"

    def __repr__(self) -> str:
        return f"SecretsNotOnWorkers({self.where!r})"


class BuiltOnWorker:
    """A provider sent as its class and settings, and made again where it is first used.

    For providers that hold a connection, a lock or a cache (none of which can travel).
    """

    def __init__(self, kind: Callable[..., SecretsProvider], settings: Mapping[str, Any]) -> None:
        self.kind = kind
        self.settings = dict(settings)
        self._made: SecretsProvider | None = None

    def _provider(self) -> SecretsProvider:
        if self._made is None:
            self._made = self.kind(**self.settings)
        return self._made

    def section(self, name: str) -> Mapping[str, Secret]:
        return self._provider().section(name)

    def describe(self) -> str:
        return self._provider().describe()

    def __reduce__(self) -> tuple[Any, ...]:
        return (BuiltOnWorker, (self.kind, self.settings))

    def __repr__(self) -> str:
        return f"BuiltOnWorker({getattr(self.kind, '__name__', self.kind)}, {self.settings!r})"


def _secrets_for_workers(provider: SecretsProvider | None) -> SecretsProvider | None:
    """A description of ``provider`` that holds no secret value (resolved again on a worker)."""
    if provider is None:
        return None  # the workers' own default: their environment, then their secrets file
    custom = getattr(provider, "for_workers", None)
    if callable(custom):
        described: SecretsProvider | None = custom()
        return described
    if isinstance(provider, EnvSecrets):
        if getattr(provider, "_environ", None) is None:
            return EnvSecrets(prefix=provider.prefix)
        return SecretsNotOnWorkers("EnvSecrets over a mapping given to it")
    if isinstance(provider, FileSecrets):
        return FileSecrets(provider.path)  # a fresh one: nothing loaded, only the path
    if isinstance(provider, DirectorySecrets):
        return DirectorySecrets(provider.root)  # the same mount point on every worker
    if isinstance(provider, AwsSecrets):
        # Settings only (no client, no cache): workers use their own AWS credential chain.
        settings = {
            "region": provider.region,
            "endpoint_url": provider.endpoint_url,
            "prefix": provider.prefix,
            "profile": provider.profile,
            "attempts": provider.attempts,
        }
        return BuiltOnWorker(AwsSecrets, settings)
    if isinstance(provider, ChainSecrets):
        parts = [_secrets_for_workers(p) for p in provider.providers]
        return ChainSecrets(*(p for p in parts if p is not None))
    if isinstance(provider, RoutedSecrets):
        routes = {k: _secrets_for_workers(v) for k, v in provider.routes.items()}
        default = _secrets_for_workers(provider.default)
        return RoutedSecrets(
            {k: v for k, v in routes.items() if v is not None},
            default if default is not None else ChainSecrets(EnvSecrets(), FileSecrets()),
        )
    return SecretsNotOnWorkers(provider.describe())


def for_workers(runtime: Runtime) -> Runtime:
    """``runtime`` as it is sent to Dask workers: no client-side services, no secret values.

    Hooks, the audit store and alerters stay on the client (they observe the run there); the
    secrets provider becomes a description the workers resolve with their own configuration
    (a provider may define ``for_workers()`` returning such a description).

    >>> from tdm.effects.secrets import MappingSecrets
    >>> rt = for_workers(Runtime(files="memory://", secrets=MappingSecrets({"S3": {"k": "v"}})))
    >>> rt.files, rt.hooks, rt.secrets
    ('memory://', (), SecretsNotOnWorkers('memory'))
    """
    return runtime.evolve(
        hooks=(),
        state=None,
        alerters=(),
        progress=False,
        secrets=_secrets_for_workers(runtime.secrets),
    )


def _check_picklable(runtime: Runtime) -> None:
    import cloudpickle  # type: ignore[import-untyped]

    try:
        cloudpickle.dumps(runtime)
    except Exception:
        for f in dataclasses.fields(runtime):
            try:
                cloudpickle.dumps(getattr(runtime, f.name))
            except Exception as exc:
                raise ConfigError(
                    f"Runtime.{f.name} cannot be sent to Dask workers "
                    f"({type(exc).__name__}: {scrub(str(exc))}); use a value that can be "
                    "pickled (a description such as a URI or settings, not a live connection)"
                ) from None
        raise


# --------------------------------------------------------------------------------------------
# the executor
# --------------------------------------------------------------------------------------------
class _Handle:
    """A node on the cluster: its outcome future (frame stays remote) and its metadata future.

    A supplied input's handle holds the local frame instead, scattered on first use.
    """

    __slots__ = ("frame", "future", "meta", "name")

    def __init__(self, name: str, future: Any, meta: Any, frame: Frame | None) -> None:
        self.name = name
        self.future = future
        self.meta = meta
        self.frame = frame


class Dask(Executor):
    """Runs each ready node as a task on a Dask ``distributed`` cluster.

    Node frames stay on the workers and flow between tasks there; only per-node metadata and
    the pipeline's outputs come back. Effects run on the workers, which resolve secrets with
    their own provider. Hooks, the audit trail and alerts run on the client.

    Args:
        client: a connected ``distributed.Client`` (it stays open after the run).
        address: a scheduler address such as ``"tcp://scheduler:8786"`` to connect to for the
            run, or ``"local"`` to start a cluster on this machine (closed after the run, or
            when a ``with`` block around several runs ends).
        timeout: seconds to wait for the scheduler when connecting.

    With neither, the current default client is used, or else the address in Dask's
    configuration (``DASK_SCHEDULER_ADDRESS``). An instance runs one ``tdm.run`` at a time;
    ``with Dask(address=...) as executor:`` keeps one connection for several runs.

    >>> Dask(address="tcp://scheduler:8786")
    Dask(address='tcp://scheduler:8786')
    """

    name = "dask"

    def __init__(
        self, client: Client | None = None, *, address: str | None = None, timeout: float = 30.0
    ) -> None:
        self._distributed = distributed_module()
        if client is not None and address is not None:
            raise ValueError("give Dask(client) or Dask(address=...), not both")
        if client is not None and not isinstance(client, self._distributed.Client):
            raise TypeError(
                f"Dask(client) expects a distributed.Client, got {type(client).__name__}; "
                "pass a scheduler address with Dask(address='tcp://host:8786')"
            )
        self._given = client
        self.address = address
        self.timeout = timeout
        self._client: Any = None  # a distributed.Client while open
        self._owned = False
        self._cluster: Any = None
        self._depth = 0
        self._nonce = ""
        self._counter = itertools.count()
        self._waiting: Any = None  # distributed.as_completed over metadata futures
        self._pending: dict[str, _Handle] = {}
        self._remote: tuple[Runtime, Runtime] | None = None

    # connection ---------------------------------------------------------------------------
    @property
    def client(self) -> Client:
        """The client in use while the executor is open (in a run or a ``with`` block)."""
        if self._client is None:
            raise RuntimeError("the Dask executor is not open; use it through tdm.run or `with`")
        client: Client = self._client
        return client

    def open(self) -> None:
        if self._depth == 0:
            self._client = self._connect()
        self._depth += 1
        self._begin()

    def close(self) -> None:
        self._end()
        self._depth -= 1
        if self._depth == 0:
            client, self._client = self._client, None
            if client is not None and self._owned:
                client.close()
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None

    def __enter__(self) -> Dask:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> Any:
        dist = self._distributed
        self._owned = False
        if self._given is not None:
            if self._given.status not in ("running", "connecting", "newly-created"):
                raise ConfigError(
                    f"the Dask client given to tdm.executors.Dask is {self._given.status}; "
                    "pass a connected distributed.Client"
                )
            return self._given
        if self.address == "local":
            import dask

            # Dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold,
            # which costs pandas-heavy nodes ~25% CPU (benchmarks/partitioned.py).
            environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
            environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                self._cluster = dist.LocalCluster(dashboard_address=None)
            self._owned = True
            return dist.Client(self._cluster, set_as_default=False)
        if self.address is None:
            try:
                return dist.default_client()
            except ValueError:
                pass  # no current client: look at Dask's configuration
            import dask

            configured = dask.config.get("scheduler-address", None)
            if not configured:
                raise ConfigError(
                    "the dask executor has no cluster to use: pass tdm.executors.Dask(client), "
                    "Dask(address='tcp://scheduler:8786') or Dask(address='local'), or set "
                    "DASK_SCHEDULER_ADDRESS (CLI: tdm run FILE --executor dask --scheduler ADDRESS)"
                )
            address = str(configured)
        else:
            address = self.address
        try:
            connected = dist.Client(address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}); "
                "check the address (tcp://HOST:8786), that the scheduler runs and that this "
                "machine can reach its port"
            ) from None
        self._owned = True
        return connected

    # one run ----------------------------------------------------------------------------------
    def _begin(self) -> None:
        self._nonce = uuid.uuid4().hex[:8]
        self._counter = itertools.count()
        self._waiting = self._distributed.as_completed(loop=self.client.loop)
        self._pending = {}
        self._remote = None

    def _end(self) -> None:
        if self._waiting is not None:
            self._waiting.clear()
        self._waiting = None
        for h in self._pending.values():
            for f in (h.future, h.meta):
                if f is not None:
                    f.release()
        self._pending = {}
        self._remote = None

    def _runtime_for_workers(self, runtime: Runtime) -> Runtime:
        cached = self._remote
        if cached is not None and cached[0] is runtime:
            return cached[1]
        remote = for_workers(runtime)
        _check_picklable(remote)
        self._remote = (runtime, remote)
        return remote

    def _future_of(self, parent: _Handle) -> Any:
        if parent.future is None:
            # A supplied input: sent to the cluster once, on its first use by a node.
            client: Any = self.client
            parent.future = client.scatter(parent.frame, hash=False)
        return parent.future

    def key(self, task: NodeTask) -> str:
        """The Dask key of ``task``'s result (unique per run; readable on the dashboard)."""
        safe = "".join(c if c.isalnum() or c in "._" else "_" for c in task.name)[:60]
        return f"tdm-{safe}-{self._nonce}-{task.position}-{next(self._counter)}"

    def arguments(
        self, task: NodeTask, parents: Sequence[Any], runtime: Runtime
    ) -> tuple[Any, ...]:
        """What is sent to the cluster for ``task``: the arguments of the remote call."""
        handler = None
        op = task.op
        if isinstance(op, Effect):
            found = _dispatch.dispatch(type(op))
            if found is not _dispatch.registry[object]:
                handler = found
        remote = self._runtime_for_workers(runtime)
        return (task, remote, handler, *(self._future_of(p) for p in parents))

    def submit(
        self,
        task: NodeTask,
        parents: Sequence[Any],
        runtime: Runtime,
        supplied: dict[str, Frame],
    ) -> Any:
        client: Any = self.client
        key = self.key(task)
        args = self.arguments(task, parents, runtime)
        future = client.submit(_run_remote, *args, key=key, pure=False)
        meta = client.submit(_metadata, future, key=key + "-meta", pure=False)
        handle = _Handle(task.name, future, meta, None)
        self._pending[meta.key] = handle
        self._waiting.add(meta)
        return handle

    def completed(self, handles: Collection[Any]) -> Iterable[Any]:
        wanted = set(map(id, handles))
        done: list[_Handle] = []
        while not done:
            for future in self._waiting.next_batch(block=True):
                h = self._pending.pop(future.key, None)
                if h is not None and id(h) in wanted:
                    done.append(h)
        return done

    def outcome(self, handle: Any) -> NodeOutcome:
        assert isinstance(handle, _Handle) and handle.meta is not None
        try:
            outcome: NodeOutcome = handle.meta.result()
        except Exception as exc:  # the task could not run: a lost worker, an import error, ...
            return _lost(handle.name, exc)
        return outcome

    def fetch(self, handle: Any) -> Frame:
        assert isinstance(handle, _Handle)
        if handle.frame is not None:
            return handle.frame
        assert handle.future is not None
        outcome: NodeOutcome = handle.future.result()
        assert outcome.frame is not None
        return outcome.frame

    def cancel(self, handle: Any) -> bool:
        assert isinstance(handle, _Handle)
        if handle.meta is None or handle.meta.done():
            return False
        handle.meta.cancel()
        if handle.future is not None:
            handle.future.cancel()
        return True

    def done_handle(self, outcome: NodeOutcome) -> Any:
        return _Handle("input", None, None, outcome.frame)

    def __repr__(self) -> str:
        if self._given is not None:
            return f"Dask({self._given!r})"
        return f"Dask(address={self.address!r})"


def _lost(name: str, exc: BaseException) -> NodeOutcome:
    text = f"{type(exc).__name__}: {exc}"
    hint = ""
    if isinstance(exc, ImportError | AttributeError):
        hint = (
            "; the Dask workers must be able to import tdm and the modules that define this "
            "pipeline's steps and effects (install the same versions there as on the client)"
        )
    now = time.time()
    error = PipeError(name, scrub(f"the Dask task failed on the cluster: {text}{hint}"), exc)
    return NodeOutcome(Status.FAILURE, None, error, now, now, 0.0, 0, None, None)


def from_cli(
    name: str,
    *,
    scheduler: str | None = None,
    max_workers: int | None = None,
) -> Executor:
    """The executor for ``tdm run --executor NAME [--scheduler ADDRESS] [--max-workers N]``.

    Raises :class:`~tdm.errors.ConfigError` (a bad argument, exit code 2) with the fix.

    >>> from_cli("threads", max_workers=4)
    Threads(max_workers=4)
    """
    from tdm.interpreter.executors import Sequential, Threads

    chosen = name.strip().lower()
    if chosen != "dask" and scheduler is not None:
        raise ConfigError(
            f"--scheduler applies only to --executor dask (got --executor {name}); "
            f"use: --executor dask --scheduler {scheduler}"
        )
    if chosen == "sequential":
        return Sequential()
    if chosen == "threads":
        if max_workers is not None and max_workers < 1:
            raise ConfigError(f"--max-workers must be at least 1, got {max_workers}")
        return Threads(max_workers=max_workers)
    if chosen == "dask":
        return Dask(address=scheduler)
    raise ConfigError(f"unknown executor {name!r}; choose one of: sequential, threads, dask")
