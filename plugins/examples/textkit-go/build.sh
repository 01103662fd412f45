#!/usr/bin/env bash
# Builds textkit.wasm: the Go guest, then its manifest embedded as the
# flowhost.manifest custom section. Reproducible: with the same Go
# toolchain, two builds give the same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$here"
GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath \
    -buildvcs=false -ldflags=-buildid= -o "$tmp/textkit.wasm" .

# FLOWHOST may name a built flowhost binary; else the repo's CLI is run.
cd "$root"
${FLOWHOST:-go run ./cmd/flowhost} embed -m "$here/manifest.json" -o "$here/textkit.wasm" "$tmp/textkit.wasm"
