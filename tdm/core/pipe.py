"""Pure steps: :class:`Pipe` values (made by :func:`~tdm.core.factories.transform`).

A pipe is a pure function ``Frame -> Result[Frame, PipeError]`` packaged as a frozen value with a
name and its parameters, so that two pipes built with the same parameters are equal, hash alike and
collapse into one node of a pipeline.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeAlias, overload

import pandas as pd
from returns.result import Failure, Result, Success

from tdm._types import Frame
from tdm.core.context import RunContext
from tdm.core.hostile import diagnose

if TYPE_CHECKING:
    from tdm.core.pipeline import Pipeline

__all__ = [
    "VARIADIC",
    "Op",
    "Pipe",
    "PipeError",
    "Skip",
    "StepResult",
]

P = ParamSpec("P")

VARIADIC = -1
"""Arity of a step that takes any number (one or more) of input frames, like ``concat``."""

StepResult: TypeAlias = "Frame | Result[Frame, PipeError]"
"""What a step body may return: a frame, or a ``Result`` it built itself."""


@dataclass(frozen=True, slots=True)
class PipeError:
    """Why a step failed: a value carried inside ``Failure``.

    Attributes:
        step: the name of the step (node) that failed.
        message: what went wrong, for a human.
        cause: the exception raised in the step body, if any (not part of equality).

    >>> PipeError(step="add_total", message="KeyError: 'b'")
    PipeError(step='add_total', message="KeyError: 'b'")
    >>> str(PipeError(step="add_total", message="KeyError: 'b'"))
    "add_total: KeyError: 'b'"
    """

    step: str
    message: str
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"

    def renamed(self, step: str) -> PipeError:
        """The same error attributed to another step name (a node's name in a pipeline)."""
        return self if step == self.step else _replace_step(self, step)


def _replace_step(error: PipeError, step: str) -> PipeError:
    import dataclasses

    return dataclasses.replace(error, step=step)


@dataclass(frozen=True, slots=True)
class Skip(PipeError):
    """Not an error: a step stopped its branch on purpose (a guard); reported as ``SKIPPED``."""


class Op:
    """Base of everything that can be a node of a pipeline: pure pipes and effect descriptions.

    Subclasses define ``name`` (a str), ``arity`` (input frames: 0 for a source, ``VARIADIC``
    for any number) and ``explicit_name`` (whether a user chose the name, so it must be unique).
    """

    __slots__ = ()
    kind: ClassVar[str] = "op"

    if TYPE_CHECKING:
        name: str
        arity: int
        explicit_name: bool

    def describe(self) -> str:
        """A one-line description for graphs, plans and logs (never contains a secret)."""
        return self.name

    def __rshift__(self, other: Op | Pipeline) -> Pipeline:
        from tdm.core.pipeline import Pipeline

        return Pipeline.of(self) >> other


_SCALARS = (str, int, float, bool, type(None))
_by_key = operator.itemgetter(0)


def _freeze(value: Any) -> Any:
    """A hashable stand-in for ``value`` so that equal parameters give equal pipes."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) is dict or isinstance(value, Mapping):
        items = [(k, _freeze(v)) for k, v in value.items()]
        try:
            items.sort(key=_by_key)
        except TypeError:  # keys of several types: any fixed order will do
            items.sort(key=repr)
        return ("__map__", tuple(items))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple([_freeze(v) for v in value]))
    if isinstance(value, (set, frozenset)):
        return ("__set__", frozenset(_freeze(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("__id__", id(value))
    return value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(type(a) is type(b) and a == b)
    except Exception:  # e.g. array-likes whose == is elementwise
        return False


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Pipe(Op):
    """A pure step: a named function of one or more frames, with its parameters bound.

    Build pipes with :func:`transform` rather than by hand. Calling a pipe on frames runs it and
    returns a ``Result``; calling it on pipelines connects it (for steps with several inputs).

    Attributes:
        name: the step's name (the function's name unless renamed with :meth:`named`).
        fn: the step body.
        params: the bound parameters as ``(name, value)`` pairs, defaults included.
        arity: how many input frames the body takes (``VARIADIC`` for any number).
        needs_context: whether the body takes the run's :class:`RunContext` after its frames.
        explicit_name: whether the name was chosen by a user (and so must be unique).
    """

    kind: ClassVar[str] = "pipe"

    name: str
    fn: Callable[..., Any]
    params: tuple[tuple[str, Any], ...] = ()
    arity: int = 1
    needs_context: bool = False
    explicit_name: bool = False
    call_args: tuple[Any, ...] = field(default=(), compare=False)
    call_kwargs: Mapping[str, Any] = field(default_factory=dict, compare=False)
    factory: Callable[..., Pipe] | None = field(default=None, compare=False)
    _key: tuple[Any, ...] = field(init=False, compare=False)
    _hash: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        key = (
            self.name,
            self.fn,
            _freeze(self.params),
            self.arity,
            self.needs_context,
            self.explicit_name,
        )
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Pipe):
            return NotImplemented
        return self._hash == other._hash and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        defaults: Mapping[str, Any] = getattr(self.factory, "__tdm_defaults__", {})
        base: str = getattr(self.factory, "__tdm_name__", self.fn.__name__)
        var_kw = getattr(self.factory, "__tdm_var_keyword__", None)
        shown: list[str] = []
        for k, v in self.params:
            if k in defaults and _same(defaults[k], v):
                continue
            if k == var_kw and isinstance(v, Mapping):  # **named: shown as name=value pairs
                shown.extend(f"{name}={_short_repr(value)}" for name, value in v.items())
            else:
                shown.append(f"{k}={_short_repr(v)}")
        inner = ", ".join(shown)
        text = f"{base}({inner})"
        return text if self.name == base else f"{text}.named({self.name!r})"

    def describe(self) -> str:
        return repr(self)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The bound parameters as a dict (defaults included)."""
        return dict(self.params)

    def named(self, name: str) -> Pipe:
        """The same step under a name you choose; names chosen this way must be unique.

        >>> from tdm.core.factories import transform
        >>> @transform
        ... def double(df):
        ...     return df * 2
        >>> double().named("twice")
        double().named('twice')
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"a step name must be a non-empty string, got {name!r}")
        # dataclasses.replace would freeze the parameters again: reuse this pipe's frozen key
        new = object.__new__(type(self))
        for f in _fields(type(self)):
            object.__setattr__(new, f, getattr(self, f))
        object.__setattr__(new, "name", name)
        object.__setattr__(new, "explicit_name", True)
        key = (name, *self._key[1:-1], True)
        object.__setattr__(new, "_key", key)
        object.__setattr__(new, "_hash", hash(key))
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through the factory so a pickled pipe refers to an importable name
        # (the decorated function, not the raw body hidden behind it).
        if self.factory is not None:
            label = self.name if self.explicit_name else None
            return (_rebuild, (self.factory, self.call_args, dict(self.call_kwargs), label))
        return (
            Pipe,
            (
                self.name,
                self.fn,
                self.params,
                self.arity,
                self.needs_context,
                self.explicit_name,
                self.call_args,
                dict(self.call_kwargs),
            ),
        )

    @overload
    def __call__(
        self, *inputs: Frame, context: RunContext | None = None
    ) -> Result[Frame, PipeError]: ...

    @overload
    def __call__(self, *inputs: Pipeline | Op, context: RunContext | None = None) -> Pipeline: ...

    def __call__(
        self, *inputs: Frame | Pipeline | Op, context: RunContext | None = None
    ) -> Result[Frame, PipeError] | Pipeline:
        """Run the step on frames, or connect it to parent pipelines.

        ``step(df)`` runs the body and returns ``Success(frame)`` or ``Failure(PipeError)``.
        ``join_step(left_pipeline, right_pipeline)`` returns a new :class:`Pipeline`.
        """
        if inputs and all(isinstance(x, pd.DataFrame) for x in inputs):
            return self.apply(inputs, context)  # type: ignore[arg-type]
        from tdm.core.pipeline import Pipeline

        return Pipeline.apply(self, inputs)  # type: ignore[arg-type]

    def apply(
        self, frames: tuple[Frame, ...], context: RunContext | None = None
    ) -> Result[Frame, PipeError]:
        """Run the body on ``frames``; exceptions become ``Failure(PipeError)``."""
        out = self.evaluate(frames, context)
        return Success(out) if isinstance(out, pd.DataFrame) else out

    def evaluate(
        self, frames: tuple[Frame, ...], context: RunContext | None = None
    ) -> Frame | Result[Frame, PipeError]:
        """Like :meth:`apply`, but a frame comes back bare (the interpreter's fast path)."""
        if self.arity != len(frames) and not (self.arity == VARIADIC and frames):
            want = "one or more" if self.arity == VARIADIC else str(self.arity)
            return Failure(
                PipeError(self.name, f"takes {want} input frame(s) but got {len(frames)}")
            )
        try:
            if self.needs_context:
                if context is None:
                    # A direct call is a tiny run of its own: it supplies the start time.
                    context = RunContext(started_at=datetime.now(UTC))
                out = self.fn(*frames, context, *self.call_args, **self.call_kwargs)
            else:
                out = self.fn(*frames, *self.call_args, **self.call_kwargs)
        except Exception as exc:  # a step body's bug or bad data: an error value, not a crash
            return self.raised(exc, frames)
        if isinstance(out, pd.DataFrame):
            return out
        return self.settle(out, frames)

    def raised(self, exc: Exception, frames: tuple[Frame, ...] = ()) -> Result[Frame, PipeError]:
        """The error value for an exception raised by the body on ``frames``."""
        error = PipeError(self.name, f"{type(exc).__name__}: {exc}", exc)
        return Failure(_explained(error, frames, self.params, raised=True))

    def settle(self, out: Any, frames: tuple[Frame, ...] = ()) -> Frame | Result[Frame, PipeError]:
        """What the body returned, as :meth:`evaluate` reports it (a frame comes back bare)."""
        if isinstance(out, pd.DataFrame):
            return out
        if isinstance(out, Result):
            inner = out.value_or(None) if isinstance(out, Success) else None
            if isinstance(out, Success) and not isinstance(inner, pd.DataFrame):
                return _wrong_type(self.name, inner)
            if isinstance(out, Failure):
                err = out.failure()
                if isinstance(err, Skip):
                    return Failure(err.renamed(self.name)) if not err.step else out
                if isinstance(err, PipeError):
                    named = err.renamed(self.name) if not err.step else err
                    return Failure(_explained(named, frames, self.params, raised=False))
                if isinstance(err, BaseException):
                    error = PipeError(self.name, f"{type(err).__name__}: {err}", err)
                    return Failure(_explained(error, frames, self.params, raised=True))
                return Failure(PipeError(self.name, str(err)))
            return out
        return _wrong_type(self.name, out)


_FIELDS: dict[type[Pipe], tuple[str, ...]] = {}


def _fields(cls: type[Pipe]) -> tuple[str, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        import dataclasses

        found = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return found


def _explained(
    error: PipeError, frames: tuple[Frame, ...], params: Any, *, raised: bool
) -> PipeError:
    """``error`` led by what is hostile about ``frames`` (duplicate, non-string or all-null
    columns), which pandas' own message only hints at."""
    try:
        why = diagnose(frames, params, raised=raised)
    except Exception:  # a diagnosis must never hide the step's own error
        return error
    if not why or why in error.message:
        return error
    import dataclasses

    return dataclasses.replace(error, message=f"{why}: {error.message}")


def _wrong_type(name: str, value: object) -> Result[Frame, PipeError]:
    return Failure(
        PipeError(
            name,
            f"returned {type(value).__name__}, expected a pandas DataFrame "
            "(or a Result holding one); make the step body return the frame",
        )
    )


def _rebuild(
    factory: Callable[..., Pipe], args: tuple[Any, ...], kwargs: dict[str, Any], label: str | None
) -> Pipe:
    built = factory(*args, **kwargs)
    return built if label is None else built.named(label)
