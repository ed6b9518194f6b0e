#!/usr/bin/env bash
# gotap's main job on a fresh machine, end to end: trace two unmodified Go services (A calls B)
# with eBPF and print their spans on the console.
#
#   scripts/demo.sh            (as root: uprobes need CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN)
#
# Installs the toolchains, builds gotap (release) and the sample service go/services/httpsvc,
# starts B and A each under `gotap run`, sends a few requests with curl (one with a W3C
# traceparent), stops both with SIGTERM (gotap forwards it, flushes, prints its summary) and
# shows what each gotap printed. Ports: DEMO_PORT_A / DEMO_PORT_B (default: the first free ones from 18081).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

[ "$(id -u)" = 0 ] || { echo "demo.sh: gotap attaches uprobes; run as root" >&2; exit 1; }
command -v curl >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }

scripts/toolchains.sh
source scripts/env.sh

echo "== building gotap (release)"
cargo build --release --locked -p gotap-cli
gotap="$root/target/release/gotap"

echo "== building go/services/httpsvc with $("$GO126" version | cut -d' ' -f3)"
out="$root/target/demo"
mkdir -p "$out"
(cd go/services && CGO_ENABLED=0 "$GO126" build -o "$out/httpsvc" ./httpsvc)

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port_from() {
  local p=$1
  while in_use "$p"; do p=$((p + 1)); done
  echo "$p"
}
pb="${DEMO_PORT_B:-$(free_port_from 18081)}"
pa="${DEMO_PORT_A:-$(free_port_from $((pb + 1)))}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # PORT PID: PID (gotap) must still run once the port answers
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { echo "demo.sh: gotap exited:" >&2; cat "$out"/*.err >&2; exit 1; }
    in_use "$1" && return 0
    sleep 0.1
  done
  echo "demo.sh: nothing listens on port $1; see $out/*.log" >&2
  exit 1
}

echo "== starting B (:$pb) and A (:$pa, downstream B), each under gotap run"
"$gotap" run --console --service-name svc-b -- "$out/httpsvc" -listen "127.0.0.1:$pb" -name B \
  >"$out/b.log" 2>"$out/b.err" &
pids+=($!)
wait_port "$pb" $!
"$gotap" run --console --service-name svc-a -- "$out/httpsvc" -listen "127.0.0.1:$pa" -name A -downstream "http://127.0.0.1:$pb" \
  >"$out/a.log" 2>"$out/a.err" &
pids+=($!)
wait_port "$pa" $!

echo "== requests"
set -x
curl -s "http://127.0.0.1:$pa/users/42"
curl -s -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' "http://127.0.0.1:$pa/users/43"
curl -s "http://127.0.0.1:$pa/fanout"
curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$pa/fail"
{ set +x; } 2>/dev/null

sleep 0.5 # let the last spans reach the ring buffer drain
echo "== stopping (SIGTERM: gotap forwards it to the service, flushes, exits with its code)"
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()

for s in a b; do
  echo
  echo "== service ${s^^}: gotap's stderr"
  cat "$out/$s.err"
  echo "== service ${s^^}: stdout (the service's own lines and gotap's console spans)"
  cat "$out/$s.log"
done
