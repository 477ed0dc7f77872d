#!/usr/bin/env bash
# Run the demo pipeline end to end on the embedded defaults: local files in, a CSV report out,
# the run recorded in the SQLite audit trail under $TDM_HOME (default ~/.tdm). No cloud account.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bootstrap.sh
TDM="$(dirname "$PY")/tdm"
"$TDM" run examples/demo/pipeline.yml "$@"
echo
echo "== output/demo/totals_by_state.csv"
cat output/demo/totals_by_state.csv
echo
echo "== the audit trail (tdm history)"
"$TDM" history --limit 5
