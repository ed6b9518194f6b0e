#!/usr/bin/env bash
# Benchmark `gotap run` (eBPF strategy) on go/services/httpsvc against the same service
# uninstrumented, interleaved in one run (baseline, traced, baseline, traced…) so machine noise
# hits both alike. Not a test: the figures depend on the machine. Root required. Per mode and round:
#   - saturation throughput: wrk -t1 -c10 -d8s on GET /users/42 (no downstream call);
#   - latency at a fixed rate, open loop: vegeta attack -rate=$RATE (wrk is closed-loop, which
#     hides queueing delay), p50/p99; run first, before the saturation phase leaves a backlog;
#   - traced only: gotap's own user+system CPU (/proc/PID/task/*/stat, split into the agent's
#     ring-buffer reader thread, the export thread and the rest) per span — over the fixed-rate
#     phase (÷ its requests: one server span each) and over the whole load (÷ spans exported) —,
#     its peak RSS (VmHWM), probe hits per span and drops (from its closing summary), and how long
#     it takes to exit once the program has exited (detaching the probes).
# Then the raw cost of one uprobe hit on this machine, for context (examples/probe_cost.rs on a Go
# loop): on a single-stepped instruction (a function's first, `CMP`) and on an emulated one (the
# stack check's `JBE`, where gotap puts its entry probes).
#
#   scripts/bench-ebpf.sh                  # 3 rounds, 5000 req/s open loop
#   ROUNDS=5 RATE=2000 scripts/bench-ebpf.sh
# gotap exports with OTLP/gRPC to the test Collector (scripts/collector.sh, file exporter writing
# /dev/null) on the same machine, default batch settings. vegeta is installed from the Go module proxy into target/bench/tools if it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=env.sh
source scripts/env.sh
GO=${GO:-$GO126}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}
WRK_SECS=${WRK_SECS:-8}
VEGETA_SECS=${VEGETA_SECS:-10}
PORT=${PORT:-18931}
OTLP_PORT=${OTLP_PORT:-18941}
OUT=$PWD/target/bench/ebpf
mkdir -p "$OUT" "$OUT/tools"
[ "$(id -u)" = 0 ] || { echo "bench-ebpf.sh: run as root (gotap run attaches uprobes)" >&2; exit 1; }

cargo build --release -q -p gotap-cli
cargo build --release -q -p gotap-ebpf --example probe_cost
GOTAP=$PWD/target/release/gotap
PROBE_COST=$PWD/target/release/examples/probe_cost
SVC=$OUT/httpsvc
(cd go/services && CGO_ENABLED=0 "$GO" build -o "$SVC" ./httpsvc)
VEGETA=$(command -v vegeta || true)
if [ -z "$VEGETA" ]; then
  VEGETA=$OUT/tools/vegeta
  [ -x "$VEGETA" ] || (cd "$OUT" && GOBIN=$OUT/tools "$GO" install github.com/tsenart/vegeta/v12@v12.12.0)
fi
URL=http://127.0.0.1:$PORT/users/42
COLLECTOR=$(scripts/collector.sh)
scripts/collector.sh config "$OTLP_PORT" $((OTLP_PORT + 1)) /dev/null >"$OUT/collector.yaml"
"$COLLECTOR" --config "$OUT/collector.yaml" >"$OUT/collector.log" 2>&1 &
COLLECTOR_PID=$!
# On any exit, stop what is still running: the collector, and a service or gotap left by a failure.
trap 'kill $COLLECTOR_PID $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$OTLP_PORT) 2>/dev/null && break; sleep 0.1; done

