#!/usr/bin/env bash
# Runs every gotap test on this machine, from a clean clone: installs the toolchains, builds the
# real OpenTelemetry Collector the end-to-end tests export to, then the Rust test suites (which
# build the Go test programs with Go 1.19, 1.26 and 1.27, and attach real uprobes: run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: the eBPF tests attach uprobes and must run as root" >&2; exit 1; }

scripts/toolchains.sh
source scripts/env.sh
scripts/collector.sh >/dev/null

export RUST_BACKTRACE=1
mkdir -p target
set +e
# Lints first (a minute or two): formatting and clippy warnings fail the run, after the tests.
lint=0
cargo fmt --all -- --check || { echo "test.sh: cargo fmt --check found unformatted code" >&2; lint=1; }
cargo clippy --workspace --all-targets --locked -- -D warnings || { echo "test.sh: cargo clippy found warnings" >&2; lint=1; }
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
[ "$status" = 0 ] && status=$lint
set -e

# One closing line for the whole run (the per-binary lines above come from cargo test).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' target/test-output.txt
exit "$status"
