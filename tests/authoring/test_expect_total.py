"""rest.get(expect_total=...): a completeness check against what the server states."""

from __future__ import annotations

import pytest

import tdm
from tdm import rest
from tdm.errors import DefinitionError
from tests.servers.fixtures import FakeApi


def test_header_total_matches(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    p = rest.get(
        api.url + "/items/link",
        paginate=rest.link_header(),
        expect_total="header:X-Total-Count",
    )
    report = tdm.run(p)
    assert report.ok, report.error
    assert len(report.output) == api.total


def test_body_total_matches(fresh_fake_api: FakeApi) -> None:
    p = rest.get(
        fresh_fake_api.url + "/items/page",
        records="data",
        paginate=rest.page_number(size=100),
        expect_total="body:total",
    )
    assert tdm.run(p).ok


def test_a_short_read_fails_the_node(fresh_fake_api: FakeApi) -> None:
    api = fresh_fake_api
    p = rest.get(  # only the first two pages: fewer records than the server states
        api.url + "/items/link",
        paginate=rest.link_header(max_pages=2),
        expect_total="header:X-Total-Count",
    )
    report = tdm.run(p)
    assert report.status is tdm.Status.FAILURE
    assert f"read 100 records but the server states {api.total}" in report.error


def test_a_missing_header_lists_the_headers(fresh_fake_api: FakeApi) -> None:
    p = rest.get(fresh_fake_api.url + "/items/page", records="data", expect_total="header:X-Nope")
    report = tdm.run(p)
    assert "has no such header; its headers are" in report.error


def test_a_bad_spec_fails_when_built() -> None:
    with pytest.raises(DefinitionError, match=r"e\.g\. 'header:X-Total-Count'"):
        rest.get("https://api.example.com/items", expect_total="X-Total-Count")


def test_yaml_twin(tmp_path) -> None:
    config = tmp_path / "p.yml"
    config.write_text(
        "version: 1\npipelines:\n  - name: P\n    pipes:\n      - name: Items\n"
        "        type: rest.get\n        config: {url: 'https://api.example.com/items', "
        "expect_total: 'header:X-Total-Count'}\n"
    )
    assert tdm.load_yaml(config).pipeline("P") == rest.get(
        "https://api.example.com/items", expect_total="header:X-Total-Count", label="Items"
    )
