#!/usr/bin/env bash
# Probe hits per span at a low request rate (docs/benchmarks.md, "Probe hits per span at a low
# request rate"): the service of crates/gotap-bench/lowrate (net/http server, one SQLite query and
# one outgoing net/http call per request: 3 spans) under the release `gotap run --no-console`
# writing OTLP/JSON to /dev/null, at RATE requests per second for SECONDS, one request at a time
# on a new connection (curl), as a quiet service gets them. Modes interleaved in each round: the
# plain binary (function probes) and its `gotap build --probes` build (batch sites). Prints
# gotap's exit summary per round: hits per span, and where they went (per library, goroutine
# starts, batch sites). Not a test: the figures depend on the machine. Root required.
#
#   scripts/bench-lowrate.sh                  # 3 rounds, 5 req/s for 20 s
#   ROUNDS=5 RATE=2 SECONDS_=30 scripts/bench-lowrate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=env.sh
source scripts/env.sh
GO=${GO:-$GO126}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5}
SECS=${SECONDS_:-20}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$TARGET/bench/lowrate
mkdir -p "$OUT"
[ "$(id -u)" = 0 ] || { echo "bench-lowrate.sh: run as root (uprobes)" >&2; exit 1; }

cargo build --release -q -p gotap-cli
GOTAP=$TARGET/release/gotap
(cd crates/gotap-bench/lowrate && CGO_ENABLED=0 "$GO" build -o "$OUT/lowrate" .)
(cd crates/gotap-bench/lowrate && CGO_ENABLED=0 GOTAP_GO="$GO" GOTOOLCHAIN=local \
  "$GOTAP" build --probes -o "$OUT/lowrate-probes" .)

port=$((20000 + RANDOM % 20000))
n=$((RATE * SECS))
pause=$(awk "BEGIN { print 1 / $RATE }")
for round in $(seq "$ROUNDS"); do
  for mode in plain probes; do
    bin=$OUT/lowrate; [ "$mode" = probes ] && bin=$OUT/lowrate-probes
    db=$OUT/orders-$mode.db; rm -f "$db"
    ADDR=127.0.0.1:$port DB=$db "$GOTAP" run --no-console --output-file /dev/null \
      --service-name lowrate -- "$bin" > /dev/null 2> "$OUT/gotap-$mode-$round.err" &
    g=$!
    for _ in $(seq 600); do
      curl --noproxy '*' -fs "127.0.0.1:$port/order/1" > /dev/null && break
      sleep 0.1
    done
    # The readiness request above is one request more: n + 1 in all.
    start=$(date +%s.%N)
    for i in $(seq "$n"); do
      curl --noproxy '*' -fs "127.0.0.1:$port/order/$((i % 3))" > /dev/null
      # Paced on the clock: request i goes at start + i / RATE.
      next=$(awk "BEGIN { d = $start + $i * $pause - $(date +%s.%N); print (d > 0 ? d : 0) }")
      sleep "$next"
    done
    kill -TERM "$g"; wait "$g" || true
    echo "round $round $mode: $(tail -1 "$OUT/gotap-$mode-$round.err")"
    port=$((port + 1))
  done
done
