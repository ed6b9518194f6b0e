#!/usr/bin/env bash
# Benchmark probe sites (issue #6) on go/services/httpsvc, interleaved in one run so machine noise
# hits every mode alike. Not a test: the figures depend on the machine. Root required. Modes:
#   plain     go build, nothing attached                          (the baseline)
#   disabled  gotap build --probes, nothing attached              (cost of sites nobody listens to)
#   armed     the same with its batch site's semaphore set to 1 by this script (/proc/PID/mem),
#             no tracer: the woven Go code runs (ids, traceparent, events, the buffer, a site call
#             per buffer) but no probe fires — the target-side share of the sites' cost
#             (measurement only: gotap never writes the target)
#   uprobes   gotap run on the plain binary: function uprobes     (gotap's eBPF strategy)
#   sites     gotap run on the --probes binary: USDT probe sites  (this issue; batch sites,
#             gotap's default: one hit per buffer of spans)
#   unbatched the same with --no-batch: one probe-site hit per span
#   sdk       gotap build (OTel SDK woven in), exporting itself   (compile-time strategy)
# Every tracing mode exports to the same Collector (OTLP; file exporter writing /dev/null).
# Per mode and round: p50/p99 at a fixed rate (vegeta, open loop) and the CPU time of the service
# plus gotap over that phase divided by its requests (one server span each) — overhead = that
# minus plain's —, then saturation throughput (wrk -t1 -c10) and the CPU per request there. The
# fixed-rate overhead is the cleaner cost figure: at saturation every mode batches differently
# (fewer requests per wakeup when slower), which charges the tracer more than its own work. The
# rate (8000/s) is one every mode sustains on 2 cores with vegeta's own CPU beside it; at low
# rates the per-request wakeups of an idle server (~50 µs) drown the differences.
# Then, per mode and round, the in-process closed loop (httpsvc -selfload, GOMAXPROCS=1): a raw
# client inside the service sends GET /users/42 one request at a time, so the one thread never
# sleeps and its CPU per request is the request's own cost (one server span, as above) without the
# wake-ups that dominate the fixed-rate figure and shift with latency; gotap's CPU over the same
# phase is added. The cleanest per-request overhead of the three.
# Then the raw cost of one uprobe hit on this machine, on a Go loop: on a function's first
# instruction (CMP, single-stepped), and on a probe site's 5-byte NOP (kernel-optimised path).
#
#   scripts/bench-probes.sh                 # 3 rounds, 8000 req/s open loop
#   ROUNDS=5 RATE=5000 scripts/bench-probes.sh
#   OTLP_PROTOCOL=grpc scripts/bench-probes.sh    # gotap run exports over gRPC (default http/protobuf)
#   LOADS=self ROUNDS=8 scripts/bench-probes.sh    # only the closed loop, more rounds
#   LOADS=pairs MODES="uprobes sites unbatched" ROUNDS=5 scripts/bench-probes.sh   # pinned pairs
#   LOADS=toggle MODES="armed uprobes sites" ROUNDS=2 scripts/bench-probes.sh     # toggled tracers
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=env.sh
source scripts/env.sh
GO=${GO:-$GO126}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-8000}
WRK_SECS=${WRK_SECS:-8}
SELF_SECS=${SELF_SECS:-6}
# Which loads: rate (vegeta at RATE, then wrk at saturation), self (the in-process closed loop),
# pairs (pinned pairs of closed loops, see pair_mode), toggle (a tracer switched on and off under
# one closed loop, see toggle_mode); the last two are not part of the default.
LOADS=${LOADS:-rate self}
VEGETA_SECS=${VEGETA_SECS:-10}
PORT=${PORT:-18951}
OTLP_PORT=${OTLP_PORT:-18961}
MODES=${MODES:-plain disabled armed uprobes sites unbatched sdk}
# gotap run's OTLP transport: gotap's (and the OTel spec's) default, or grpc. The SDK build
# exports over OTLP/HTTP either way.
OTLP_PROTOCOL=${OTLP_PROTOCOL:-http/protobuf}
OUT=$PWD/target/bench/probes
mkdir -p "$OUT" "$OUT/tools"
[ "$(id -u)" = 0 ] || { echo "bench-probes.sh: run as root (gotap run attaches uprobes)" >&2; exit 1; }

cargo build --release -q -p gotap-cli
cargo build --release -q -p gotap-ebpf --example probe_cost
GOTAP=$PWD/target/release/gotap
PROBE_COST=$PWD/target/release/examples/probe_cost
(cd go/services && CGO_ENABLED=0 "$GO" build -o "$OUT/httpsvc-plain" ./httpsvc)
(cd go/services/httpsvc && CGO_ENABLED=0 GOTAP_GO="$GO" "$GOTAP" build --probes -o "$OUT/httpsvc-probes" . >/dev/null)
(cd go/services/httpsvc && CGO_ENABLED=0 GOTAP_GO="$GO" "$GOTAP" build -o "$OUT/httpsvc-sdk" . >/dev/null)
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
trap 'kill $COLLECTOR_PID $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$OTLP_PORT) 2>/dev/null && break; sleep 0.1; done

