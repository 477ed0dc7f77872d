"""Real local services for tdm's integration tests, as a pytest plugin.

Enable it with ``pytest_plugins = ["tests.servers.fixtures"]`` in the top-level ``tests/conftest.py``.

Every service fixture is session-scoped, starts only when a test first requests it, binds
127.0.0.1 on a free port, never needs the external network, and is stopped at session end.

Fixtures (session scope unless noted)
-------------------------------------
``s3_server`` -> :class:`MotoS3Server`
    moto's ThreadedMotoServer in-process. ``.endpoint_url``, ``.storage_options`` (s3fs),
    ``.make_bucket(name)``, ``.reset()`` (wipes all moto state + s3fs instance cache),
    ``.boto3_client()``. While it runs, AWS_* env vars are forced to dummy "testing" values
    (restored at session end) so no real credential chain is consulted.
``azurite`` -> :class:`AzuriteServer`
    the ``azurite-blob`` Node binary (Azurite 3.35.0) as a subprocess, stopped by PID.
    ``.connection_string``, ``.account_name``, ``.account_key``, ``.blob_endpoint``,
    ``.storage_options`` (adlfs), ``.make_container(name)``, ``.reset()``,
    ``.blob_service_client()``. Binary: ``$TDM_AZURITE_BIN`` or
    ``<repo>/.cache/node/node_modules/.bin/azurite-blob`` (npm-installed on demand; see
    ``scripts/install-azurite.sh``). A missing binary that cannot be installed fails the test.
``smtp_server`` / ``smtp_auth_server`` -> :class:`SmtpServer`
    aiosmtpd Controller. ``.host``, ``.port``, ``.messages`` (``EmailMessage``, policy.default),
    ``.mails`` (envelope + message), ``.clear()``, ``.wait_for(n)``. The auth variant requires
    AUTH (PLAIN/LOGIN, no TLS) as ``.username`` "tdm" / ``.password`` "s3cret-pass" before MAIL
    (else 530) and records ``.auth_attempts``; a wrong password gets 535.
``tls_files`` -> :class:`TlsFiles`
    a throwaway CA and a server certificate for 127.0.0.1 / localhost, made in the session
    with ``cryptography`` (EC P-256, valid 1 day): ``.ca_file``, ``.cert_file``, ``.key_file``,
    ``.other_ca_file`` (a CA that signed nothing here), ``.server_context()``,
    ``.client_context()``. ``make_tls_files(dir, hosts=...)`` makes more (e.g. for another name).
``smtp_ssl_server`` / ``smtp_starttls_server`` -> :class:`SmtpServer`
    like ``smtp_auth_server`` (AUTH as tdm / s3cret-pass) but over TLS with ``tls_files``'
    certificate: implicit TLS (SMTP over SSL, as on port 465), or plain SMTP that requires
    STARTTLS before anything else (530) and offers AUTH only after it (as on port 587).
    ``ReceivedMail.tls`` is the TLS version a mail came over (None in the clear).
``fake_api`` -> :class:`FakeApi`
    starlette app served by uvicorn in a daemon thread; see "Fake REST API" below.
``dask_cluster`` -> ``distributed.LocalCluster`` (2 worker processes x 1 thread, 127.0.0.1)
``dask_client`` -> ``distributed.Client`` on it, with both workers up. It is NOT made the global
    default client (so unrelated tests keep dask's local scheduler): pass it explicitly
    (``client.compute(x)``, ``x.compute(scheduler=client)``) or use ``dask_default_client``.
``dask_default_client`` (function scope) -> the same Client, made current/default for one test
    (``Client.as_current()``), so plain ``.compute()`` and ``distributed.get_client()`` use it.
``fresh_s3_server`` / ``fresh_smtp_server`` / ``fresh_fake_api`` (function scope)
    the session objects, reset/cleared before the test (fake_api also after it).

Fake REST API (``fake_api``)
----------------------------
``api.url`` is the base URL (``http://127.0.0.1:PORT``). Item routes serve ``api.total`` items
(default 230) shaped ``{"id": i, "name": "item-0007"}`` with ids ``0 .. total-1``; the default
page size is ``api.page_size`` (50, max 1000). One route per pagination style::

    GET /items/page?page=1&per_page=50    {"data", "page", "per_page", "total", "total_pages",
                                           "next_page": 2 | null}   (pages are 1-based)
    GET /items                            alias of /items/page
    GET /items/offset?offset=0&limit=50   {"data", "offset", "limit", "total",
                                           "next_offset": 50 | null}
    GET /items/cursor?limit=50[&cursor=C] {"data", "next_cursor": "opaque" | null, "has_more"}
                                          (first page: no cursor; a bad cursor -> 400)
    GET /items/nexturl?page=1&per_page=50 {"data", "next": "<absolute URL>" | null}
    GET /items/link?page=1&per_page=50    bare JSON list; RFC 5988 header
                                          Link: <URL>; rel="next", <URL>; rel="first", ...
                                          (no rel="next" on the last page) + X-Total-Count
    GET /items/{item_id}                  one item, or 404
    GET /status/{code}                    answers with that status code
    ANY /echo                             {"method", "path", "query", "headers", "json", "body"}
    GET /health                           {"status": "ok"}

Past the end, data is empty and the "next" marker is null. Bad parameters -> 400.

Run-time configuration (thread-safe; call from the test)::

    api.latency_s = 0.05                       # async sleep before every response
    api.fail_next(2, status=503, retry_after="0")   # next 2 requests -> 503 + Retry-After: 0
    api.fail_every(3, status=429)              # every 3rd request -> 429 (0 disables)
    api.route("/users/{uid}", handler, methods=["GET"])   # or use @api.route("/x") as decorator
    api.reset()                                # defaults, no custom routes, zeroed counters

A handler is a plain (or async) function ``handler(req: RequestInfo)`` returning
``(status, body, headers)``, ``(status, body)``, a bare body (-> 200) or a starlette ``Response``.
A body of dict/list/number is sent as JSON, str as text, bytes raw, None as empty. Handlers run
on the server's event loop: don't block in them (use ``latency_s=`` or an async handler).
Raise :class:`ApiError` for an error answer; any other exception -> 500 (kept in
``api.errors``). Custom routes win over built-in ones; more literal segments win over
``{params}``.

Observations: ``api.count`` (requests received, faults included), ``api.log`` (list of
``(method, path, query, headers)`` named tuples), ``api.requests`` (full :class:`RequestInfo`),
``api.injected`` (faults served), ``api.in_flight`` / ``api.max_in_flight`` (most requests in
flight at once), ``api.hits(path, method=None)``.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import fcntl
import inspect
import json
import logging
import math
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload
from urllib.parse import unquote, urlencode

import pytest

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
    from azure.storage.blob import BlobServiceClient
    from distributed import Client, LocalCluster
    from moto.server import ThreadedMotoServer
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

__all__ = [
    "ApiError",
    "AuthAttempt",
    "AzuriteServer",
    "FakeApi",
    "LoggedRequest",
    "MotoS3Server",
    "ReceivedMail",
    "RequestInfo",
    "SmtpServer",
    "TlsFiles",
    "azurite",
    "dask_client",
    "dask_cluster",
    "dask_default_client",
    "fake_api",
    "free_port",
    "fresh_fake_api",
    "fresh_s3_server",
    "fresh_smtp_server",
    "s3_server",
    "smtp_auth_server",
    "make_tls_files",
    "smtp_server",
    "smtp_ssl_server",
    "smtp_starttls_server",
    "tls_files",
    "wait_for_port",
]

LOCALHOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = REPO_ROOT / ".cache" / "node"
AZURITE_VERSION = "3.35.0"
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
# Azurite's well-known, publicly documented development key (not a secret).
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SMTP_USERNAME = "tdm"
SMTP_PASSWORD = "s3cret-pass"

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str,
    port: int,
    timeout: float = 30.0,
    process: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Poll until ``host:port`` accepts TCP connections; False on timeout or if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _retry_start(start: Callable[[], _T], what: str, attempts: int = 3) -> _T:
    """Run ``start`` (which picks a fresh free port each time) until it succeeds."""
    last: BaseException | None = None
    for _ in range(attempts):
        try:
            return start()
        except (OSError, RuntimeError, TimeoutError) as exc:  # e.g. port grabbed meanwhile
            last = exc
    pytest.fail(f"could not start {what} after {attempts} attempts: {last!r}", pytrace=False)


# --------------------------------------------------------------------------------------------
# S3: moto
# --------------------------------------------------------------------------------------------
_AWS_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_AWS_UNSET_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL")


@dataclass
class MotoS3Server:
    """A running in-process moto server speaking S3."""

    host: str
    port: int
    server: ThreadedMotoServer = field(repr=False)
    key: str = "testing"
    secret: str = "testing"
    region: str = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options (a fresh dict each time, safe to mutate)."""
        # No region_name in client_kwargs: it breaks bucket creation (InvalidLocationConstraint).
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint_url},
        }

    def boto3_client(self) -> Any:
        """A boto3 S3 client pointed at the server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (no error if it exists) and return its name."""
        import s3fs

        client = self.boto3_client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        s3fs.S3FileSystem(**self.storage_options).invalidate_cache()
        return name

    def reset(self) -> None:
        """Drop every bucket/object (all moto state) and s3fs's cached filesystem instances."""
        import s3fs

        request = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        s3fs.S3FileSystem.clear_instance_cache()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3Server]:
    """moto S3 server on 127.0.0.1 (in-process thread)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in _AWS_DUMMY_ENV.items():
            mp.setenv(name, value)
        for name in _AWS_UNSET_ENV:
            mp.delenv(name, raising=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=LOCALHOST, port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        s3 = MotoS3Server(host=host, port=port, server=server)
        try:
            yield s3
        finally:
            s3.stop()
            with contextlib.suppress(ImportError):
                import s3fs

                s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def fresh_s3_server(s3_server: MotoS3Server) -> MotoS3Server:
    """``s3_server`` with all state wiped before the test."""
    s3_server.reset()
    return s3_server


# --------------------------------------------------------------------------------------------
# Azure Blob: Azurite
# --------------------------------------------------------------------------------------------
# Preloaded into node via NODE_OPTIONS: exit when the pytest process that started Azurite is
# gone (e.g. killed with SIGKILL, so no fixture finalizer ran) -> never an orphaned node.
_NODE_WATCHDOG_JS = """\
const parent = Number(process.env.TDM_PARENT_PID || 0);
const ppid = process.ppid;
if (parent > 0) {
  setInterval(() => {
    if (process.ppid !== ppid) process.exit(0);  // reparented: our parent died
    try { process.kill(parent, 0); } catch (e) { if (e.code === "ESRCH") process.exit(0); }
  }, 500).unref();
}
"""


@dataclass
class AzuriteServer:
    """A running Azurite blob service (node subprocess)."""

    host: str
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    location: Path
    log_path: Path
    account_name: str = AZURITE_ACCOUNT_NAME
    account_key: str = field(default=AZURITE_ACCOUNT_KEY, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
        )

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec/adlfs options for ``abfs://`` / ``az://`` URLs (a fresh dict each time)."""
        return {"connection_string": self.connection_string}

    def blob_service_client(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def make_container(self, name: str) -> str:
        """Create container ``name`` (>= 3 chars; no error if it exists) and return its name."""
        from azure.core.exceptions import ResourceExistsError

        with self.blob_service_client() as client, contextlib.suppress(ResourceExistsError):
            client.create_container(name)
        self._clear_adlfs_cache()
        return name

    def reset(self) -> None:
        """Delete every container and adlfs's cached filesystem instances."""
        with self.blob_service_client() as client:
            for container in client.list_containers():
                client.delete_container(container.name)
        self._clear_adlfs_cache()

    @staticmethod
    def _clear_adlfs_cache() -> None:
        with contextlib.suppress(ImportError):
            import adlfs

            adlfs.AzureBlobFileSystem.clear_instance_cache()

    def stop(self) -> None:
        _stop_process(self.process)


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop one child process by its PID: SIGTERM, then SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _azurite_binary() -> Path:
    override = os.environ.get("TDM_AZURITE_BIN")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"TDM_AZURITE_BIN={override!r} is not an executable file", pytrace=False)
        return path
    path = NODE_PREFIX / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        _npm_install_azurite(path)
    return path


