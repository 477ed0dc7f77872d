"""The run browser's pages as HTML text: the runs list, a run, a pipeline.

Pure functions of audit records (read through a store's public API) and a :class:`Links`
value that says where links point: the web app links to its routes, the self-contained
report to anchors in the same file. Every text from a record is escaped, secret-looking
parameters are hidden, and the pages need no JavaScript (the app forbids scripts outright).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import urlencode

from tdm.effects.secrets import scrub
from tdm.effects.state import RunRecord, StateStore
from tdm.ui.model import (
    NodeView,
    day_bounds,
    drift,
    duration_text,
    node_views,
    param_items,
    resumed_from,
    schema_changes,
    time_text,
)
from tdm.ui.svg import STATUS_COLOURS, bar_chart, dag_svg, gantt_svg, max_parallel

__all__ = [
    "Links",
    "RunsQuery",
    "document",
    "pipeline_section",
    "run_section",
    "runs_section",
    "runs_table",
]

DASH: Final = "\u2013"
MORE: Final = "\u2026"
STATUSES: Final = ("SUCCESS", "FAILURE", "RUNNING")
PER_PAGE: Final = 50
HISTORY: Final = 100
"""How many recent runs the pipeline view charts and compares."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _text(value: object) -> str:
    """A record's value as escaped, scrubbed text ('' for None)."""
    return "" if value is None else _e(scrub(str(value)))


