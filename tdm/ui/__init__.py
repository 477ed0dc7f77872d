"""The run browser: read-only pages over an audit store (``pip install 'tdm-pipelines[ui]'``).

``tdm ui`` serves them locally (:func:`serve`); ``tdm report --html`` writes them as one
self-contained file (:func:`write_report`). They read a store only through its public read
API (``runs``, ``count``, ``pipelines``, ``get``), never the interpreter's internals.

>>> import tdm, pandas as pd
>>> store = tdm.state.memory()
>>> _ = tdm.run(tdm.inputs.frame("x"), inputs={"x": pd.DataFrame({"a": [1]})},
...             runtime=tdm.Runtime(state=store), pipeline_id="<demo>")
>>> page = report_html(store, pipeline="<demo>")
>>> "&lt;demo&gt;" in page and "<demo>" not in page
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tdm.ui.report import record_html, report_html, write_report

if TYPE_CHECKING:
    from tdm.effects.state import StateStore

__all__ = ["record_html", "report_html", "serve", "write_report"]


def serve(store: StateStore, **options: Any) -> None:
    """Serve the run browser over ``store`` (see :func:`tdm.ui.app.serve`; needs starlette
    and uvicorn: ``pip install 'tdm-pipelines[ui]'``)."""
    from tdm.ui.app import serve as _serve

    _serve(store, **options)
