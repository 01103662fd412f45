#!/usr/bin/env bash
# Builds stats.wasm: the C guest (wasi-libc, reactor model, debug info
# stripped), then its manifest embedded as the flowhost.manifest custom
# section. Reproducible: with the same clang, lld and wasi-libc, two
# builds give the same bytes. The committed stats.wasm was built with the
# toolchain pinned below (Debian 12's packages, as .ci/run installs them);
# another toolchain builds other bytes, so the build refuses to run with
# one unless FLOWHOST_ANY_TOOLCHAIN=1.
set -euo pipefail
want_clang="Debian clang version 14.0.6"
want_wasi_libc="0.0~git20220510.9886d3d-2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

have_clang="$("${CC:-clang}" --version 2>/dev/null | head -n1 || true)"
have_wasi_libc="$(dpkg-query -W -f='${Version}' wasi-libc 2>/dev/null || true)"
if [[ "${have_clang%% (*}" != "$want_clang" || "$have_wasi_libc" != "$want_wasi_libc" ]] &&
    [[ "${FLOWHOST_ANY_TOOLCHAIN:-}" != 1 ]]; then
    echo "stats-c: the committed module is built with '$want_clang' and wasi-libc $want_wasi_libc;" >&2
    echo "stats-c: this machine has '${have_clang:-no clang}' and wasi-libc '${have_wasi_libc:-none}'." >&2
    echo "stats-c: install Debian 12's clang lld wasi-libc libclang-rt-14-dev-wasm32 (as .ci/run does)," >&2
    echo "stats-c: or set FLOWHOST_ANY_TOOLCHAIN=1 to build anyway (the bytes will differ)." >&2
    exit 1
fi

cd "$here"
"${CC:-clang}" --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
    -Wall -Wextra -Werror -Wl,--strip-debug \
    -o "$tmp/stats.wasm" stats.c

# FLOWHOST may name a built flowhost binary; else the repo's CLI is run.
cd "$root"
${FLOWHOST:-go run ./cmd/flowhost} embed -m "$here/manifest.json" -o "$here/stats.wasm" "$tmp/stats.wasm"
