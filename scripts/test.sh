#!/usr/bin/env bash
# Run the whole test suite (unit, integration against local S3/Azure/SMTP/HTTP/Dask, notebooks).
# Installs everything it needs on first use: the venv, Azurite (npm) for the Azure tests, and
# Debian's chromium for the run browser's tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bootstrap.sh
if [ -f scripts/install-azurite.sh ]; then bash scripts/install-azurite.sh; fi
# The run browser's tests drive Debian's chromium through Playwright (no browser download).
if [ -z "${TDM_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing chromium (apt) for the run browser's tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
exec "$PY" -m pytest -q "$@"
