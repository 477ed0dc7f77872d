"""Live progress of a run: per-node status and rows on a terminal (rich), a compact line in
Jupyter, nothing when nobody is watching.

``Runtime(progress=None)`` (the default's choice) shows progress only on an interactive
terminal or in a notebook; ``True`` always shows it (on stderr when there is no terminal);
``False`` never does. The hook only updates counters: drawing happens at most a few times a
second, so progress costs the run next to nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import IO, Any, Final

from tdm.interpreter.hooks import Hook
from tdm.interpreter.report import NodeReport, RunReport, Status

__all__ = ["JupyterProgress", "TerminalProgress", "in_notebook", "progress_hook"]

_COLOURS: Final = {
    "SUCCESS": "green",
    "FAILURE": "bold red",
    "SKIPPED": "dim",
    "RUNNING": "yellow",
    "QUEUED": "dim",
}
_RECENT: Final = 8  # finished nodes shown under the running ones


def in_notebook() -> bool:
    """Whether we run inside a Jupyter kernel."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_hook(setting: bool | None, *, stream: IO[str] | None = None) -> Hook | None:
    """The progress hook for ``Runtime(progress=setting)``, or None when it stays silent."""
    if setting is False:
        return None
    if in_notebook():
        return JupyterProgress()
    out = stream if stream is not None else sys.stderr
    interactive = bool(getattr(out, "isatty", lambda: False)())
    if setting is None and not interactive:
        return None
    return TerminalProgress(stream=out, force_terminal=None if interactive else False)


class _State:
    """What the display shows; updated by the hook, read by the renderer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.rows_out = 0
        self.running: dict[str, float] = {}
        self.recent: deque[NodeReport] = deque(maxlen=_RECENT)
        self.started = time.perf_counter()
        self.title = ""

    def start(self, report: RunReport) -> None:
        self.total = len(report.nodes)
        self.title = f"{report.pipeline_name} · run {report.run_id}"
        self.started = time.perf_counter()

    def node_started(self, node: NodeReport) -> None:
        with self.lock:
            self.running[node.name] = time.perf_counter()

    def node_finished(self, node: NodeReport) -> None:
        with self.lock:
            self.running.pop(node.name, None)
            self.done += 1
            if node.status is Status.FAILURE:
                self.failed += 1
            elif node.status is Status.SKIPPED:
                self.skipped += 1
            self.recent.append(node)

    def headline(self) -> str:
        took = time.perf_counter() - self.started
        parts = [f"{self.done}/{self.total} nodes"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        return f"{self.title} — {', '.join(parts)} — {took:.1f}s"


def _rows(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


class TerminalProgress(Hook):
    """A rich live table: running nodes, the last few finished ones, and a headline."""

    def __init__(
        self, *, stream: IO[str] | None = None, force_terminal: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.force_terminal = force_terminal
        self.state = _State()
        self._live: Any = None

    def _render(self) -> Any:
        from rich.table import Table

        st = self.state
        table = Table(title=st.headline(), title_justify="left", expand=False, box=None)
        for col, justify in (("node", "left"), ("status", "left"), ("rows in", "right"),
                             ("rows out", "right"), ("time", "right")):  # fmt: skip
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        now = time.perf_counter()
        with st.lock:
            recent = list(st.recent)
            running = list(st.running.items())
        for n in recent:
            status = str(n.status)
            took = f"{n.duration_s:.2f}s" if n.duration_s is not None else ""
            table.add_row(n.name, f"[{_COLOURS[status]}]{status}[/]", _rows(n.rows_in),
                          _rows(n.rows_out), took)  # fmt: skip
        for name, began in running:
            table.add_row(name, "[yellow]RUNNING[/]", "", "", f"{now - began:.1f}s")
        return table

    def before_run(self, *, report: RunReport, **_: Any) -> None:
        from rich.console import Console
        from rich.live import Live

        self.state.start(report)
        console = Console(file=self.stream, force_terminal=self.force_terminal, stderr=True)

        class _View:
            def __rich__(inner) -> Any:  # rich calls this at each refresh
                return self._render()

        self._live = Live(_View(), console=console, refresh_per_second=4, transient=False)
        self._live.start()

    def before_node(self, *, node: NodeReport, **_: Any) -> None:
        self.state.node_started(node)

    def after_node(self, *, node: NodeReport, **_: Any) -> None:
        self.state.node_finished(node)

    def after_run(self, *, report: RunReport, **_: Any) -> None:
        if self._live is not None:
            self._live.stop()
            self._live.console.print(
                f"[{'green' if report.ok else 'bold red'}]{report.summary()}[/]",
                markup=True,
                highlight=False,
            )
            self._live = None


class JupyterProgress(Hook):
    """One compact line in the notebook, updated in place at most 4 times a second."""

    _INTERVAL: Final = 0.25

    def __init__(self) -> None:
        self.state = _State()
        self._handle: Any = None
        self._last = 0.0

    def _html(self, final: RunReport | None = None) -> Any:
        import html

        from IPython import display as ipd

        HTML: Any = ipd.HTML  # IPython ships no type hints
        st = self.state
        if final is not None:
            colour = "#2e7d32" if final.ok else "#c62828"
            # The report (the cell's result) shows the errors; the progress line only counts.
            text = html.escape(final.summary(errors=False))
            if final.error:
                text += " (the report lists the errors: report.failed)"
            return HTML(f"<div style='color:{colour};font-family:monospace'>{text}</div>")
        with st.lock:
            running = ", ".join(list(st.running)[:3])
        done = st.done / st.total if st.total else 0.0
        bar = f"<progress value='{done:.3f}' max='1' style='width:12em'></progress>"
        now = f" · running: {html.escape(running)}" if running else ""
        return HTML(
            f"<div style='font-family:monospace'>{bar} {html.escape(st.headline())}{now}</div>"
        )

    def _update(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self._INTERVAL:
            return
        self._last = now
        if self._handle is not None:
            self._handle.update(self._html())

    def before_run(self, *, report: RunReport, **_: Any) -> None:
        from IPython import display as ipd

        display: Any = ipd.display
        self.state.start(report)
        self._handle = display(self._html(), display_id=True)
        self._last = time.perf_counter()

    def before_node(self, *, node: NodeReport, **_: Any) -> None:
        self.state.node_started(node)
        self._update()

    def after_node(self, *, node: NodeReport, **_: Any) -> None:
        self.state.node_finished(node)
        self._update()

    def after_run(self, *, report: RunReport, **_: Any) -> None:
        if self._handle is not None:
            self._handle.update(self._html(report))
            self._handle = None