# utime+stime ticks of all threads of the given processes.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
vegeta_at() { # $1 = seconds, $2 = output file
  echo "GET $URL" | "$VEGETA" attack -rate="$RATE/s" -duration="${1}s" -keepalive=true | "$VEGETA" report -type=json >"$2"
}
wait_ready() {
  for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0; sleep 0.05; done
  echo "bench-probes.sh: the service never answered on port $PORT" >&2; return 1
}

# Sets net/http's batch semaphore of the --probes binary in process $1 to 1 (arm) or 0 (disarm)
# (non-PIE: address = vaddr).
SEM_ADDR=$("$GOTAP" probes list --json "$OUT/httpsvc-probes" | python3 -c 'import json,sys; print(next(p["semaphore"] for p in json.load(sys.stdin)["probes"] if p["name"] == "http_batch"))')
arm() { set_semaphore "$1" 1; }
disarm() { set_semaphore "$1" 0; }
set_semaphore() {
  python3 - "$1" "$SEM_ADDR" "$2" <<'PY'
import sys
with open(f"/proc/{sys.argv[1]}/mem", "r+b", buffering=0) as m:
    m.seek(int(sys.argv[2])); m.write(int(sys.argv[3]).to_bytes(2, "little"))
PY
}

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
run_mode() { # $1 = mode, $2 = round
  local mode=$1 round=$2 log=$OUT/$1-$2.log gotap_pid="" svc_pid pids c1 c2 c3 g1 g2 g3
  local svc_args=(-listen "127.0.0.1:$PORT" -name bench)
  local otlp_port=$OTLP_PORT
  [ "$OTLP_PROTOCOL" = grpc ] || otlp_port=$((OTLP_PORT + 1))
  local run=("$GOTAP" run --no-console --otlp-endpoint "http://127.0.0.1:$otlp_port" --otlp-protocol "$OTLP_PROTOCOL" --service-name bench --)
  case $mode in
    plain) "$OUT/httpsvc-plain" "${svc_args[@]}" >/dev/null 2>"$log" & svc_pid=$! ;;
    disabled|armed) "$OUT/httpsvc-probes" "${svc_args[@]}" >/dev/null 2>"$log" & svc_pid=$! ;;
    sdk) OTEL_SERVICE_NAME=bench OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$((OTLP_PORT + 1))" \
           "$OUT/httpsvc-sdk" "${svc_args[@]}" >/dev/null 2>"$log" & svc_pid=$! ;;
    uprobes) "${run[@]}" "$OUT/httpsvc-plain" "${svc_args[@]}" >/dev/null 2>"$log" & gotap_pid=$! ;;
    sites) "${run[@]}" "$OUT/httpsvc-probes" "${svc_args[@]}" >/dev/null 2>"$log" & gotap_pid=$! ;;
    unbatched) "${run[@]:0:2}" --no-batch "${run[@]:2}" "$OUT/httpsvc-probes" "${svc_args[@]}" >/dev/null 2>"$log" & gotap_pid=$! ;;
  esac
  wait_ready
  [ -n "$gotap_pid" ] && svc_pid=$(pgrep -P "$gotap_pid")
  [ "$mode" = armed ] && arm "$svc_pid"
  pids=("$svc_pid"); [ -n "$gotap_pid" ] && pids+=("$gotap_pid")
  vegeta_at 2 /dev/null # warm-up: connections, goroutines, heap
  sleep 0.5
  c1=$(cpu_ticks "${pids[@]}")
  g1=0; [ -n "$gotap_pid" ] && g1=$(cpu_ticks "$gotap_pid")
  vegeta_at "$VEGETA_SECS" "$OUT/vegeta-$mode-$round.json"
  sleep 0.5 # let the agent drain its ring buffer and the exporters their batches
  c2=$(cpu_ticks "${pids[@]}")
  g2=0; [ -n "$gotap_pid" ] && g2=$(cpu_ticks "$gotap_pid")
  wrk -t1 -c10 -d"${WRK_SECS}s" "$URL" >"$OUT/wrk-$mode-$round.txt"
  sleep 0.5
  c3=$(cpu_ticks "${pids[@]}")
  g3=0; [ -n "$gotap_pid" ] && g3=$(cpu_ticks "$gotap_pid")
  kill -TERM "$svc_pid"
  if [ -n "$gotap_pid" ]; then wait "$gotap_pid" || true; else wait "$svc_pid" || true; fi
  python3 - "$mode" "$round" "$OUT" "$c1" "$c2" "$c3" "$g1" "$g2" "$g3" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import json, re, sys
