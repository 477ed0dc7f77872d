"""Every auth type of rest.get / rest.fetch_each: the fake API checks what it received."""

from __future__ import annotations

import base64
import itertools
import threading
import time
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import rest
from tdm.errors import DefinitionError
from tests.effects.rest_helpers import error, output
from tests.servers.fixtures import ApiError, FakeApi, RequestInfo

SECRETS = {
    "Api": {
        "username": "api-user",
        "password": "pa55-w0rd",
        "token": "tok-abc123",
        "api_key": "key-9876",
        "code": "tenant-42",
        "client_id": "client-1",
        "client_secret": "client-s3cret",
    }
}


def test_basic_auth_and_secret_field_header(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    pipeline = rest.get(
        api.url + "/items/page",
        records="data",
        auth=rest.basic(),
        headers={"aw-tenant-code": rest.secret_field("code"), "Accept": "application/json"},
        secret="Api",
    )
    assert len(output(pipeline, SECRETS)) == 50
    headers = api.log[0].headers
    expected = base64.b64encode(b"api-user:pa55-w0rd").decode()
    assert headers["authorization"] == f"Basic {expected}"
    assert headers["aw-tenant-code"] == "tenant-42"


def test_bearer_auth(fresh_fake_api: FakeApi) -> None:
    output(rest.get(fresh_fake_api.url + "/health", auth=rest.bearer(), secret="Api"), SECRETS)
    assert fresh_fake_api.log[0].headers["authorization"] == "Bearer tok-abc123"


def test_api_key_in_a_header_with_a_prefix(fresh_fake_api: FakeApi) -> None:
    auth = rest.api_key(header="X-Api-Key", prefix="Key ")
    output(rest.get(fresh_fake_api.url + "/health", auth=auth, secret="Api"), SECRETS)
    assert fresh_fake_api.log[0].headers["x-api-key"] == "Key key-9876"


def test_api_key_in_the_query_of_every_page_and_row(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    auth = rest.api_key(query="apikey")
    source = rest.get(
        api.url + "/items/nexturl", params={"per_page": 100}, records="data",
        paginate=rest.next_url(), auth=auth, secret="Api",
    )  # fmt: skip
    assert len(output(source, SECRETS)) == 230
    assert [r.query["apikey"] for r in api.log] == ["key-9876"] * 3
    api.reset()
    frame = pd.DataFrame({"id": [1, 2]})
    step = rest.fetch_each(api.url + "/items/{id}", auth=auth, secret="Api")
    output(tdm.inputs.frame("x") >> step, SECRETS, x=frame)
    assert [r.query for r in api.log] == [{"apikey": "key-9876"}] * 2


def test_auth_secret_override_and_missing_key(fresh_fake_api: FakeApi) -> None:
    secrets = {**SECRETS, "Other": {"token": "tok-other-1"}}
    source = rest.get(fresh_fake_api.url + "/health", auth=rest.bearer(secret="Other"))
    output(source, secrets)
    assert fresh_fake_api.log[0].headers["authorization"] == "Bearer tok-other-1"
    message = error(
        rest.get(fresh_fake_api.url + "/health", auth=rest.bearer("nope"), secret="Api"), SECRETS
    )
    assert "'nope'" in message and "'Api'" in message and "client_id" in message  # key names only


def test_missing_secret_section_is_named(fresh_fake_api: FakeApi) -> None:
    message = error(
        rest.get(fresh_fake_api.url + "/health", auth=rest.bearer(), secret="Nope"), SECRETS
    )
    assert "'Nope'" in message and "Api" in message


def test_401_names_the_secret(fresh_fake_api: FakeApi) -> None:
    message = error(
        rest.get(fresh_fake_api.url + "/status/401", auth=rest.bearer(), secret="Api"), SECRETS
    )
    assert "401" in message and "'Api'" in message


class TokenServer:
    """An OAuth2 token endpoint + a protected route on the fake API."""

    def __init__(
        self, api: FakeApi, expires_in: float = 3600, revoke_after: int | None = None
    ) -> None:
        self.api = api
        self.expires_in = expires_in
        self.revoke_after = revoke_after
        self.counter = itertools.count(1)
        self.issued: dict[str, float] = {}  # token -> expiry (server clock)
        self.uses: dict[str, int] = {}
        self.token_requests: list[RequestInfo] = []
        self.seen: list[str] = []
        self.lock = threading.Lock()
        api.route("/oauth/token", self.token, methods=["POST"])
        api.route("/secure/{id}", self.secure, methods=["GET"])

    def token(self, req: RequestInfo) -> Any:
        with self.lock:
            self.token_requests.append(req)
            form = dict(x.split("=", 1) for x in req.text.split("&")) if req.text else {}
            basic = req.headers.get("authorization", "")
            if basic.startswith("Basic "):
                cid, _, csecret = base64.b64decode(basic[6:]).decode().partition(":")
            else:
                cid, csecret = form.get("client_id", ""), form.get("client_secret", "")
            if form.get("grant_type") != "client_credentials" or (cid, csecret) != (
                "client-1",
                "client-s3cret",
            ):
                return 401, {"error": "invalid_client"}
            token = f"access-{next(self.counter)}-xyz"
            self.issued[token] = time.monotonic() + self.expires_in
            return {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}

    def secure(self, req: RequestInfo) -> Any:
        with self.lock:
            token = req.headers.get("authorization", "").removeprefix("Bearer ")
            self.seen.append(token)
            if token not in self.issued or time.monotonic() > self.issued[token]:
                raise ApiError(401, "invalid or expired token")
            self.uses[token] = self.uses.get(token, 0) + 1
            if self.revoke_after is not None and self.uses[token] > self.revoke_after:
                del self.issued[token]
                raise ApiError(401, "token revoked")
            return {"id": int(req.path_params["id"])}


def _secure_fetch(api: FakeApi, auth: Any, n: int = 12, **kw: Any) -> pd.DataFrame:
    step = rest.fetch_each(api.url + "/secure/{id}", auth=auth, secret="Api", **kw)
    return output(tdm.inputs.frame("x") >> step, SECRETS, x=pd.DataFrame({"id": range(n)}))


@pytest.mark.parametrize("send_as", ["body", "basic"])
def test_oauth2_token_is_fetched_once_and_shared(fresh_fake_api: FakeApi, send_as: str) -> None:
    server = TokenServer(fresh_fake_api)
    auth = rest.oauth2_client_credentials(
        fresh_fake_api.url + "/oauth/token", scope="read", send_as=send_as
    )  # type: ignore[arg-type]
    df = _secure_fetch(fresh_fake_api, auth, concurrency=4)
    assert df["id"].tolist() == list(range(12))
    assert len(server.token_requests) == 1  # four workers, one token
    assert "scope=read" in server.token_requests[0].text
    assert set(server.seen) == {"access-1-xyz"}


def test_oauth2_token_refreshed_on_expiry(fresh_fake_api: FakeApi) -> None:
    server = TokenServer(fresh_fake_api, expires_in=0.5)
    auth = rest.oauth2_client_credentials(fresh_fake_api.url + "/oauth/token")
    df = _secure_fetch(fresh_fake_api, auth, n=8, concurrency=2, rate_limit=8)  # ~0.9 s
    assert len(df) == 8
    assert len(server.token_requests) >= 2
    assert not [t for t in server.seen if t not in server.issued]  # never sent an expired token


def test_oauth2_token_refreshed_on_401(fresh_fake_api: FakeApi) -> None:
    server = TokenServer(fresh_fake_api, revoke_after=3)
    auth = rest.oauth2_client_credentials(fresh_fake_api.url + "/oauth/token")
    df = _secure_fetch(fresh_fake_api, auth, n=10, concurrency=1)
    assert df["id"].tolist() == list(range(10))
    assert len(server.token_requests) == 4  # 3 uses per token, then a 401 and a new one


def test_oauth2_bad_client_secret(fresh_fake_api: FakeApi) -> None:
    TokenServer(fresh_fake_api)
    auth = rest.oauth2_client_credentials(fresh_fake_api.url + "/oauth/token")
    secrets = {"Api": {**SECRETS["Api"], "client_secret": "wrong-secret"}}
    step = rest.fetch_each(fresh_fake_api.url + "/secure/{id}", auth=auth, secret="Api")
    message = error(tdm.inputs.frame("x") >> step, secrets, x=pd.DataFrame({"id": [1]}))
    assert "token request" in message and "401" in message and "'client_secret'" in message


def test_yaml_style_secret_references_in_headers_params_and_body(fresh_fake_api: FakeApi) -> None:
    """``${secrets.key}`` (what the YAML loader leaves in place) is filled in at run time."""
    api = fresh_fake_api
    source = rest.get(
        api.url + "/echo",
        method="POST",
        headers={"Authorization": "Basic ${secrets.api_key}", "aw-tenant-code": "${secrets.code}"},
        params={"user": "${secrets.username}"},
        json={"login": "${secrets.username}"},
        secret="Api",
    )
    assert "key-9876" not in repr(source)
    output(source, SECRETS)
    sent = api.requests[0]
    assert sent.headers["authorization"] == "Basic key-9876"
    assert sent.headers["aw-tenant-code"] == "tenant-42"
    assert sent.query == {"user": "api-user"} and sent.json == {"login": "api-user"}

    api.reset()
    step = rest.fetch_each(
        api.url + "/items/{id}", headers={"X-Auth": "${secrets.token}:{id}"}, secret="Api"
    )
    assert step.columns() == ("id",)
    output(tdm.inputs.frame("x") >> step, SECRETS, x=pd.DataFrame({"id": [1, 2]}))
    assert [r.headers["x-auth"] for r in api.log] == ["tok-abc123:1", "tok-abc123:2"]
    with pytest.raises(DefinitionError, match="secret="):
        rest.get(api.url + "/echo", headers={"A": "${secrets.code}"})
    with pytest.raises(DefinitionError, match="never in the URL"):
        rest.get(api.url + "/echo?k=${secrets.code}", secret="Api")
