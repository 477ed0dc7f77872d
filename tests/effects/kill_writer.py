"""A writer process for the kill tests (tests/effects/test_publish_kill.py).

It imports tdm once, then reads one JSON command per line from stdin; for each it forks a child
that performs the write (stopping at ``phase`` through tdm's ``TDM_TEST_PAUSE_AT`` hook) and
prints the child's pid. The test SIGKILLs that child. Forking from a process that has done no
I/O yet (no threads, no open connections) makes every kill cost milliseconds, not an import.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pandas as pd

import tdm
from tdm import files
from tdm.effects.secrets import MappingSecrets


def _write(command: dict[str, object]) -> int:
    frame = pd.DataFrame(command["frame"])
    options = dict(command.get("options", {}))  # type: ignore[call-overload]
    runtime = tdm.Runtime(
        secrets=MappingSecrets(command.get("secrets", {})),  # type: ignore[arg-type]
        options={"files": {"cleanup_after_s": 0}},
        state=None,
    )
    step = files.write(str(command["uri"]), **options)
    report = tdm.run(tdm.inputs.frame("x") >> step, inputs={"x": frame}, runtime=runtime)
    return 0 if report.ok else 1


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped automatically
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ["TDM_TEST_PAUSE_AT"] = command["phase"]
                os.environ["TDM_TEST_PAUSE_SIGNAL"] = command["signal"]
                code = _write(command)
            finally:
                os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
