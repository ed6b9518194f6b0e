#!/usr/bin/env bash
# Benchmark `gotap inspect --json` against the Go toolchain's own answers on a large real Go
# service (go/testapps/cmd/bigsvc: gRPC + OpenTelemetry SDK + OTLP exporters, ~20 MB):
# `go version -m` (buildinfo) + `go tool nm` (symbols) together give roughly what one
# `gotap inspect --json` prints. Not a test: timings depend on the machine. Needs hyperfine.
#
#   scripts/bench-inspect.sh            # Go 1.26 (the machine default)
#   GO=$GO127 scripts/bench-inspect.sh  # another toolchain
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=env.sh
source scripts/env.sh
GO=${GO:-$GO126}
OUT=target/bench
mkdir -p "$OUT"
BIN=$PWD/$OUT/bigsvc
(cd go/testapps/cmd/bigsvc && CGO_ENABLED=0 "$GO" build -o "$BIN" . && CGO_ENABLED=0 "$GO" build -ldflags='-s -w' -o "$BIN-stripped" .)
cargo build --release -p gotap-cli >/dev/null
GOTAP=$PWD/target/release/gotap
# The nm executable itself (`go tool -n nm`; since Go 1.24 tools are built on demand and cached).
NM="$("$GO" tool -n nm)"

echo "== $("$GO" version) on $(nproc) cores; $BIN: $(du -h "$BIN" | cut -f1), $("$GOTAP" inspect --json "$BIN" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["functions"]))') functions"
# -N: no intermediate shell (the commands are single processes, except the pair, run by sh).
hyperfine -N --warmup 3 --min-runs 30 --export-json "$OUT/bench-inspect.json" \
  -n "gotap inspect --json" "$GOTAP inspect --json $BIN" \
  -n "gotap inspect --json (stripped)" "$GOTAP inspect --json $BIN-stripped" \
  -n "go version -m" "$GO version -m $BIN" \
  -n "go tool nm" "$GO tool nm $BIN" \
  -n "go version -m + go tool nm" "sh -c '$GO version -m $BIN >/dev/null; $GO tool nm $BIN >/dev/null'" \
  -n "nm executable alone (no go command)" "$NM $BIN"

python3 - "$OUT/bench-inspect.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print()
print(f"{'command':38} {'mean ms':>8} {'± ms':>7} {'median':>7} {'cpu ms':>7} {'× gotap':>8}")
for name, x in r.items():
    cpu = (x["user"] + x["system"]) * 1e3
    print(f"{name:38} {x['mean']*1e3:8.1f} {x['stddev']*1e3:7.1f} {x['median']*1e3:7.1f} {cpu:7.1f} {x['median']/r['gotap inspect --json']['median']:8.2f}")
g = r["gotap inspect --json"]["median"]
both = r["go version -m + go tool nm"]["median"]
print(f"\nmedians: gotap inspect --json {g*1e3:.1f} ms (goal < 200 ms: {'met' if g < 0.2 else 'MISSED'}); "
      f"go version -m + go tool nm {both*1e3:.1f} ms: gotap is {both/g:.1f}x faster")
PY
