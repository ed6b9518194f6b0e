//! DataDog Orchestrion as an arena strategy: `orchestrion go build` of a copy of each service with
//! the dd-trace-go integrations for the libraries the services use, run with dd-trace-go's OTLP
//! trace export so its spans reach the same collector as every other strategy.
//!
//! Users run `orchestrion pin`, which requires `github.com/DataDog/dd-trace-go/orchestrion/all/v2`;
//! the module proxy reachable here refuses that module (403), so the arena writes what `pin` would
//! have written with an explicit list of integrations (the documented alternative: one import per
//! integration in `orchestrion.tool.go`). `pin` and these `go get`s edit go.mod, so the build runs
//! on a copy of the service and of `shared`, never on go/arena itself.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The integrations the arena's services need, at versions the module proxy serves (the newest
/// served `contrib/database/sql/v2` is v2.6.0: v2.9.0 and later are refused here).
pub const MODULES: [&str; 5] = [
    "github.com/DataDog/orchestrion@v1.15.0",
    "github.com/DataDog/dd-trace-go/v2@v2.12.0",
    "github.com/DataDog/dd-trace-go/contrib/net/http/v2@v2.12.0",
    "github.com/DataDog/dd-trace-go/contrib/google.golang.org/grpc/v2@v2.12.0",
    "github.com/DataDog/dd-trace-go/contrib/database/sql/v2@v2.6.0",
];

/// What the woven integrations trace, in the arena's vocabulary (see `spans_claimed`).
pub const INSTRUMENTS: [&str; 5] = [
    "net/http server",
    "net/http client",
    "google.golang.org/grpc server",
    "google.golang.org/grpc client",
    "database/sql",
];

const TOOL_GO: &str = r#"//go:build tools

// Written by gotap bench in place of `orchestrion pin` (see crates/gotap-bench/src/orchestrion.rs).
package tools

import (
	_ "github.com/DataDog/orchestrion"

	_ "github.com/DataDog/dd-trace-go/contrib/database/sql/v2"
	_ "github.com/DataDog/dd-trace-go/contrib/google.golang.org/grpc/v2"
	_ "github.com/DataDog/dd-trace-go/contrib/net/http/v2"
	_ "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer" // starts the tracer in main, stops it when main returns
)
"#;

/// Environment of an Orchestrion-built service: dd-trace-go's OTLP trace export (http/protobuf)
/// to the arena's collector, and no attempt to reach a Datadog agent for telemetry or remote
/// configuration (there is none).
pub fn env(service: &str, otlp_http: u16) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_TRACES_EXPORTER", "otlp".into()),
        ("DD_TRACE_OTEL_ENABLED", "true".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_http}"),
        ),
        ("DD_SERVICE", service.into()),
        ("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false".into()),
        ("DD_REMOTE_CONFIGURATION_ENABLED", "false".into()),
    ]
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), dst)?;
        }
    }
    Ok(())
}

/// Copies `service` and `shared` from the arena into `work` and adds the integrations (go.mod of
/// the copy). Returns the service's directory in the copy.
pub fn prepare(arena: &Path, work: &Path, go: &Path, service: &str) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(work);
    for d in [service, "shared"] {
        copy_dir(&arena.join(d), &work.join(d))
            .map_err(|e| format!("cannot copy go/arena/{d}: {e}"))?;
    }
    let dir = work.join(service);
    std::fs::write(dir.join("orchestrion.tool.go"), TOOL_GO)
        .map_err(|e| format!("cannot write orchestrion.tool.go: {e}"))?;
    go_get(go, &dir)?;
    Ok(dir)
}

/// The same for the legacy services: one module (go/arena/legacy) holding the three.
pub fn prepare_legacy(
    arena: &Path,
    work: &Path,
    go: &Path,
    service: &str,
) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(work);
    copy_dir(&arena.join("legacy"), work)
        .map_err(|e| format!("cannot copy go/arena/legacy: {e}"))?;
    std::fs::write(work.join("orchestrion.tool.go"), TOOL_GO)
        .map_err(|e| format!("cannot write orchestrion.tool.go: {e}"))?;
    go_get(go, work)?;
    Ok(work.join(service))
}

fn go_get(go: &Path, dir: &Path) -> Result<(), String> {
    let o = Command::new(go)
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .arg("get")
        .args(MODULES)
        .output()
        .map_err(|e| format!("cannot run go: {e}"))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let line = err
            .lines()
            .find(|l| !l.starts_with("go: downloading") && !l.trim().is_empty())
            .unwrap_or("go get failed");
        return Err(format!(
            "go get of the dd-trace-go integrations failed: {}",
            line.trim()
        ));
    }
    Ok(())
}

/// PATH with the toolchain's bin directory first: orchestrion runs `go` from PATH.
pub fn path_with(go: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = go.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.extend(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    std::env::join_paths(dirs).unwrap_or_default()
}
