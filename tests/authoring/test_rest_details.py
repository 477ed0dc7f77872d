"""``tdm run --dry-run`` and ``tdm graph`` show what a REST node will send, redacted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = """version: 1
pipelines:
  - name: Incidents
    pipes:
      - name: Changed
        type: rest.get
        config:
          url: https://example.service-now.com/api/now/table/incident
          params:
            sysparm_query: "sys_updated_on>2024-01-01^ORDERBYsys_updated_on"
            api_key: "${secrets.key}"
            token: literal-not-shown
          paginate: {type: offset_limit, limit: 250, total: total}
          retry: {attempts: 3, deadline: 30}
          records: result
          secrets: {type: yamlconfigreader, name: ServiceNow}
"""


def _cli(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tdm", *args],
        cwd=cwd,
        env={**os.environ, "TDM_HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_dry_run_and_graph_show_query_pagination_and_retry(tmp_path: Path) -> None:
    config = tmp_path / "p.yml"
    config.write_text(CONFIG)
    for out in (
        _cli(["run", str(config), "--dry-run"], tmp_path),
        _cli(["graph", str(config)], tmp_path),
    ):
        assert "params: sysparm_query=sys_updated_on%3E2024-01-01%5EORDERBYsys_updated_on" in out
        assert "api_key=<secret key>" in out
        assert "token=***" in out and "literal-not-shown" not in out
        assert "paginate: offset_limit(limit=250, total='total')" in out
        assert "retry: up to 3 attempts (2 retries) within 30 s" in out
