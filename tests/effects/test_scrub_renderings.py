"""Every rendering of a secret is scrubbed from every sink (a hypothesis property test).

For any secret string, every way the value is rendered into text (JSON-escaped by
``json.dumps`` or ``DataFrame.to_json``, escaped twice, ``repr``/``ascii``, percent-encoded in
upper and lower case or twice, form-encoded, HTML-escaped, Base64, one line of a multi-line
value) is put into the error message of a failing step, the way a step quotes a server's
response. The run goes through the real interpreter with a real SQLite audit store and a JSON
log handler, and then every sink is checked for every rendering: the CLI's error line, the log
lines, the audit database files (db, -wal), ``history --nodes``' node table, the alert e-mail
(bytes as sent), the webhook bodies of every style, the report's repr, summary, HTML and
frame JSON, the node error with its cause's traceback, and the pickled report.

Each example uses its own :class:`~tdm.effects.scrubbing.Scrubber`, so the values generated
here are not scrubbed from the messages of other tests.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import pickle
import re
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tdm
import tdm.logging
from tdm.effects import secrets as secrets_module
from tdm.effects.alerts import EmailAlerter, WebhookAlerter
from tdm.effects.scrubbing import MIN_LENGTH, Scrubber
from tdm.effects.secrets import MappingSecrets, Secret, scrub
from tdm.effects.state import SQLiteStore
from tdm.interpreter.observe import build_alert


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()


RENDERERS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "json.dumps": lambda s: json.dumps(s)[1:-1],
    "json.dumps (utf-8)": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json.dumps twice": lambda s: json.dumps(json.dumps(s))[1:-1],
    "DataFrame.to_json": lambda s: pd.DataFrame({"v": [s]}).to_json(orient="values")[3:-3],
    "repr": lambda s: repr(s)[1:-1],
    "ascii": lambda s: ascii(s)[1:-1],
    "repr of repr": lambda s: repr(repr(s))[2:-2],
    "percent-encoded": lambda s: quote(s, safe=""),
    "percent-encoded, lower case": lambda s: _lower_percent(quote(s, safe="")),
    "percent-encoded path": quote,
    "percent-encoded twice": lambda s: quote(quote(s, safe=""), safe=""),
    "form-encoded": quote_plus,
    "html": html.escape,
    "base64": _b64,
    "base64 url-safe": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
}


def _lines(value: str) -> list[str]:
    """The lines of a multi-line secret that are long enough to be scrubbed on their own."""
    lines = [line.strip() for line in value.splitlines()]
    return [line for line in lines if len(line) >= MIN_LENGTH] if len(lines) > 1 else []


def renderings(value: str) -> dict[str, str]:
    out = {name: render(value) for name, render in RENDERERS.items()}
    out.update({f"line {i}": line for i, line in enumerate(_lines(value))})
    return out


# Where a rendered value is looked for: the decoded forms a reader would see as well.
def _needles(value: str) -> set[str]:
    found = set(renderings(value).values())
    # Inside a JSON sink the value is escaped once more: look for that too.
    found |= {json.dumps(r)[1:-1] for r in list(found)}
    return {n for n in found if n}


@contextmanager
def _own_scrubber() -> Iterator[None]:
    """This example's secrets only (a test must not scrub other tests' messages)."""
    saved = secrets_module._SCRUBBER
    secrets_module._SCRUBBER = Scrubber()
    try:
        yield
    finally:
        secrets_module._SCRUBBER = saved


def _sinks(message: str, folder: Path) -> dict[str, str]:
    """Run a pipeline whose step fails with ``message`` and collect every sink's text."""

    @tdm.transform
    def call_upstream(df: pd.DataFrame) -> pd.DataFrame:
        logging.getLogger("user.steps").error("upstream answered: %s", message)
        raise RuntimeError(f"upstream answered: {message}")

    log = io.StringIO()
    root = logging.getLogger("")
    level = root.level
    handler = tdm.logging.configure("DEBUG", "json", log, logger="")
    store = SQLiteStore(folder / "state.db")
    try:
        report = tdm.run(
            tdm.inputs.frame("x") >> call_upstream(),
            inputs={"x": pd.DataFrame({"a": [1]})},
            runtime=tdm.Runtime(secrets=MappingSecrets({}), state=store),
            pipeline_id="leaky",
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert report.status is tdm.Status.FAILURE
    alert = build_alert("failure", report, audit=store.describe())
    mail = EmailAlerter(("ops@example.com",), "127.0.0.1", 25, security="none")
    error = report.nodes["call_upstream"].error
    assert error is not None and error.cause is not None
    record = store.get(report.run_id)
    frame = report.to_frame()
    out = {
        "cli": f"RunError: {scrub(str(report.error))}",
        "log": log.getvalue(),
        "audit db": b"".join(p.read_bytes() for p in folder.glob("state.db*")).decode("latin-1"),
        "history --nodes": json.dumps(record.as_dict()),
        "alert e-mail": mail._message(alert, "tdm@example.com").as_bytes().decode("latin-1"),
        "report": repr(report) + report.summary() + report._repr_html_(),
        "report frame": frame.to_json() + frame.to_string(),
        "node error": repr(error) + "".join(traceback.format_exception(error.cause)),
        "pickle": pickle.dumps(report).decode("latin-1"),
    }
    for style in ("json", "slack", "teams"):
        hook = WebhookAlerter(url="http://127.0.0.1:9/hook", style=style)  # type: ignore[arg-type]
        out[f"webhook ({style})"] = json.dumps(hook.payload(alert))
    store.close()
    return out


SECRET_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=MIN_LENGTH, max_size=24
)
MULTI_LINE = st.lists(SECRET_TEXT, min_size=2, max_size=3).map("\n".join)
CHECKED: list[int] = []  # renderings x sinks checked, summed over examples (for the report)
PLAIN: dict[int, dict[str, str]] = {}  # sinks of a run without the secret, by renderings
TIMEISH = frozenset("0123456789abcdefABCDEF-:.+TZ_ \n")


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(value=st.one_of(SECRET_TEXT, MULTI_LINE))
def test_every_rendering_of_a_secret_is_scrubbed_from_every_sink(value: str) -> None:
    assume(value.strip() and "*" not in value)
    # Run ids, timestamps, durations and binary data differ between two runs: a value (or a
    # line of it) made only of their characters could show up in one by chance.
    assume(all(set(text) - TIMEISH for text in [value, *_lines(value)]))
    shown = renderings(value)
    with tempfile.TemporaryDirectory() as tmp, _own_scrubber():
        # The same run without the secret: a rendering already in it (a short value like
        # "true" in a JSON key) tells nothing about scrubbing.
        if len(shown) not in PLAIN:
            PLAIN[len(shown)] = _sinks(" | ".join("***" for _ in shown), Path(tmp) / "plain")
        needles = _needles(value)
        assume(not any(n in text for n in needles for text in PLAIN[len(shown)].values()))
        Secret(value)  # resolved by a handler: known from now on
        sinks = _sinks(" | ".join(shown.values()), Path(tmp) / "secret")
    leaks = [
        f"{sink}: {name} {rendered!r}"
        for sink, text in sinks.items()
        for name, rendered in shown.items()
        if rendered and any(n in text for n in _needles_of(rendered))
    ]
    assert not leaks, "\n".join(leaks)
    CHECKED.append(len(shown) * len(sinks))


