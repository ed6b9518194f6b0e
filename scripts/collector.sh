#!/usr/bin/env bash
# Builds gotap's test OpenTelemetry Collector (go/collector: OTLP receiver + file exporter, upstream
# modules pinned in go.mod/go.sum) once, and prints the binary's path on stdout.
#
#   scripts/collector.sh                          build if needed, print the path
#   scripts/collector.sh config GRPC HTTP FILE    print a collector config: OTLP gRPC on
#                                                 127.0.0.1:GRPC, OTLP/HTTP on 127.0.0.1:HTTP, traces
#                                                 to the file exporter writing FILE (JSON lines)
#
# The binary lives in $CARGO_TARGET_DIR/otelcol (default target/otelcol) next to a stamp holding a
# hash of the sources and the Go version; a matching stamp skips the build. Concurrent callers
# (parallel tests) serialise on a lock so the build runs once. A cold build takes 1.5-2 min and
# ~0.6 GB of memory on 2 cores (modules come from the Go module proxy the first time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ "${1:-}" = config ]; then
  [ $# -eq 4 ] || { echo "usage: $0 config GRPC_PORT HTTP_PORT FILE" >&2; exit 2; }
  cat <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$2
      http:
        endpoint: 127.0.0.1:$3
exporters:
  file:
    path: $4
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
YAML
  exit 0
fi

source "$root/scripts/env.sh"
src="$root/go/collector"
out_dir="${CARGO_TARGET_DIR:-$root/target}/otelcol"
bin="$out_dir/otelcol-gotap"
mkdir -p "$out_dir"

stamp_now="$( (cat "$src/go.mod" "$src/go.sum" "$src"/*.go; "$GO126" version) | sha256sum | cut -d' ' -f1)"

exec 9>"$out_dir/.lock"
flock 9
if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$stamp_now" ]; then
  echo "$bin"
  exit 0
fi

echo "collector: building $bin (cold: 1.5-2 min)" >&2
start=$(date +%s)
if ! (cd "$src" && "$GO126" build -trimpath -o "$bin.tmp" .) >&2; then
  echo "collector: go build failed in $src" >&2
  exit 1
fi
mv "$bin.tmp" "$bin"
echo "$stamp_now" >"$bin.stamp"
echo "collector: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
