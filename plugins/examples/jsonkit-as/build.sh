#!/usr/bin/env bash
# Builds jsonkit.wasm: the AssemblyScript guest (compiler and PDK pinned by
# package-lock.json), then its manifest embedded as the flowhost.manifest
# custom section. Reproducible: two builds give the same bytes.
# Set JSONKIT_SKIP_NPM_CI=1 to reuse an existing node_modules.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$here"
if [[ "${JSONKIT_SKIP_NPM_CI:-}" != 1 || ! -d node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install asc assembly/index.ts --config asconfig.json --target release \
    --outFile "$tmp/jsonkit.wasm"

# FLOWHOST may name a built flowhost binary; else the repo's CLI is run.
cd "$root"
${FLOWHOST:-go run ./cmd/flowhost} embed -m "$here/manifest.json" -o "$here/jsonkit.wasm" "$tmp/jsonkit.wasm"