def _num(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@dataclass(frozen=True, slots=True)
class Links:
    """Where links go. A function returning None means "not linked" (plain text)."""

    run: Callable[[str], str | None]
    pipeline: Callable[[str], str | None]
    node: Callable[[str, int], str] = lambda run_id, index: f"#node-{index}"


def _a(href: str | None, text: str, css: str = "") -> str:
    """A link around already-escaped ``text`` (or the text alone)."""
    cls = f' class="{css}"' if css else ""
    return f'<a{cls} href="{_e(href)}">{text}</a>' if href else text


def _status(status: str) -> str:
    return f'<span class="status s-{_e(status)}">{_e(status)}</span>'


CSS: Final = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#263238;
background:#fafafa}
header{background:#263238;color:#eceff1;padding:10px 24px;display:flex;gap:24px;
align-items:baseline}
header b{font-size:16px} header a{color:#b0bec5;text-decoration:none} header a:hover{color:#fff}
main{padding:16px 24px;max-width:1400px}
h1{font-size:20px;margin:4px 0 12px} h2{font-size:16px;margin:22px 0 8px}
a{color:#1565c0}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0001;width:100%}
th,td{padding:5px 9px;border-bottom:1px solid #eceff1;text-align:left;vertical-align:top}
th{background:#f5f7f8;font-weight:600;font-size:12px;color:#546e7a;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:target td{background:#fff8e1}
.status{display:inline-block;padding:1px 7px;border-radius:9px;font-size:11px;font-weight:700;
color:#fff;background:#546e7a}
.s-SUCCESS{background:#2e7d32}.s-FAILURE{background:#c62828}.s-SKIPPED{background:#9e9e9e}
.s-RUNNING{background:#1565c0}.s-QUEUED{background:#b0bec5}
.err{color:#b71c1c;white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;
font-size:12px}
.skip{color:#616161;font-style:italic}
.muted{color:#78909c}
.facts{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:3px 14px;
background:#fff;padding:10px 14px;box-shadow:0 1px 2px #0001}
.facts dt{color:#78909c} .facts dd{margin:0}
form.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:end;margin-bottom:12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#546e7a}
form.filters select,form.filters input{font:inherit;padding:3px 5px}
.pager{margin:10px 0;display:flex;gap:14px;align-items:center}
.scroll{overflow-x:auto;background:#fff;box-shadow:0 1px 2px #0001;padding:8px}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
.params span{display:inline-block;margin-right:8px;white-space:nowrap}
.problem{background:#ffebee;border-left:4px solid #c62828;padding:8px 12px;margin:8px 0}
.tiles{display:flex;gap:12px;flex-wrap:wrap} .tile{background:#fff;padding:8px 14px;
box-shadow:0 1px 2px #0001} .tile b{display:block;font-size:20px}
details summary{cursor:pointer;color:#546e7a}
"""


def document(title: str, body: str, *, nav: str = "", csp: bool = False) -> str:
    """A whole HTML page (self-contained: inline styles, no scripts, no external resources)."""
    policy = (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        if csp
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{policy}'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><b>tdm</b>{nav}</header><main>{body}</main></body></html>"
    )


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """The runs list's filters and page, from a URL's query (validated)."""

    pipeline: str | None = None
    status: str | None = None
    since: str | None = None
    until: str | None = None
    page: int = 1
    per_page: int = PER_PAGE
    problems: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> RunsQuery:
        """Filters from ``query``; a bad value is dropped and described in ``problems``."""
        problems: list[str] = []
        status = (query.get("status") or "").upper() or None
        if status is not None and status not in STATUSES:
            problems.append(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
            status = None
        since, until = query.get("since") or None, query.get("until") or None
        try:
            day_bounds(since, None)
        except ValueError as exc:
            problems.append(str(exc))
            since = None
        try:
            day_bounds(None, until)
        except ValueError as exc:
            problems.append(str(exc))
            until = None
        page = 1
        try:
            page = max(int(query.get("page") or 1), 1)
        except ValueError:
            problems.append(f"page must be a whole number, got {query.get('page')!r}")
        return cls(
            pipeline=query.get("pipeline") or None,
            status=status,
            since=since,
            until=until,
            page=page,
            problems=tuple(problems),
        )

    def params(self, **changes: object) -> dict[str, str]:
        """The query string's fields (for links to other pages of the same list)."""
        values: dict[str, object] = {
            "pipeline": self.pipeline,
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "page": self.page if self.page != 1 else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v is not None}


def _params_cell(run: RunRecord) -> str:
    items = param_items(run.params or {})
    return (
        '<span class="params">'
        + "".join(
            f"<span><code>{_e(k)}={_e(v if len(v) <= 40 else v[:39] + MORE)}</code></span>"
            for k, v in items
        )
        + "</span>"
    )


def runs_table(runs: Sequence[RunRecord], links: Links) -> str:
    """The runs as a table, newest first: status, pipeline, start, duration, rows, params."""
    head = (
        '<table class="runs"><thead><tr><th>status</th><th>pipeline</th><th>run</th>'
        "<th>started</th><th>duration</th><th>rows in</th><th>rows out</th><th>params</th>"
        "<th>resumed from</th><th>error</th></tr></thead><tbody>"
    )
    rows = []
    for run in runs:
        name = run.pipeline_name or run.pipeline_id
        origin = resumed_from(run)
        error = scrub(run.error or "")
        rows.append(
            f'<tr class="run" data-run-id="{_e(run.run_id)}" data-status="{_e(run.status)}">'
            f"<td>{_status(run.status)}</td>"
            f"<td>{_a(links.pipeline(run.pipeline_id), _e(name))}</td>"
            f'<td class="mono">{_a(links.run(run.run_id), _e(run.run_id[:12]), "run-link")}</td>'
            f"<td>{_e(time_text(run.started_at))}</td>"
            f'<td class="num">{_e(duration_text(run.duration_s))}</td>'
            f'<td class="num">{_num(run.rows_in)}</td><td class="num">{_num(run.rows_out)}</td>'
            f"<td>{_params_cell(run)}</td>"
            f'<td class="mono">{_a(links.run(origin), _e(origin[:12])) if origin else ""}</td>'
            f'<td class="err">{_e(error[:160] + (MORE if len(error) > 160 else ""))}</td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="10" class="muted">No runs match.</td></tr>')
    return head + "".join(rows) + "</tbody></table>"


def _filters(query: RunsQuery, pipelines: Sequence[tuple[str, str]]) -> str:
    options = ['<option value="">all pipelines</option>']
    for pid, name in pipelines:
        chosen = " selected" if query.pipeline in (pid, name) else ""
        label = name if not name or name == pid else f"{name} ({pid})"
        options.append(f'<option value="{_e(pid)}"{chosen}>{_e(label or pid)}</option>')
    statuses = ['<option value="">any status</option>'] + [
        f'<option value="{s}"{" selected" if query.status == s else ""}>{s.lower()}</option>'
        for s in STATUSES
    ]
    return (
        '<form class="filters" method="get" action="/">'
        f'<label>pipeline<select name="pipeline">{"".join(options)}</select></label>'
        f'<label>status<select name="status">{"".join(statuses)}</select></label>'
        f'<label>from<input type="date" name="since" value="{_e(query.since or "")}"></label>'
        f'<label>to<input type="date" name="until" value="{_e(query.until or "")}"></label>'
        '<button type="submit">filter</button> <a href="/">clear</a></form>'
    )


def runs_section(store: StateStore, query: RunsQuery, links: Links, *, form: bool = True) -> str:
    """The runs page's body: filters, one page of runs (read as one page), a pager."""
    since, until = day_bounds(query.since, query.until)
    filters = {"pipeline": query.pipeline, "status": query.status, "since": since, "until": until}
    total = store.count(**filters)
    pages = max((total + query.per_page - 1) // query.per_page, 1)
    page = min(query.page, pages)
    runs = store.runs(
        **filters, limit=query.per_page, offset=(page - 1) * query.per_page, nodes=False
    )
    parts = ["<h1>Runs</h1>"]
    parts += [f'<div class="problem">{_e(p)}</div>' for p in query.problems]
    if form:
        parts.append(_filters(query, store.pipelines()))
    first = (page - 1) * query.per_page + 1 if total else 0
    last = first + len(runs) - 1 if runs else 0
    pager = [f'<span class="count">{first:,}{DASH}{last:,} of {total:,} runs</span>']
    if form and page > 1:
        prev = urlencode(query.params(page=page - 1 if page > 2 else None))
        pager.append(f'<a rel="prev" href="/?{_e(prev)}">\u2190 newer</a>')
    if form and page < pages:
        pager.append(f'<a rel="next" href="/?{_e(urlencode(query.params(page=page + 1)))}">'
                     "older \u2192</a>")  # fmt: skip
    if form:
        pager.append(f'<span class="muted">page {page} of {pages}</span>')
    parts.append(f'<div class="pager">{"".join(pager)}</div>')
    parts.append(runs_table(runs, links))
    return "".join(parts)


def _facts(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items if v)
        + "</dl>"
    )


def run_section(run: RunRecord, links: Links, *, anchor: str = "") -> str:
    """One run: what, when, outcome; its DAG; one row per node; the timeline; parameters."""
    nodes = node_views(run)
    name = run.pipeline_name or run.pipeline_id
    origin = resumed_from(run)
    error = scrub(run.error) if run.error else ""
    hook_errors = "".join(f'<div class="err">{_text(h)}</div>' for h in run.hook_errors)
    facts = _facts(
        [
            ("status", _status(run.status)),
            ("pipeline", _a(links.pipeline(run.pipeline_id), _e(name))
             + (f' <span class="muted">({_e(run.pipeline_id)})</span>'
                if name != run.pipeline_id else "")),
            ("run id", f'<span class="mono">{_e(run.run_id)}</span>'),
            ("job id", f'<span class="mono">{_text(run.job_id)}</span>' if run.job_id else ""),
            ("resumed from", _a(links.run(origin), f'<span class="mono">{_e(origin)}</span>')
             if origin else ""),
            ("started", _e(time_text(run.started_at))),
            ("finished", _e(time_text(run.finished_at))),
            ("duration", _e(duration_text(run.duration_s))),
            ("rows in / out", f"{_num(run.rows_in) or DASH} / "
             f"{_num(run.rows_out) or DASH}"),
            ("executor", _text(run.executor)),
            ("tdm version", _text(run.tdm_version)),
            ("host", _text(run.host)),
            ("error", f'<span class="err">{_e(error)}</span>' if error else ""),
            ("schema drift", "".join(f"<div>{_e(d)}</div>" for d in drift(run))),
            ("audit problems", hook_errors),
        ]
    )  # fmt: skip
    parts = [
        f'<section class="run-detail"{f" id={chr(34)}{_e(anchor)}{chr(34)}" if anchor else ""}>'
        f"<h1>Run of {_e(name)} {_status(run.status)}</h1>",
        facts,
    ]
    failed = [n for n in nodes if n.status == "FAILURE"]
    if failed:
        parts.append(
            '<div class="problem failed-nodes">Failed: '
            + ", ".join(_a(links.node(run.run_id, n.index), f"<b>{_e(n.name)}</b>") for n in failed)
            + "</div>"
        )
    if nodes:
        linked = any(n.parents is not None for n in nodes)
        note = "" if linked else '<p class="muted">This record has no edges (older tdm).</p>'
        parts.append(
            "<h2>Graph</h2>" + note + '<div class="scroll">'
            + dag_svg(nodes, href=lambda n: links.node(run.run_id, n.index))
            + "</div>"
        )  # fmt: skip
        most = max_parallel(nodes)
        parts.append(
            f'<h2>Timeline <span class="muted parallel">up to {most} '
            f"node{'s' if most != 1 else ''} running at once</span></h2>"
            f'<div class="scroll">{gantt_svg(nodes)}</div>'
        )
        parts.append("<h2>Nodes</h2>" + _node_table(run, nodes, links))
    else:
        parts.append('<p class="muted">No node records (the run may still be going).</p>')
    items = param_items(run.params or {})
    if items:
        parts.append(
            '<h2>Parameters</h2><table class="params-table"><tbody>'
            + "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in items)
            + "</tbody></table>"
        )
    if run.plan:
        parts.append(
            f'<h2>Plan</h2><details><summary>plan as text</summary><pre class="mono">'
            f"{_text(run.plan)}</pre></details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _schema_cell(columns: Sequence[str] | None, dtypes: Sequence[str] | None) -> str:
    if columns is None:
        return ""
    types = list(dtypes or ())
    rows = "".join(
        f"<div><code>{_e(c)}</code> <span class='muted'>{_e(types[i] if i < len(types) else '')}"
        "</span></div>"
        for i, c in enumerate(columns)
    )
    return f"<details><summary>{len(columns)} columns</summary>{rows}</details>"


def _node_table(run: RunRecord, nodes: Sequence[NodeView], links: Links) -> str:
    rows = []
    for n in nodes:
        if n.error and n.status == "SKIPPED":
            text = n.error if n.error.lower().startswith("skipped") else f"skipped: {n.error}"
            why = f'<span class="skip">{_e(text)}</span>'
        elif n.error:
            why = f'<span class="err">{_e(n.error)}</span>'
        else:
            why = ""
        desc = (
            f'<div class="muted mono">{_e(n.description)}</div>'
            if n.description and n.description != n.name
            else ""
        )
        anchor = links.node(run.run_id, n.index).lstrip("#")
        rows.append(
            f'<tr id="{_e(anchor)}" class="node-row" data-name="{_e(n.name)}" '
            f'data-status="{_e(n.status)}"><td><b>{_e(n.name)}</b>{desc}</td>'
            f"<td>{_e(n.kind)}</td><td>{_status(n.status)}"
            f"{' <span class=muted>restored</span>' if n.restored else ''}</td>"
            f'<td class="num">{_e(duration_text(n.duration_s))}</td>'
            f'<td class="num">{_num(n.rows_in)}</td><td class="num">{_num(n.rows_out)}</td>'
            f"<td>{_schema_cell(n.columns, n.dtypes)}</td><td>{why}</td></tr>"
        )
    return (
        '<table class="nodes"><thead><tr><th>node</th><th>kind</th><th>status</th>'
        "<th>duration</th><th>rows in</th><th>rows out</th><th>schema</th>"
        "<th>error / skip reason</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def pipeline_section(store: StateStore, pipeline: str, links: Links) -> str:
    """One pipeline over time: success rate, duration and rows charts, schema changes."""
    runs = store.runs(pipeline=pipeline, limit=HISTORY, nodes=True)
    if not runs:
        return f"<h1>Pipeline {_e(pipeline)}</h1><p class='muted'>No runs recorded.</p>"
    total = store.count(pipeline=pipeline)
    name = runs[0].pipeline_name or runs[0].pipeline_id
    finished = [r for r in runs if r.status in ("SUCCESS", "FAILURE")]
    ok = sum(1 for r in finished if r.status == "SUCCESS")
    rate = f"{100 * ok / len(finished):.0f}%" if finished else "\u2013"
    oldest_first = list(reversed(runs))
    colours = [STATUS_COLOURS.get(r.status, "#546e7a") for r in oldest_first]
    titles = [
        f"{time_text(r.started_at)} {r.status} {duration_text(r.duration_s)} "
        f"rows out {_num(r.rows_out) or DASH}"
        for r in oldest_first
    ]
    durations = bar_chart(
        [r.duration_s for r in oldest_first],
        colours=colours,
        titles=titles,
        label="duration per run",
        css_class="durations",
        fmt=duration_text,
    )
    rows = bar_chart(
        [float(r.rows_out) if r.rows_out is not None else None for r in oldest_first],
        colours=colours,
        titles=titles,
        label="rows out per run",
        css_class="rows",
        fmt=lambda v: f"{v:,.0f}",
    )
    tiles = (
        '<div class="tiles">'
        f'<div class="tile success-rate"><b>{rate}</b>success rate ({ok} of {len(finished)} '
        "finished runs shown)</div>"
        f"<div class='tile'><b>{total:,}</b>runs recorded</div>"
        f"<div class='tile'><b>{_e(time_text(runs[0].started_at))}</b>last run "
        f"{_status(runs[0].status)}</div></div>"
    )
    changes = schema_changes(runs)
    if changes:
        change_rows = "".join(
            f"<tr><td>{_e(time_text(c.started_at))}</td>"
            f'<td class="mono">{_a(links.run(c.run_id), _e(c.run_id[:12]))}</td>'
            f"<td>{_e(', '.join(c.nodes))}</td><td>{_e(', '.join(c.added))}</td>"
            f"<td>{_e(', '.join(c.removed))}</td><td>{_e('; '.join(c.retyped))}</td></tr>"
            for c in changes
        )
        schema = (
            '<table class="schema-changes"><thead><tr><th>run started</th><th>run</th>'
            "<th>nodes</th><th>columns added</th><th>columns removed</th><th>types changed</th>"
            f"</tr></thead><tbody>{change_rows}</tbody></table>"
        )
    else:
        schema = '<p class="muted">No schema changes in the runs shown.</p>'
    return (
        f'<h1>Pipeline {_e(name)} <span class="muted">({_e(runs[0].pipeline_id)})</span></h1>'
        f"{tiles}<h2>Runs over time <span class='muted'>(last {len(runs)}, oldest left)</span>"
        f'</h2><div class="scroll">{durations}{rows}</div>'
        f"<h2>Schema changes</h2>{schema}"
        f"<h2>Recent runs</h2>{runs_table(runs[:20], links)}"
    )


def with_problems(query: RunsQuery, *problems: str) -> RunsQuery:
    """``query`` with more problems to show."""
    return replace(query, problems=query.problems + problems)
