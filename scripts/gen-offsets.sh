#!/usr/bin/env bash
# Regenerates the struct offsets table (crates/gotap-binary/offsets/stdlib.json): builds
# go/offsetgen, unstripped, with each available toolchain ($GO119, $GO126, $GO127 from env.sh),
# reads the offsets of every field in gotap_binary::offsets::ALL from each build's DWARF, and
# writes one row per Go minor version. Deterministic: rerunning reproduces the file byte for byte.
# Rows of toolchains missing here are kept. Never fetches other Go versions.
#
# Env: GOTAP_OFFSETS_OUT  file to write (default: the checked-in table)
#      GOTAP_GEN_OFFSETS  a prebuilt gen_offsets example binary (default: cargo run --example)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

out="${GOTAP_OFFSETS_OUT:-crates/gotap-binary/offsets/stdlib.json}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

rows=()
for var in GO119 GO126 GO127; do
  go="${!var}"
  if [ ! -x "$go" ]; then
    echo "gen-offsets: \$$var ($go) is not installed; keeping its row as it is" >&2
    continue
  fi
  version="$("$go" env GOVERSION)"
  (cd go/offsetgen && CGO_ENABLED=0 "$go" build -trimpath -o "$tmp/offsetgen-$version" .)
  rows+=("$version=$tmp/offsetgen-$version")
done
[ ${#rows[@]} -gt 0 ] || { echo "gen-offsets: no Go toolchain found (run scripts/toolchains.sh)" >&2; exit 1; }

if [ -n "${GOTAP_GEN_OFFSETS:-}" ]; then
  "$GOTAP_GEN_OFFSETS" "$out" "${rows[@]}"
else
  cargo run --quiet -p gotap-binary --example gen_offsets -- "$out" "${rows[@]}"
fi