mode, rnd, out, c1, c2, c3, g1, g2, g3, hz = sys.argv[1:]
wrk = open(f"{out}/wrk-{mode}-{rnd}.txt").read()
veg = json.load(open(f"{out}/vegeta-{mode}-{rnd}.json"))
r = {"mode": mode, "round": int(rnd),
     "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1)),
     "p50_us": veg["latencies"]["50th"] / 1e3, "p99_us": veg["latencies"]["99th"] / 1e3,
     "success": veg["success"],
     "cpu_us_per_req": (int(c2) - int(c1)) / int(hz) * 1e6 / veg["requests"],
     "gotap_us_per_req": (int(g2) - int(g1)) / int(hz) * 1e6 / veg["requests"],
     "cpu_us_per_req_sat": (int(c3) - int(c2)) / int(hz) * 1e6 / int(re.search(r"(\d+) requests in", wrk).group(1)),
     "gotap_us_per_req_sat": (int(g3) - int(g2)) / int(hz) * 1e6 / int(re.search(r"(\d+) requests in", wrk).group(1))}
log = open(f"{out}/{mode}-{rnd}.log").read()
m = re.search(r"gotap: (\d+) spans exported .*?, (\d+) dropped, (\d+) probe hits[^(]*\(([\d.]+) per span\)", log)
if mode in ("uprobes", "sites", "unbatched"):
    if not m:
        sys.exit(f"no gotap summary in {out}/{mode}-{rnd}.log:\n{log}")
    r.update(spans=int(m.group(1)), dropped=int(m.group(2)), hits_per_span=float(m.group(4)))
    t = re.search(r"gotap: tracing [^\n]*", log)
    r["path"] = t.group(0) if t else ""
print(json.dumps(r))
PY
}

# The in-process closed loop of mode $1, round $2 (see the top): the service's own CPU per request
# (getrusage, printed by the service) and gotap's over the measured phase.
self_mode() {
  local mode=$1 round=$2 fifo=$OUT/self.fifo gotap_pid="" svc_pid="" g1=0 g2=0 res="" line
  local args=(-listen "127.0.0.1:$PORT" -name bench -selfload "${SELF_SECS}s")
  local otlp_port=$OTLP_PORT
  [ "$OTLP_PROTOCOL" = grpc ] || otlp_port=$((OTLP_PORT + 1))
  local run=("$GOTAP" run --no-console --otlp-endpoint "http://127.0.0.1:$otlp_port" --otlp-protocol "$OTLP_PROTOCOL" --service-name bench --)
  rm -f "$fifo"; mkfifo "$fifo"
  case $mode in
    plain) GOMAXPROCS=1 "$OUT/httpsvc-plain" "${args[@]}" >/dev/null 2>"$fifo" & svc_pid=$! ;;
    disabled|armed) GOMAXPROCS=1 "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$fifo" & svc_pid=$! ;;
    sdk) GOMAXPROCS=1 OTEL_SERVICE_NAME=bench OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$((OTLP_PORT + 1))" \
           "$OUT/httpsvc-sdk" "${args[@]}" >/dev/null 2>"$fifo" & svc_pid=$! ;;
    uprobes) GOMAXPROCS=1 "${run[@]}" "$OUT/httpsvc-plain" "${args[@]}" >/dev/null 2>"$fifo" & gotap_pid=$! ;;
    sites) GOMAXPROCS=1 "${run[@]}" "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$fifo" & gotap_pid=$! ;;
    unbatched) GOMAXPROCS=1 "${run[@]:0:2}" --no-batch "${run[@]:2}" "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$fifo" & gotap_pid=$! ;;
  esac
  while IFS= read -r line; do
    case $line in
      "httpsvc bench listening"*) [ "$mode" = armed ] && arm "$svc_pid" ;;
      "selfload measuring") [ -n "$gotap_pid" ] && g1=$(cpu_ticks "$gotap_pid") ;;
      "selfload requests="*) [ -n "$gotap_pid" ] && g2=$(cpu_ticks "$gotap_pid"); res=$line ;;
    esac
    echo "$line" >>"$OUT/self-$mode-$round.log"
  done <"$fifo"
  wait "${gotap_pid:-$svc_pid}" || true
  [ -n "$res" ] || { echo "bench-probes.sh: no selfload result for $mode (see $OUT/self-$mode-$round.log)" >&2; exit 1; }
  python3 - "$mode" "$round" "$res" "$g1" "$g2" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import json, re, sys
