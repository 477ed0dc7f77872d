"""Pure steps: :class:`Pipe` values and the :func:`transform` decorator that makes them.

A pipe is a pure function ``Frame -> Result[Frame, PipeError]`` packaged as a frozen value with a
name and its parameters, so that two pipes built with the same parameters are equal, hash alike and
collapse into one node of a pipeline.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, ParamSpec, TypeAlias, overload

import pandas as pd
from returns.result import Failure, Result, Success

from tdm._types import Frame
from tdm.core._argcheck import argument_problems, bind_problem, resolved_hints
from tdm.core.context import RunContext
from tdm.core.hostile import diagnose
from tdm.core.marks import mark_factory
from tdm.errors import StepArgumentError

if TYPE_CHECKING:
    from tdm.core.pipeline import Pipeline

__all__ = [
    "VARIADIC",
    "Op",
    "check_arguments",
    "Pipe",
    "PipeError",
    "Skip",
    "StepResult",
    "transform",
    "transform_with_context",
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

        >>> from tdm.core.pipe import transform
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


_Layout = tuple[tuple[str, inspect._ParameterKind, Any], ...]


def _with_defaults(
    layout: _Layout, given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    """What ``BoundArguments.apply_defaults()`` then ``.arguments``, ``.args`` and ``.kwargs``
    give for ``given`` (keyword arguments, every required one present), in one pass."""
    arguments: dict[str, Any] = {}
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    keywords = False  # past the parameters that are passed by position
    for name, kind, default in layout:
        if name in given:
            value = given[name]
        elif default is not inspect.Parameter.empty:
            value = default
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            value = ()
        elif kind is inspect.Parameter.VAR_KEYWORD:
            value = {}
        else:  # a required parameter: bind() would have failed
            raise TypeError(f"missing a required argument: {name!r}")
        arguments[name] = value
        if kind is inspect.Parameter.KEYWORD_ONLY or kind is inspect.Parameter.VAR_KEYWORD:
            keywords = True
        if not keywords and kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        elif not keywords:
            args.append(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        else:
            kwargs[name] = value
    return arguments, args, kwargs


def _frame_params(fn: Callable[..., Any], skip: int) -> tuple[int, inspect.Signature]:
    """Count the leading positional frame parameters; return the signature of the rest."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return VARIADIC, sig.replace(parameters=params[1:])
    count = 0
    while (
        count < len(params)
        and params[count].kind in positional
        and params[count].default is inspect.Parameter.empty
        and (count == 0 or _looks_like_frame(params[count]))
    ):
        count += 1
    if count == 0:
        raise TypeError(
            f"@transform: {fn.__qualname__} must take the input frame as its first positional "
            "parameter, e.g. def step(df, *, option): ..."
        )
    rest = params[count + skip :]
    return count, sig.replace(parameters=rest)


def _looks_like_frame(param: inspect.Parameter) -> bool:
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return False
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
    return "DataFrame" in text or text in ("Frame", "tdm.Frame")


@dataclass(frozen=True, slots=True)
class _Checked:
    hints: dict[str, Any]


def _make_factory(
    fn: Callable[..., Any], *, name: str | None, needs_context: bool
) -> Callable[..., Pipe]:
    arity, params_sig = _frame_params(fn, 1 if needs_context else 0)
    step_name = name or fn.__name__

    checked: _Checked | None = None  # the body's annotations, resolved on first use
    keywords = tuple(
        p.name
        for p in params_sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )
    keyword_set = frozenset(keywords)
    required = frozenset(
        p.name
        for p in params_sig.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )

    layout = tuple((p.name, p.kind, p.default) for p in params_sig.parameters.values())

    @functools.wraps(fn)
    def factory(*args: Any, **kwargs: Any) -> Pipe:
        nonlocal checked
        bound: inspect.BoundArguments | None = None
        if not args and keyword_set.issuperset(kwargs) and required.issubset(kwargs):
            # what bind() returns for named keywords only, without its general (slow) walk
            given = {name: kwargs[name] for name in keywords if name in kwargs}
        else:
            try:
                bound = params_sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise StepArgumentError(bind_problem(step_name, params_sig, kwargs, exc)) from None
            given = bound.arguments
        if checked is None:
            checked = _Checked(resolved_hints(fn))
        if checked.hints:
            problems = argument_problems(step_name, params_sig, checked.hints, given)
            if problems:
                signature = f"; signature is {step_name}{params_sig}"
                raise StepArgumentError("; ".join(problems) + signature)
        if bound is None:
            arguments, call_args, call_kwargs = _with_defaults(layout, given)
        else:
            bound.apply_defaults()
            arguments, call_args, call_kwargs = bound.arguments, list(bound.args), bound.kwargs
        check = factory.__dict__.get("__tdm_check__")
        if check is not None:
            problem = check(**arguments)
            if problem:
                raise StepArgumentError(f"{step_name}(): {problem}")
        return Pipe(
            name=step_name,
            fn=fn,
            params=tuple(arguments.items()),
            arity=arity,
            needs_context=needs_context,
            call_args=tuple(call_args),
            call_kwargs=dict(call_kwargs),
            factory=factory,
        )

    factory.__signature__ = params_sig  # type: ignore[attr-defined]
    factory.__tdm_name__ = step_name  # type: ignore[attr-defined]
    factory.__tdm_var_keyword__ = next(  # type: ignore[attr-defined]
        (p.name for p in params_sig.parameters.values() if p.kind is p.VAR_KEYWORD), None
    )
    empty_variadic: dict[inspect._ParameterKind, Any] = {
        inspect.Parameter.VAR_POSITIONAL: (),
        inspect.Parameter.VAR_KEYWORD: {},
    }
    factory.__tdm_defaults__ = {  # type: ignore[attr-defined]
        p.name: empty_variadic.get(p.kind, p.default)
        for p in params_sig.parameters.values()
        if p.default is not inspect.Parameter.empty or p.kind in empty_variadic
    }
    factory.__tdm_step__ = True  # type: ignore[attr-defined]
    return mark_factory(factory, "step")


