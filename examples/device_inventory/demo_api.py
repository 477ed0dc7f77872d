"""A tiny stand-in for the AirWatch MDM REST API, so the device-inventory example runs offline.

Endpoints (all need the ``aw-tenant-code`` header and HTTP Basic auth):

* ``GET /api/mdm/devices/search?page=0&pagesize=500`` -> ``{"Devices": [...], "Page": 0,
  "PageSize": 500, "Total": N}`` (pages start at 0, like AirWatch's).
* ``GET /api/mdm/devices/{Uuid}/security`` -> ``{"SecurityItems": [...]}``; one device answers
  404 (retired), as real fleets do.

Run it on its own with ``python examples/device_inventory/demo_api.py --port 8765``; tests and
``pipeline.py`` start it in a thread on 127.0.0.1 with :func:`serve`.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TENANT_CODE = "demo-tenant-code"
USERNAME = "api-user"
PASSWORD = "demo-password"
API_KEY = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
"""The demo's credentials (AirWatch style: a tenant code and a Basic key). The pipelines read
them from the ``AirWatch`` secret at run time; they never appear in pipeline code or YAML."""

DEVICES: list[dict[str, Any]] = [
    {"Id": {"Value": 101}, "Uuid": "a1f3-0001", "SerialNumber": "C02XK1JHJG5J",
     "Model": "MacBook Pro 14", "Platform": "AppleOsX", "State": "Texas"},
    {"Id": {"Value": 102}, "Uuid": "a1f3-0002", "SerialNumber": "F9FZQ0XLN72Q",
     "Model": "iPhone 15", "Platform": "Apple", "State": "tex."},
    {"Id": {"Value": 103}, "Uuid": "a1f3-0003", "SerialNumber": "R58N91ABCDE",
     "Model": "Galaxy S23", "Platform": "Android", "State": "calif."},
    {"Id": {"Value": 104}, "Uuid": "a1f3-0004", "SerialNumber": "DMPXH2LKQ1GC",
     "Model": "iPad Air", "Platform": "Apple", "State": "new york"},
    {"Id": {"Value": 105}, "Uuid": "a1f3-0005", "SerialNumber": "5CG1234XYZ",
     "Model": "EliteBook 840", "Platform": "WinRT", "State": "WA"},
]  # fmt: skip

SECURITY: dict[str, dict[str, Any]] = {
    "a1f3-0001": {"Encrypted": True, "PasscodePresent": True, "Compromised": False},
    "a1f3-0002": {"Encrypted": True, "PasscodePresent": False, "Compromised": False},
    "a1f3-0003": {"Encrypted": False, "PasscodePresent": True, "Compromised": True},
    "a1f3-0005": {"Encrypted": True, "PasscodePresent": True, "Compromised": False},
}  # a1f3-0004 is retired: its security endpoint answers 404

_SECURITY_PATH = re.compile(r"^/api/mdm/devices/([^/]+)/security$")


class _Handler(BaseHTTPRequestHandler):
    server_version = "DemoMDM/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        return (
            self.headers.get("aw-tenant-code") == TENANT_CODE
            and self.headers.get("Authorization") == f"Basic {API_KEY}"
        )

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if not self._authorized():
            self._send(401, {"message": "missing or wrong aw-tenant-code / credentials"})
            return
        if url.path == "/api/mdm/devices/search":
            query = parse_qs(url.query)
            page = int(query.get("page", ["0"])[0])
            size = int(query.get("pagesize", ["500"])[0])
            chunk = DEVICES[page * size : (page + 1) * size]
            self._send(
                200, {"Devices": chunk, "Page": page, "PageSize": size, "Total": len(DEVICES)}
            )
            return
        match = _SECURITY_PATH.match(url.path)
        if match and match.group(1) in SECURITY:
            self._send(200, {"SecurityItems": [SECURITY[match.group(1)]]})
            return
        self._send(404, {"message": f"no such resource: {url.path}"})


@contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """Run the demo API on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    print(f"demo MDM API on http://127.0.0.1:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