mode, rnd, res, g1, g2, hz = sys.argv[1:]
n = int(re.search(r"requests=(\d+)", res).group(1))
print(json.dumps({"self_mode": mode, "round": int(rnd), "requests": n,
                  "cpu_us_per_req": float(re.search(r"cpu_ns_per_request=(\d+)", res).group(1)) / 1e3,
                  "gotap_us_per_req": (int(g2) - int(g1)) / int(hz) * 1e6 / n}))
PY
}

# Pinned pairs (LOADS=pairs): two closed loops at once, each pinned with everything it runs to one
# CPU — plain on one, mode $1 (its gotap run included) on the other, then the sides swapped — and
# each loop's wall time per request on its own CPU (1 / its throughput) compared. Both loops share
# every slow phase of the host, which the sequential figures above do not; the swap cancels the
# CPUs' differences. gotap exports nothing here (its reader still builds every span): the export
# is the same work for every strategy, and the Collector would run on either CPU.
pair_side() { # $1 = mode, $2 = cpu, $3 = port, $4 = stderr file
  local args=(-listen "127.0.0.1:$3" -name bench -selfload "${SELF_SECS}s")
  local run=("$GOTAP" run --no-console --service-name bench)
  case $1 in
    plain) GOMAXPROCS=1 taskset -c "$2" "$OUT/httpsvc-plain" "${args[@]}" >/dev/null 2>"$4" & ;;
    disabled) GOMAXPROCS=1 taskset -c "$2" "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$4" & ;;
    armed) # armed during the service's 1 s warm-up, once it listens (taskset has exec'd it)
      : >"$4"
      GOMAXPROCS=1 taskset -c "$2" "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$4" &
      local pid=$!
      for _ in $(seq 200); do grep -q "listening" "$4" 2>/dev/null && break; sleep 0.01; done
      grep -q "listening" "$4" || { echo "bench-probes.sh: the armed service never listened" >&2; exit 1; }
      arm "$pid" ;;
    uprobes) GOMAXPROCS=1 taskset -c "$2" "${run[@]}" -- "$OUT/httpsvc-plain" "${args[@]}" >/dev/null 2>"$4" & ;;
    sites) GOMAXPROCS=1 taskset -c "$2" "${run[@]}" -- "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$4" & ;;
    unbatched) GOMAXPROCS=1 taskset -c "$2" "${run[@]}" --no-batch -- "$OUT/httpsvc-probes" "${args[@]}" >/dev/null 2>"$4" & ;;
    *) echo "bench-probes.sh: mode $1 has no pinned-pair form" >&2; exit 1 ;;
  esac
}
pair_mode() { # $1 = mode, $2 = round
  local a b side
  for side in 0 1; do
    if [ "$side" = 0 ]; then a=plain b=$1; else a=$1 b=plain; fi
    pair_side "$a" 0 "$PORT" "$OUT/pair-a.log"
    local pa=$!
    pair_side "$b" 1 $((PORT + 1)) "$OUT/pair-b.log"
    wait "$pa" $! || true # not a bare wait: the Collector runs in the background too
    python3 - "$1" "$2" "$side" "$OUT/pair-a.log" "$OUT/pair-b.log" >>"$RESULTS" <<'PY'
import json, re, sys
mode, rnd, side, fa, fb = sys.argv[1:]
wall, cpu = [], []
for f in (fa, fb):
    m = re.search(r"cpu_ns_per_request=(\d+) wall_ns_per_request=(\d+)", open(f).read())
    if not m:
        sys.exit(f"bench-probes.sh: no selfload result in {f}")
    cpu.append(int(m.group(1)) / 1e3)
    wall.append(int(m.group(2)) / 1e3)
p, t = (0, 1) if side == "0" else (1, 0)
# cpu: the service's own CPU per request (its threads, the kernel work of its probe hits
# included); the rest of its CPU's wall time is everything else pinned there (its gotap).
print(json.dumps({"pair_mode": mode, "round": int(rnd), "mode_cpu": 1 if side == "0" else 0,
                  "plain_us": wall[p], "traced_us": wall[t], "overhead_us": wall[t] - wall[p],
                  "plain_cpu_us": cpu[p], "traced_cpu_us": cpu[t],
                  "target_overhead_us": cpu[t] - cpu[p]}))
PY
    tail -1 "$RESULTS"
  done
}

