"""Shared fixtures: real local services live in tests/servers (started lazily, once)."""

from __future__ import annotations

import importlib.util
import os

import pandas as pd
import pytest
from hypothesis import settings

_SERVERS = "tests.servers.fixtures"
pytest_plugins = [_SERVERS] if importlib.util.find_spec(_SERVERS) else []


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own TDM_HOME, so no test touches the user's ~/.tdm."""
    home = tmp_path_factory.mktemp("tdm-home")
    monkeypatch.setenv("TDM_HOME", str(home))


@pytest.fixture
def orders() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "a": [1, 2, 3], "b": [10, 20, 30]})


os.environ.setdefault("TDM_TESTING", "1")

# No timed assertions: on a loaded 2-core machine one example may take seconds.
settings.register_profile("tdm", deadline=None)
settings.load_profile("tdm")
