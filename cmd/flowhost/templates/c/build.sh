#!/usr/bin/env bash
# Builds @NAME@.wasm: main.c for wasm32-wasi as a library module (reactor,
# debug info stripped), then manifest.json embedded in it, then inspects
# it. Needs clang, lld and wasi-libc (Debian: clang lld wasi-libc
# libclang-rt-14-dev-wasm32), and flowhost (or FLOWHOST=/path/to/flowhost).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
flowhost="${FLOWHOST:-flowhost}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"${CC:-clang}" --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
    -Wall -Wextra -Werror -Wl,--strip-debug -o "$tmp/@NAME@.wasm" main.c
"$flowhost" embed -m manifest.json -o @NAME@.wasm "$tmp/@NAME@.wasm"
"$flowhost" inspect @NAME@.wasm
