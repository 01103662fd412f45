#!/usr/bin/env bash
# Builds @NAME@.wasm: main.wat with wat2wasm, then manifest.json embedded
# in it, then inspects it. Needs wat2wasm (Debian: wabt), and flowhost
# (or FLOWHOST=/path/to/flowhost).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
flowhost="${FLOWHOST:-flowhost}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wat2wasm main.wat -o "$tmp/@NAME@.wasm"
"$flowhost" embed -m manifest.json -o @NAME@.wasm "$tmp/@NAME@.wasm"
"$flowhost" inspect @NAME@.wasm