def _npm_install_azurite(binary: Path) -> None:
    hint = (
        "Azurite (the Azure Blob emulator) is needed for this test. Install it with "
        "scripts/install-azurite.sh (needs Node >= 18 and npm) or point TDM_AZURITE_BIN at an "
        "azurite-blob executable."
    )
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail(f"{binary} is missing and node/npm are not on PATH. {hint}", pytrace=False)
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    # The lock serializes concurrent pytest sessions (e.g. xdist workers) installing at once.
    with open(NODE_PREFIX / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return
        cmd = [npm, "install", "--prefix", str(NODE_PREFIX), "--no-audit", "--no-fund"]
        cmd.append(f"azurite@{AZURITE_VERSION}")
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"`{' '.join(cmd)}` failed: {exc!r}. {hint}", pytrace=False)
        if result.returncode != 0 or not binary.exists():
            output = (result.stdout + result.stderr)[-3000:]
            pytest.fail(
                f"`{' '.join(cmd)}` exited {result.returncode} and {binary} "
                f"{'exists' if binary.exists() else 'is missing'}:\n{output}\n{hint}",
                pytrace=False,
            )


def _azurite_answers(host: str, port: int) -> bool:
    """True if the listener on host:port is Azurite (its Server header says so)."""
    url = f"http://{host}:{port}/{AZURITE_ACCOUNT_NAME}?comp=list"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            server = response.headers.get("Server", "")
    except urllib.error.HTTPError as exc:  # 403 without credentials == up
        server = exc.headers.get("Server", "")
    except OSError:
        return False
    return "azurite" in server.lower()


