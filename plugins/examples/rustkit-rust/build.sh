#!/usr/bin/env bash
# Builds rustkit.wasm: the Rust guest, compiled by rustc alone (no cargo,
# no crates) for wasm32-unknown-unknown, then its manifest embedded as
# the flowhost.manifest custom section. Reproducible: with the same rustc
# and standard library, two builds give the same bytes (paths are
# remapped, symbols stripped, one codegen unit). The committed module was
# built with the toolchain pinned below (Debian 12's rustc and
# libstd-rust-dev-wasm32, as .ci/run installs them); another toolchain
# builds other bytes, so the build refuses to run with one unless
# FLOWHOST_ANY_TOOLCHAIN=1. RUSTC names the compiler (default
# /usr/bin/rustc, Debian's, whatever else is on PATH).
set -euo pipefail
want_rustc="rustc 1.63.0"
want_std="1.63.0+dfsg1-2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

rustc="${RUSTC:-/usr/bin/rustc}"
have_rustc="$("$rustc" --version 2>/dev/null | head -n1 || true)"
have_std="$(dpkg-query -W -f='${Version}' libstd-rust-dev-wasm32 2>/dev/null || true)"
if [[ "${have_rustc%% (*}" != "$want_rustc" || "$have_std" != "$want_std" ]] &&
    [[ "${FLOWHOST_ANY_TOOLCHAIN:-}" != 1 ]]; then
    echo "rustkit-rust: the committed module is built with '$want_rustc' and libstd-rust-dev-wasm32 $want_std;" >&2
    echo "rustkit-rust: this machine has '${have_rustc:-no rustc at $rustc}' and libstd-rust-dev-wasm32 '${have_std:-none}'." >&2
    echo "rustkit-rust: install Debian 12's rustc and libstd-rust-dev-wasm32 (as .ci/run does)," >&2
    echo "rustkit-rust: or set FLOWHOST_ANY_TOOLCHAIN=1 to build anyway (the bytes will differ)." >&2
    exit 1
fi

cd "$here"
"$rustc" --edition 2021 --crate-type cdylib --crate-name rustkit --target wasm32-unknown-unknown \
    -C opt-level=s -C panic=abort -C codegen-units=1 -C lto -C debuginfo=0 -C strip=symbols \
    --remap-path-prefix "$here=." -D warnings \
    -o "$tmp/rustkit.wasm" src/lib.rs

# FLOWHOST may name a built flowhost binary; else the repo's CLI is run.
cd "$root"
${FLOWHOST:-go run ./cmd/flowhost} embed -m "$here/manifest.json" -o "$here/rustkit.wasm" "$tmp/rustkit.wasm"
