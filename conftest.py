"""Root fixtures for the doctests in tdm/ (tests/conftest.py covers tests/)."""

from __future__ import annotations

import pytest
from hypothesis import settings

# No per-example time limit: the machines are shared and noisy, and a deadline is a timed test.
settings.register_profile("tdm", deadline=None)
settings.load_profile("tdm")


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Doctests run pipelines with the default runtime: keep its audit store out of ~/.tdm."""
    monkeypatch.setenv("TDM_HOME", str(tmp_path_factory.mktemp("tdm-home")))
