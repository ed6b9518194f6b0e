//! SQL literals never leave the process under plain `gotap run`: crates/gotap-cli/tests/go/sqlsvc
//! built with `go build` (never touched by gotap) and traced by the database/sql function probes
//! (instrumentations/databasesql/), exporting OTLP/HTTP to the real Collector. sqlsvc's `/leaks`
//! runs `LeakQueries`: literals each dialect writes its own way (dollar quotes, E'' strings,
//! SQLite's double-quoted strings) and failing statements whose driver error quotes the literal;
//! each holds the word `secret-`, which must appear nowhere the Collector received (attributes,
//! span names, status messages, events), while the query spans themselves did arrive, with the
//! sanitized texts `gotap build` exports (build_sql.rs) and the failures' Error status.
//! SQLite and PostgreSQL (scripts/postgres.sh); Go 1.26 and 1.27. Runs as root (real uprobes).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{bin_dir, build_once, free_port, require_root, Postgres, Toolchain};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `go build` of sqlsvc: the binary `gotap run` gets.
fn plain_build(tc: Toolchain) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sqlsvc");
    let out = bin_dir().join(format!("sqlsvc-plain-{}", tc.label()));
    build_once(&out, || {
        let res = tc
            .command()
            .current_dir(&dir)
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "go build of sqlsvc with {}: {}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// sqlsvc's `LeakQueries` for the backend: the db.query.text each must have (build_sql.rs's
/// list, which the woven SDK exports) and whether it fails.
fn want(postgres: bool) -> Vec<(&'static str, bool)> {
    if postgres {
        vec![
            ("SELECT ?", false),
            ("SELECT ? AS \"Visible\"", false),
            ("SELECT ?", false),
            ("SELECT ? ?", true),
            ("SELECT ?::int", true),
        ]
    } else {
        vec![
            ("SELECT ?", false),
            ("SELECT ? ? ?", true),
            ("SELECT ? FROM nope", true),
        ]
    }
}

/// Every string the Collector's OTLP/JSON holds, with where it is (`span NAME: key`): span
/// names, attribute values, status messages, event names and attributes, resources.
fn strings(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((at.to_owned(), s.clone())),
        Value::Array(a) => a.iter().for_each(|x| strings(x, at, out)),
        Value::Object(o) => {
            // An attribute: {"key": K, "value": {...}}.
            let at = match o.get("key").and_then(Value::as_str) {
                Some(k) => format!("{at}: {k}"),
                None => match o.get("name").and_then(Value::as_str) {
                    Some(n) if o.contains_key("spanId") => format!("span {n}"),
                    _ => at.to_owned(),
                },
            };
            for (k, x) in o {
                let at = if k == "status" {
                    format!("{at}: status")
                } else {
                    at.clone()
                };
                strings(x, &at, out);
            }
        }
        _ => {}
    }
}

/// The status message of each span (OTLP/JSON), by span id.
fn status_messages(raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    if let Some(m) = s["status"]["message"].as_str() {
                        out.push((s["spanId"].as_str().unwrap_or("").to_owned(), m.to_owned()));
                    }
                }
            }
        }
    }
    out
}

fn leaks(tc: Toolchain, postgres: bool) {
    require_root();
    let label = format!("{}-{}", tc.label(), if postgres { "pg" } else { "sqlite" });
    let dir = scratch(&format!("run-sql-leaks-{label}"));
    let bin = plain_build(tc);
    let col = Collector::start(&dir);
    let pg = postgres.then(Postgres::start);
    let db = match &pg {
        Some(pg) => pg.dsn.clone(),
        // Parameters, one a password (modernc ignores `_auth_pass`): the DSN stays in the process.
        None => format!(
            "{}?_pragma=busy_timeout(5000)&_auth_pass=secret-dsn",
            dir.join("run.db").display()
        ),
    };
    let port = free_port();
    let mut cmd = Command::new(GOTAP);
    cmd.args(["run", "--no-console", "--otlp-endpoint"])
        .arg(format!("http://127.0.0.1:{}", col.http_port))
        .args([
            "--otlp-protocol",
            "http/protobuf",
            "--service-name",
            "sqlsvc",
            "--",
        ])
        .arg(&bin)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("DB", &db);
    let mut p = Proc::spawn(cmd, "gotap run sqlsvc");
    wait_listening(port, &mut p);
    let tracing = p.stderr.text();
    assert!(
        tracing
            .lines()
            .any(|l| l.starts_with("gotap: tracing ") && l.contains("database/sql")),
        "{label}: database/sql is traced: {tracing}"
    );
    let want = want(postgres);
    let (status, body) = http(port, "GET", "/leaks", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        body.lines().map(|l| l == "err").collect::<Vec<_>>(),
        want.iter().map(|w| w.1).collect::<Vec<_>>(),
        "{label}: which queries fail: {body}"
    );
    let spans = col.wait_for("the /leaks spans", |s| {
        s.iter().any(|x| x.str("url.path") == Some("/leaks"))
            && s.iter()
                .filter(|x| x.str("db.system.name").is_some())
                .count()
                >= 3 + want.len()
    });
    let f = p.interrupt();
    assert_eq!(f.code, Some(128 + libc::SIGINT), "{label}: {f:?}");

    // No literal anywhere: every string received, status messages included.
    let raw = std::fs::read_to_string(&col.file).unwrap();
    assert!(raw.contains("db.query.text"), "{label}: {raw}");
    let mut all = Vec::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        strings(&serde_json::from_str(line).unwrap(), "", &mut all);
    }
    let leaked: Vec<&(String, String)> = all.iter().filter(|(_, v)| v.contains("secret")).collect();
    assert!(
        leaked.is_empty(),
        "{label}: literals reached the Collector: {leaked:#?}"
    );
    assert!(
        !raw.contains("secret"),
        "{label}: a literal reached the Collector:\n{raw}"
    );
    assert!(
        !raw.contains(&db) && !raw.contains("_pragma"),
        "{label}: the DSN reached the Collector:\n{raw}"
    );
    let messages = status_messages(&raw);
    assert!(
        messages.iter().all(|(_, m)| !m.contains("secret")),
        "{label}: {messages:?}"
    );
    // The query spans arrived, children of /leaks, with the sanitized texts and statuses.
    let server = spans
        .iter()
        .find(|s| s.str("url.path") == Some("/leaks"))
        .unwrap();
    let children: Vec<&FlatSpan> = spans
        .iter()
        .filter(|s| s.parent == server.span_id)
        .collect();
    let mut got: Vec<(&str, bool)> = children
        .iter()
        .map(|s| (s.str("db.query.text").unwrap_or(""), s.status == 2))
        .collect();
    let mut expected = want.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{label}:\n{}", dump(&spans));
    assert!(
        children.iter().all(|s| s.kind == 3
            && s.str("db.system.name") == Some(if postgres { "postgresql" } else { "sqlite" })),
        "{label}:\n{}",
        dump(&spans)
    );

    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go126_run_sql_literals_never_exported_sqlite() {
    leaks(Toolchain::Go126, false);
}

#[test]
fn go126_run_sql_literals_never_exported_postgres() {
    leaks(Toolchain::Go126, true);
}

#[test]
fn go127_run_sql_literals_never_exported_sqlite() {
    leaks(Toolchain::Go127, false);
}

#[test]
fn go127_run_sql_literals_never_exported_postgres() {
    leaks(Toolchain::Go127, true);
}
