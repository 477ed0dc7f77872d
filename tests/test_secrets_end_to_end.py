"""Secrets never leak: an end-to-end check through the real ``tdm`` command.

Distinctive values are planted in a secrets file (and one environment variable), YAML pipelines
use them against real local services (the fake REST API, moto S3, an SMTP server that wants a
login, a webhook), runs succeed and fail in the ways that tend to leak (an API that echoes the
``Authorization`` header into its error body, a missing S3 object, a user effect that formats
the secret into its exception and logs it), and then everything produced is scanned for every
planted value and the forms it travels in (percent-encoded, Base64 Basic credentials, any
12-character piece of it, which catches truncated copies): CLI stdout/stderr (JSON and text
logs at DEBUG, ``--dry-run``, ``graph``, ``validate``, ``list``), the SQLite audit store (db,
-wal, -shm), ``tdm history``, the alert emails and webhook bodies received, the written files,
and an in-process session printing reprs, reports, node errors and their causes' tracebacks,
and pickles of pipelines and reports.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml

from tests.servers.fixtures import FakeApi, MotoS3Server, RequestInfo, SmtpServer

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "tdm-leak-e2e"
PREFIX = "/leak-e2e"  # every fake-API route of this file lives under it
WINDOW = 12  # any piece this long of a secret (or of an encoded form of it) counts as a leak


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _planted(tag: str, special: bool = False) -> str:
    """A value found nowhere else; ``special`` adds characters that URLs percent-encode."""
    hex_ = uuid.uuid4().hex
    return f"PLANTED/{tag}+{hex_}=" if special else f"PLANTED-{tag}-{hex_}"


@dataclass
class Scene:
    """Everything the runs produced, by artefact name, plus what the test needs to check."""

    secrets: dict[str, str]
    artefacts: dict[str, dict[str, str]] = field(default_factory=dict)
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    hooks: list[RequestInfo] = field(default_factory=list)
    secure_hits: int = 0
    echo_hits: int = 0
    denied_hook_hits: int = 0
    mails: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def forms(self) -> dict[str, str]:
        """Every planted value and the encoded forms it travels in."""
        out: dict[str, str] = {}
        for name, value in self.secrets.items():
            out[name] = value
            out[f"{name} (percent-encoded)"] = quote(value, safe="")
            out[f"{name} (form-encoded)"] = quote_plus(value)
            out[f"{name} (percent-encoded, lower case)"] = _lower_percent(quote(value, safe=""))
            out[f"{name} (JSON-escaped)"] = json.dumps(value)[1:-1]
            out[f"{name} (JSON-escaped, slashes too)"] = json.dumps(value)[1:-1].replace("/", "\\/")
            out[f"{name} (repr)"] = repr(value)[1:-1]
            out[f"{name} (Base64)"] = base64.b64encode(value.encode()).decode().rstrip("=")
            for i, line in enumerate(value.splitlines() if "\n" in value else []):
                out[f"{name} (line {i})"] = line
        basic = f"{self.secrets['api_user']}:{self.secrets['api_password']}"
        out["api Basic credentials"] = base64.b64encode(basic.encode()).decode()
        return out


# --------------------------------------------------------------------------------------------
# the project: secrets, a user module, two pipeline files
# --------------------------------------------------------------------------------------------
LEAKY_MODULE = '''\
"""A user's own effect that (badly) logs its secret and puts it into its exception."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from tdm.core import Effect
from tdm.core.marks import mark_factory
from tdm.effects import EffectEnv, handle

log = logging.getLogger("leaky_steps")


@dataclass(frozen=True, slots=True)
class LicenceCheck(Effect):
    arity: ClassVar[int] = 1  # type: ignore[misc]
    secret: str | None = None

    def default_name(self) -> str:
        return "licence_check"

    def describe(self) -> str:
        return f"licence_check(secret={self.secret!r})"


