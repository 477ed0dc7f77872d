#!/usr/bin/env bash
# Create .venv and install tdm with its development extras; re-run only when pyproject.toml changes.
# Usage: source scripts/bootstrap.sh   (sets $PY to the venv's python)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TDM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.tdm-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "bootstrap: installing tdm[dev] into $VENV (first run takes a minute)"
  # Constraints pin known-good versions: without them pip can backtrack for many minutes
  # between boto3 and the botocore that s3fs's aiobotocore allows.
  LOG="$VENV/pip-install.log"
  # tdm's distribution was called `tdm` before it became `tdm-pipelines`: drop the old one
  "$VENV/bin/python" -m pip uninstall -y tdm >/dev/null 2>&1 || true
  if ! "$VENV/bin/python" -m pip install -c "$ROOT/constraints.txt" -e "$ROOT[dev]" >"$LOG" 2>&1
  then
    grep -v "is ignored: it is neither" "$LOG" | tail -40 >&2
    echo "bootstrap: pip install failed (full log: $LOG)" >&2
    exit 1
  fi
  echo "$WANT" > "$STAMP"
fi
PY="$VENV/bin/python"
export PY
