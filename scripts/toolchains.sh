#!/usr/bin/env bash
# Installs everything gotap's build and tests need, idempotently, on a fresh Debian machine:
#   - clang/llvm, libbpf headers, bpftool (BPF programs are C, compiled by build.rs)
#   - bpftrace (checks that the USDT notes of `gotap build --probes` work with standard tools)
#   - postgresql (database/sql tests and the arena's orders service; scripts/postgres.sh makes clusters)
#   - Go 1.19 (Debian golang-1.19-go), Go 1.26 (the machine's), Go 1.27.3 (GOTOOLCHAIN via the
#     module proxy) — the three toolchains every test runs against
#   - load tools for benchmarks (wrk, hyperfine), curl for the demo, a font for the arena's charts
# Afterwards `source scripts/env.sh` gives GO119, GO126, GO127 (paths to each `go`).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in clang llvm libbpf-dev bpftool golang-1.19-go linux-libc-dev wrk hyperfine fonts-dejavu-core curl bpftrace postgresql; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "toolchains: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "toolchains: no Go on PATH (the machine's Go 1.26 is expected at /usr/local/go)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "toolchains: no cargo on PATH (rustup's stable toolchain is expected)" >&2; exit 1; }

# Go 1.27.3 comes through the module proxy as golang.org/toolchain; `go version` fetches it once.
GOTOOLCHAIN=go1.27.3 go version >/dev/null

source scripts/env.sh
for g in "$GO119" "$GO126" "$GO127"; do
  [ -x "$g" ] || { echo "toolchains: missing $g" >&2; exit 1; }
done
echo "toolchains: $("$GO119" version | cut -d' ' -f3) $("$GO126" version | cut -d' ' -f3) $("$GO127" version | cut -d' ' -f3), $(clang --version | head -1)" >&2
