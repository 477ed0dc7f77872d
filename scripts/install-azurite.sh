#!/usr/bin/env bash
# Install the Azurite blob emulator (npm package azurite@3.35.0) into <repo>/.cache/node.
# Idempotent: does nothing if the pinned version is already installed there.
# Azurite 3.35.0 is the newest release that runs on Node 20 (3.37 needs Node >= 22).
#
# Usage: scripts/install-azurite.sh            (prints what it did)
# Env:   TDM_AZURITE_VERSION  override the pinned version (default 3.35.0)
#        TDM_NODE_PREFIX      override the install prefix (default <repo>/.cache/node)
set -euo pipefail

version="${TDM_AZURITE_VERSION:-3.35.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${TDM_NODE_PREFIX:-$repo/.cache/node}"
bin="$prefix/node_modules/.bin/azurite-blob"
pkg_json="$prefix/node_modules/azurite/package.json"

installed_version() {
    [[ -f "$pkg_json" ]] || return 0
    node -p "require(process.argv[1]).version" "$pkg_json" 2>/dev/null || true
}

if [[ -x "$bin" && "$(installed_version)" == "$version" ]]; then
    echo "azurite@$version already installed: $bin (nothing to do)"
    exit 0
fi

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: '$tool' not found on PATH; install Node.js >= 18 (with npm) to run Azurite" >&2
        exit 1
    fi
done

current="$(installed_version)"
if [[ -n "$current" ]]; then
    echo "azurite@$current found in $prefix, installing azurite@$version instead"
else
    echo "installing azurite@$version into $prefix (node $(node --version), npm $(npm --version))"
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$version"

if [[ ! -x "$bin" ]]; then
    echo "error: npm finished but $bin is missing" >&2
    exit 1
fi
echo "installed azurite@$(installed_version): $bin"
