"""A planted secret value never shows up in a log line, repr, report or error text."""

from __future__ import annotations

import logging
import pickle
import traceback
from typing import Any

import httpx
import pandas as pd
import pytest

import tdm
from tdm import rest
from tdm.effects.http import redact_text
from tdm.errors import DefinitionError
from tests.effects.rest_helpers import runtime
from tests.servers.fixtures import FakeApi, RequestInfo

PLANTED = "PLANTED-s3cr3t-VALUE-9f8e7d"
SECRETS = {
    "Api": {
        "username": "user",
        "password": PLANTED,
        "token": PLANTED,
        "api_key": PLANTED,
        "code": PLANTED,
        "client_id": "client-1",
        "client_secret": PLANTED,
    }
}


def _texts_of(report: tdm.RunReport) -> list[str]:
    texts = [repr(report), report.summary(), report.to_frame().to_string(), str(report.error)]
    texts += [report._repr_html_()]
    for node in report.nodes.values():
        texts.append(repr(node.as_dict()))
        if node.error is not None:
            texts += [str(node.error), repr(node.error)]
            if node.error.cause is not None:
                cause = node.error.cause
                texts += [str(cause), repr(cause)]
                texts += traceback.format_exception(type(cause), cause, cause.__traceback__)
    return texts


@pytest.mark.parametrize("wire", ["aiohttp", "httpx transport"])
def test_planted_secret_never_leaks(
    fresh_fake_api: FakeApi, caplog: pytest.LogCaptureFixture, wire: str
) -> None:
    """Over tdm's default wire (aiohttp) and over an injected httpx transport, whose own
    loggers (httpx, httpcore) record every request."""
    api = fresh_fake_api
    caplog.set_level(logging.DEBUG)  # root: tdm's and the client libraries' own loggers too
    for name in ("httpx", "httpcore", "aiohttp", "tdm"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test
    transport = httpx.AsyncHTTPTransport() if wire == "httpx transport" else None

    # A server that echoes credentials back in its error bodies (it happens).
    api.route(
        "/leaky", lambda req: (403, {"error": "bad key", "url": req.url, "headers": req.headers})
    )

    def token(req: RequestInfo) -> Any:
        return 401, {"error": "invalid_client", "got": req.text}

    api.route("/token", token, methods=["POST"])
    frame = pd.DataFrame({"id": [1, 2, 9999]})
    pipelines = [
        # api key in the query string, 403 answer with the full URL echoed
        rest.get(api.url + "/leaky", auth=rest.api_key(query="api_key"), secret="Api"),
        rest.get(
            api.url + "/leaky", params={"access_token": rest.secret_field("token")}, secret="Api"
        ),
        rest.get(
            api.url + "/leaky",
            auth=rest.basic(),
            secret="Api",
            headers={"aw-tenant-code": rest.secret_field("code")},
        ),
        rest.get(
            api.url + "/status/503",
            auth=rest.bearer(),
            secret="Api",
            retry=rest.retry(2, backoff=0),
        ),
        tdm.inputs.frame("x")
        >> rest.fetch_each(
            api.url + "/items/{id}",
            auth=rest.api_key(query="key"),
            secret="Api",
            on_status={404: "skip"},
        ),
        tdm.inputs.frame("x")
        >> rest.fetch_each(
            api.url + "/items/{id}",
            auth=rest.oauth2_client_credentials(api.url + "/token"),
            secret="Api",
        ),
        rest.get(
            api.url + "/items/link",
            paginate=rest.link_header(),
            auth=rest.api_key(query="token"),
            secret="Api",
        ),
    ]
    texts: list[str] = []
    failures = 0
    for pipeline in pipelines:
        texts += [repr(pipeline), str(pipeline.plan.descriptions), pipeline.to_text()]
        inputs = {"x": frame} if pipeline.inputs() else None
        report = tdm.run(pipeline, inputs=inputs, runtime=runtime(SECRETS).evolve(http=transport))
        failures += not report.ok
        texts += _texts_of(report)
    assert failures == 5  # the 403s, the 503 and the refused token; the others succeed
    assert api.count > 10
    # the server really received the planted value (so the test can fail)
    assert any(PLANTED in (r.url + repr(r.headers) + r.text) for r in api.requests)

    log_lines = [caplog.text] + [r.getMessage() for r in caplog.records]
    # tdm's own line per request was captured (with its URL), so the check below can fail
    assert any("/leaky?" in line and "-> 403" in line for line in log_lines)
    if transport is not None:
        assert any("HTTP Request" in line for line in log_lines)  # httpx's own log
        assert any(r.name.startswith("httpcore") for r in caplog.records)
    for text in texts + log_lines:
        assert PLANTED not in text
    assert any("api_key=***" in t or "token=***" in t for t in texts + log_lines)


def test_effect_values_hold_names_only() -> None:
    source = rest.get(
        "https://api.example.com/x", auth=rest.oauth2_client_credentials("https://id.example.com/token"),
        headers={"aw-tenant-code": rest.secret_field("code")}, secret="Api",
    )  # fmt: skip
    op = source.plan.nodes[0].op
    assert PLANTED not in repr(op) and pickle.loads(pickle.dumps(op)) == op
    assert "secret='Api'" in op.describe()


def test_literal_credentials_are_redacted_or_refused() -> None:
    source = rest.get(
        "https://api.example.com/x?api_key=literal-key", headers={"Authorization": "Basic abc"}
    )
    assert "literal-key" not in repr(source.plan.nodes[0].op)
    assert "Basic abc" not in repr(source.plan.nodes[0].op)
    assert "literal-key" not in source.plan.descriptions[0]
    with pytest.raises(DefinitionError, match="carries a password"):
        rest.get("https://bob:hunter2@api.example.com/x")
    assert (
        redact_text("see https://u:p@h.test/a?password=x&q=1")
        == "see https://***@h.test/a?password=***&q=1"
    )
