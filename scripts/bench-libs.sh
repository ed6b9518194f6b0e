#!/usr/bin/env bash
# BPF time per span, per library, for `gotap run` on an unmodified Go binary: probe hits per span,
# BPF run time per hit and per span (the kernel's run_time_ns / run_cnt of each of gotap's BPF
# programs), for the net/http server and client, grpc server and client and database/sql spans,
# and each kind's ratio to the net/http server span measured in the same round. Not a test: the
# figures depend on the machine. Root required.
#
#   scripts/bench-libs.sh                            # 3 rounds: 3000 GET /q and 1000 GET /fail, alternated in 5 slices
#   ROUNDS=5 REQUESTS=5000 FAIL=0 scripts/bench-libs.sh
#
# The program is crates/gotap-cli/tests/go/grpchttp (GET /q → gRPC client → gRPC server → SQLite
# query + HTTP client → GET /leaf; GET /fail → gRPC → failing statement), built with plain
# `go build` (Go 1.26, CGO_ENABLED=0), run under the release `gotap run --no-console` exporting
# OTLP/gRPC to the test Collector (scripts/collector.sh, file exporter writing /dev/null).
# The measuring is crates/gotap-bench/examples/lib_cost.rs (see its doc comment); per-round raw
# figures, per program, go to $OUT/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=env.sh
source scripts/env.sh
GO=${GO:-$GO126}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-3000}
FAIL=${FAIL:-1000}
WARMUP=${WARMUP:-300}
CONNECTIONS=${CONNECTIONS:-2}
CHUNKS=${CHUNKS:-5}
OTLP_PORT=${OTLP_PORT:-18951}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$TARGET/bench/libs
mkdir -p "$OUT"
[ "$(id -u)" = 0 ] || { echo "bench-libs.sh: run as root (uprobes, BPF statistics)" >&2; exit 1; }

cargo build --release -q -p gotap-cli
cargo build --release -q -p gotap-bench --example lib_cost
GOTAP=$TARGET/release/gotap
LIB_COST=$TARGET/release/examples/lib_cost
BIN=$OUT/grpchttp
(cd crates/gotap-cli/tests/go/grpchttp && CGO_ENABLED=0 "$GO" build -o "$BIN" .)

COLLECTOR=$(scripts/collector.sh)
scripts/collector.sh config "$OTLP_PORT" $((OTLP_PORT + 1)) /dev/null >"$OUT/collector.yaml"
"$COLLECTOR" --config "$OUT/collector.yaml" >"$OUT/collector.log" 2>&1 &
COLLECTOR_PID=$!
trap 'kill $COLLECTOR_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$OTLP_PORT) 2>/dev/null && break; sleep 0.1; done

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'); $("$GO" version); $(nproc) cores, kernel $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== grpchttp $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates/gotap-ebpf instrumentations || echo ' + working tree changes'); $ROUNDS rounds, $WARMUP warm-up, $REQUESTS GET /q, $FAIL GET /fail, $CONNECTIONS connections, alternated in $CHUNKS slices"
"$LIB_COST" --gotap "$GOTAP" --bin "$BIN" --otlp "http://127.0.0.1:$OTLP_PORT" \
  --rounds "$ROUNDS" --requests "$REQUESTS" --fail "$FAIL" --warmup "$WARMUP" \
  --connections "$CONNECTIONS" --chunks "$CHUNKS" --json "$OUT/results.jsonl"
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