# Toggle (LOADS=toggle): one closed loop (httpsvc -selfload, GOMAXPROCS=1) pinned to CPU 1 for
# TOGGLE_SECS, reporting its wall time per request every 250 ms, while a tracer is switched on and
# off every TOGGLE_WIN seconds on the same CPU: `gotap attach` (its reader shares the CPU, as in
# the pairs) for uprobes (plain binary), sites and unbatched (--probes binary), the batch semaphore written
# 1 then 0 for armed. Each mode is compared with itself untraced a few seconds earlier and later,
# interval by interval, so the host's slow drifts cancel; the switching itself (attach, detach)
# is left out: only intervals well inside a window count. The other CPU runs only this script.
TOGGLE_SECS=${TOGGLE_SECS:-60}
TOGGLE_WIN=${TOGGLE_WIN:-4}
now_ns() { date +%s%N; }
toggle_mode() { # $1 = mode, $2 = round
  local mode=$1 log=$OUT/toggle-$1-$2.log marks=$OUT/toggle-$1-$2.marks bin=$OUT/httpsvc-probes gp t
  [ "$mode" = uprobes ] && bin=$OUT/httpsvc-plain
  : >"$log"; : >"$marks"
  taskset -p -c 0 $$ >/dev/null # this script's own work (date, python, kill) stays off CPU 1
  GOMAXPROCS=1 taskset -c 1 "$bin" -listen "127.0.0.1:$PORT" -name bench -selfload "${TOGGLE_SECS}s" \
    -selfload-tick 250ms >/dev/null 2>"$log" &
  local svc=$!
  for _ in $(seq 500); do grep -q "selfload measuring" "$log" && break; sleep 0.01; done
  while kill -0 "$svc" 2>/dev/null; do
    sleep "$TOGGLE_WIN"
    kill -0 "$svc" 2>/dev/null || break
    case $mode in
      armed) arm "$svc"; echo "on $(now_ns)" >>"$marks" ;;
      uprobes|sites|unbatched)
        local flags=(--no-console --service-name bench)
        [ "$mode" = unbatched ] && flags+=(--no-batch)
        taskset -c 1 "$GOTAP" attach "${flags[@]}" --pid "$svc" >/dev/null 2>"$OUT/toggle-gotap.log" &
        gp=$!
        for _ in $(seq 1000); do grep -q "gotap: tracing" "$OUT/toggle-gotap.log" && break; kill -0 "$gp" 2>/dev/null || break; sleep 0.01; done
        echo "on $(now_ns)" >>"$marks" ;;
    esac
    sleep "$TOGGLE_WIN"
    echo "off $(now_ns)" >>"$marks"
    case $mode in
      armed) kill -0 "$svc" 2>/dev/null && disarm "$svc" ;;
      *) kill -INT "$gp" 2>/dev/null || true; wait "$gp" || true ;;
    esac
    echo "idle $(now_ns)" >>"$marks"
  done
  wait "$svc" || true
  python3 - "$mode" "$2" "$log" "$marks" >>"$RESULTS" <<'PY'
import json, re, statistics as st, sys
mode, rnd, log, marks = sys.argv[1:]
ticks = [(int(m.group(1)), float(m.group(2)) / 1e3) for m in
         re.finditer(r"tick end_unix_ns=(\d+) requests=\d+ cpu_ns_per_request=\d+ wall_ns_per_request=(\d+)", open(log).read())]
ev = [(l.split()[0], int(l.split()[1])) for l in open(marks)]
TICK, SETTLE = 250_000_000, 300_000_000
def inside(a, b):  # intervals wholly within [a + SETTLE, b]
    return [w for end, w in ticks if end - TICK >= a + SETTLE and end <= b]
# Windows: traced = [on, off]; untraced = [idle, next on] (and before the first on).
on = [t for k, t in ev if k == "on"]; off = [t for k, t in ev if k == "off"]; idle = [t for k, t in ev if k == "idle"]
start = ticks[0][0] - TICK if ticks else 0
quiet = [(start - SETTLE, on[0] if on else 0)] + [(idle[i], on[i + 1] if i + 1 < len(on) else ticks[-1][0]) for i in range(len(idle))]
# The host's noise comes in bursts (+10–25 µs for a second or two) that hit traced and untraced
# windows alike; a tracer's own work is spread evenly (drains every 100 ms, well below the 250 ms
# interval). So besides the medians, each window's lower quartile is compared: its quiet phases.
q1 = lambda v: sorted(v)[(len(v) - 1) // 4]
diffs, diffs_q1 = [], []
for i in range(min(len(on), len(off))):
    traced = inside(on[i], off[i])
    around = inside(*quiet[i]) + (inside(*quiet[i + 1]) if i + 1 < len(quiet) else [])
    if len(traced) >= 3 and len(around) >= 3:
        diffs.append(st.median(traced) - st.median(around))
        diffs_q1.append(q1(traced) - q1(around))
if not diffs:
    sys.exit(f"bench-probes.sh: no usable toggle window for {mode} (see {log}, {marks})")
print(json.dumps({"toggle_mode": mode, "round": int(rnd), "windows": len(diffs),
                  "overhead_us": st.median(diffs), "diffs": [round(d, 2) for d in diffs],
                  "diffs_q1": [round(d, 2) for d in diffs_q1]}))
PY
  tail -1 "$RESULTS"
}