def check_arguments(
    factory: Callable[..., Pipe],
) -> Callable[[Callable[..., str | None]], Callable[..., str | None]]:
    """Register a build-time check for a step factory's arguments.

    The check gets the bound arguments (defaults included) and returns a message when they are
    wrong; the factory then raises :class:`~tdm.errors.StepArgumentError` where the step is
    written (and ``tdm validate`` reports it), instead of failing in the middle of a run.

    >>> import pandas as pd
    >>> @transform
    ... def head(df: pd.DataFrame, *, n: int) -> pd.DataFrame:
    ...     return df.head(n)
    >>> @check_arguments(head)
    ... def _(n: int) -> str | None:
    ...     return None if n >= 0 else f"n={n} must be >= 0"
    >>> head(n=-1)
    Traceback (most recent call last):
    ...
    tdm.errors.StepArgumentError: head(): n=-1 must be >= 0
    """

    def register(check: Callable[..., str | None]) -> Callable[..., str | None]:
        factory.__tdm_check__ = check  # type: ignore[attr-defined]
        return check

    return register


@overload
def transform(
    fn: Callable[Concatenate[Frame, Frame, Frame, P], StepResult], /
) -> Callable[P, Pipe]: ...


@overload
def transform(fn: Callable[Concatenate[Frame, Frame, P], StepResult], /) -> Callable[P, Pipe]: ...


@overload
def transform(fn: Callable[Concatenate[Frame, P], StepResult], /) -> Callable[P, Pipe]: ...


@overload
def transform(
    *, name: str | None = ..., columns: Sequence[str] | None = ..., passthrough: bool = ...
) -> Callable[[Callable[Concatenate[Frame, P], StepResult]], Callable[P, Pipe]]: ...


def transform(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    columns: Sequence[str] | None = None,
    passthrough: bool = True,
) -> Any:
    """Lift a function of frames into a factory of :class:`Pipe` values.

    The leading positional parameters are the input frames (one, or several when annotated as
    DataFrames, or ``*frames``); the remaining parameters become the factory's parameters, so
    ``mypy`` checks them. The body may raise (that becomes ``Failure(PipeError)``) or return a
    ``Result`` itself.

    ``columns=[...]`` declares the only input columns the body reads (other columns may pass
    through it unchanged, or be dropped), so a run can skip reading columns nothing uses (see
    :mod:`tdm.core.pushdown`); without it, a step counts as reading every column. With
    ``passthrough=False`` as well, the result is built from those columns alone (no other
    input column reaches it, as in a group-by), so nothing after the step can need more.

    >>> import pandas as pd
    >>> @transform
    ... def add_total(df: pd.DataFrame, *, cols: list[str], out: str = "total") -> pd.DataFrame:
    ...     return df.assign(**{out: df[cols].sum(axis=1)})
    >>> step = add_total(cols=["a", "b"])
    >>> step
    add_total(cols=['a', 'b'])
    >>> step(pd.DataFrame({"a": [1], "b": [2]})).unwrap()["total"].tolist()
    [3]
    >>> step(pd.DataFrame({"a": [1]})).failure()
    PipeError(step='add_total', message='KeyError: "[\\'b\\'] not in index"')
    >>> add_total(cols=["a", "b"]) == step
    True
    """
    if fn is None:
        made = _make_factory
        return lambda f: _declared(made(f, name=name, needs_context=False), columns, passthrough)
    return _make_factory(fn, name=name, needs_context=False)


def _declared(
    factory: Callable[..., Pipe], columns: Sequence[str] | None, passthrough: bool = True
) -> Callable[..., Pipe]:
    if columns is not None:
        names = [columns] if isinstance(columns, str) else list(columns)
        factory.__tdm_reads__ = frozenset(map(str, names))  # type: ignore[attr-defined]
        factory.__tdm_passthrough__ = passthrough  # type: ignore[attr-defined]
    return factory


@overload
def transform_with_context(
    fn: Callable[Concatenate[Frame, RunContext, P], StepResult], /
) -> Callable[P, Pipe]: ...


@overload
def transform_with_context(
    *, name: str | None = ..., columns: Sequence[str] | None = ..., passthrough: bool = ...
) -> Callable[[Callable[Concatenate[Frame, RunContext, P], StepResult]], Callable[P, Pipe]]: ...


def transform_with_context(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    columns: Sequence[str] | None = None,
    passthrough: bool = True,
) -> Any:
    """Like :func:`transform`, for a body that also needs the run's :class:`RunContext`.

    The body takes ``(df, context, ...)``; the interpreter supplies the context (start time, run
    id, user params), so the step stays pure: it never reads the clock itself.

    >>> import pandas as pd
    >>> from datetime import datetime, timezone
    >>> @transform_with_context
    ... def stamp(df, context, *, column: str = "loaded_at"):
    ...     return df.assign(**{column: context.started_at})
    >>> ctx = RunContext(started_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    >>> stamp()(pd.DataFrame({"a": [1]}), context=ctx).unwrap()["loaded_at"][0].year
    2026
    """
    if fn is None:
        made = _make_factory
        return lambda f: _declared(made(f, name=name, needs_context=True), columns, passthrough)
    return _make_factory(fn, name=name, needs_context=True)
