"""The run browser's fixtures: a store filled by real runs, the app on 127.0.0.1, a browser.

The browser is Debian's ``chromium`` (``scripts/test.sh`` installs it) driven by Playwright;
``$TDM_CHROMIUM`` may point elsewhere. Screenshots go to ``.artifacts/ui/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tdm
from tdm.effects.state import StateStore
from tests.ui.fill import Filled, fill

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "ui"


class AppServer:
    """The run browser's app served by uvicorn in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections (no Nagle delays)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        config = uvicorn.Config(
            app, lifespan="off", log_config=None, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the run browser did not start")
            time.sleep(0.01)
        self.sock = sock

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> StateStore:
    return tdm.state.sqlite(tmp_path_factory.mktemp("ui-audit") / "state.db")


@pytest.fixture(scope="module")
def filled(store: StateStore) -> Filled:
    return fill(store)


@pytest.fixture(scope="module")
def app_url(store: StateStore, filled: Filled) -> Iterator[str]:
    from tdm.ui.app import create_app

    server = AppServer(create_app(store))
    yield server.url
    server.stop()


def chromium_path() -> str:
    found = os.environ.get("TDM_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "no chromium: install Debian's package (apt-get install -y chromium; "
            "scripts/test.sh does it) or set TDM_CHROMIUM"
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    opened.dialogs = dialogs
    yield opened
    context.close()
    assert not dialogs, f"a page ran a script: {dialogs}"


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
