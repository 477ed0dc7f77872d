"""REST effect descriptions are frozen, equal by value, picklable and checked when built."""

from __future__ import annotations

import pickle

import pytest

import tdm
from tdm import rest
from tdm.core.rest import FetchEach, HttpGet, redact_url
from tdm.errors import DefinitionError


def test_equal_sources_are_one_node_and_pickle() -> None:
    a = rest.get("https://x.test/api/v1/devices", records="Devices", paginate=rest.page_number(size=10, total="Total"),
                 json={"q": [1, {"b": rest.secret_field("k")}]}, secret="S")  # fmt: skip
    b = rest.get("https://x.test/api/v1/devices", records="Devices", paginate=rest.page_number(size=10, total="Total"),
                 json={"q": [1, {"b": rest.secret_field("k")}]}, secret="S")  # fmt: skip
    assert a == b and hash(a) == hash(b)
    op = a.plan.nodes[0].op
    assert isinstance(op, HttpGet) and pickle.loads(pickle.dumps(op)) == op
    joined = tdm.concat(a, b)
    assert len(joined.plan.nodes) == 2  # the shared source is computed once


def test_fetch_each_is_an_arity_one_step() -> None:
    step = rest.fetch_each(
        "https://x.test/devices/{Uuid}/apps", params={"since": "{Since}"}, on_status={404: "skip"}
    )
    assert isinstance(step, FetchEach) and step.arity == 1
    assert step.columns() == ("Uuid", "Since")
    p = rest.get("https://x.test/devices", records="Devices") >> step
    assert p.names() == ("get_devices", "fetch_devices_apps")
    assert pickle.loads(pickle.dumps(step)) == step
    assert rest.fetch_each("https://x.test/{a}", include_parent=[]).parent_columns() == ()


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: rest.get("ftp://x.test/a"), "absolute http"),
        (lambda: rest.get("/relative"), "absolute http"),
        (lambda: rest.get("https://x.test", auth=rest.basic()), "secret="),
        (lambda: rest.get("https://x.test", headers={"h": rest.secret_field("k")}), "secret="),
        (lambda: rest.get("https://x.test", json={"a": 1}, body="x"), "not both"),
        (lambda: rest.get("https://x.test", timeout=0), "timeout"),
        (lambda: rest.get("https://x.test", rate_limit=-1), "rate_limit"),
        (lambda: rest.get("https://x.test", json={"a": object()}), "JSON-like"),
        (lambda: rest.get("https://x.test", params={"a": [1]}), "string, a number"),
        (lambda: rest.fetch_each("https://x.test/{}"), "positional"),
        (lambda: rest.fetch_each("https://x.test/{a"), "malformed"),
        (lambda: rest.fetch_each("https://x.test/{a}", concurrency=0), "concurrency"),
        (lambda: rest.fetch_each("https://x.test/{a}", on_status={404: "ignore"}), "skip"),  # type: ignore[dict-item]
        (lambda: rest.fetch_each("https://x.test/{a}", on_status={42: "skip"}), "status codes"),
        (lambda: rest.api_key(), "exactly one"),
        (lambda: rest.api_key(header="X", query="y"), "exactly one"),
        (lambda: rest.retry(0), "attempts"),
        (lambda: rest.page_number(size=0), "page size"),
        (lambda: rest.offset_limit(limit=0), "limit"),
        (lambda: rest.oauth2_client_credentials("not a url"), "token_url"),
    ],
)
def test_bad_definitions_fail_when_built(build: object, match: str) -> None:
    with pytest.raises(DefinitionError, match=match):
        build()  # type: ignore[operator]


def test_retry_policy_statuses() -> None:
    policy = rest.retry()
    assert [s for s in (200, 400, 404, 429, 500, 501, 503, 505) if policy.retries_status(s)] == [
        429,
        500,
        503,
    ]
    assert rest.retry(statuses=[502]).retries_status(502) and not rest.retry(
        statuses=[502]
    ).retries_status(503)
    assert rest.no_retry().attempts == 1


def test_redact_url_variants() -> None:
    assert redact_url("https://h.test/a?x=1") == "https://h.test/a?x=1"
    assert redact_url("https://h.test/a?ACCESS_TOKEN=z") == "https://h.test/a?ACCESS_TOKEN=***"
    assert redact_url("https://h.test/a?mine=z", {"mine"}) == "https://h.test/a?mine=***"
    assert redact_url("https://tok@h.test/a") == "https://***@h.test/a"
    assert redact_url("https://u:pw@h.test/") == "https://***@h.test/"


def test_yaml_style_pagination_auth_and_retry_equal_the_python_values() -> None:
    from tdm import rest

    by_config = rest.get(
        "https://api.example.com/items",
        paginate={"type": "page_number", "size": 50, "total": "total"},
        auth={"type": "api_key", "header": "X-Key"},
        retry={"attempts": 3},
        secret="Api",
    )
    in_python = rest.get(
        "https://api.example.com/items",
        paginate=rest.page_number(size=50, total="total"),
        auth=rest.api_key(header="X-Key"),
        retry=rest.retry(attempts=3),
        secret="Api",
    )
    assert by_config == in_python
    assert rest.fetch_each("https://x/{id}", auth="bearer", secret="Api") == rest.fetch_each(
        "https://x/{id}", auth=rest.bearer(), secret="Api"
    )
    with pytest.raises(DefinitionError, match=r"paginate: unknown type 'pages'.*page_number"):
        rest.get("https://x/items", paginate={"type": "pages"})
