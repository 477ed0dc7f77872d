"""The ``tdm`` command: parse arguments, call :func:`tdm.load` and the Job, print.

Exit codes: 0 success, 1 a pipeline failed, 2 bad input (config, arguments, missing secrets).
The commands live by theme (``running``, ``audit``, ``project``); importing them here registers
them on the one :data:`cli` group. The config loader, the interpreter and pandas load inside the
commands that need them, so ``tdm --help`` and ``tdm --version`` stay fast.
"""

from __future__ import annotations

from tdm.cli import audit, project, running
from tdm.cli._app import _LAST_FAILED, cli, main

__all__ = ["cli", "main"]

_COMMAND_MODULES = (running, audit, project)  # imported for their @cli.command registrations
assert _LAST_FAILED  # re-exported for tests: the --resume flag's value
