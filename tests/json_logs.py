"""Capture tdm's JSON logs of the root logger in a string (tests' shared helper)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import tdm


@contextmanager
def json_logs(level: str) -> Iterator[io.StringIO]:
    """JSON logs of the root logger at ``level`` into a string; removed afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    previous = root.level
    handler = tdm.logging.configure(level, "json", stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
