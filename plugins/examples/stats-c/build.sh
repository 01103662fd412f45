#!/usr/bin/env bash
# Builds stats.wasm: the C guest (wasi-libc, reactor model, debug info
# stripped), then its manifest embedded as the flowhost.manifest custom
# section. Reproducible: with the same clang and wasi-libc, two builds
# give the same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$here"
"${CC:-clang}" --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
    -Wall -Wextra -Werror -Wl,--strip-debug \
    -o "$tmp/stats.wasm" stats.c

# FLOWHOST may name a built flowhost binary; else the repo's CLI is run.
cd "$root"
${FLOWHOST:-go run ./cmd/flowhost} embed -m "$here/manifest.json" -o "$here/stats.wasm" "$tmp/stats.wasm"
