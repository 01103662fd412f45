#!/usr/bin/env bash
# Builds @NAME@.wasm: assembly/index.ts with the AssemblyScript compiler,
# then manifest.json embedded in it, then inspects it. Needs node 20 and
# npm 10 or later (the first build installs the compiler and the PDK, as
# package.json pins them), and flowhost (or FLOWHOST=/path/to/flowhost).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
flowhost="${FLOWHOST:-flowhost}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
[[ -d node_modules ]] || npm install --no-audit --no-fund --loglevel=error
npx --no-install asc assembly/index.ts --config asconfig.json --target release --outFile "$tmp/@NAME@.wasm"
"$flowhost" embed -m manifest.json -o @NAME@.wasm "$tmp/@NAME@.wasm"
"$flowhost" inspect @NAME@.wasm
