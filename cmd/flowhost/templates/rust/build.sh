#!/usr/bin/env bash
# Builds @NAME@.wasm: src/lib.rs with rustc alone for
# wasm32-unknown-unknown, then manifest.json embedded in it, then inspects
# it. Needs rustc and its standard library for wasm32-unknown-unknown
# (Debian: rustc libstd-rust-dev-wasm32; with rustup: rustup target add
# wasm32-unknown-unknown), and flowhost (or FLOWHOST=/path/to/flowhost).
# RUSTC names the compiler.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
flowhost="${FLOWHOST:-flowhost}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"${RUSTC:-rustc}" --edition 2021 --crate-type cdylib --crate-name @NAME@ --target wasm32-unknown-unknown \
    -C opt-level=s -C panic=abort -C codegen-units=1 -C lto -C debuginfo=0 -C strip=symbols \
    --remap-path-prefix "$here=." -o "$tmp/@NAME@.wasm" src/lib.rs
"$flowhost" embed -m manifest.json -o @NAME@.wasm "$tmp/@NAME@.wasm"
"$flowhost" inspect @NAME@.wasm