def _start_azurite(binary: Path, location: Path, log_path: Path) -> AzuriteServer:
    port = free_port()
    watchdog = log_path.parent / "tdm-watchdog.js"
    watchdog.write_text(_NODE_WATCHDOG_JS)
    env = dict(os.environ)
    env["TDM_PARENT_PID"] = str(os.getpid())
    env["NODE_OPTIONS"] = f'{env.get("NODE_OPTIONS", "")} --require "{watchdog}"'.strip()
    cmd = [
        str(binary),
        "--blobHost",
        LOCALHOST,
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",  # SDK 12.31 sends an API version newer than Azurite 3.35 knows
        "--loose",
    ]
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches pytest only; the finalizer stops it
            )
        except OSError as exc:
            pytest.fail(f"cannot execute {binary}: {exc!r}", pytrace=False)
    server = AzuriteServer(
        host=LOCALHOST, port=port, process=process, location=location, log_path=log_path
    )
    atexit.register(_stop_process, process)  # belt and braces if finalizers never run
    if wait_for_port(LOCALHOST, port, timeout=60, process=process) and _azurite_answers(
        LOCALHOST, port
    ):
        return server
    _stop_process(process)
    atexit.unregister(_stop_process)
    log_tail = log_path.read_text(errors="replace")[-3000:]
    if "EADDRINUSE" in log_tail:
        raise OSError(f"port {port} was taken before Azurite could bind it")
    pytest.fail(
        f"Azurite did not come up on {LOCALHOST}:{port} within 60 s "
        f"(exit code {process.returncode}). Command: {' '.join(cmd)}\nLog {log_path}:\n{log_tail}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    """Azurite blob service on 127.0.0.1 (node subprocess, stopped by PID at session end)."""
    binary = _azurite_binary()
    root = tmp_path_factory.mktemp("azurite")
    location = root / "data"
    location.mkdir()
    server = _retry_start(lambda: _start_azurite(binary, location, root / "azurite.log"), "Azurite")
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(_stop_process)
        server._clear_adlfs_cache()


# --------------------------------------------------------------------------------------------
# SMTP: aiosmtpd
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway CA and of a server certificate it signed."""

    ca_file: Path
    cert_file: Path  # the server certificate followed by nothing else (the CA is not sent)
    key_file: Path
    other_ca_file: Path  # a second CA that signed nothing here: trusting it must not help
    hosts: tuple[str, ...]

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls_files(
    directory: Path, hosts: Sequence[str] = (LOCALHOST, "localhost"), days: int = 1
) -> TlsFiles:
    """Make a CA, a server certificate for ``hosts`` (IPs and DNS names) and a second CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tdm tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, common),
            ]
        )

    def make_ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = make_ca("tdm test CA")
    _, other_ca = make_ca("tdm other test CA")
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    files = TlsFiles(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        other_ca_file=directory / "other-ca.pem",
        hosts=tuple(hosts),
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(pem))
    files.other_ca_file.write_bytes(other_ca.public_bytes(pem))
    files.cert_file.write_bytes(cert.public_bytes(pem))
    files.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key_file.chmod(0o600)
    return files


class AuthAttempt(NamedTuple):
    mechanism: str
    username: str
    success: bool


@dataclass
class ReceivedMail:
    """One delivered mail: the SMTP envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    username: str | None  # the AUTH login used, if any
    tls: str | None = None  # the TLS version the mail came over ("TLSv1.3"), None in the clear


class _SmtpHandler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.owner.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
        message = BytesParser(policy=policy.default).parsebytes(data)
        login = getattr(session.auth_data, "login", None)
        username = login.decode("utf-8", "replace") if isinstance(login, bytes) else None
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            message=message,
            username=username,
            tls=ssl_object.version() if ssl_object is not None else None,
        )
        with self.owner._lock:
            self.owner.mails.append(mail)
            self.owner.messages.append(message)
        return "250 Message accepted for delivery"


