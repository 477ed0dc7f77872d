#!/usr/bin/env bash
# Run the demo pipeline end to end on the embedded defaults (local files, no cloud account).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bootstrap.sh
exec "$PY" examples/demo/demo.py "$@"
