"""The services a run uses: the holder of effect handlers' configuration, and of observers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tdm.effects.secrets import SecretsProvider, default_secrets
from tdm.interpreter.hooks import Hook

if TYPE_CHECKING:  # the audit store (sqlite3) and alerts (ssl) load when a run uses them
    import httpx

    from tdm.effects.alerts import Alerter
    from tdm.effects.checkpoints import CheckpointStore
    from tdm.effects.state import StateStore

__all__ = ["Runtime"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything effectful a run may touch, swappable for tests without patching.

    Attributes:
        clock: the source of the run's start time (the only clock tdm reads).
        hooks: extra lifecycle observers (:class:`~tdm.interpreter.hooks.Hook`).
        secrets: the provider effect handlers resolve secret names with (None: environment
            variables, then ``$TDM_HOME/secrets.yml``).
        files: a base URI that relative file paths resolve against (e.g. ``"memory://"``).
        http: the ``httpx`` transport REST effects send their requests through (None: tdm's
            own wire, one aiohttp session per REST node, or httpx's pools when a proxy is
            configured). Inject ``httpx.MockTransport(handler)`` or any
            ``httpx.AsyncBaseTransport`` to serve requests in-process; every request goes
            through it, and tdm never closes it.
        state: the audit-trail store (None: no audit trail); see :mod:`tdm.state`.
        alerters: who to tell when a run fails; see :mod:`tdm.alerts`.
        progress: show live progress (None: only on an interactive terminal or notebook).
        options: free-form settings for plugins, by name.
        checkpoints: where node outputs are kept so a failed run can be resumed (any fsspec
            URL, e.g. ``"file:///var/tdm/ckpt"``, or a ``tdm.checkpoints.store(...)``); None:
            no checkpoints. See ``tdm.run(resume=...)``.
        keep_checkpoints: keep a pipeline's checkpoints after a successful run (by default
            they are removed then; ``tdm checkpoints prune`` removes old ones).

    >>> rt = Runtime(files="memory://")
    >>> rt.files, rt.evolve(files="/tmp").files
    ('memory://', '/tmp')
    """

    clock: Callable[[], datetime] = _utc_now
    hooks: Sequence[Hook] = ()
    secrets: SecretsProvider | None = None
    files: str | None = None
    http: httpx.AsyncBaseTransport | None = None
    state: StateStore | None = None
    alerters: Sequence[Alerter] = ()
    progress: bool | None = False
    options: Mapping[str, Any] = field(default_factory=dict)
    checkpoints: str | CheckpointStore | None = None
    keep_checkpoints: bool = False

    @classmethod
    def default(cls) -> Runtime:
        """The embedded default, what ``tdm.run(p)`` uses when given no runtime.

        Local files; secrets from environment variables, then ``$TDM_HOME/secrets.yml``; the
        audit trail in SQLite at ``$TDM_HOME/state.db``; live progress only on an interactive
        terminal or notebook; no alerts. Logs go wherever ``logging`` is configured (see
        :func:`tdm.logging.configure`; the CLI does it).

        >>> rt = Runtime.default()
        >>> rt.state, rt.alerters, rt.progress  # doctest: +ELLIPSIS
        (SQLiteStore('.../state.db'), (), None)
        """
        from tdm.effects.state import shared_sqlite

        return cls(secrets=default_secrets(), state=shared_sqlite(), progress=None)

    def evolve(self, **changes: Any) -> Runtime:
        """A copy with some services replaced."""
        return dataclasses.replace(self, **changes)
