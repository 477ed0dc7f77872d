"""Make docs/run-page.png, the README's picture of a run page (real runs, headless chromium).

.venv/bin/python scripts/readme_screenshot.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from playwright.sync_api import sync_playwright

    import tdm
    from tdm.ui.app import create_app
    from tests.ui.conftest import AppServer
    from tests.ui.fill import fill

    with tempfile.TemporaryDirectory() as tmp:
        store = tdm.state.sqlite(Path(tmp) / "state.db")
        filled = fill(store)
        server = AppServer(create_app(store))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=shutil.which("chromium"), args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 940})
                page.goto(f"{server.url}run?id={filled.failed}")
                out = ROOT / "docs" / "run-page.png"
                page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1280, "height": 940})
                browser.close()
        finally:
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
