#!/usr/bin/env bash
# Builds @NAME@.wasm: the Go code for GOOS=wasip1 as a library module
# (-buildmode=c-shared), then manifest.json embedded in it, then inspects
# it. Needs Go 1.24 or later, and flowhost (or FLOWHOST=/path/to/flowhost).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
flowhost="${FLOWHOST:-flowhost}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath \
    -buildvcs=false -ldflags=-buildid= -o "$tmp/@NAME@.wasm" .
"$flowhost" embed -m manifest.json -o @NAME@.wasm "$tmp/@NAME@.wasm"
"$flowhost" inspect @NAME@.wasm
