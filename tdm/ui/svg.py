"""Pictures as inline SVG text: the pipeline's DAG, a run's timeline, small charts.

No JavaScript and no system binary: the DAG is placed by a small layered layout
(:func:`layered_layout`, after Sugiyama: layers by longest path, long edges broken by
virtual points, a few barycentre sweeps to untangle crossings). Every text that comes from a
record is escaped here.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from tdm.ui.model import NodeView, duration_text

if TYPE_CHECKING:
    from tdm.core.pipeline import Pipeline

__all__ = [
    "STATUS_COLOURS",
    "Layout",
    "bar_chart",
    "dag_svg",
    "gantt_svg",
    "layered_layout",
    "pipeline_svg",
]

STATUS_COLOURS: Final = {
    "SUCCESS": "#2e7d32",
    "FAILURE": "#c62828",
    "SKIPPED": "#9e9e9e",
    "RUNNING": "#1565c0",
    "QUEUED": "#b0bec5",
}
_FILL: Final = {
    "SUCCESS": "#e8f5e9",
    "FAILURE": "#ffebee",
    "SKIPPED": "#f5f5f5",
    "RUNNING": "#e3f2fd",
    "QUEUED": "#eceff1",
}
_OTHER: Final = "#546e7a"

_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _PAD = 150, 44, 40, 18, 12


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each node goes: ``layer`` (column) and ``order`` (row within the column);
    ``routes[(parent, child)]`` lists the (layer, order) points a long edge passes through."""

    layer: tuple[int, ...]
    order: tuple[float, ...]
    routes: dict[tuple[int, int], tuple[tuple[int, float], ...]]
    width: int
    height: int


