"""Root fixtures for the doctests in tdm/ (tests/conftest.py covers tests/)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Doctests run pipelines with the default runtime: keep its audit store out of ~/.tdm."""
    monkeypatch.setenv("TDM_HOME", str(tmp_path_factory.mktemp("tdm-home")))
