#!/usr/bin/env bash
# Build-time cost of `gotap build` against plain `go build` for one service, and binary sizes.
#
#   scripts/bench-build.sh [SERVICE_DIR] [GO]     default: go/services/weavetest, $GO126
#
# Clean = empty GOCACHE and empty gotap cache (the module cache is kept: no downloads measured):
# the first build after installing gotap, which also builds gotap's weaver (once per gotap version
# and toolchain, kept in gotap's cache). "Clean, weaver cached" = empty GOCACHE again, gotap's cache
# kept: every later clean build (new CI cache, `go clean -cache`). No-op = the same build again.
# Edit = one source file of the service changed (in a copy of the service, so the repository is
# not touched). Prints a markdown table on stdout. GOTAP=path/to/gotap picks the binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/env.sh"
svc="$(cd "${1:-$root/go/services/weavetest}" && pwd)"
GO="${2:-$GO126}"
gotap="${GOTAP:-${CARGO_TARGET_DIR:-$root/target}/release/gotap}"
[ -x "$gotap" ] || gotap="${CARGO_TARGET_DIR:-$root/target}/debug/gotap"
[ -x "$gotap" ] || { echo "build gotap first: cargo build -p gotap-cli --release" >&2; exit 1; }

modroot="$svc"
while [ ! -f "$modroot/go.mod" ]; do
  [ "$modroot" != / ] || { echo "no go.mod above $svc" >&2; exit 1; }
  modroot="$(dirname "$modroot")"
done
work="$(mktemp -d /tmp/gotap-bench-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp -r "$modroot" "$work/src"
# A private copy: a cargo build elsewhere in the tree may replace target/*/gotap mid-benchmark.
cp "$gotap" "$work/gotap"; gotap="$work/gotap"
cd "$work/src/${svc#"$modroot"}"

# "wall cpu" seconds of one command (cpu = user + sys of it and its children: far less sensitive
# than wall time to other work on the machine).
secs() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" >/dev/null 2>"$work/err"; } 2>&1 ) || { cat "$work/err" >&2; exit 1; }
  echo "$t" | awk '{printf "%.2f %.2f", $1, $2 + $3}'
}
plain() { GOCACHE="$work/cache-plain" "$GO" build -o "$work/plain" .; }
woven() { GOCACHE="${WOVEN_GOCACHE:-$work/cache-gotap}" GOTAP_CACHE="$work/gotap-cache" GOTAP_GO="$GO" "$gotap" build -o "$work/woven" .; }
edit() { printf '\nfunc benchEdit%s() {}\n' "$(date +%s%N)" >> main.go; }

read -r p_clean pc_clean <<<"$(secs plain)";  read -r g_clean gc_clean <<<"$(secs woven)"
read -r g_clean2 gc_clean2 <<<"$(WOVEN_GOCACHE="$work/cache-gotap2" secs woven)"
read -r p_noop pc_noop <<<"$(secs plain)";    read -r g_noop gc_noop <<<"$(secs woven)"
edit; read -r p_edit pc_edit <<<"$(secs plain)"
edit; read -r g_edit gc_edit <<<"$(secs woven)"
p_size=$(stat -c %s "$work/plain"); g_size=$(stat -c %s "$work/woven")

ratio() { echo "scale=2; $1 / $2" | bc; }
echo "| $(basename "$svc"), $("$GO" env GOVERSION), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg) | plain go build | gotap build | ratio |"
echo "|---|---|---|---|"
row() { printf '| %s | %.2f s (cpu %.1f s) | %.2f s (cpu %.1f s) | %s× (cpu %s×) |\n' "$1" "$2" "$3" "$4" "$5" "$(ratio "$4" "$2")" "$(ratio "$5" "$3")"; }
row "clean build (empty caches)" "$p_clean" "$pc_clean" "$g_clean" "$gc_clean"
row "clean build, weaver cached" "$p_clean" "$pc_clean" "$g_clean2" "$gc_clean2"
row "no-op rebuild" "$p_noop" "$pc_noop" "$g_noop" "$gc_noop"
row "rebuild after editing main.go" "$p_edit" "$pc_edit" "$g_edit" "$gc_edit"
printf '| binary size | %.1f MB | %.1f MB | %s× |\n' "$(echo "$p_size/1000000" | bc -l)" "$(echo "$g_size/1000000" | bc -l)" "$(ratio "$g_size" "$p_size")"
