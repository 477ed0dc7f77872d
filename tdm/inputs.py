"""Frames supplied at run time: ``tdm.inputs.frame("orders")``."""

from __future__ import annotations

from tdm.core.inputs import Input
from tdm.core.pipeline import Pipeline

__all__ = ["frame"]


def frame(name: str) -> Pipeline:
    """A source node whose frame is passed to ``tdm.run(p, inputs={name: df})``.

    >>> import pandas as pd, tdm
    >>> p = frame("orders")
    >>> p.inputs()
    ['orders']
    >>> tdm.run(p, inputs={"orders": pd.DataFrame({"a": [1]})}).output["a"].tolist()
    [1]
    """
    return Pipeline.of(Input(name))
