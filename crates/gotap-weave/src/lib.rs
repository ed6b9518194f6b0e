//! gotap's compile-time strategy: `gotap build` runs `go build` with `-toolexec` pointing back at
//! gotap, which rewrites the packages that rules target (net/http, database/sql,
//! google.golang.org/grpc — the last scoped by module version range) before the real compiler
//! sees them, and links the runtime `gotap.dev/gotaprt` (OpenTelemetry Go
//! SDK) into every main package through a temporary `-modfile` and `-overlay`. The user's source
//! tree, go.mod and go.sum are never written to. Probe mode (`gotap build --probes`) links no
//! runtime: rules add USDT probe sites (Go + assembly fragments) to net/http and the linked
//! executable gets its USDT notes (docs/probes.md).
//!
//! What this crate is not: it does not parse Go. Rewriting is done by a small Go program
//! (go/weaver, embedded and built once per toolchain) that uses go/parser; see docs/build.md.
//!
//! - [`assets`]: embedded Go sources and rules, extracted to gotap's cache; the weaver binary.
//! - [`plan`]: which rules apply, and the hash that keys woven objects in Go's build cache.
//! - [`gobuild`]: `gotap build` / `gotap test`.
//! - [`interrupt`]: SIGINT/SIGTERM forwarded to the go command; stale temporary directories.
//! - [`toolexec`]: `gotap toolexec <tool> args…`, called by the go command for every tool run.
pub mod assets;
pub mod gobuild;
pub mod interrupt;
pub mod plan;
pub mod toolexec;

/// gotap's version, part of every cache key.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Import path of the runtime module linked into woven programs.
pub const RUNTIME_MODULE: &str = "gotap.dev/gotaprt";
