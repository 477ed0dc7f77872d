"""Logic steps (the original ``LogicsPipe``/``IfStep``, finished): branch on a frame, or stop a
branch on purpose.

* :func:`when` runs one of two sub-steps depending on a frame predicate.
* :func:`guard` and :func:`skip_if_empty` stop their branch with a :class:`~tdm.Skip`: the
  interpreter reports the node and everything downstream as ``SKIPPED``, not as a failure,
  while independent branches still run.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from returns.result import Failure, Result

from tdm.core.context import RunContext
from tdm.core.factories import transform, transform_with_context
from tdm.core.pipe import Pipe, PipeError, Skip, StepResult
from tdm.core.pipeline import ARGUMENT, Pipeline
from tdm.errors import DefinitionError
from tdm.transforms._common import FramePredicate, describe_expr, frame_truth

__all__ = ["guard", "skip_if_empty", "when"]

Branch = Pipe | Pipeline | None


def _check_branch(role: str, branch: object) -> None:
    if branch is None:
        return
    if isinstance(branch, Pipe):
        if branch.arity != 1:
            raise DefinitionError(
                f"when({role}=...) must take one frame, but {branch!r} combines several; "
                "build the combination outside the branch"
            )
        return
    if isinstance(branch, Pipeline):
        if not branch.is_source_free or len(branch.outputs) != 1:
            raise DefinitionError(
                f"when({role}=...) must be a step or a source-free pipeline with one output "
                "(e.g. step_a >> step_b), so it can be called on the frame; this one starts "
                f"at {', '.join(branch.sources())}"
            )
        effects = [
            n.op.describe()
            for n in branch.plan.nodes
            if not isinstance(n.op, Pipe) and n.op is not ARGUMENT
        ]
        if effects:
            raise DefinitionError(
                f"when({role}=...) may only hold pure steps, but it contains the effect(s) "
                f"{', '.join(effects)}; put effects in the main pipeline"
            )
        return
    raise DefinitionError(
        f"when({role}=...) takes a step, a source-free pipeline or None, "
        f"got {type(branch).__name__}: {branch!r}"
    )


def _run_branch(
    role: str, branch: Branch, df: pd.DataFrame, context: RunContext
) -> Result[pd.DataFrame, PipeError] | pd.DataFrame:
    if branch is None:
        return df
    result = (
        branch.apply((df,), context) if isinstance(branch, Pipe) else branch(df, context=context)
    )
    if isinstance(result, Failure):
        err = result.failure()
        return Failure(
            dataclasses.replace(err, step="", message=f"{role} {err.step}: {err.message}")
        )
    return result


@transform_with_context(name="when")
def _when(
    df: pd.DataFrame,
    context: RunContext,
    predicate: FramePredicate,
    *,
    then: Branch = None,
    otherwise: Branch = None,
) -> StepResult:
    if frame_truth(df, predicate):
        return _run_branch("then", then, df, context)
    return _run_branch("otherwise", otherwise, df, context)


def when(predicate: FramePredicate, *, then: Branch = None, otherwise: Branch = None) -> Pipe:
    """Branch on the frame: run ``then`` when ``predicate`` holds, else ``otherwise``.

    Args:
        predicate: a function ``df -> bool`` or a pandas eval string giving one bool, e.g.
            ``"amount.sum() > 0"`` (a boolean *Series* is refused: reduce it with ``.any()``
            or ``.all()``).
        then / otherwise: a step, a source-free pipeline of pure steps (``a >> b``), or
            ``None`` for "pass the frame through".

    Raises:
        DefinitionError: a branch holds an effect, starts at a source or takes several frames.

    >>> import pandas as pd
    >>> from tdm.transforms import assign
    >>> big, small = assign(size="'big'"), assign(size="'small'")
    >>> step = when(lambda d: len(d) > 2, then=big, otherwise=small)
    >>> step(pd.DataFrame({"a": [1, 2, 3]})).unwrap()["size"].tolist()
    ['big', 'big', 'big']
    >>> step(pd.DataFrame({"a": [1]})).unwrap()["size"].tolist()
    ['small']
    >>> doubled = when("a.max() > 5", then=assign(b="a * 2"))
    >>> doubled(pd.DataFrame({"a": [1]})).unwrap().columns.tolist()
    ['a']
    """
    _check_branch("then", then)
    _check_branch("otherwise", otherwise)
    return _when(predicate, then=then, otherwise=otherwise)


@transform
def guard(df: pd.DataFrame, predicate: FramePredicate, *, reason: str | None = None) -> StepResult:
    """Let the frame through when ``predicate`` holds; otherwise stop this branch (SKIPPED).

    A stopped branch is not a failure: the node and its descendants are reported as
    ``SKIPPED`` with ``reason``, and the run still succeeds.

    Args:
        predicate: a function ``df -> bool`` or a pandas eval string giving one bool.
        reason: the text reported for the skip (default: names the predicate).

    >>> import pandas as pd
    >>> only_big = guard(lambda d: d["amount"].sum() > 100, reason="too little to report")
    >>> only_big(pd.DataFrame({"amount": [500]})).unwrap()["amount"].tolist()
    [500]
    >>> only_big(pd.DataFrame({"amount": [5]})).failure()
    Skip(step='guard', message='too little to report')
    """
    if frame_truth(df, predicate):
        return df
    return Failure(Skip("", reason or f"guard {describe_expr(predicate)} is false"))


@transform
def skip_if_empty(df: pd.DataFrame, *, reason: str | None = None) -> StepResult:
    """Stop this branch (SKIPPED, not a failure) when the frame has no rows.

    >>> import pandas as pd
    >>> skip_if_empty()(pd.DataFrame({"a": []})).failure()
    Skip(step='skip_if_empty', message='the frame has no rows')
    >>> skip_if_empty()(pd.DataFrame({"a": [1]})).unwrap()["a"].tolist()
    [1]
    """
    if len(df) == 0:
        return Failure(Skip("", reason or "the frame has no rows"))
    return df