def _topological(parents: Sequence[Sequence[int]]) -> list[int]:
    """Positions with every parent before its children (Kahn); what a cycle leaves, last."""
    n = len(parents)
    waiting = [len({p for p in ps if 0 <= p < n and p != i}) for i, ps in enumerate(parents)]
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(parents):
        for p in {p for p in ps if 0 <= p < n and p != i}:
            children[p].append(i)
    ready = [i for i in range(n) if waiting[i] == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    seen = set(order)
    return order + [i for i in range(n) if i not in seen]


def layered_layout(parents: Sequence[Sequence[int]]) -> Layout:
    """Place a DAG given each node's parents (positions in any order).

    An edge that does not go to a later layer (a cycle in a damaged record) is not drawn.

    >>> lay = layered_layout([[], [], [0, 1], [2]])
    >>> lay.layer
    (0, 0, 1, 2)
    >>> lay.width, lay.height
    (3, 2)
    >>> layered_layout([[2], [], [1]]).layer
    (2, 0, 1)
    """
    n = len(parents)
    layer = [0] * n
    placed: set[int] = set()
    for i in _topological(parents):
        for p in parents[i]:
            if p in placed:
                layer[i] = max(layer[i], layer[p] + 1)
        placed.add(i)
    # virtual points for edges longer than one layer: ids n, n+1, ...
    up: dict[int, list[int]] = {i: [] for i in range(n)}
    chains: dict[tuple[int, int], list[int]] = {}
    vlayer: list[int] = []
    for child in range(n):
        for p in parents[child]:
            if not 0 <= p < n or layer[p] >= layer[child]:
                continue
            prev = p
            chain: list[int] = []
            for lay in range(layer[p] + 1, layer[child]):
                v = n + len(vlayer)
                vlayer.append(lay)
                up[v] = [prev]
                chain.append(v)
                prev = v
            up[child].append(prev)
            chains[(p, child)] = chain
    all_layer = layer + vlayer
    total = len(all_layer)
    down: dict[int, list[int]] = {i: [] for i in range(total)}
    for c, ps in up.items():
        for p in ps:
            down[p].append(c)
    depth = max(all_layer, default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for i in range(total):
        rows[all_layer[i]].append(i)
    pos = [0.0] * total
    for row in rows:
        for k, i in enumerate(row):
            pos[i] = float(k)

    def sweep(order: range, links: dict[int, list[int]]) -> None:
        for lay in order:
            row = rows[lay]

            def centre(i: int) -> float:
                linked = links[i]
                return sum(pos[j] for j in linked) / len(linked) if linked else pos[i]

            row.sort(key=lambda i: (centre(i), pos[i]))
            for k, i in enumerate(row):
                pos[i] = float(k)

    for _ in range(4):
        sweep(range(1, depth), up)
        sweep(range(depth - 2, -1, -1), down)
    height = max((len(r) for r in rows), default=0)
    # centre each column against the tallest one
    for row in rows:
        shift = (height - len(row)) / 2
        for i in row:
            pos[i] += shift
    routes = {edge: tuple((all_layer[v], pos[v]) for v in chain) for edge, chain in chains.items()}
    return Layout(tuple(layer), tuple(pos[:n]), routes, depth, height)


def _status_line(node: NodeView, sub: str) -> str:
    if not node.status:  # a pipeline that has not run: say what the node is
        return _short(node.description, 24)
    return f"{node.status.lower()} · {_short(sub, 19)}"


def _xy(layer: int, order: float) -> tuple[float, float]:
    return _PAD + layer * (_NODE_W + _GAP_X), _PAD + order * (_NODE_H + _GAP_Y)


def dag_svg(nodes: Sequence[NodeView], *, href: Callable[[NodeView], str] | None = None) -> str:
    """The run's DAG, left to right, each node coloured by its status.

    Each node is a ``<g class="node" data-status=...>`` with its full name, kind, status and
    error in a ``<title>`` tooltip; ``href`` makes it a link (to its row of the node table).
    Without recorded parents (older records) the nodes stand in one column, unlinked.
    """
    parents = [list(n.parents or ()) for n in nodes]
    lay = layered_layout(parents)
    width = _PAD * 2 + max(lay.width, 1) * (_NODE_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max(lay.height, 1) * (_NODE_H + _GAP_Y) - _GAP_Y
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="pipeline graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#78909c"/></marker></defs>',
    ]
    for child, ps in enumerate(parents):
        for p in ps:
            if not 0 <= p < len(nodes) or lay.layer[p] >= lay.layer[child]:
                continue
            x0, y0 = _xy(lay.layer[p], lay.order[p])
            points = [(x0 + _NODE_W, y0 + _NODE_H / 2)]
            for vl, vo in lay.routes.get((p, child), ()):
                vx, vy = _xy(vl, vo)
                points += [(vx, vy + _NODE_H / 2), (vx + _NODE_W, vy + _NODE_H / 2)]
            x1, y1 = _xy(lay.layer[child], lay.order[child])
            points.append((x1, y1 + _NODE_H / 2))
            path = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
            for (ax, ay), (bx, by) in itertools.pairwise(points):
                mid = (ax + bx) / 2
                path += f" C{mid:.1f},{ay:.1f} {mid:.1f},{by:.1f} {bx:.1f},{by:.1f}"
            parts.append(
                f'<path class="edge" data-from="{_e(nodes[p].name)}" '
                f'data-to="{_e(nodes[child].name)}" d="{path}" fill="none" stroke="#90a4ae" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    for i, node in enumerate(nodes):
        x, y = _xy(lay.layer[i], lay.order[i])
        stroke = STATUS_COLOURS.get(node.status, _OTHER)
        fill = _FILL.get(node.status, "#ffffff")
        tip = f"{node.name}\n{node.kind} · {node.status}"
        if node.duration_s is not None:
            tip += f" · {duration_text(node.duration_s)}"
        if node.error:
            tip += f"\n{_short(node.error, 400)}"
        radius = 4 if node.kind != "effect" else 14
        dash = ' stroke-dasharray="4 2"' if node.status == "SKIPPED" else ""
        sub = "restored" if node.restored else node.kind
        sub += f" · {node.rows_out} rows" if node.rows_out is not None else ""
        shape = (
            f'<g class="node" data-name="{_e(node.name)}" data-status="{_e(node.status)}" '
            f'data-kind="{_e(node.kind)}"><title>{_e(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_NODE_W}" height="{_NODE_H}" '
            f'rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{x + 10:.1f}" y="{y + 18:.1f}" font-size="12" font-weight="600" '
            f'fill="#263238">{_e(_short(node.name, 21))}</text>'
            f'<text x="{x + 10:.1f}" y="{y + 34:.1f}" font-size="10.5" fill="{stroke}">'
            f"{_e(_status_line(node, sub))}</text></g>"
        )
        if href is not None:
            shape = f'<a href="{_e(href(node))}">{shape}</a>'
        parts.append(shape)
    parts.append("</svg>")
    return "".join(parts)


def pipeline_svg(pipeline: Pipeline) -> str:
    """A pipeline's DAG as inline SVG (nothing has run: every node is drawn alike).

    >>> import tdm
    >>> from tdm.transforms import filter_rows
    >>> svg = pipeline_svg(tdm.inputs.frame("orders") >> filter_rows("a > 1"))
    >>> svg.startswith("<svg") and 'data-name="filter_rows"' in svg
    True
    """
    plan = pipeline.plan
    nodes = [
        NodeView(
            index=i,
            name=plan.names[i],
            kind=node.op.kind,
            status="",
            description=plan.descriptions[i],
            parents=plan.parents[i],
            start=None,
            stop=None,
            duration_s=None,
            rows_in=None,
            rows_out=None,
            columns=None,
            dtypes=None,
            schema=None,
            error=None,
        )
        for i, node in enumerate(plan.nodes)
    ]
    return dag_svg(nodes)


def max_parallel(nodes: Sequence[NodeView]) -> int:
    """The most nodes that were running at one moment.

    >>> from datetime import UTC, datetime as dt
    >>> def n(a, b):
    ...     return NodeView(0, "x", "pipe", "SUCCESS", "", (), dt.fromtimestamp(a, UTC),
    ...                     dt.fromtimestamp(b, UTC), b - a, None, None, None, None, None, None)
    >>> max_parallel([n(0, 2), n(1, 3), n(3, 4)])
    2
    """
    events: list[tuple[datetime, int]] = []
    for node in nodes:
        if node.start is not None and node.stop is not None and node.stop > node.start:
            events += [(node.start, 1), (node.stop, -1)]
    events.sort(key=lambda e: (e[0], e[1]))  # a stop before a start at the same instant
    best = running = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


def gantt_svg(nodes: Sequence[NodeView]) -> str:
    """A timeline: one row per node that ran, a bar from its start to its finish.

    Bars that overlap in time ran in parallel. Each bar is a ``<rect class="bar">`` with
    ``data-name``, ``data-start-ms`` and ``data-stop-ms`` (from the run's first start).
    """
    timed = [n for n in nodes if n.start is not None and n.stop is not None]
    if not timed:
        return '<p class="muted">No node has start and finish times in this record.</p>'
    timed.sort(key=lambda n: (n.start, n.index))
    t0 = min(n.start for n in timed if n.start is not None)
    t1 = max(n.stop for n in timed if n.stop is not None)
    span = max((t1 - t0).total_seconds(), 1e-6)
    label_w, chart_w, row_h, top = 190, 620, 22, 24
    width = label_w + chart_w + 20
    height = top + row_h * len(timed) + 8
    parts = [
        f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="timeline">'
    ]
    for k in range(5):
        x = label_w + chart_w * k / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 4}" '
            'stroke="#eceff1"/>'
            f'<text x="{x:.1f}" y="{top - 10}" font-size="10" fill="#78909c" '
            f'text-anchor="middle">{_e(duration_text(span * k / 4) or "0 ms")}</text>'
        )
    for row, node in enumerate(timed):
        assert node.start is not None and node.stop is not None
        start = (node.start - t0).total_seconds()
        stop = (node.stop - t0).total_seconds()
        x = label_w + chart_w * start / span
        w = max(chart_w * (stop - start) / span, 2.0)
        y = top + row * row_h
        colour = STATUS_COLOURS.get(node.status, _OTHER)
        tip = f"{node.name}: {duration_text(stop - start)} ({node.status})"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" font-size="11" text-anchor="end" '
            f'fill="#37474f">{_e(_short(node.name, 28))}</text>'
            f'<rect class="bar" data-name="{_e(node.name)}" data-status="{_e(node.status)}" '
            f'data-start-ms="{start * 1000:.3f}" data-stop-ms="{stop * 1000:.3f}" '
            f'x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{colour}"><title>{_e(tip)}</title></rect>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    values: Sequence[float | None],
    *,
    colours: Sequence[str],
    titles: Sequence[str],
    label: str,
    css_class: str,
    fmt: Callable[[float], str],
) -> str:
    """A small bar chart (oldest left), one bar per run; a missing value leaves a gap."""
    width, height, pad = 640, 90, 16
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) or 1.0
    step = min((width - 2) / max(len(values), 1), 24.0)
    parts = [
        f'<svg class="chart {_e(css_class)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height + pad}" viewBox="0 0 {width} {height + pad}" '
        f'role="img" aria-label="{_e(label)}">',
        f'<text x="2" y="11" font-size="10" fill="#78909c">{_e(label)} (max {_e(fmt(top))})</text>',
    ]
    for i, value in enumerate(values):
        if value is None:
            continue
        h = max((height - 4) * value / top, 1.0)
        x = 1 + i * step
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{pad + height - h:.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{h:.1f}" fill="{colours[i]}">'
            f"<title>{_e(titles[i])}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)