def _needles_of(rendered: str) -> set[str]:
    return {rendered, json.dumps(rendered)[1:-1]}


def test_the_property_test_checked_enough() -> None:
    """Record the figure: renderings x sinks checked (printed with ``-s``)."""
    if not CHECKED:  # run on its own: the property test above runs first in this module
        return
    print(f"\nsecret renderings x sinks checked: {sum(CHECKED)} over {len(CHECKED)} secrets")
    assert sum(CHECKED) >= 100


def test_a_short_secret_is_not_scrubbed_and_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with _own_scrubber(), caplog.at_level(logging.WARNING, logger="tdm.secrets"):
        provider = MappingSecrets({"Legacy": {"user": "tdm", "pin": "7/1", "token": "t0k3"}})
        assert provider.section("Legacy")["pin"].reveal() == "7/1"
        MappingSecrets({"Legacy": {"user": "tdm"}}).section("Legacy")  # warned once only
        assert scrub("tdm history: login of tdm with 7/1 and t0k3") == (
            "tdm history: login of tdm with 7/1 and ***"
        )
    assert [r.getMessage() for r in caplog.records] == [
        f"secret 'Legacy' key {key!r} is shorter than 4 characters, too short to scrub from "
        "messages without garbling them: it may show in logs and errors; use a longer value "
        "if it is a credential"
        for key in ("user", "pin")
    ]
