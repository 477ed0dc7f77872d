"""User steps for the YAML tests of runs that remember (referenced as tests.memory.steps:...)."""

from __future__ import annotations

import pandas as pd

import tdm


@tdm.transform_with_context
def fail_when(df: pd.DataFrame, context: tdm.RunContext, *, param: str = "fail") -> pd.DataFrame:
    """Fails when the run's ``param`` is true (a late failure on demand)."""
    if context.params.get(param) in (True, "true", "1", 1):
        raise RuntimeError("failing on purpose")
    return df
