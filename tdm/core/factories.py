"""Step factories: :func:`transform` and :func:`transform_with_context` turn a function of
frames into a factory of :class:`~tdm.core.pipe.Pipe` values, checking arguments when a step is
built (:func:`check_arguments`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, overload

from tdm._types import Frame
from tdm.core._argcheck import argument_problems, bind_problem, resolved_hints
from tdm.core.context import RunContext
from tdm.core.marks import mark_factory
from tdm.errors import StepArgumentError

if TYPE_CHECKING:
    pass
from tdm.core.pipe import VARIADIC, Pipe, StepResult

__all__ = ["check_arguments", "transform", "transform_with_context"]

P = ParamSpec("P")


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