echo "== $("$GO" version), $(nproc) cores, kernel $(uname -r); $ROUNDS rounds; vegeta -rate=$RATE/s -duration=${VEGETA_SECS}s and wrk -t1 -c10 -d${WRK_SECS}s on GET /users/42"
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    [[ " $LOADS " == *" rate "* ]] || continue
    run_mode "$mode" "$round"
    tail -1 "$RESULTS"
  done
  for mode in $MODES; do
    [[ " $LOADS " == *" self "* ]] || continue
    sleep 2 # the Collector finishes the previous mode's spans first
    self_mode "$mode" "$round"
    tail -1 "$RESULTS"
  done
  for mode in $MODES; do
    [[ " $LOADS " == *" pairs "* && $mode != plain ]] || continue
    pair_mode "$mode" "$round"
  done
  for mode in $MODES; do
    [[ " $LOADS " == *" toggle "* && " armed uprobes sites unbatched " == *" $mode "* ]] || continue
    toggle_mode "$mode" "$round"
  done
done

# Raw cost of one uprobe hit: a Go loop calling (a) a Go function, whose first instruction is the
# stack check's CMP (single-stepped), (b) a probe site: Go assembly starting with a 5-byte NOP.
LOOP=$OUT/siteloop
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

//go:noinline
func f(x int) int { return leaf(x) + 1 }

func site(x int)

