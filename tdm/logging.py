"""Logging for tdm: JSON (or text) lines carrying the run context, scrubbed of secrets.

Importing tdm configures nothing. Call :func:`configure` (the CLI does) to send records to a
stream::

    import tdm
    tdm.logging.configure(level="INFO", fmt="json")

Each line is one JSON object: ``time``, ``level``, ``logger``, ``message``, then the run
context (``pipeline_id``, ``job_id``, ``run_id``, ``node``) and the fields tdm adds
(``event``, ``status``, ``duration_s``, ``rows_in``, ``rows_out``, ``kind``, ``error``), then
``module``, ``function``, ``line``, ``thread``, ``process`` and ``exception``. Records logged
from your own steps with ``logging.getLogger(__name__)`` get the run context too.

The original tdm's fields map as: ``level_name`` → ``level``, ``msg`` → ``message``,
``thread_name`` → ``thread``, ``process_name`` → ``process``; ``module`` and ``function`` now
name the real caller; ``class`` is gone (``logger`` says where a record comes from).

To use your own handlers, add :class:`SecretFilter` and :class:`ContextFilter` to them, and
:class:`JsonFormatter` or :class:`TextFormatter` if you like.
"""

from tdm.effects.logging import (
    ContextFilter,
    JsonFormatter,
    SecretFilter,
    TextFormatter,
    configure,
    current,
    run_scope,
)

__all__ = [
    "ContextFilter",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "configure",
    "current",
    "run_scope",
]
