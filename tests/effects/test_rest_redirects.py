"""Credentials never follow a redirect to another origin.

Two real local origins: the shared fake API at ``http://127.0.0.1:P`` redirects, and a second
fake API reached as ``http://localhost:Q`` records what it received. For every auth style and
every way a secret reaches a request, with ``rest.get`` and ``rest.fetch_each``:

* by default the cross-origin redirect fails, naming both origins, and the other server gets
  nothing;
* with ``redirects="any"`` it is followed and the other server gets no credential at all;
* a redirect within the origin keeps every credential.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import rest
from tdm.errors import DefinitionError
from tests.effects.rest_helpers import error, output, run
from tests.servers.fixtures import FakeApi, LoggedRequest, RequestInfo

SECRETS = {
    "Api": {
        "username": "redir-user",
        "password": "redir-pa55/w0rd",
        "token": "redir-tok-abc123",
        "api_key": "redir-key-9876",
        "code": "redir-tenant-42",
        "client_id": "redir-client-1",
        "client_secret": "redir-client-s3cret",
    }
}
VALUES = list(SECRETS["Api"].values())
BASIC = base64.b64encode(b"redir-user:redir-pa55/w0rd").decode()


@pytest.fixture(scope="module")
def other_api() -> Iterator[FakeApi]:
    """A second fake API, addressed as ``localhost``: another origin than ``127.0.0.1``."""
    api = FakeApi().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def other(other_api: FakeApi) -> Iterator[FakeApi]:
    other_api.reset()
    yield other_api
    other_api.reset()


def _there(api: FakeApi, path: str = "/echo") -> str:
    return f"http://localhost:{api.port}{path}"


def _redirecting(api: FakeApi, to: str, status: int = 302) -> str:
    """A route on ``api`` that redirects to ``to`` (``{id}`` filled in from the path)."""

    def handler(req: RequestInfo) -> Any:
        return status, None, {"Location": to.replace("{id}", req.path_params.get("id", ""))}

    api.route("/hop/{id}", handler)
    return api.url + "/hop/{id}"


def _token_route(api: FakeApi) -> str:
    def token(req: RequestInfo) -> Any:
        return {"access_token": "redir-oauth-token-1", "expires_in": 3600}

    api.route("/oauth/token", token, methods=["POST"])
    return api.url + "/oauth/token"


# Every way a credential reaches a request: (id, rest.get/fetch_each keywords, what the
# first server must have received).
STYLES: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = [
    ("basic", {"auth": rest.basic()}, ("header", "authorization", f"Basic {BASIC}")),
    ("bearer", {"auth": rest.bearer()}, ("header", "authorization", "Bearer redir-tok-abc123")),
    (
        "api_key header",
        {"auth": rest.api_key(header="X-Api-Key")},
        ("header", "x-api-key", "redir-key-9876"),
    ),
    (
        "api_key query",
        {"auth": rest.api_key(query="apikey")},
        ("query", "apikey", "redir-key-9876"),
    ),
    (
        "secret_field header",
        {"headers": {"X-Tenant": rest.secret_field("code")}},
        ("header", "x-tenant", "redir-tenant-42"),
    ),
    (
        "${secrets} header",
        {"headers": {"X-Token": "Token ${secrets.token}"}},
        ("header", "x-token", "Token redir-tok-abc123"),
    ),
    (
        "secret_field query",
        {"params": {"sig": rest.secret_field("code")}},
        ("query", "sig", "redir-tenant-42"),
    ),
    ("oauth2", {}, ("header", "authorization", "Bearer redir-oauth-token-1")),
]
IDS = [s[0] for s in STYLES]


def _kwargs(api: FakeApi, style: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if style == "oauth2":
        return {"auth": rest.oauth2_client_credentials(_token_route(api)), "secret": "Api"}
    return {**kwargs, "secret": "Api"}


def _carried(request: LoggedRequest, where: str, name: str) -> str | None:
    return (request.headers if where == "header" else request.query).get(name)


def _assert_clean(received: list[LoggedRequest]) -> None:
    """The other origin got requests, and no secret value (nor Basic credentials) in any."""
    assert received, "the redirect was not followed"
    for request in received:
        shown = repr(request.headers) + repr(request.query) + request.path
        assert not [v for v in [*VALUES, BASIC, "redir-oauth-token-1"] if v in shown], shown
        assert "authorization" not in request.headers


def _get(api: FakeApi, style: str, kwargs: dict[str, Any], **extra: Any) -> tdm.Pipeline:
    return rest.get(api.url + "/hop/1", **_kwargs(api, style, kwargs), **extra)


def _fetch(
    api: FakeApi, style: str, kwargs: dict[str, Any], concurrency: int = 2, **extra: Any
) -> tdm.Pipeline:
    step = rest.fetch_each(
        api.url + "/hop/{id}", concurrency=concurrency, **_kwargs(api, style, kwargs), **extra
    )
    return tdm.inputs.frame("x") >> step


FRAME = pd.DataFrame({"id": [1, 2, 3]})


@pytest.mark.parametrize(("style", "kwargs", "expected"), STYLES, ids=IDS)
@pytest.mark.parametrize("kind", ["get", "fetch_each"])
def test_a_cross_origin_redirect_fails_by_default_naming_both_origins(
    fresh_fake_api: FakeApi,
    other: FakeApi,
    kind: str,
    style: str,
    kwargs: dict[str, Any],
    expected: tuple[str, str, str],
) -> None:
    api = fresh_fake_api
    _redirecting(api, _there(other, "/echo?row={id}"))
    # One row at a time: the first failure cancels the other workers, whose request may still
    # reach the shared server after this test ended (and show up in the next test's log).
    pipeline = (
        _get(api, style, kwargs) if kind == "get" else _fetch(api, style, kwargs, concurrency=1)
    )
    message = (
        error(pipeline, SECRETS, x=FRAME) if kind == "fetch_each" else error(pipeline, SECRETS)
    )
    assert f"from http://127.0.0.1:{api.port} to another origin, http://localhost:{other.port}" in (
        message
    )
    assert "redirects='any'" in message
    assert not [v for v in VALUES if v in message]
    assert other.log == []  # nothing at all reached the other origin
    hops = [r for r in api.log if r.path.startswith("/hop/")]
    assert hops and all(_carried(r, expected[0], expected[1]) == expected[2] for r in hops)


@pytest.mark.parametrize(("style", "kwargs", "expected"), STYLES, ids=IDS)
@pytest.mark.parametrize("kind", ["get", "fetch_each"])
def test_redirects_any_follows_without_any_credential(
    fresh_fake_api: FakeApi,
    other: FakeApi,
    kind: str,
    style: str,
    kwargs: dict[str, Any],
    expected: tuple[str, str, str],
) -> None:
    api = fresh_fake_api
    _redirecting(api, _there(other, "/echo?row={id}"))
    if kind == "get":
        frame = output(_get(api, style, kwargs, redirects="any"), SECRETS)
        assert frame["query_row"].tolist() == ["1"]
    else:
        frame = output(_fetch(api, style, kwargs, redirects="any"), SECRETS, x=FRAME)
        assert frame["query_row"].tolist() == ["1", "2", "3"]
    hops = [r for r in api.log if r.path.startswith("/hop/")]
    assert hops and all(_carried(r, expected[0], expected[1]) == expected[2] for r in hops)
    _assert_clean(other.log)
    assert all(_carried(r, expected[0], expected[1]) is None for r in other.log)


@pytest.mark.parametrize(("style", "kwargs", "expected"), STYLES, ids=IDS)
def test_a_same_origin_redirect_keeps_the_credentials(
    fresh_fake_api: FakeApi, style: str, kwargs: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    api = fresh_fake_api
    _redirecting(api, "/echo?row={id}", status=307)
    frame = output(_fetch(api, style, kwargs), SECRETS, x=FRAME)
    assert frame["query_row"].tolist() == ["1", "2", "3"]
    echoed = [r for r in api.log if r.path == "/echo"]
    assert len(echoed) == 3
    assert all(_carried(r, expected[0], expected[1]) == expected[2] for r in echoed)


def test_the_chain_stays_without_credentials_after_leaving_the_origin(
    fresh_fake_api: FakeApi, other: FakeApi
) -> None:
    """127.0.0.1 -> localhost -> back to 127.0.0.1: the last hop carries no credential."""
    api = fresh_fake_api
    _redirecting(api, _there(other, "/back"))
    other.route("/back", lambda req: (302, None, {"Location": api.url + "/echo"}))
    output(_get(api, "bearer", {"auth": rest.bearer()}, redirects="any"), SECRETS)
    echoed = [r for r in api.log if r.path == "/echo"]
    assert len(echoed) == 1 and "authorization" not in echoed[0].headers
    _assert_clean(other.log + echoed)


def test_a_location_carrying_a_secret_is_stripped_of_it(
    fresh_fake_api: FakeApi, other: FakeApi
) -> None:
    """A server that copies the key into the redirect URL does not get it sent elsewhere."""
    api = fresh_fake_api
    api.route(
        "/hop/{id}",
        lambda req: (302, None, {"Location": _there(other, f"/echo?k={req.query['apikey']}&p=2")}),
    )
    output(_get(api, "q", {"auth": rest.api_key(query="apikey")}, redirects="any"), SECRETS)
    _assert_clean(other.log)
    assert other.log[0].query == {"p": "2"}


def test_a_body_holding_a_secret_is_not_resent_to_another_origin(
    fresh_fake_api: FakeApi, other: FakeApi
) -> None:
    api = fresh_fake_api
    _redirecting(api, _there(other), status=307)
    source = rest.get(
        api.url + "/hop/1",
        method="POST",
        json={"login": rest.secret_field("username")},
        secret="Api",
        redirects="any",
    )
    message = error(source, SECRETS)
    assert "request body that holds a secret" in message and f"localhost:{other.port}" in message
    assert other.log == []
    # A 303 turns the POST into a GET without the body: followed, with nothing secret.
    api.reset()
    _redirecting(api, _there(other), status=303)
    output(source, SECRETS)
    assert other.requests[0].method == "GET" and other.requests[0].body == b""
    _assert_clean(other.log)


def test_a_redirect_loop_is_a_clear_error(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    _redirecting(api, "/hop/1")
    message = error(rest.get(api.url + "/hop/1"), {})
    assert "redirected more than 20 times" in message
    assert api.hits("/hop/1") == 21


def test_redirects_is_checked_and_shown() -> None:
    with pytest.raises(DefinitionError, match="redirects must be 'same-origin'"):
        rest.get("https://api.example.com/x", redirects="all")  # type: ignore[arg-type]
    source = rest.get("https://api.example.com/x", redirects="any")
    assert "redirects='any'" in source.plan.descriptions[0]


def test_redirects_any_in_yaml(fresh_fake_api: FakeApi, other: FakeApi, tmp_path: Any) -> None:
    import yaml

    api = fresh_fake_api
    _redirecting(api, _there(other))
    config = {
        "version": 1,
        "pipelines": [
            {
                "name": "Hop",
                "pipes": [
                    {
                        "name": "Items",
                        "type": "rest_get",
                        "config": {
                            "url": api.url + "/hop/1",
                            "auth": "bearer",
                            "redirects": "any",
                            "secrets": {"type": "yamlconfigreader", "name": "Api"},
                        },
                    }
                ],
            }
        ],
    }
    path = tmp_path / "hop.yml"
    path.write_text(yaml.safe_dump(config))
    (spec,) = list(tdm.load_yaml(str(path)))
    report = run(spec.pipeline, SECRETS)
    assert report.ok, report.error
    _assert_clean(other.log)
    assert api.log[0].headers["authorization"] == "Bearer redir-tok-abc123"