# utime+stime ticks of a process's threads: "reader export other" (thread names have no spaces).
cpu_ticks() {
  cat /proc/"$1"/task/*/stat 2>/dev/null | awk '{t = $14 + $15}
    $2 == "(gotap-ebpf-read)" {r += t; next} $2 == "(gotap-export)" {e += t; next} {o += t}
    END {print r + 0, e + 0, o + 0}'
}
vegeta_at() { # $1 = seconds, $2 = output file
  echo "GET $URL" | "$VEGETA" attack -rate="$RATE/s" -duration="${1}s" -keepalive=true | "$VEGETA" report -type=json >"$2"
}
wait_ready() {
  for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0; sleep 0.05; done
  echo "bench-ebpf.sh: the service never answered on port $PORT" >&2; return 1
}

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
run_mode() { # $1 = baseline | traced, $2 = round
  local mode=$1 round=$2 log=$OUT/$1-$2.log gotap_pid="" svc_pid t0="0 0 0" t1="0 0 0" t2="0 0 0" hwm=0 exit_ms=0
  if [ "$mode" = traced ]; then
    "$GOTAP" run --no-console --otlp-endpoint "http://127.0.0.1:$OTLP_PORT" --otlp-protocol grpc --service-name bench -- \
      "$SVC" -listen "127.0.0.1:$PORT" -name bench >/dev/null 2>"$log" &
    gotap_pid=$!
    wait_ready
    svc_pid=$(pgrep -P "$gotap_pid")
  else
    "$SVC" -listen "127.0.0.1:$PORT" -name bench >/dev/null 2>"$log" &
    svc_pid=$!
    wait_ready
  fi
  [ -n "$gotap_pid" ] && t0=$(cpu_ticks "$gotap_pid")
  vegeta_at 2 /dev/null # warm-up at the fixed rate: connections, goroutines, heap
  sleep 0.5
  [ -n "$gotap_pid" ] && t1=$(cpu_ticks "$gotap_pid")
  vegeta_at "$VEGETA_SECS" "$OUT/vegeta-$mode-$round.json"
  sleep 0.5 # the ring buffer is drained every 20 ms and the exporter batches: let it catch up
  [ -n "$gotap_pid" ] && t2=$(cpu_ticks "$gotap_pid")
  wrk -t1 -c10 -d"${WRK_SECS}s" "$URL" >"$OUT/wrk-$mode-$round.txt"
  sleep 2
  if [ -n "$gotap_pid" ]; then
    t3=$(cpu_ticks "$gotap_pid")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$gotap_pid/status")
  fi
  kill -TERM "$svc_pid"
  local t_kill; t_kill=$(date +%s%N)
  if [ -n "$gotap_pid" ]; then
    wait "$gotap_pid" || true # exits 128+15, the program's status
    exit_ms=$(( ($(date +%s%N) - t_kill) / 1000000 ))
  else
    wait "$svc_pid" || true
  fi
  python3 - "$mode" "$round" "$OUT" "$t0" "$t1" "$t2" "${t3:-0 0 0}" "$hwm" "$exit_ms" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import json, re, sys
mode, rnd, out, t0, t1, t2, t3, hwm, exit_ms, hz = sys.argv[1:]
ticks = lambda a, b: [(int(y) - int(x)) / int(hz) * 1e6 for x, y in zip(a.split(), b.split())]  # µs: reader, export, other
wrk = open(f"{out}/wrk-{mode}-{rnd}.txt").read()
veg = json.load(open(f"{out}/vegeta-{mode}-{rnd}.json"))
r = {"mode": mode, "round": int(rnd),
     "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1)),
     "wrk_requests": int(re.search(r"(\d+) requests in", wrk).group(1)),
     "p50_us": veg["latencies"]["50th"] / 1e3, "p99_us": veg["latencies"]["99th"] / 1e3,
     "vegeta_rate": veg["throughput"], "vegeta_requests": veg["requests"], "success": veg["success"]}
if mode == "traced":
    log = open(f"{out}/{mode}-{rnd}.log").read()
    m = re.search(r"gotap: (\d+) spans exported .*?, (\d+) dropped, (\d+) probe hits[^(]*\(([\d.]+) per span\)", log)
    if not m:
        sys.exit(f"no gotap summary in {out}/{mode}-{rnd}.log:\n{log}")
    spans = int(m.group(1))
    fixed = ticks(t1, t2)
    whole = ticks(t0, t3)
    r.update(spans=spans, dropped=int(m.group(2)), hits_per_span=float(m.group(4)),
             cpu_us_per_span_fixed=sum(fixed) / veg["requests"], reader_us_per_span_fixed=fixed[0] / veg["requests"],
             export_us_per_span_fixed=fixed[1] / veg["requests"],
             cpu_us_per_span_all=sum(whole) / spans, reader_us_per_span_all=whole[0] / spans,
             export_us_per_span_all=whole[1] / spans,
             rss_hwm_mb=int(hwm) / 1024, exit_ms=int(exit_ms))
print(json.dumps(r))
PY
}

echo "== $("$GO" version), $(nproc) cores, kernel $(uname -r); $ROUNDS rounds; wrk -t1 -c10 -d${WRK_SECS}s and vegeta -rate=$RATE/s -duration=${VEGETA_SECS}s on GET /users/42"
for round in $(seq "$ROUNDS"); do
  for mode in baseline traced; do
    run_mode "$mode" "$round"
    tail -1 "$RESULTS"
  done
done

# Raw uprobe-hit cost: a Go loop calling a noinline function with a stack check (it calls another
# noinline function), ns per call with no probe, a probe on its JBE, a probe on its entry CMP.
LOOP=$OUT/probeloop
mkdir -p "$LOOP/src"
cat >"$LOOP/src/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

//go:noinline
func leaf(x int) int { return x ^ 0x5bd1e995 }

// f is not a leaf, so it starts with the stack-bound check (CMP; JBE) like any handler.
//
//go:noinline
func f(x int) int { return leaf(x) + 1 }

// Usage: probeloop WAIT_MS SECONDS — sleeps WAIT_MS (time to attach a probe), then prints the
// mean ns per call of f once per second.
func main() {
	wait, _ := strconv.Atoi(os.Args[1])
	secs, _ := strconv.Atoi(os.Args[2])
	time.Sleep(time.Duration(wait) * time.Millisecond)
	acc := 0
	for s := 0; s < secs; s++ {
		n, start := 0, time.Now()
		for time.Since(start) < time.Second {
			for i := 0; i < 1000; i++ {
				acc += f(i)
			}
			n += 1000
		}
		fmt.Printf("%.1f\n", float64(time.Since(start).Nanoseconds())/float64(n))
	}
	if acc == 42 {
		fmt.Println()
	}
}
GO
printf 'module probeloop\n\ngo 1.19\n' >"$LOOP/src/go.mod"
(cd "$LOOP/src" && CGO_ENABLED=0 "$GO" build -o "$LOOP/probeloop" .)
ENTRY=$("$GOTAP" inspect --json "$LOOP/probeloop" --func main.f | python3 -c 'import json,sys; print(json.load(sys.stdin)["probes"][0]["offset"])')
# The probe sits on the JBE only if f starts with `CMPQ SP, 0x10(R14)` (49 3b 66 10).
PROLOGUE=$(od -An -tx1 -j "$ENTRY" -N4 "$LOOP/probeloop" | tr -d ' \n')
[ "$PROLOGUE" = 493b6610 ] || { echo "bench-ebpf.sh: main.f does not start with the stack check ($PROLOGUE)" >&2; exit 1; }
probe_run() { # $1 = label, $2 = offset or empty; prints the median ns/call
  "$LOOP/probeloop" 1500 4 >"$LOOP/$1.txt" &
  local pid=$!
  if [ -n "$2" ]; then "$PROBE_COST" "$LOOP/probeloop" "$pid" "$(printf '%x' "$2")" 6 2>/dev/null & fi
  wait "$pid"
  [ -n "$2" ] && wait
  sort -n "$LOOP/$1.txt" | sed -n 2p
}
NONE=$(probe_run none "")
JBE=$(probe_run jbe $((ENTRY + 4)))
CMP=$(probe_run cmp "$ENTRY")
echo "{\"probe_ns_per_call\": {\"none\": $NONE, \"jbe_emulated\": $JBE, \"cmp_single_stepped\": $CMP}}" | tee -a "$RESULTS"

python3 - "$RESULTS" "$RATE" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = [r for r in rows if "mode" in r]
probe = next(r["probe_ns_per_call"] for r in rows if "probe_ns_per_call" in r)
rate = sys.argv[2]
vals = lambda mode, k: [r[k] for r in runs if r["mode"] == mode]
cell = lambda mode, k, d: f"{st.median(vals(mode, k)):,.{d}f} ({min(vals(mode, k)):,.{d}f}–{max(vals(mode, k)):,.{d}f})"
print(f"\nmedian (min–max) of {len(vals('baseline', 'rps'))} interleaved rounds\n")
print("| | uninstrumented | gotap run | ratio |\n|---|---|---|---|")
for k, label in [("rps", "saturation throughput, req/s (wrk -t1 -c10)"),
                 ("p50_us", f"p50 latency at {rate} req/s, µs (vegeta, open loop)"),
                 ("p99_us", f"p99 latency at {rate} req/s, µs")]:
    ratio = st.median(vals("traced", k)) / st.median(vals("baseline", k))
    print(f"| {label} | {cell('baseline', k, 0)} | {cell('traced', k, 0)} | {ratio:.2f} |")
for k, label, d in [("cpu_us_per_span_fixed", f"gotap CPU per span at {rate} req/s, µs", 2),
                    ("reader_us_per_span_fixed", "… agent (ring-buffer reader thread)", 2),
                    ("export_us_per_span_fixed", "… OTLP export thread", 2),
                    ("cpu_us_per_span_all", "gotap CPU per exported span, whole load, µs", 2),
                    ("reader_us_per_span_all", "… agent (ring-buffer reader thread)", 2),
                    ("export_us_per_span_all", "… OTLP export thread", 2),
                    ("rss_hwm_mb", "gotap peak RSS (VmHWM), MB", 1),
                    ("hits_per_span", "probe hits per span", 2),
                    ("spans", "spans exported per run", 0),
                    ("dropped", "spans dropped per run", 0),
                    ("exit_ms", "gotap exit after the program's, ms (detach)", 0)]:
    print(f"| {label} | | {cell('traced', k, d)} | |")
print(f"\nspans/s at saturation (traced wrk req/s, one span each): {st.median(vals('traced', 'rps')):,.0f}")
print(f"raw uprobe hit on this machine, ns per call of a Go function: none {probe['none']}, "
      f"probe on its emulated JBE {probe['jbe_emulated']}, on its single-stepped entry CMP {probe['cmp_single_stepped']}")
PY