class LicenceRefused(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(f"licence server refused token {token}")
        self.token = token


@handle.register
def _check(effect: LicenceCheck, frames: tuple[pd.DataFrame, ...], env: EffectEnv) -> pd.DataFrame:
    token = env.secret(effect.secret or "Vault")["token"].reveal()
    log.info("checking the licence with token %s", token)
    try:
        raise LicenceRefused(token)
    except LicenceRefused:
        log.exception("licence check failed for %s", token)
        raise RuntimeError(f"licence check failed (token {token})") from None


def licence_check(*, secret: str | None = None, label: str | None = None) -> LicenceCheck:
    return LicenceCheck(secret=secret, label=label)


mark_factory(licence_check, "sink")  # YAML names only factories tdm marked
'''

IN_PROCESS = '''\
"""In-process: reprs, reports, node errors, causes' tracebacks and pickles, printed."""

import pickle
import sys
import traceback
import warnings

import tdm
import tdm.logging
from tdm.interpreter.runtime import Runtime

warnings.simplefilter("ignore")
tdm.logging.configure("DEBUG", "json")
blobs = []
for name in ("ok.yml", "fail.yml"):
    project = tdm.load_yaml(name)
    print(repr(project))
    runtime = Runtime.default().evolve(secrets=project.secrets_provider(), progress=False)
    for spec in project:
        p = spec.pipeline
        print(repr(p), str(p), p.to_text(), p.to_mermaid(), repr(spec), sep="\\n")
        blobs.append(pickle.dumps(p))
        report = tdm.run(p, runtime=runtime, pipeline_id=spec.pipeline_id)
        frame = report.to_frame()
        print(repr(report), report.summary(), report.error, report._repr_html_(), sep="\\n")
        print(frame.to_string(), frame.to_json(date_format="iso"), report.hook_errors, sep="\\n")
        for node in report.nodes.values():
            print(repr(node), node.as_dict(), str(node.error), repr(node.error), sep="\\n")
            cause = node.error.cause if node.error is not None else None
            if cause is not None:
                print(f"cause {type(cause).__name__}: {cause!s} {cause!r}")
                print("".join(traceback.format_exception(cause)))
        try:
            report.raise_for_status()
        except tdm.errors.RunError as exc:
            print("".join(traceback.format_exception(exc)))
        blobs.append(pickle.dumps(report))
with open(sys.argv[1], "wb") as out:
    out.write(b"\\n".join(blobs))
print("in-process done")
'''


def _secret_ref(name: str) -> dict[str, str]:
    return {"type": "yamlconfigreader", "name": name}


def _alert_managers(smtp: SmtpServer) -> list[dict[str, Any]]:
    email = {"email_addresses": ["ops@example.com"], "host": smtp.host, "port": smtp.port}
    return [
        {"name": "Ops Email", "type": "emailalertmanager",
         "config": {**email, "security": "none", "on_success": True,
                    "secrets": _secret_ref("SMTP")}},
        {"name": "Wrong Login", "type": "emailalertmanager",
         "config": {**email, "security": "none", "secrets": _secret_ref("BadSMTP")}},
        {"name": "Ops Hook", "type": "webhook",
         "config": {"style": "json", "on_success": True, "secrets": _secret_ref("Hook")}},
        {"name": "Denied Hook", "type": "webhook",
         "config": {"style": "slack", "secrets": _secret_ref("DeniedHook")}},
    ]  # fmt: skip


def _ok_file(api: FakeApi, smtp: SmtpServer) -> dict[str, Any]:
    items = {
        "url": "${params.api}" + PREFIX + "/secure/items",
        "records": "data",
        "auth": "bearer",
        "headers": {"X-Tenant": "${secrets.tenant}"},
        "params": {"sig": "${secrets.sig}", "account": "${secrets.account}"},
        "secrets": _secret_ref("API"),
    }
    s3 = _secret_ref("S3")
    return {
        "version": 1,
        "params": {"api": api.url},
        "alert_managers": _alert_managers(smtp),
        "pipelines": [
            {"name": "Secure Items", "pipes": [
                {"name": "Items", "type": "rest_get", "config": items},
                {"name": "Write Local", "type": "write",
                 "config": {"parents": ["Items"], "uri": "output/items.csv"}},
                {"name": "Write S3", "type": "write",
                 "config": {"parents": ["Items"], "uri": f"s3://{BUCKET}/out/items.parquet",
                            "secrets": s3}},
            ]},
            {"name": "S3 Copy", "pipes": [
                {"name": "Orders", "type": "read",
                 "config": {"uri": f"s3://{BUCKET}/in/orders.csv", "secrets": s3}},
                {"name": "Save", "type": "write",
                 "config": {"parents": ["Orders"], "uri": "output/orders.csv"}},
            ]},
        ],
    }  # fmt: skip


def _fail_file(api: FakeApi, smtp: SmtpServer) -> dict[str, Any]:
    s3 = _secret_ref("S3")
    return {
        "version": 1,
        "params": {"api": api.url},
        "alert_managers": _alert_managers(smtp),
        "pipelines": [
            {"name": "Echoing 401", "pipes": [
                {"name": "Denied", "type": "rest_get",
                 "config": {"url": "${params.api}" + PREFIX + "/echo401", "auth": "basic",
                            "retry": 1, "headers": {"X-Tenant": "${secrets.tenant}"},
                            "params": {"account": "${secrets.account}"},
                            "secrets": _secret_ref("API")}},
            ]},
            {"name": "Echoing 500", "pipes": [
                {"name": "Exploded", "type": "rest_get",
                 "config": {"url": "${params.api}" + PREFIX + "/echo500", "auth": "basic",
                            "retry": {"attempts": 2, "backoff": 0.01, "jitter": 0},
                            "params": {"account": "${secrets.account}"},
                            "secrets": _secret_ref("API")}},
            ]},
            {"name": "Echoing JSON", "pipes": [
                {"name": "Echoed", "type": "rest_get",
                 "config": {"url": "${params.api}" + PREFIX + "/echo400", "method": "POST",
                            "auth": {"type": "api_key", "header": "X-Api-Key"}, "retry": 1,
                            "json": {"pem": "${secrets.pem}"},
                            "secrets": _secret_ref("Echo")}},
            ]},
            {"name": "Missing S3", "pipes": [
                {"name": "Gone", "type": "read",
                 "config": {"uri": f"s3://{BUCKET}/in/missing.csv", "secrets": s3}},
            ]},
            {"name": "Licence", "pipes": [
                {"name": "Orders", "type": "read",
                 "config": {"uri": f"s3://{BUCKET}/in/orders.csv", "secrets": s3}},
                {"name": "Check", "type": "leaky_steps:licence_check",
                 "config": {"parents": ["Orders"], "secrets": _secret_ref("Vault")}},
            ]},
        ],
    }  # fmt: skip


def _routes(api: FakeApi, secrets: dict[str, str], scene: Scene) -> None:
    def secure_items(req: RequestInfo) -> Any:
        scene.secure_hits += 1
        expected = {
            "authorization": f"Bearer {secrets['api_token']}",
            "x-tenant": secrets["api_tenant"],
        }
        ok = all(req.headers.get(k) == v for k, v in expected.items()) and req.query == {
            "sig": secrets["api_sig"],
            "account": secrets["api_account"],
        }
        if not ok:
            return 401, {"error": "bad credentials"}
        return {"data": [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}]}

    def echo401(req: RequestInfo) -> Any:
        # A debugging gateway that echoes what it got; the padding puts the Authorization
        # value across the 200th character, where an error excerpt is cut.
        auth = req.headers.get("authorization", "")
        head, tail = "access denied; trace ", "; authorization="
        pad = "x" * (200 - len(head) - len(tail) - len("Basic ") - 24)
        return 401, f"{head}{pad}{tail}{auth}; tenant={req.headers.get('x-tenant')}"

    def echo500(req: RequestInfo) -> Any:
        auth = req.headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        return 500, {
            "error": "upstream exploded",
            "auth": {"credentials": credentials, "scheme": scheme},
            "query": req.query,
        }

    def echo400(req: RequestInfo) -> Any:
        # A server that quotes the key back in every encoding it knows, and one line of the
        # multi-line value it was posted, into an error that the step puts in its message.
        scene.echo_hits += 1
        key = req.headers.get("x-api-key", "")
        pem_line = (req.json or {}).get("pem", "").splitlines()[1:2]
        return 400, {
            "error": "key not accepted",
            "key": key,
            "as_json": json.dumps({"key": key}),
            "as_pandas_json": json.dumps(key).replace("/", "\\/"),
            "as_url": _lower_percent(quote(key, safe="")),
            "as_base64": base64.b64encode(key.encode()).decode(),
            "pem_line": pem_line,
        }

    def hook(req: RequestInfo) -> Any:
        scene.hooks.append(req)
        return {"ok": True}

    def denied_hook(req: RequestInfo) -> Any:
        scene.denied_hook_hits += 1
        return 403, f"forbidden: {req.headers.get('authorization')} may not post here"

    api.route(PREFIX + "/secure/items", secure_items, methods=["GET"])
    api.route(PREFIX + "/echo401", echo401, methods=["GET"])
    api.route(PREFIX + "/echo500", echo500, methods=["GET"])
    api.route(PREFIX + "/echo400", echo400, methods=["POST"])
    api.route(PREFIX + "/hooks/{rest}", hook, methods=["POST"])
    api.route(PREFIX + "/denied/{rest}", denied_hook, methods=["POST"])


# --------------------------------------------------------------------------------------------
# running everything once
# --------------------------------------------------------------------------------------------
def _read_tree(root: Path, skip: set[Path]) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip:
            out[str(path.relative_to(root))] = path.read_bytes().decode("latin-1")
    return out


@pytest.fixture(scope="module")
def scene(
    tmp_path_factory: pytest.TempPathFactory,
    fake_api: FakeApi,
    s3_server: MotoS3Server,
    smtp_auth_server: SmtpServer,
) -> Iterator[Scene]:
    api, smtp = fake_api, smtp_auth_server
    secrets = {
        "api_token": _planted("api-token"),
        "api_tenant": _planted("tenant"),
        "api_sig": _planted("sig", special=True),
        "api_account": _planted("account", special=True),
        "api_user": "api-user",
        "api_password": _planted("api-pass"),
        "s3_key": "PLANTEDKEY" + uuid.uuid4().hex[:10].upper(),
        "s3_secret": _planted("s3-secret", special=True),
        "hook_path": _planted("hook-path"),
        "hook_token": _planted("hook-token"),
        "denied_token": _planted("denied-token"),
        "smtp_password": smtp.password,
        "wrong_smtp_password": _planted("smtp-wrong"),
        "vault_token": _planted("vault"),  # from an environment variable, not the file
        # JSON and repr escape these characters, URLs percent-encode them.
        "echo_key": f'PLANTED/echo"\\-{uuid.uuid4().hex}',
        "echo_pem": "\n".join(f"PLANTEDPEM-{i}-é-{uuid.uuid4().hex}" for i in range(3)),
    }
    scene = Scene(secrets=secrets)
    _routes(api, secrets, scene)
    smtp.clear()
    s3_server.make_bucket(BUCKET)
    s3 = s3_server.boto3_client()
    s3.put_object(Bucket=BUCKET, Key="in/orders.csv", Body=b"id,amount\n1,10\n2,20\n")

    home = tmp_path_factory.mktemp("leak-home")
    project = tmp_path_factory.mktemp("leak-project")
    file_secrets = {
        "version": 1,
        "API": {
            "token": secrets["api_token"],
            "tenant": secrets["api_tenant"],
            "sig": secrets["api_sig"],
            "account": secrets["api_account"],
            "username": secrets["api_user"],
            "password": secrets["api_password"],
        },
        "S3": {
            "key": secrets["s3_key"],
            "secret": secrets["s3_secret"],
            "endpoint_url": s3_server.endpoint_url,
            "region": s3_server.region,
        },
        "Hook": {
            "url": f"{api.url}{PREFIX}/hooks/{secrets['hook_path']}",
            "token": secrets["hook_token"],
        },
        "DeniedHook": {"url": f"{api.url}{PREFIX}/denied/x", "token": secrets["denied_token"]},
        "Echo": {"api_key": secrets["echo_key"], "pem": secrets["echo_pem"]},
        "SMTP": {"username": smtp.username, "password": secrets["smtp_password"]},
        "BadSMTP": {"username": smtp.username, "password": secrets["wrong_smtp_password"]},
    }
    secrets_file = home / "secrets.yml"
    secrets_file.write_text(yaml.safe_dump(file_secrets))
    secrets_file.chmod(0o600)
    (project / "pyproject.toml").write_text("[project]\nname = 'leak-e2e'\n")
    (project / "leaky_steps.py").write_text(LEAKY_MODULE)
    (project / "in_process.py").write_text(IN_PROCESS)
    (project / "ok.yml").write_text(yaml.safe_dump(_ok_file(api, smtp), sort_keys=False))
    (project / "fail.yml").write_text(yaml.safe_dump(_fail_file(api, smtp), sort_keys=False))

    env = {
        **os.environ,
        "TDM_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(project)]),
        "TDM_SECRET__VAULT__TOKEN": secrets["vault_token"],
    }
    env.pop("TDM_DEBUG", None)

    def run(name: str, *args: str) -> None:
        cmd = (
            [sys.executable, *args]
            if args[0].endswith(".py")
            else [sys.executable, "-m", "tdm", *args]
        )
        scene.results[name] = subprocess.run(
            cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600
        )

    def phase(*commands: tuple[str, ...]) -> None:
        with ThreadPoolExecutor(max_workers=3) as pool:
            for future in [pool.submit(run, *c) for c in commands]:
                future.result()

    debug_json = ("--log-format", "json", "--log-level", "debug")
    text_threads = ("--log-format", "text", "--log-level", "debug", "--executor", "threads")
    try:
        phase(
            ("validate ok", "validate", "ok.yml"),
            ("validate fail", "validate", "fail.yml"),
            ("dry-run ok", "run", "ok.yml", "--dry-run"),
            ("dry-run fail", "run", "fail.yml", "--dry-run"),
            ("graph text", "graph", "fail.yml"),
            ("graph mermaid", "graph", "ok.yml", "--format", "mermaid"),
            ("graph dot", "graph", "fail.yml", "--format", "dot"),
            ("list", "list", "fail.yml"),
            ("run ok (json, debug)", "run", "ok.yml", *debug_json),
        )
        phase(
            ("run fail (json, debug)", "run", "fail.yml", *debug_json),
            ("run fail (text, debug, threads)", "run", "fail.yml", *text_threads),
            ("in-process", "in_process.py", str(project / "in_process.pkl")),
        )
        phase(
            ("history", "history"),
            ("history --nodes", "history", "--nodes", "--limit", "50"),
            ("history --json", "history", "--json", "--limit", "50"),
            ("history --nodes --json", "history", "--nodes", "--json", "--limit", "100"),
        )
        scene.mails = [m.data.decode("utf-8", "replace") for m in smtp.mails]
        written = s3.get_object(Bucket=BUCKET, Key="out/items.parquet")["Body"].read()
        scene.history = [
            json.loads(line) for line in scene.results["history --json"].stdout.splitlines()
        ]
    finally:
        api.reset()

    scene.artefacts = {
        "CLI output": {
            f"{name} {stream}": getattr(result, stream)
            for name, result in scene.results.items()
            if name != "in-process"
            for stream in ("stdout", "stderr")
        },
        "in-process": {
            "stdout": scene.results["in-process"].stdout,
            "stderr": scene.results["in-process"].stderr,
            "pickles": (project / "in_process.pkl").read_bytes().decode("latin-1"),
        },
        "TDM_HOME (audit store)": _read_tree(home, skip={secrets_file}),
        "project folder (written files)": {
            **_read_tree(project, skip=set()),
            f"s3://{BUCKET}/out/items.parquet": written.decode("latin-1"),
        },
        "alerts": {
            **{f"email {i}": mail for i, mail in enumerate(scene.mails)},
            **{f"webhook body {i}": req.text for i, req in enumerate(scene.hooks)},
        },
    }
    yield scene


def _leaks(scene: Scene, texts: dict[str, str]) -> list[str]:
    """One line per (secret, artefact) where any piece of any form of the secret shows."""
    pieces: dict[str, set[str]] = {}
    for form_name, form in scene.forms().items():
        secret = form_name.split(" (")[0]
        found = {form[i : i + WINDOW] for i in range(max(1, len(form) - WINDOW + 1))}
        pieces.setdefault(secret, set()).update(found)
    leaks = []
    for secret, wanted in pieces.items():
        for where, text in texts.items():
            hit = next((p for p in wanted if p in text), None)
            if hit is not None:
                at = text.index(hit)
                context = text[max(0, at - 100) : at + 60].replace("\n", "\\n")
                leaks.append(f"{secret} in {where}: ...{context}...")
    return leaks


# --------------------------------------------------------------------------------------------
# the runs did what they should (else the scan below would prove nothing)
# --------------------------------------------------------------------------------------------
def _strings(value: Any) -> list[str]:
    """Every text in a decoded JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _strings(v)]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def test_the_runs_used_every_secret_and_failed_where_planned(scene: Scene) -> None:
    results = scene.results
    for name in ("validate ok", "validate fail", "dry-run ok", "graph text", "list", "history"):
        assert results[name].returncode == 0, (name, results[name].stderr)
    assert results["run ok (json, debug)"].returncode == 0, results["run ok (json, debug)"].stderr
    summary = json.loads(results["run ok (json, debug)"].stdout)  # --log-format json: one document
    assert ("Secure Items", "SUCCESS") in [
        (p["pipeline"], p["status"]) for p in summary["pipelines"]
    ]
    assert scene.secure_hits >= 2  # the CLI and the in-process run both got through the auth
    for name in ("run fail (json, debug)", "run fail (text, debug, threads)"):
        result = results[name]
        assert result.returncode == 1, (name, result.stderr)
        out = result.stdout
        if "json" in name:  # one JSON document: check the texts it holds, as a reader sees them
            out = "\n".join(_strings(json.loads(out)))
        # Each failure happened, and its text shows *** where the secret was.
        assert "answered 401 Unauthorized: access denied" in out
        assert "authorization=***" in out and "tenant=***" in out
        assert "answered 500 Internal Server Error" in out
        assert "answered 400 Bad Request" in out and '\\"key\\": \\"***\\"' in out
        assert "cannot read s3://tdm-leak-e2e/in/missing.csv" in out
        assert "RuntimeError: licence check failed (token ***)" in out
        assert "checking the licence with token ***" in result.stderr
        assert "refused the login of 'tdm'" in result.stderr  # the wrong SMTP password
        assert "was refused: HTTP 403 forbidden: Bearer *** may not post" in result.stderr
    assert results["in-process"].returncode == 0, results["in-process"].stderr
    assert "in-process done" in results["in-process"].stdout
    # The user's exception (and its traceback) survives as a scrubbed stand-in.
    assert "ScrubbedError: RuntimeError: licence check failed (token ***)" in (
        results["in-process"].stdout
    )
    failed = {r["pipeline_id"] for r in scene.history if r["status"] == "FAILURE"}
    assert failed == {"echoing-401", "echoing-500", "echoing-json", "missing-s3", "licence"}
    assert scene.echo_hits >= 3  # the CLI runs and the in-process run reached the echo
    assert {r["pipeline_id"] for r in scene.history if r["status"] == "SUCCESS"} == {
        "secure-items",
        "s3-copy",
    }
    # Alerts went out: success and failure emails and webhooks; the denied hook was tried.
    subjects = " ".join(m.split("\n", 1)[0] for m in scene.mails)
    assert len(scene.mails) >= 6 and "FAILURE" in "".join(scene.mails), subjects
    assert any(json.loads(h.text)["status"] == "FAILURE" for h in scene.hooks)
    assert all(
        h.headers["authorization"] == f"Bearer {scene.secrets['hook_token']}" for h in scene.hooks
    )
    assert scene.denied_hook_hits >= 4
    outputs = scene.artefacts["project folder (written files)"]
    assert "alpha" in outputs["output/items.csv"] and "amount" in outputs["output/orders.csv"]
    assert "alpha" in outputs[f"s3://{BUCKET}/out/items.parquet"]
    audit = scene.artefacts["TDM_HOME (audit store)"]
    assert "state.db" in audit and "licence check failed (token ***)" in "".join(audit.values())


# --------------------------------------------------------------------------------------------
# no planted value anywhere
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "group",
    [
        "CLI output",
        "TDM_HOME (audit store)",
        "alerts",
        "project folder (written files)",
        "in-process",
    ],
)
def test_no_secret_leaks(scene: Scene, group: str) -> None:
    texts = scene.artefacts[group]
    assert texts, f"nothing was collected for {group}"
    leaks = _leaks(scene, texts)
    assert not leaks, "secret values leaked:\n" + "\n".join(leaks)
