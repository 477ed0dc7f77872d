"""Lifecycle hooks: observers that logging, the audit trail, alerts and progress plug into.

Every hook method takes keyword arguments only and must accept ``**_`` so that adding a field
later breaks nobody. Subclass :class:`Hook` and override what you need::

    class Timer(Hook):
        def after_node(self, *, node, **_):
            print(node.name, node.duration_s)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tdm.core.context import RunContext
    from tdm.core.pipeline import Pipeline
    from tdm.interpreter.report import NodeReport, RunReport

__all__ = ["Hook"]


class Hook:
    """Base class of run observers; every method is a no-op here.

    Keyword arguments passed (an override names those it uses and ends with ``**_``):
        before_run: ``run`` (RunContext), ``pipeline``, ``report`` (RunReport, nodes QUEUED).
        before_node: ``run``, ``node`` (NodeReport, RUNNING), ``report``.
        after_node: ``run``, ``node`` (NodeReport, final status), ``report``.
        after_run: ``run``, ``pipeline``, ``report`` (final).

    An exception raised by ``before_run``, ``before_node`` or ``after_node`` stops the run (it is
    recorded as a FAILURE, and every ``after_run`` still runs); one raised by ``after_run`` is
    logged and kept in ``report.hook_errors``, never hiding the run's own result.
    """

    def before_run(
        self, *, run: RunContext, pipeline: Pipeline, report: RunReport, **_: Any
    ) -> None:
        """Called once before the first node runs."""

    def before_node(
        self, *, run: RunContext, node: NodeReport, report: RunReport, **_: Any
    ) -> None:
        """Called when a node is handed to the executor."""

    def after_node(self, *, run: RunContext, node: NodeReport, report: RunReport, **_: Any) -> None:
        """Called when a node finished, failed or was skipped."""

    def after_run(
        self, *, run: RunContext, pipeline: Pipeline, report: RunReport, **_: Any
    ) -> None:
        """Called once at the end, even when the run failed or was interrupted."""


def overrides(hook: object, method: str) -> bool:
    """Whether ``hook`` defines ``method`` itself (so no-op methods are never called)."""
    impl = getattr(type(hook), method, None)
    return impl is not None and impl is not getattr(Hook, method)
