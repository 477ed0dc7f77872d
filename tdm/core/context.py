"""Run parameters: what the interpreter tells a step about the run it belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["RunContext"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """Facts about one run, supplied by the interpreter (never read from the clock by a step).

    Attributes:
        started_at: when the run started, timezone-aware.
        run_id: unique id of this run.
        job_id: id of the job this run belongs to (defaults to the run id).
        pipeline_id: stable id of the pipeline being run.
        params: user parameters (``tdm run --param k=v`` or ``tdm.run(params=...)``).
        previous_run_id: the last successful run of the same pipeline in the audit store
            (None: there was none, or the runtime keeps no audit trail).
        cursors: the incremental cursors this run starts from, by node name.
        resumed_from: the run this one resumes (``tdm.run(p, resume=...)``), else None.

    >>> from datetime import datetime, timezone
    >>> ctx = RunContext(started_at=datetime(2026, 1, 2, tzinfo=timezone.utc), run_id="r1")
    >>> ctx.job_id, ctx.pipeline_id, dict(ctx.params)
    ('r1', 'adhoc', {})
    """

    started_at: datetime
    run_id: str = "adhoc"
    job_id: str = ""
    pipeline_id: str = "adhoc"
    params: Mapping[str, Any] = field(default_factory=dict)
    previous_run_id: str | None = None
    cursors: Mapping[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "cursors", dict(self.cursors))
        if not self.job_id:
            object.__setattr__(self, "job_id", self.run_id)
        if self.started_at.tzinfo is None:
            raise ValueError(
                "RunContext.started_at must be timezone-aware; "
                "use datetime.now(timezone.utc) or attach a tzinfo"
            )
