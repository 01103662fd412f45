#!/usr/bin/env bash
# Builds the five example task libraries:
#   textkit-go/textkit.wasm   Go guest        (go, GOOS=wasip1)
#   stats-c/stats.wasm        C guest         (clang, lld, wasi-libc)
#   rustkit-rust/rustkit.wasm Rust guest      (rustc, libstd-rust-dev-wasm32)
#   jsonkit-as/jsonkit.wasm   AssemblyScript  (node, npm ci)
#   mathwat/mathwat.wasm      WAT             (wat2wasm)
#
# Usage: plugins/examples/build.sh [--check] [LIBRARY...]
#   LIBRARY   one or more of textkit-go stats-c rustkit-rust jsonkit-as mathwat (default: all)
#   --check   also fail if a rebuilt module differs from the one that was
#             there before (the committed modules must be up to date; the
#             builds are reproducible, so an up-to-date tree rebuilds to the
#             same bytes)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

check=0
libs=()
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        textkit-go|stats-c|rustkit-rust|jsonkit-as|mathwat) libs+=("$arg") ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
(( ${#libs[@]} )) || libs=(textkit-go stats-c rustkit-rust jsonkit-as mathwat)

declare -A out=([textkit-go]=textkit.wasm [stats-c]=stats.wasm [rustkit-rust]=rustkit.wasm [jsonkit-as]=jsonkit.wasm [mathwat]=mathwat.wasm)

# Build the CLI once for `flowhost embed`, rather than `go run` per library.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [[ -z "${FLOWHOST:-}" ]]; then
    (cd "$root" && go build -o "$tmp/flowhost" ./cmd/flowhost)
    export FLOWHOST="$tmp/flowhost"
fi

changed=()
for lib in "${libs[@]}"; do
    wasm="$here/$lib/${out[$lib]}"
    before=""
    [[ -f "$wasm" ]] && before="$(sha256sum "$wasm" | cut -d' ' -f1)"
    echo "== $lib"
    "$here/$lib/build.sh"
    after="$(sha256sum "$wasm" | cut -d' ' -f1)"
    echo "   $(wc -c < "$wasm" | tr -d ' ') bytes  sha256 $after"
    [[ "$before" == "$after" ]] || changed+=("$lib/${out[$lib]}")
done

if (( check )) && (( ${#changed[@]} )); then
    echo "build.sh: these modules were out of date (now rebuilt): ${changed[*]}" >&2
    exit 1
fi