// Usage: siteloop f|site WAIT_MS SECONDS — sleeps WAIT_MS (time to attach a probe), then prints
// the mean ns per call once per second.
func main() {
	wait, _ := strconv.Atoi(os.Args[2])
	secs, _ := strconv.Atoi(os.Args[3])
	useSite := os.Args[1] == "site"
	time.Sleep(time.Duration(wait) * time.Millisecond)
	acc := 0
	for s := 0; s < secs; s++ {
		n, start := 0, time.Now()
		for time.Since(start) < time.Second {
			for i := 0; i < 1000; i++ {
				if useSite {
					site(i)
				} else {
					acc += f(i)
				}
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
cat >"$LOOP/src/site_amd64.s" <<'ASM'
#include "textflag.h"
TEXT ·site(SB), NOSPLIT|NOFRAME, $0-8
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET
ASM
printf 'module siteloop\n\ngo 1.19\n' >"$LOOP/src/go.mod"
(cd "$LOOP/src" && CGO_ENABLED=0 "$GO" build -o "$LOOP/siteloop" .)
offset_of() { "$GOTAP" inspect --json "$LOOP/siteloop" --func "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["probes"][0]["offset"])'; }
F=$(offset_of main.f)
SITE=$(offset_of main.site)
[ "$(od -An -tx1 -j "$SITE" -N5 "$LOOP/siteloop" | tr -d ' \n')" = 0f1f440000 ] || { echo "bench-probes.sh: main.site does not start with a 5-byte NOP" >&2; exit 1; }
probe_run() { # $1 = f|site, $2 = label, $3 = offset or empty; prints the median ns/call
  "$LOOP/siteloop" "$1" 1500 4 >"$LOOP/$2.txt" &
  local pid=$!
  if [ -n "$3" ]; then "$PROBE_COST" "$LOOP/siteloop" "$pid" "$(printf '%x' "$3")" 6 2>/dev/null & fi
  wait "$pid"
  [ -n "$3" ] && wait
  sort -n "$LOOP/$2.txt" | sed -n 2p
}
echo "{\"probe_ns_per_call\": {\"f_none\": $(probe_run f f-none ""), \"f_entry_cmp\": $(probe_run f f-cmp "$F"), \"site_none\": $(probe_run site site-none ""), \"site_nop5\": $(probe_run site site-nop5 "$SITE")}}" | tee -a "$RESULTS"

python3 - "$RESULTS" "$RATE" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = [r for r in rows if "mode" in r]
probe = next(r["probe_ns_per_call"] for r in rows if "probe_ns_per_call" in r)
rate = sys.argv[2]
modes = [m for m in ["plain", "disabled", "armed", "uprobes", "sites", "unbatched", "sdk"] if any(r.get("mode", r.get("self_mode")) == m for r in rows)]
label = {"plain": "plain", "disabled": "--probes, not traced", "armed": "--probes, semaphore set, no tracer", "uprobes": "gotap run (function uprobes)",
         "sites": "--probes + gotap run (batch sites)", "unbatched": "--probes + gotap run --no-batch (per-span sites)", "sdk": "gotap build (SDK)"}
vals = lambda m, k: [r[k] for r in runs if r["mode"] == m and k in r]
med = lambda m, k: st.median(vals(m, k))
if runs:
    print(f"\nmedian of {len(vals('plain', 'rps'))} interleaved rounds; ratios against plain\n")
    print(f"| mode | CPU µs/req at {rate} req/s (service + gotap) | overhead µs/req | … of it gotap's own | p50 µs | p99 µs | p99 ratio | saturation req/s | ratio | CPU µs/req at saturation | overhead µs/req | probe hits/span | spans dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    base_fix, base_sat = med("plain", "cpu_us_per_req"), med("plain", "cpu_us_per_req_sat")
    for m in modes:
        hits = f"{med(m, 'hits_per_span'):.3f}" if vals(m, "hits_per_span") else "–"
        drops = f"{sum(vals(m, 'dropped'))}" if vals(m, "dropped") else "–"
        own = f"{med(m, 'gotap_us_per_req'):.2f}" if m in ("uprobes", "sites", "unbatched") else "–"
        print(f"| {label[m]} | {med(m, 'cpu_us_per_req'):.2f} | {med(m, 'cpu_us_per_req') - base_fix:+.2f} | {own} | {med(m, 'p50_us'):,.0f} | "
              f"{med(m, 'p99_us'):,.0f} | {med(m, 'p99_us') / med('plain', 'p99_us'):.2f} | {med(m, 'rps'):,.0f} | {med(m, 'rps') / med('plain', 'rps'):.3f} | "
              f"{med(m, 'cpu_us_per_req_sat'):.2f} | {med(m, 'cpu_us_per_req_sat') - base_sat:+.2f} | {hits} | {drops} |")
    if "uprobes" in modes and "sites" in modes:
        for what, key, base in ((f"at {rate} req/s", "cpu_us_per_req", base_fix), ("at saturation", "cpu_us_per_req_sat", base_sat)):
            ou, os_ = med("uprobes", key) - base, med("sites", key) - base
            print(f"\nper-request CPU overhead {what}: function uprobes {ou:.2f} µs, sites {os_:.2f} µs: {ou / os_ if os_ > 0 else float('inf'):.1f}× less with sites", end="")
        print()
        # Paired: each round's overhead against that round's plain run (modes interleave, so a
        # slow phase of the machine hits both), then the median over rounds.
        def paired(m, key):
            base = {r["round"]: r[key] for r in runs if r["mode"] == "plain"}
            return st.median(r[key] - base[r["round"]] for r in runs if r["mode"] == m and r["round"] in base)
        for what, key in ((f"at {rate} req/s", "cpu_us_per_req"), ("at saturation", "cpu_us_per_req_sat")):
            ou, os_ = paired("uprobes", key), paired("sites", key)
            print(f"paired per round, {what}: function uprobes {ou:+.2f} µs, sites {os_:+.2f} µs: {ou / os_ if os_ > 0 else float('inf'):.1f}×")
        tu, ts = 1 - med("uprobes", "rps") / med("plain", "rps"), 1 - med("sites", "rps") / med("plain", "rps")
        print(f"saturation throughput lost: function uprobes {tu:.1%}, sites {ts:.1%}: {tu / ts if ts > 0 else float('inf'):.1f}× less with sites")
selfs = [r for r in rows if "self_mode" in r]
if selfs:
    sv = lambda m, k: [r[k] for r in selfs if r["self_mode"] == m]
    tot = lambda r: r["cpu_us_per_req"] + r["gotap_us_per_req"]
    base = st.median(tot(r) for r in selfs if r["self_mode"] == "plain")
    pbase = {r["round"]: tot(r) for r in selfs if r["self_mode"] == "plain"}
    paired_self = lambda m: st.median(tot(r) - pbase[r["round"]] for r in selfs if r["self_mode"] == m and r["round"] in pbase)
    print(f"\nin-process closed loop (httpsvc -selfload, GOMAXPROCS=1: one server span per request), median of {len(sv('plain', 'requests'))} rounds\n")
    print("| mode | service CPU µs/req | gotap's own µs/req | overhead µs/req | paired overhead µs/req |")
    print("|---|---|---|---|---|")
    for m in modes:
        if not sv(m, "requests"):
            continue
        own = f"{st.median(sv(m, 'gotap_us_per_req')):.2f}" if m in ("uprobes", "sites", "unbatched") else "–"
        o = st.median(tot(r) for r in selfs if r["self_mode"] == m) - base
        print(f"| {label[m]} | {st.median(sv(m, 'cpu_us_per_req')):.2f} | {own} | {o:+.2f} | {paired_self(m):+.2f} |")
    if sv("uprobes", "requests") and sv("sites", "requests"):
        ou = st.median(tot(r) for r in selfs if r["self_mode"] == "uprobes") - base
        os_ = st.median(tot(r) for r in selfs if r["self_mode"] == "sites") - base
        pu, ps = paired_self("uprobes"), paired_self("sites")
        print(f"\nper-request CPU overhead, in-process closed loop: function uprobes {ou:.2f} µs, sites {os_:.2f} µs: "
              f"{ou / os_ if os_ > 0 else float('inf'):.1f}× less with sites (paired {pu / ps if ps > 0 else float('inf'):.1f}×)")
        if sv("unbatched", "requests"):
            on, pn = st.median(tot(r) for r in selfs if r["self_mode"] == "unbatched") - base, paired_self("unbatched")
            print(f"per-span sites (--no-batch): {on:.2f} µs: {ou / on if on > 0 else float('inf'):.1f}× less than function uprobes "
                  f"(paired {pu / pn if pn > 0 else float('inf'):.1f}×)")
pairs = [r for r in rows if "pair_mode" in r]
if pairs:
    pm = [m for m in ["disabled", "armed", "uprobes", "sites", "unbatched"] if any(r["pair_mode"] == m for r in pairs)]
    po = lambda m: st.median(r["overhead_us"] for r in pairs if r["pair_mode"] == m)
    print(f"\npinned pairs of closed loops (plain on one CPU, the mode with its gotap on the other, swapped each time), "
          f"{len([r for r in pairs if r['pair_mode'] == pm[0]])} pairs per mode\n")
    print("| mode | plain wall µs/req | mode wall µs/req | overhead µs/req (median of pairs) | in the target | the rest (gotap) | overheads of the pairs |")
    print("|---|---|---|---|---|---|---|")
    for m in pm:
        rs = [r for r in pairs if r["pair_mode"] == m]
        # "in the target": the service's own CPU per request minus plain's (woven code, probe hits
        # and BPF programs run in its threads); the rest of the wall-time overhead is gotap's.
        tgt = st.median(r["target_overhead_us"] for r in rs if "target_overhead_us" in r) if any("target_overhead_us" in r for r in rs) else float("nan")
        print(f"| {label[m]} | {st.median(r['plain_us'] for r in rs):.2f} | {st.median(r['traced_us'] for r in rs):.2f} | {po(m):+.2f} | "
              f"{tgt:+.2f} | {po(m) - tgt:+.2f} | " + ", ".join("%+.1f" % r["overhead_us"] for r in rs) + " |")
    if "uprobes" in pm:
        for m in ("sites", "unbatched"):
            if m in pm:
                print(f"pinned pairs: function uprobes {po('uprobes'):+.2f} µs, {label[m]} {po(m):+.2f} µs: "
                      f"{po('uprobes') / po(m) if po(m) > 0 else float('inf'):.1f}× less")
toggles = [r for r in rows if "toggle_mode" in r]
if toggles:
    print("\ntoggled tracers (one closed loop on one CPU, the tracer switched on and off every "
          "few seconds on the same CPU; each window against the untraced ones around it)\n")
    print("| mode | windows | overhead µs/req: medians | lower quartiles | windows' overheads (lower quartiles) |")
    print("|---|---|---|---|---|")
    to, tq = {}, {}
    for m in ("armed", "uprobes", "sites", "unbatched"):
        ds = [d for r in toggles if r["toggle_mode"] == m for d in r["diffs"]]
        dq = [d for r in toggles if r["toggle_mode"] == m for d in r["diffs_q1"]]
        if ds:
            to[m], tq[m] = st.median(ds), st.median(dq)
            print(f"| {label[m]} | {len(ds)} | {to[m]:+.2f} | {tq[m]:+.2f} | " + ", ".join("%+.1f" % d for d in dq) + " |")
    if "uprobes" in to and "sites" in to:
        r = lambda t: t["uprobes"] / t["sites"] if t["sites"] > 0 else float("inf")
        print(f"toggled: function uprobes {to['uprobes']:+.2f} µs, batch sites {to['sites']:+.2f} µs: {r(to):.1f}× less "
              f"(lower quartiles: {tq['uprobes']:+.2f} vs {tq['sites']:+.2f} µs: {r(tq):.1f}×)")
for m in ("uprobes", "sites"):
    paths = {r.get("path", "") for r in runs if r["mode"] == m}
    print(f"{m}: {' | '.join(sorted(paths))}")
print(f"raw uprobe hit, ns per call: Go function {probe['f_none']} → probe on its entry CMP {probe['f_entry_cmp']}; "
      f"probe site {probe['site_none']} → probe on its nop5 {probe['site_nop5']}")
PY
