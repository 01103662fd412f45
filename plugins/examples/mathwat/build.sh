#!/usr/bin/env bash
# Builds mathwat.wasm from mathwat.wat with wat2wasm. manifest.json is
# copied into the module's data (line breaks and indentation removed) for its
# flowhost_manifest export to output; no manifest section is embedded.
# Reproducible: two builds give the same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$here"
manifest="$(sed -e 's/^[[:space:]]*//' manifest.json | tr -d '\n\r')"
len="$(printf '%s' "$manifest" | LC_ALL=C wc -c | tr -d ' ')"
if (( len > 6144 )); then
    echo "build.sh: manifest.json is $len bytes; mathwat.wat has room for 6144" >&2
    exit 1
fi
# Escape for a WAT string literal: backslashes, then quotes.
escaped="$(printf '%s' "$manifest" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
# Substitute with awk, so the JSON needs no further escaping.
MANIFEST="$escaped" MANIFEST_LEN="$len" awk '
    { gsub(/@MANIFEST_LEN@/, ENVIRON["MANIFEST_LEN"])
      i = index($0, "@MANIFEST@")
      if (i > 0) $0 = substr($0, 1, i - 1) ENVIRON["MANIFEST"] substr($0, i + 10)
      print }' mathwat.wat > "$tmp/mathwat.wat"
wat2wasm "$tmp/mathwat.wat" -o "$tmp/mathwat.wasm"
cp "$tmp/mathwat.wasm" "$here/mathwat.wasm"
echo "$here/mathwat.wasm: built ($(LC_ALL=C wc -c < "$here/mathwat.wasm" | tr -d ' ') bytes; manifest via the flowhost_manifest export)"
