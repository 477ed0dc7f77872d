"""Type aliases used at tdm's boundaries (kept in one place so signatures stay short)."""

from __future__ import annotations

from typing import TypeAlias

import pandas as pd

Frame: TypeAlias = pd.DataFrame
"""A table flowing between steps: a pandas DataFrame."""

__all__ = ["Frame"]
