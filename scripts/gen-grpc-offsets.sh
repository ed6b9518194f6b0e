#!/usr/bin/env bash
# Regenerates crates/gotap-binary/offsets/grpc.json, the struct offsets of google.golang.org/grpc
# (and of the golang.org/x/net and genproto structs it hands the probes) for binaries without
# DWARF: for each grpc version, fetches it through the Go module proxy, builds a small program
# that links its server, client, transport and status packages (with DWARF), and reads the
# offsets of every field instrumentations/grpc/ebpf.rs lists in ALL_FIELDS (go/grpcoffsets).
# x/net and genproto are measured at the versions each grpc version resolves to. Consecutive
# measured versions of a module with the same layout become one row (from..to); a version
# outside every row is unknown to gotap, which then warns instead of guessing.
#
# Env: GOTAP_GRPC_VERSIONS  space-separated grpc versions (default: every v1.N.0, 50 <= N <= 85)
#      GOTAP_GRPC_LATEST_DEPS  1 (default): also measure the newest x/net and genproto with the
#                              last grpc version; 0: only what the grpc versions require
#      GOTAP_GRPC_OFFSETS_OUT  file to write (default: the checked-in table)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

out="${GOTAP_GRPC_OFFSETS_OUT:-crates/gotap-binary/offsets/grpc.json}"
versions="${GOTAP_GRPC_VERSIONS:-$(for n in $(seq 50 85); do printf 'v1.%s.0 ' "$n"; done)}"
go="$GO126"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# STRUCT.FIELD of every ModField::new(MODULE, "STRUCT", "FIELD") of ALL_FIELDS' constants.
mapfile -t fields < <(tr '\n' ' ' < instrumentations/grpc/ebpf.rs |
  grep -oE 'ModField::new\( *[A-Z_]+, *"[^"]+", *"[^"]+"' |
  sed -E 's/.*"([^"]+)", *"([^"]+)"/\1.\2/' | sort -u)
[ ${#fields[@]} -gt 0 ] || { echo "gen-grpc-offsets: no ModField in instrumentations/grpc/ebpf.rs" >&2; exit 1; }

(cd go/grpcoffsets && CGO_ENABLED=0 "$go" build -o "$tmp/grpcoffsets" .)

cat > "$tmp/main.go" <<'GO'
// Links what gotap's grpc probes read: server, client, transport, status, x/net/http2.
package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func main() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	cc, _ := grpc.Dial(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	_, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	println(status.Code(err).String())
}
GO

measurements="$tmp/measurements"
: > "$measurements"
# measure NAME GRPC_VERSION [MODULE@VERSION...]: one build against grpc GRPC_VERSION (and the
# other module versions given, e.g. a newer x/net than grpc requires), one measurement per module.
measure() {
  local name="$1" v="$2"
  shift 2
  local d="$tmp/$name"
  mkdir -p "$d"
  cp "$tmp/main.go" "$d/"
  (
    cd "$d"
    printf 'module gotap.dev/grpcoffsets/probe\n\ngo 1.21\n\nrequire google.golang.org/grpc %s\n' "$v" > go.mod
    if [ $# -gt 0 ]; then
      GOFLAGS=-mod=mod "$go" get "$@" >/dev/null 2>&1 || { echo "gen-grpc-offsets: grpc $v: go get $* failed" >&2; exit 1; }
    fi
    GOFLAGS=-mod=mod "$go" mod tidy >/dev/null 2>&1 || { echo "gen-grpc-offsets: grpc $v: go mod tidy failed" >&2; exit 1; }
    CGO_ENABLED=0 "$go" build -o probe . 2> build.log || { cat build.log >&2; exit 1; }
  )
  json="$("$tmp/grpcoffsets" "$d/probe" "${fields[@]}")"
  modver() { (cd "$d" && "$go" list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1" 2>/dev/null) || true; }
  pick() { printf '%s' "$json" | tr ',' '\n' | tr -d '{}' | { grep -E "$1" || true; } | paste -sd, -; }
  local rpc=google.golang.org/genproto/googleapis/rpc
  [ -n "$(modver "$rpc")" ] || rpc=google.golang.org/genproto
  for m in google.golang.org/grpc golang.org/x/net "$rpc"; do
    case "$m" in
      google.golang.org/grpc) sub="$(pick '^"google\.golang\.org/grpc[./]')" ;;
      golang.org/x/net) sub="$(pick '^"golang\.org/x/net/')" ;;
      *) sub="$(pick '^"google\.golang\.org/genproto/')" ;;
    esac
    mv="$(modver "$m")"
    [ -n "$mv" ] || { echo "gen-grpc-offsets: grpc $v: no version of $m" >&2; exit 1; }
    echo "$m $mv {$sub}" >> "$measurements"
  done
  echo "gen-grpc-offsets: measured grpc $v $*" >&2
}

last=""
for v in $versions; do
  measure "$v" "$v"
  last="$v"
done
# Binaries usually link a newer x/net and genproto than their grpc requires: measure the newest
# too (the versions the proxy calls latest today; the table records which).
if [ "${GOTAP_GRPC_LATEST_DEPS:-1}" = 1 ]; then
  measure latest-deps "$last" golang.org/x/net@latest google.golang.org/genproto/googleapis/rpc@latest
fi
"$tmp/grpcoffsets" -merge < "$measurements" > "$out.tmp"
mv "$out.tmp" "$out"
echo "gen-grpc-offsets: wrote $out" >&2
