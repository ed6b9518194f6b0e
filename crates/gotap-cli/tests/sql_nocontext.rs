//! SQL issued without the request's context (issue #22): crates/gotap-cli/tests/go/sqlnoctx's
//! handler runs `db.Query`, `db.Exec` and, in a goroutine it starts, `db.QueryRow`, none with
//! `r.Context()`, as frameworks often do. With every strategy — `gotap run` on a `go build`,
//! `gotap build` (the woven SDK), `gotap build --probes` under `gotap run` — each statement's span
//! must be a child of the request's server span (same trace id, parent span id = the server
//! span's id), and a statement a worker goroutine started by main runs for another request must
//! stay a root. The spans also carry the table although it is quoted (`"users"`, `` `users` ``)
//! and a db.namespace that is the file's name, never the DSN's parameters. The real Collector
//! receives them; Go 1.26 and 1.27. Runs as root (real uprobes).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{bin_dir, build_once, free_port, require_root, Toolchain};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds recompile the standard library: one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

fn service_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sqlnoctx")
}

#[derive(Clone, Copy, Debug)]
enum Strategy {
    /// `go build`, traced by `gotap run`'s function probes.
    Run,
    /// `gotap build`: the woven SDK exports itself.
    Build,
    /// `gotap build --probes`, traced by `gotap run` through its probe sites.
    Probes,
}

impl Strategy {
    fn label(self) -> &'static str {
        match self {
            Strategy::Run => "run",
            Strategy::Build => "build",
            Strategy::Probes => "probes",
        }
    }
}

fn binary(tc: Toolchain, s: Strategy) -> PathBuf {
    let out = bin_dir().join(format!("sqlnoctx-{}-{}", s.label(), tc.label()));
    build_once(&out, || {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = match s {
            Strategy::Run => {
                let mut c = tc.command();
                c.arg("build");
                c
            }
            Strategy::Build | Strategy::Probes => {
                let mut c = gotap_testkit::gotap_command(tc);
                c.arg("build");
                if let Strategy::Probes = s {
                    c.arg("--probes");
                }
                c
            }
        };
        let res = cmd
            .current_dir(service_dir())
            .arg("-o")
            .arg(&out)
            .arg(".")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{} build of sqlnoctx with {}: {}",
            s.label(),
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

fn check(tc: Toolchain, s: Strategy) {
    require_root();
    let label = format!("{}-{}", s.label(), tc.label());
    let dir = scratch(&format!("sql-nocontext-{label}"));
    let bin = binary(tc, s);
    let col = Collector::start(&dir);
    let db = format!(
        "{}?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)",
        dir.join("noctx.db").display()
    );
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{}", col.http_port);
    let mut cmd = match s {
        Strategy::Build => {
            let mut c = Command::new(&bin);
            c.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
                .env("OTEL_BSP_SCHEDULE_DELAY", "100")
                .env("OTEL_SERVICE_NAME", "sqlnoctx");
            c
        }
        Strategy::Run | Strategy::Probes => {
            let mut c = Command::new(GOTAP);
            c.args(["run", "--no-console", "--otlp-endpoint", &endpoint])
                .args(["--otlp-protocol", "http/protobuf"])
                .args(["--service-name", "sqlnoctx", "--"])
                .arg(&bin);
            c
        }
    };
    cmd.env("ADDR", format!("127.0.0.1:{port}")).env("DB", &db);
    let mut p = Proc::spawn(cmd, &format!("sqlnoctx ({label})"));
    wait_listening(port, &mut p);
    if !matches!(s, Strategy::Build) {
        let tracing = p.stderr.text();
        assert!(
            tracing
                .lines()
                .any(|l| l.starts_with("gotap: tracing ") && l.contains("database/sql")),
            "{label}: database/sql is traced: {tracing}"
        );
    }
    assert_eq!(
        http(port, "GET", "/q", &[]),
        (200, "ok\n".into()),
        "{label}"
    );
    assert_eq!(
        http(port, "GET", "/outside", &[]),
        (200, "ok\n".into()),
        "{label}"
    );
    let sql = |x: &FlatSpan| x.str("db.system.name").is_some();
    let spans = col.wait_for("the request and statement spans", |all| {
        let server = all.iter().filter(|x| x.kind == 2).count();
        let stmts = ["SELECT users", "UPDATE users", "DELETE audit"];
        server >= 2
            && all
                .iter()
                .filter(|x| sql(x) && x.name == "SELECT users")
                .count()
                >= 2
            && stmts
                .iter()
                .all(|n| all.iter().any(|x| sql(x) && x.name == *n))
    });
    let _ = p.interrupt();
    let all = dump(&spans);

    let server = |path: &str| {
        spans
            .iter()
            .find(|x| x.kind == 2 && x.str("url.path") == Some(path))
            .unwrap_or_else(|| panic!("{label}: no server span for {path}:\n{all}"))
    };
    let q = server("/q");
    let outside = server("/outside");
    // /q's three statements, the goroutine's QueryRow among them: children of /q's server span.
    let mut children: Vec<(&str, &str)> = spans
        .iter()
        .filter(|x| sql(x) && x.trace_id == q.trace_id && x.parent == q.span_id)
        .map(|x| (x.name.as_str(), x.str("db.query.text").unwrap_or("")))
        .collect();
    children.sort();
    assert_eq!(
        children,
        vec![
            ("SELECT users", "SELECT * FROM \"users\""),
            ("SELECT users", "SELECT n FROM users WHERE id = ?"),
            ("UPDATE users", "UPDATE `users` SET n = n + ? WHERE id = ?"),
        ],
        "{label}: /q's statements are children of its server span:\n{all}"
    );
    // The worker's statement: a root of its own trace, not /outside's nor /q's child.
    let worker: Vec<&FlatSpan> = spans
        .iter()
        .filter(|x| sql(x) && x.name == "DELETE audit")
        .collect();
    assert_eq!(worker.len(), 1, "{label}:\n{all}");
    assert_eq!(
        worker[0].parent, "",
        "{label}: the worker's statement is a root:\n{all}"
    );
    assert!(
        worker[0].trace_id != outside.trace_id && worker[0].trace_id != q.trace_id,
        "{label}: the worker's statement has a trace of its own:\n{all}"
    );
    // Every statement span: the database's name only, never the DSN's parameters.
    for x in spans.iter().filter(|x| sql(x)) {
        assert_eq!(
            x.str("db.namespace"),
            Some("noctx.db"),
            "{label}: {} has the file's name as db.namespace:\n{all}",
            x.name
        );
    }
    let raw = std::fs::read_to_string(&col.file).unwrap();
    assert!(
        !raw.contains("_pragma") && !raw.contains("journal_mode"),
        "{label}: the DSN's parameters reached the Collector:\n{raw}"
    );
}

#[test]
fn sql_without_context_run_go126() {
    check(Toolchain::Go126, Strategy::Run);
}

#[test]
fn sql_without_context_run_go127() {
    check(Toolchain::Go127, Strategy::Run);
}

#[test]
fn sql_without_context_build_go126() {
    check(Toolchain::Go126, Strategy::Build);
}

#[test]
fn sql_without_context_build_go127() {
    check(Toolchain::Go127, Strategy::Build);
}

#[test]
fn sql_without_context_probes_go126() {
    check(Toolchain::Go126, Strategy::Probes);
}

#[test]
fn sql_without_context_probes_go127() {
    check(Toolchain::Go127, Strategy::Probes);
}