class _DropLoginDataNoise(logging.Filter):
    """aiosmtpd 1.4 logs "Session.login_data is deprecated" on every successful AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


class SmtpServer:
    """An in-process aiosmtpd server capturing every delivered message."""

    def __init__(
        self,
        *,
        username: str = "",
        password: str = "",
        host: str = LOCALHOST,
        tls: Literal["none", "ssl", "starttls"] = "none",
        certs: TlsFiles | None = None,
    ) -> None:
        if tls != "none" and certs is None:
            raise ValueError(f"SmtpServer(tls={tls!r}) needs certs=TlsFiles(...)")
        self.host = host
        self.port = 0
        self.tls = tls
        self.certs = certs
        self.username = username
        self.password = password
        self.require_auth = bool(username)  # "" = no AUTH
        self.messages: list[EmailMessage] = []
        self.mails: list[ReceivedMail] = []
        self.auth_attempts: list[AuthAttempt] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        from aiosmtpd.smtp import AuthResult

        login = getattr(auth_data, "login", b"")
        password = getattr(auth_data, "password", b"")
        user = login.decode("utf-8", "replace") if isinstance(login, bytes) else str(login)
        secret = password.decode("utf-8", "replace") if isinstance(password, bytes) else ""
        ok = user == self.username and secret == self.password
        with self._lock:
            self.auth_attempts.append(AuthAttempt(mechanism, user, ok))
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False: aiosmtpd then answers 535 itself (handled=True would send nothing).
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        mail_log = logging.getLogger("mail.log")
        if not any(isinstance(f, _DropLoginDataNoise) for f in mail_log.filters):
            mail_log.addFilter(_DropLoginDataNoise())

        def attempt() -> Controller:
            port = free_port(self.host)
            kwargs: dict[str, Any] = {}
            if self.require_auth:
                # auth_required=True is not used: with auth_require_tls=False it emits a
                # warning per connection; handle_MAIL enforces AUTH instead (530).
                # With STARTTLS, AUTH is offered only after it (aiosmtpd's auth_require_tls
                # only knows STARTTLS: on an implicit-TLS connection it would never offer AUTH,
                # and there every command is encrypted anyway).
                kwargs = {
                    "authenticator": self._authenticate,
                    "auth_require_tls": self.tls == "starttls",
                }
            if self.certs is not None and self.tls == "ssl":
                kwargs["ssl_context"] = self.certs.server_context()
            elif self.certs is not None and self.tls == "starttls":
                kwargs["tls_context"] = self.certs.server_context()
                kwargs["require_starttls"] = True
            controller = Controller(
                _SmtpHandler(self),
                hostname=self.host,
                port=port,
                server_hostname="tdm-smtp.test",  # skips a getfqdn() DNS lookup
                ready_timeout=10.0,
                enable_SMTPUTF8=True,
                **kwargs,
            )
            controller.start()
            self.port = port
            return controller

        self._controller = _retry_start(attempt, "the SMTP server")
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        """Forget received messages and auth attempts."""
        with self._lock:
            self.messages.clear()
            self.mails.clear()
            self.auth_attempts.clear()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; return them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s) within {timeout} s, got {len(self.messages)}"
                )
            time.sleep(0.01)
        return list(self.messages)

    def __repr__(self) -> str:
        return (
            f"SmtpServer(host={self.host!r}, port={self.port}, auth={self.require_auth}, "
            f"tls={self.tls!r})"
        )


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """SMTP server on 127.0.0.1 without authentication."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smtp_auth_server() -> Iterator[SmtpServer]:
    """SMTP server requiring AUTH as tdm / s3cret-pass (plain loopback, no TLS)."""
    server = SmtpServer(username=SMTP_USERNAME, password=SMTP_PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA + server certificate for 127.0.0.1 / localhost (PEM files)."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def smtp_ssl_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """SMTP over SSL (implicit TLS, like port 465) requiring AUTH as tdm / s3cret-pass."""
    server = SmtpServer(
        username=SMTP_USERNAME, password=SMTP_PASSWORD, tls="ssl", certs=tls_files
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smtp_starttls_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """SMTP requiring STARTTLS first (like port 587), then AUTH as tdm / s3cret-pass."""
    server = SmtpServer(
        username=SMTP_USERNAME, password=SMTP_PASSWORD, tls="starttls", certs=tls_files
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_smtp_server(smtp_server: SmtpServer) -> SmtpServer:
    """``smtp_server`` with no messages left from earlier tests."""
    smtp_server.clear()
    return smtp_server


# --------------------------------------------------------------------------------------------
# Fake REST API: starlette + uvicorn in a daemon thread
# --------------------------------------------------------------------------------------------
class ApiError(Exception):
    """Raise from a route handler to answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class LoggedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class RequestInfo:
    """What a route handler sees. Header names are lower-case; query keeps the last value."""

    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    url: str
    base_url: str
    query_lists: dict[str, list[str]] = field(default_factory=dict)

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON (None if empty; ValueError if invalid)."""
        return json.loads(self.body) if self.body.strip() else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


RouteHandler = Callable[[RequestInfo], Any]
_H = TypeVar("_H", bound=RouteHandler)


@dataclass
class _Route:
    template: str
    handler: RouteHandler
    methods: frozenset[str] | None
    latency_s: float | None
    builtin: bool
    seq: int

    @property
    def segments(self) -> list[str]:
        return self.template.strip("/").split("/")

    def sort_key(self) -> tuple[int, int, int]:
        literals = sum(1 for s in self.segments if not (s.startswith("{") and s.endswith("}")))
        return (-literals, int(self.builtin), -self.seq)

    def match(self, path: str) -> dict[str, str] | None:
        parts = path.strip("/").split("/")
        segments = self.segments
        if len(parts) != len(segments):
            return None
        params: dict[str, str] = {}
        for seg, part in zip(segments, parts, strict=True):
            if seg.startswith("{") and seg.endswith("}"):
                if not part:
                    return None
                params[seg[1:-1]] = unquote(part)
            elif seg != part:
                return None
        return params


@dataclass
class _Fault:
    status: int
    retry_after: str | None
    body: Any
    path: str | None

    def applies_to(self, path: str) -> bool:
        if self.path is None:
            return True
        probe = _Route(self.path, lambda _: None, None, None, False, 0)
        return probe.match(path) is not None


def _int_param(req: RequestInfo, name: str, default: int, low: int, high: int) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name!r} must be in [{low}, {high}], got {value}")
    return value


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "offset":
            raise ValueError(raw)
        offset = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, f"invalid cursor {cursor!r}") from None
    if offset < 0:
        raise ApiError(400, f"invalid cursor {cursor!r}")
    return offset


_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_MAX_PAGE_SIZE = 1000


class FakeApi:
    """A configurable fake REST server (see the module docstring for routes and knobs)."""

    DEFAULT_TOTAL = 230
    DEFAULT_PAGE_SIZE = 50

    def __init__(self, host: str = LOCALHOST) -> None:
        self.host = host
        self.port = 0
        self._lock = threading.RLock()
        self._routes: list[_Route] = []
        self._seq = 0
        self._server: Any = None  # uvicorn.Server
        self._thread: threading.Thread | None = None
        self.in_flight = 0
        self._install_builtin_routes()
        self.reset()

    # ---- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeApi:
        import uvicorn

        # proto=IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; without it
        # Nagle + delayed ACKs add ~40 ms to every request after the first on a connection.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(2048)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self,
            interface="asgi3",
            lifespan="off",
            ws="none",
            log_config=None,  # leave the process' logging configuration alone
            log_level="warning",
            access_log=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
            backlog=2048,
            server_header=False,
            date_header=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="tdm-fake-api", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"fake API (uvicorn) did not start on {self.url}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        self._server = self._thread = None

    # ---- configuration ----------------------------------------------------------------------
    def reset(self) -> None:
        """Back to defaults: no custom routes/faults/latency, total=230, counters zeroed."""
        with self._lock:
            self._routes = [r for r in self._routes if r.builtin]
            self.latency_s: float = 0.0
            self.total: int = self.DEFAULT_TOTAL
            self.page_size: int = self.DEFAULT_PAGE_SIZE
            self._faults: deque[_Fault] = deque()
            self._every: tuple[int, _Fault] | None = None
            self._every_seen = 0
            self.count: int = 0
            self.injected: int = 0
            self.log: list[LoggedRequest] = []
            self.requests: list[RequestInfo] = []
            self.errors: list[str] = []
            self.max_in_flight: int = self.in_flight

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: str | int | None = "0",
        *,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests (only those matching ``path`` if given) with ``status``.

        A ``Retry-After: <retry_after>`` header is sent unless ``retry_after`` is None.
        """
        fault = _Fault(status, None if retry_after is None else str(retry_after), body, path)
        with self._lock:
            self._faults.extend([fault] * n)

    def fail_every(
        self,
        n: int,
        status: int = 503,
        retry_after: str | int | None = "0",
        *,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer every ``n``-th request from now on (n-th, 2n-th, ...) with ``status``; 0 disables."""
        with self._lock:
            self._every_seen = 0
            if n <= 0:
                self._every = None
            else:
                ra = None if retry_after is None else str(retry_after)
                self._every = (n, _Fault(status, ra, body, path))

    @overload
    def route(
        self,
        path: str,
        handler: None = None,
        *,
        methods: Sequence[str] | None = None,
        latency_s: float | None = None,
    ) -> Callable[[_H], _H]: ...

    @overload
    def route(
        self,
        path: str,
        handler: _H,
        *,
        methods: Sequence[str] | None = None,
        latency_s: float | None = None,
    ) -> _H: ...

    def route(
        self,
        path: str,
        handler: RouteHandler | None = None,
        *,
        methods: Sequence[str] | None = None,
        latency_s: float | None = None,
    ) -> Any:
        """Register ``handler`` for ``path`` (``{name}`` segments become ``req.path_params``).

        ``methods=None`` accepts any method. ``latency_s`` overrides ``api.latency_s`` for this
        route. Without ``handler`` it returns a decorator. Re-registering a path replaces it.
        """
        if handler is None:

            def decorator(fn: RouteHandler) -> RouteHandler:
                self.route(path, fn, methods=methods, latency_s=latency_s)
                return fn

            return decorator
        self._add_route(path, handler, methods, latency_s, builtin=False)
        return handler

    def _add_route(
        self,
        path: str,
        handler: RouteHandler,
        methods: Sequence[str] | None,
        latency_s: float | None,
        builtin: bool,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        with self._lock:
            self._seq += 1
            method_set = None if methods is None else frozenset(m.upper() for m in methods)
            self._routes = [
                r
                for r in self._routes
                if not (r.template == path and r.builtin == builtin and r.methods == method_set)
            ]
            self._routes.append(_Route(path, handler, method_set, latency_s, builtin, self._seq))
            self._routes.sort(key=_Route.sort_key)

    # ---- observations -----------------------------------------------------------------------
    def hits(self, path: str, method: str | None = None) -> int:
        """How many logged requests had exactly this path (and method, if given)."""
        with self._lock:
            return sum(
                1
                for r in self.log
                if r.path == path and (method is None or r.method == method.upper())
            )

    def __repr__(self) -> str:
        return f"FakeApi(url={self.url!r}, count={self.count})"

    # ---- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        from starlette.requests import Request

        request = Request(scope, receive)
        body = await request.body()
        method = request.method.upper()
        path = request.url.path
        with self._lock:
            route, params, path_matched = self._resolve(method, path)
        info = self._request_info(request, body, params)
        with self._lock:
            self.count += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.log.append(LoggedRequest(method, path, dict(info.query), dict(info.headers)))
            self.requests.append(info)
            fault = self._take_fault(path)
            latency = self.latency_s
            if route is not None and route.latency_s is not None:
                latency = route.latency_s
        try:
            if latency > 0:
                await asyncio.sleep(latency)
            if fault is not None:
                with self._lock:
                    self.injected += 1
                response = self._fault_response(fault)
            elif route is None:
                status = 405 if path_matched else 404
                message = "method not allowed" if path_matched else "not found"
                response = self._to_response((status, {"error": message, "path": path}))
            else:
                response = await self._call(route, info)
            await response(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _resolve(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        path_matched = False
        for route in self._routes:
            params = route.match(path)
            if params is None:
                continue
            path_matched = True
            if route.methods is None or method in route.methods:
                return route, params, True
        return None, {}, path_matched

    def _request_info(self, request: Request, body: bytes, params: dict[str, str]) -> RequestInfo:
        query_lists: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query_lists.setdefault(key, []).append(value)
        return RequestInfo(
            method=request.method.upper(),
            path=request.url.path,
            path_params=params,
            query={k: v[-1] for k, v in query_lists.items()},
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            url=str(request.url),
            base_url=self.url,
            query_lists=query_lists,
        )

    def _take_fault(self, path: str) -> _Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.applies_to(path):
                del self._faults[i]
                return fault
        if self._every is not None:
            n, fault = self._every
            if fault.applies_to(path):
                self._every_seen += 1
                if self._every_seen % n == 0:
                    return fault
        return None

    def _fault_response(self, fault: _Fault) -> Response:
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        body = fault.body
        if body is None:
            body = {"error": "injected fault", "status": fault.status}
        return self._to_response((fault.status, body, headers))

    async def _call(self, route: _Route, info: RequestInfo) -> Response:
        try:
            result = route.handler(info)
            if inspect.isawaitable(result):
                result = await result
            return self._to_response(result)
        except ApiError as exc:
            return self._to_response((exc.status, {"error": exc.message}, exc.headers))
        except Exception as exc:
            text = "".join(traceback.format_exception(exc))
            with self._lock:
                self.errors.append(text)
            return self._to_response((500, {"error": repr(exc), "traceback": text}))

    @staticmethod
    def _to_response(result: Any) -> Response:
        from starlette.responses import JSONResponse, PlainTextResponse, Response

        if isinstance(result, Response):
            return result
        status: int = 200
        body: Any = result
        headers: Mapping[str, str] | None = None
        if isinstance(result, tuple):
            if len(result) == 2:
                status, body = result
            elif len(result) == 3:
                status, body, headers = result
            else:
                raise TypeError(
                    f"handler returned a {len(result)}-tuple; use (status, body[, headers])"
                )
        headers = dict(headers or {})
        if body is None:
            return Response(status_code=status, headers=headers)
        if isinstance(body, bytes | bytearray):
            return Response(bytes(body), status, headers, media_type="application/octet-stream")
        if isinstance(body, str):
            return PlainTextResponse(body, status, headers)
        return JSONResponse(body, status, headers)

    # ---- built-in routes --------------------------------------------------------------------
    def _install_builtin_routes(self) -> None:
        builtins: list[tuple[str, RouteHandler, Sequence[str] | None]] = [
            ("/health", lambda _: {"status": "ok"}, ["GET", "HEAD"]),
            ("/echo", self._echo, None),
            ("/status/{code}", self._status, None),
            ("/items", self._items_page, ["GET"]),
            ("/items/page", self._items_page, ["GET"]),
            ("/items/offset", self._items_offset, ["GET"]),
            ("/items/cursor", self._items_cursor, ["GET"]),
            ("/items/nexturl", self._items_nexturl, ["GET"]),
            ("/items/link", self._items_link, ["GET"]),
            ("/items/{item_id}", self._item, ["GET"]),
        ]
        for path, handler, methods in builtins:
            self._add_route(path, handler, methods, None, builtin=True)

    def _slice(self, start: int, stop: int) -> list[dict[str, Any]]:
        return [{"id": i, "name": f"item-{i:04d}"} for i in range(start, min(stop, self.total))]

    def _link(self, path: str, **params: int) -> str:
        return f"{self.url}{path}?{urlencode(params)}"

    def _page_params(self, req: RequestInfo) -> tuple[int, int, int]:
        per_page = _int_param(req, "per_page", self.page_size, 1, _MAX_PAGE_SIZE)
        page = _int_param(req, "page", 1, 1, 10**9)
        total_pages = math.ceil(self.total / per_page)
        return page, per_page, total_pages

    def _items_page(self, req: RequestInfo) -> Any:
        page, per_page, total_pages = self._page_params(req)
        return {
            "data": self._slice((page - 1) * per_page, page * per_page),
            "page": page,
            "per_page": per_page,
            "total": self.total,
            "total_pages": total_pages,
            "next_page": page + 1 if page < total_pages else None,
        }

    def _items_offset(self, req: RequestInfo) -> Any:
        offset = _int_param(req, "offset", 0, 0, 10**12)
        limit = _int_param(req, "limit", self.page_size, 1, _MAX_PAGE_SIZE)
        return {
            "data": self._slice(offset, offset + limit),
            "offset": offset,
            "limit": limit,
            "total": self.total,
            "next_offset": offset + limit if offset + limit < self.total else None,
        }

    def _items_cursor(self, req: RequestInfo) -> Any:
        limit = _int_param(req, "limit", self.page_size, 1, _MAX_PAGE_SIZE)
        cursor = req.query.get("cursor")
        offset = _decode_cursor(cursor) if cursor else 0
        more = offset + limit < self.total
        return {
            "data": self._slice(offset, offset + limit),
            "next_cursor": _encode_cursor(offset + limit) if more else None,
            "has_more": more,
        }

    def _items_nexturl(self, req: RequestInfo) -> Any:
        page, per_page, total_pages = self._page_params(req)
        more = page < total_pages
        return {
            "data": self._slice((page - 1) * per_page, page * per_page),
            "next": self._link(req.path, page=page + 1, per_page=per_page) if more else None,
        }

    def _items_link(self, req: RequestInfo) -> Any:
        page, per_page, total_pages = self._page_params(req)
        links = {"first": 1, "last": max(total_pages, 1)}
        if page < total_pages:
            links["next"] = page + 1
        if 1 < page <= total_pages + 1:
            links["prev"] = page - 1
        link = ", ".join(
            f'<{self._link(req.path, page=p, per_page=per_page)}>; rel="{rel}"'
            for rel, p in sorted(links.items(), key=lambda kv: kv[0] != "next")
        )
        headers = {"Link": link, "X-Total-Count": str(self.total)}
        return 200, self._slice((page - 1) * per_page, page * per_page), headers

    def _item(self, req: RequestInfo) -> Any:
        raw = req.path_params["item_id"]
        if not raw.isdigit() or int(raw) >= self.total:
            raise ApiError(404, f"no item {raw!r}")
        return self._slice(int(raw), int(raw) + 1)[0]

    @staticmethod
    def _status(req: RequestInfo) -> Any:
        raw = req.path_params["code"]
        if not raw.isdigit() or not 200 <= int(raw) <= 599:
            raise ApiError(400, f"bad status code {raw!r}")
        return int(raw), {"status": int(raw)}

    @staticmethod
    def _echo(req: RequestInfo) -> Any:
        try:
            parsed = req.json
        except ValueError:
            parsed = None
        return {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": req.headers,
            "json": parsed,
            "body": req.text,
        }


@pytest.fixture(scope="session")
def fake_api() -> Iterator[FakeApi]:
    """Fake REST API on 127.0.0.1 (uvicorn thread). Shared: call ``api.reset()`` as needed."""
    api = _retry_start(lambda: FakeApi().start(), "the fake API")
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def fresh_fake_api(fake_api: FakeApi) -> Iterator[FakeApi]:
    """``fake_api`` reset to defaults before and after the test."""
    fake_api.reset()
    yield fake_api
    fake_api.reset()


# --------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[LocalCluster]:
    """A 2-process LocalCluster on 127.0.0.1, no dashboard."""
    from distributed import LocalCluster

    # Workers inherit the current directory when they are spawned: make it the repository's,
    # whichever test (and its chdir) happens to start the cluster, so relative paths behave
    # the same in every test order.
    with contextlib.chdir(REPO_ROOT):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host=LOCALHOST,
            dashboard_address=":0",  # None means the default :8787, which may be taken
            silence_logs=logging.ERROR,  # must be an int level; "error" kills the Nanny
        )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def dask_client(dask_cluster: LocalCluster) -> Iterator[Client]:
    """A Client on ``dask_cluster`` with both workers up (not the global default client)."""
    from distributed import Client

    client = Client(dask_cluster, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        client.close()


@pytest.fixture
def dask_default_client(dask_client: Client) -> Iterator[Client]:
    """``dask_client`` made the current/default client for the duration of one test."""
    with dask_client.as_current():
        yield dask_client
