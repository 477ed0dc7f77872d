"""Your own sources and sinks: ``@tdm.source`` and ``@tdm.sink`` turn a function into a factory of
effect descriptions.

The function is the handler body; the factory builds a frozen, comparable, picklable description
holding the function (by reference), its parameters and the *name* of a secret. Nothing runs
when the pipeline is built (``tdm validate`` calls no user code); the interpreter calls the
function at run time, passing the resolved secret section as ``secrets`` and the run's
:class:`~tdm.RunContext` as ``ctx`` when the function asks for them.

>>> import pandas as pd, tdm
>>> @tdm.source
... def numbers(*, n: int) -> pd.DataFrame:
...     return pd.DataFrame({"n": range(n)})
>>> @tdm.sink
... def show(df: pd.DataFrame, *, prefix: str) -> None:
...     print(prefix, df["n"].tolist())
>>> p = numbers(n=3) >> show(prefix="got")
>>> numbers(n=3) == numbers(n=3)
True
>>> report = tdm.run(p)
got [0, 1, 2]
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from tdm.core._argcheck import argument_problems, resolved_hints
from tdm.core.effect import Effect
from tdm.core.pipe import _freeze, _short_repr
from tdm.errors import StepArgumentError

__all__ = ["CustomSink", "CustomSource", "Secrets", "sink", "source"]

_SECRETS, _CONTEXT = "secrets", ("ctx", "context")


class _Revealable(Protocol):
    def reveal(self) -> str: ...


class Secrets(Mapping[str, str]):
    """The secret section a custom source or sink was given (``secret="Jira"``), by key.

    Values are plain strings for the call that needs them; the object never shows them
    (``repr`` lists the keys only), and tdm scrubs them from logs, errors and reports.
    A missing key is an error naming the section and the keys it has.

    >>> class _V:
    ...     def __init__(self, v): self.v = v
    ...     def reveal(self): return self.v
    >>> s = Secrets("Jira", {"token": _V("abc123")})
    >>> s["token"], s
    ('abc123', Secrets('Jira', keys=['token']))
    """

    __slots__ = ("_name", "_section")

    def __init__(self, name: str | None, section: Mapping[str, _Revealable]) -> None:
        self._name = name
        self._section = section

    def __getitem__(self, key: str) -> str:
        try:
            return self._section[key].reveal()
        except KeyError:
            from tdm.errors import SecretNotFoundError

            if self._name is None:
                raise SecretNotFoundError(
                    f"secret key {key!r} was asked for, but the step was given no secret; "
                    "pass secret='SECTION' naming a section of ~/.tdm/secrets.yml"
                ) from None
            keys = ", ".join(sorted(self._section)) or "none"
            raise SecretNotFoundError(
                f"secret section {self._name!r} has no key {key!r} (its keys: {keys}); add it "
                f"to ~/.tdm/secrets.yml or TDM_SECRET__{self._name.upper()}__{key.upper()}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._section)

    def __len__(self) -> int:
        return len(self._section)

    def __repr__(self) -> str:
        return f"Secrets({self._name!r}, keys={sorted(self._section)!r})"

    def __reduce__(self) -> Any:
        raise TypeError("Secrets cannot be pickled: pass the secret's name, resolve it at run time")


@dataclass(frozen=True, slots=True)
class _Custom(Effect):
    """What ``@source`` and ``@sink`` build: the function, its arguments, a secret's name."""

    fn: Callable[..., Any]
    params: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    secret: str | None = None
    wants_secrets: bool = field(default=False, compare=False)
    context_param: str | None = field(default=None, compare=False)
    _frozen: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_frozen", _freeze(self.params))

    def default_name(self) -> str:
        return str(getattr(self.fn, "__tdm_name__", self.fn.__name__))

    def describe(self) -> str:
        shown = [f"{k}={_short_repr(v)}" for k, v in self.params]
        if self.secret is not None:
            shown.append(f"secret={self.secret!r}")
        return f"{self.default_name()}({', '.join(shown)})"

    def __repr__(self) -> str:
        label = f".named({self.label!r})" if self.label is not None else ""
        return self.describe() + label

    def __reduce__(self) -> tuple[Any, ...]:
        # By the factory's importable name: the module attribute is the factory, not ``fn``.
        factory = getattr(self.fn, "__tdm_factory__", None)
        if factory is None:
            raise TypeError(f"{self.describe()} cannot be pickled: its function has no factory")
        return (_rebuild, (factory, dict(self.params), self.secret, self.label))

    def call(self, frames: tuple[Any, ...], secrets: Secrets | None, context: Any) -> Any:
        """Run the user's function (the interpreter's handler calls this)."""
        kwargs = dict(self.params)
        if self.wants_secrets:
            kwargs[_SECRETS] = secrets
        if self.context_param is not None:
            kwargs[self.context_param] = context
        return self.fn(*frames, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class CustomSource(_Custom):
    """A source made by ``@tdm.source``: calls the function for a frame (no input)."""

    arity: ClassVar[int] = 0  # type: ignore[misc]


@dataclass(frozen=True, slots=True, repr=False)
class CustomSink(_Custom):
    """A sink made by ``@tdm.sink``: hands its frame to the function, passes the frame on."""

    arity: ClassVar[int] = 1  # type: ignore[misc]


def _rebuild(
    factory: Callable[..., Any], params: dict[str, Any], secret: str | None, label: str | None
) -> _Custom:
    built = factory(secret=secret, label=label, **params)
    node = built.plan.nodes[0].op if not isinstance(built, _Custom) else built
    assert isinstance(node, _Custom)
    return node


def _factory(fn: Callable[..., Any], effect: type[_Custom], frames: int) -> Callable[..., Any]:
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    positional = [
        p
        for p in params[:frames]
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    what = "@tdm.sink" if frames else "@tdm.source"
    if len(positional) != frames:
        raise StepArgumentError(
            f"{what}: {fn.__qualname__} must take the frame as its first parameter, e.g. "
            "def to_warehouse(df, *, table, secrets): ..."
            if frames
            else f"{what}: {fn.__qualname__} must take keyword parameters only"
        )
    rest = [p for p in params[frames:] if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    if frames == 0 and any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in rest):
        raise StepArgumentError(f"{what}: {fn.__qualname__} must take keyword parameters only")
    wants_secrets = any(p.name == _SECRETS for p in rest)
    context_param = next((p.name for p in rest if p.name in _CONTEXT), None)
    user = [p for p in rest if p.name != _SECRETS and p.name != context_param]
    user_sig = sig.replace(
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in user],
        return_annotation=inspect.Signature.empty,
    )
    name = fn.__name__
    hints: dict[str, Any] | None = None

    @functools.wraps(fn)
    def factory(*, secret: str | None = None, label: str | None = None, **kwargs: Any) -> Any:
        nonlocal hints
        from tdm.core._argcheck import bind_problem

        try:
            bound = user_sig.bind(**kwargs)
        except TypeError as exc:
            raise StepArgumentError(bind_problem(name, user_sig, kwargs, exc)) from None
        if hints is None:
            hints = resolved_hints(fn)
        problems = argument_problems(name, user_sig, hints, bound.arguments)
        if problems:
            raise StepArgumentError("; ".join(problems) + f"; signature is {name}{user_sig}")
        if secret is not None and not isinstance(secret, str):
            raise StepArgumentError(f"{name}(): secret= is the *name* of a secret section")
        if wants_secrets and secret is None and _required(sig, _SECRETS):
            raise StepArgumentError(
                f"{name}() uses secrets: pass secret='SECTION' naming a section of "
                "~/.tdm/secrets.yml (or TDM_SECRET__SECTION__KEY variables)"
            )
        bound.apply_defaults()
        node = effect(
            fn,
            tuple(bound.arguments.items()),
            secret,
            wants_secrets,
            context_param,
            label=label,
        )
        if frames:
            return node
        from tdm.core.pipeline import Pipeline

        return Pipeline.of(node)

    factory.__signature__ = user_sig.replace(  # type: ignore[attr-defined]
        parameters=[
            *user_sig.parameters.values(),
            inspect.Parameter("secret", inspect.Parameter.KEYWORD_ONLY, default=None),
            inspect.Parameter("label", inspect.Parameter.KEYWORD_ONLY, default=None),
        ],
        return_annotation=inspect.Signature.empty,
    )
    # A tdm factory (YAML may name it) that builds an effect, not a pure step.
    factory.__tdm_effect_factory__ = True  # type: ignore[attr-defined]
    factory.__tdm_kind__ = "sink" if frames else "source"  # type: ignore[attr-defined]
    factory.__tdm_name__ = name  # type: ignore[attr-defined]
    # The description refers to the raw function; pickling it by name must find it again.
    fn.__tdm_factory__ = factory  # type: ignore[attr-defined]
    return factory


def _required(sig: inspect.Signature, name: str) -> bool:
    return sig.parameters[name].default is inspect.Parameter.empty


def source(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ``def f(*, option, secrets=None, ctx=None) -> DataFrame`` into a source factory.

    ``f(option=..., secret="Name", label=None)`` returns a one-node :class:`~tdm.Pipeline`
    whose node is a :class:`CustomSource`. At run time the function is called with the options,
    ``secrets`` (a :class:`Secrets` view of the named section) and ``ctx`` (the run's
    :class:`~tdm.RunContext`) when it declares those parameters; it returns a DataFrame (or a
    list of records). It may raise: the node fails with the message, secrets scrubbed.

    >>> import pandas as pd, tdm
    >>> @tdm.source
    ... def tickets(*, project: str, ctx: tdm.RunContext) -> pd.DataFrame:
    ...     return pd.DataFrame({"project": [project], "run": [ctx.run_id]})
    >>> tdm.run(tickets(project="OPS"), run_id="r1").output.to_dict("records")
    [{'project': 'OPS', 'run': 'r1'}]
    >>> tickets(projekt="OPS")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tdm.errors.StepArgumentError: tickets(): unexpected 'projekt' (did you mean 'project'?)...
    """
    return _factory(fn, CustomSource, 0)


def sink(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ``def f(df, *, option, secrets=None, ctx=None) -> None`` into a sink factory.

    ``f(option=..., secret="Name", label=None)`` returns a :class:`CustomSink` node to put
    after ``>>``; the frame goes on unchanged to any later step (as ``files.write`` does).

    >>> import pandas as pd, tdm
    >>> seen = []
    >>> @tdm.sink
    ... def collect(df: pd.DataFrame, *, tag: str) -> None:
    ...     seen.append((tag, len(df)))
    >>> p = tdm.inputs.frame("x") >> collect(tag="a")
    >>> report = tdm.run(p, inputs={"x": pd.DataFrame({"a": [1, 2]})})
    >>> seen, report.output["a"].tolist()
    ([('a', 2)], [1, 2])
    """
    return _factory(fn, CustomSink, 1)
