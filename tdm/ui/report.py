"""``tdm report --html``: the run browser's pages as one self-contained HTML file.

The file has inline styles, no script and no external resource, so it opens from a CI
artifact, an e-mail or a notebook as it is. Links between its parts are anchors in the file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Final

from tdm.effects.state import RunRecord, StateStore
from tdm.errors import InputError
from tdm.ui.pages import Links, document, pipeline_section, run_section, runs_table

__all__ = ["record_html", "report_html", "write_report"]

RECENT: Final = 20
"""How many recent runs a pipeline or overview report includes in full."""

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")


def _anchor(run_id: str) -> str:
    return "run-" + _UNSAFE.sub("_", run_id)


def _links(included: set[str], pipeline_anchor: str | None = None) -> Links:
    return Links(
        run=lambda run_id: f"#{_anchor(run_id)}" if run_id in included else None,
        pipeline=lambda pid: f"#{pipeline_anchor}" if pipeline_anchor else None,
        node=lambda run_id, index: f"#{_anchor(run_id)}-node-{index}",
    )


def record_html(run: RunRecord) -> str:
    """One run's page as a self-contained HTML document (what ``RunReport`` embeds)."""
    name = run.pipeline_name or run.pipeline_id
    body = run_section(run, _links({run.run_id}), anchor=_anchor(run.run_id))
    return document(f"{name} run {run.run_id[:12]}", body, csp=True)


def report_html(store: StateStore, *, run: str | None = None, pipeline: str | None = None) -> str:
    """The report as HTML text: one run, one pipeline (with its recent runs) or the latest runs.

    ``InputError`` when the run or the pipeline is not in ``store``.
    """
    if run is not None and pipeline is not None:
        raise InputError("give --run or --pipeline, not both")
    if run is not None:
        try:
            return record_html(store.get(run))
        except KeyError:
            raise InputError(f"no run {run!r} in {store.describe()}") from None
    runs = store.runs(pipeline=pipeline, limit=RECENT, nodes=True)
    included = {r.run_id for r in runs}
    if pipeline is not None:
        if not runs:
            raise InputError(
                f"no runs of pipeline {pipeline!r} in {store.describe()} (see tdm history)"
            )
        links = _links(included, "pipeline")
        head = f'<section id="pipeline">{pipeline_section(store, pipeline, links)}</section>'
        title = f"tdm report: {runs[0].pipeline_name or runs[0].pipeline_id}"
    else:
        links = _links(included)
        head = f"<h1>Latest runs</h1>{runs_table(runs, links)}"
        title = "tdm report: latest runs"
    details = "".join("<hr>" + run_section(r, links, anchor=_anchor(r.run_id)) for r in runs)
    return document(title, head + details, csp=True)


def write_report(
    path: str | os.PathLike[str],
    store: StateStore,
    *,
    run: str | None = None,
    pipeline: str | None = None,
) -> Path:
    """Write :func:`report_html` to ``path`` atomically (a failure leaves no half a file)."""
    text = report_html(store, run=run, pipeline=pipeline)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
