#!/usr/bin/env bash
# Run the whole test suite (unit, integration against local S3/Azure/SMTP/HTTP/Dask, notebooks).
# Installs everything it needs on first use: the venv, and Azurite (npm) for the Azure tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bootstrap.sh
if [ -f scripts/install-azurite.sh ]; then bash scripts/install-azurite.sh; fi
exec "$PY" -m pytest -q "$@"
