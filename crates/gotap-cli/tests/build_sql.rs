//! `gotap build` end to end for database/sql (instrumentations/databasesql/weave/rules.yaml): weave
//! crates/gotap-cli/tests/go/sqlsvc (net/http + database/sql, no OpenTelemetry code) with Go 1.26
//! and 1.27, run it on SQLite and on PostgreSQL (scripts/postgres.sh) against the real
//! OpenTelemetry Collector, and compare each database span with the one
//! instrumentations/databasesql/spans.rs builds for the same query: name, scope, kind, every attribute,
//! status, and its parent (the request's server span). The attributes read from the DSN given to
//! sql.Open (server.address, server.port, db.namespace; never the password) are checked against
//! the DSN the test passed.
use gotap_spans::databasesql::{client_span, DbError, DbQuery};
use gotap_spans::SpanFrame;
use gotap_spans::{Resource, Span, Value};
use gotap_testkit::collector::{Collector, Seen};
use gotap_testkit::{free_port, Postgres, Proc, Toolchain};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
    fn driver_package(self) -> &'static str {
        match self {
            Backend::Sqlite => "modernc.org/sqlite",
            Backend::Postgres => "github.com/jackc/pgx/v5/stdlib",
        }
    }
    /// The query as sqlsvc sends it: PostgreSQL writes its one placeholder `$1`.
    fn ph(self, q: &str) -> String {
        match self {
            Backend::Sqlite => q.to_owned(),
            Backend::Postgres => q.replacen('?', "$1", 1),
        }
    }
    /// Go type and status code (SQLSTATE) of the driver's error for a missing table.
    fn missing_table(self) -> (&'static str, Option<&'static str>) {
        match self {
            Backend::Sqlite => ("*sqlite.Error", None),
            Backend::Postgres => ("*pgconn.PrepareError", Some("42P01")),
        }
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// `ScanQueries` of sqlsvc's main.go, in the same order.
const SCAN_QUERIES: &[&str] = &[
    "SELECT * FROM orders WHERE total = 'it''s' AND id = -1.5e3",
    "select $1, t2.total from orders t2 limit 10",
    "SELECT \"it's\" -- it's 1\n/* 2 */ FROM orders",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "  (SELECT 1)",
    "SELECT * FROM orders JOIN audit ON 1 = 1",
    "SELECT * FROM orders, audit",
    "SELECT * FROM `orders` WHERE id = 0x1F",
    "SELECT 'unterminated",
    "SELECT é FROM orders",
    "DELETE FROM audit WHERE what = 'x''y'",
    "Update orders SET views = views WHERE id IN (SELECT id FROM orders)",
    "PRAGMA user_version",
    "SELECT * FROM \"orders\" WHERE id = 1",
    "SELECT total FROM \"main\".\"orders\"",
    "SELECT total FROM [orders]",
    "UPDATE `orders` SET views = views WHERE id = 0",
];

fn service_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sqlsvc")
}

fn build_service(tc: Toolchain) -> PathBuf {
    gotap_testkit::gotap_build_once(&service_dir(), tc, &format!("sqlsvc-woven-{}", tc.label()))
}

fn start_service(bin: &Path, col: &Collector, db: &str) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(bin)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("DB", db)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "sqlsvc")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "service said {line:?}");
    (Proc(child), port)
}

/// One HTTP/1.1 GET; returns the status and the body.
fn get(port: u16, path: &str, traceparent: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let tp = traceparent
        .map(|t| format!("traceparent: {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{tp}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    (status, body)
}

fn frame() -> SpanFrame {
    SpanFrame {
        trace_id: [0; 16],
        span_id: [0; 8],
        parent_span_id: None,
        start_unix_nano: 0,
        end_unix_nano: 0,
        resource: Arc::new(Resource::default()),
    }
}

fn strings(s: &Span) -> BTreeMap<String, String> {
    s.attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Str(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Double(d) => d.to_string(),
            };
            (k.to_string(), v)
        })
        .collect()
}

/// The database span the Rust builder gives for `query` (with `error`, if it failed).
fn reference(backend: Backend, query: &str, error: Option<DbError>) -> Span {
    client_span(
        &DbQuery {
            driver_package: backend.driver_package().into(),
            query: query.into(),
            error,
        },
        frame(),
    )
}

/// The attributes of every span of a DB opened with `dsn`, from the DSN: the database's address
/// and port for PostgreSQL (`postgres://postgres@127.0.0.1:PORT/arena?…`, scripts/postgres.sh),
/// and the database's name (PostgreSQL) or the file's base name (SQLite: `…/sqlsvc.db?_pragma=…`
/// → `sqlsvc.db`, no directory, no parameter) as db.namespace.
fn server_attrs(backend: Backend, dsn: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    match backend {
        Backend::Sqlite => {
            let file = dsn.split('?').next().unwrap().rsplit('/').next().unwrap();
            m.insert("db.namespace".to_owned(), file.to_owned());
        }
        Backend::Postgres => {
            let rest = dsn
                .strip_prefix("postgres://postgres@")
                .unwrap_or_else(|| panic!("unexpected DSN {dsn}"));
            let (hostport, path) = rest.split_once('/').unwrap();
            let (host, port) = hostport.rsplit_once(':').unwrap();
            m.insert("server.address".to_owned(), host.to_owned());
            m.insert("server.port".to_owned(), port.to_owned());
            m.insert(
                "db.namespace".to_owned(),
                path.split('?').next().unwrap().to_owned(),
            );
        }
    }
    m
}

/// The one seen span of `want` (matched by its sanitized query text) under `parent` (a span ID,
/// empty for a root span), equal to `want` in name, scope, kind, attributes (plus `server`, the
/// DB's attributes) and status.
fn check_db_span<'a>(
    spans: &'a [Seen],
    want: &Span,
    server: &BTreeMap<String, String>,
    parent: &str,
) -> &'a Seen {
    let text = strings(want)["db.query.text"].clone();
    let hits: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.attrs.get("db.query.text") == Some(&text) && s.parent == parent)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one span for {text:?} under parent {parent:?}: {spans:#?}"
    );
    let seen = hits[0];
    assert_eq!(seen.name, want.name, "span name; seen {seen:#?}");
    assert_eq!(seen.scope, want.scope, "scope of {}", seen.name);
    assert_eq!(seen.kind, 3, "{} must be a CLIENT span", seen.name);
    let mut attrs = strings(want);
    attrs.extend(server.iter().map(|(k, v)| (k.clone(), v.clone())));
    assert_eq!(seen.attrs, attrs, "attributes of {}", seen.name);
    assert!(
        !seen.attrs.values().any(|v| v.contains("://")),
        "no DSN in the attributes of {}",
        seen.name
    );
    let error = matches!(want.status, gotap_spans::Status::Error(_));
    assert_eq!(
        seen.status_code == 2,
        error,
        "status of {}: {seen:#?}",
        seen.name
    );
    seen
}

fn server<'a>(spans: &'a [Seen], path: &str) -> &'a Seen {
    let hits: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.kind == 2 && s.attrs.get("url.path").map(String::as_str) == Some(path))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one server span for {path}: {spans:#?}"
    );
    hits[0]
}

fn check(tc: Toolchain, backend: Backend) {
    let bin = build_service(tc);
    let col = Collector::start(&format!(
        "gotap-build-sql-{}-{}",
        tc.label(),
        backend.label()
    ));
    let pg = (backend == Backend::Postgres).then(Postgres::start);
    // SQLite's DSN carries parameters, one of them a password (modernc ignores `_auth_pass`;
    // mattn's driver reads it): db.namespace must be the file name, and `secret` exported nowhere.
    let db = match &pg {
        Some(pg) => pg.dsn.clone(),
        None => format!(
            "{}?_pragma=busy_timeout(5000)&_auth_pass=secret",
            col.dir.join("sqlsvc.db").display()
        ),
    };
    let (svc, port) = start_service(&bin, &col, &db);
    let srv = server_attrs(backend, &db);
    if backend == Backend::Sqlite {
        assert_eq!(srv["db.namespace"], "sqlsvc.db");
    }
    let (status, body) = get(port, "/orders/2", Some(&format!("00-{TRACE}-{PARENT}-01")));
    assert_eq!((status, body.as_str()), (200, "total 25, big orders 1"));
    assert_eq!(get(port, "/missing", None).0, 404);
    let (status, broken_error) = get(port, "/broken", None);
    assert_eq!(status, 500);
    let (status, scan_results) = get(port, "/scan", None);
    assert_eq!(status, 200);
    // 3 startup execs, 4 server spans, 4 + 1 + 1 + SCAN_QUERIES request queries.
    let total = 3 + 4 + 6 + SCAN_QUERIES.len();
    let spans = col.wait_spans(total);
    drop(svc);

    // Calls without a context (db.Exec at startup) are root spans; literals are not exported.
    for q in [
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL, views INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE audit (what TEXT NOT NULL)",
        "INSERT INTO orders (id, total) VALUES (1, 5), (2, 25)",
    ] {
        check_db_span(&spans, &reference(backend, q, None), &srv, "");
    }
    assert_eq!(
        reference(
            backend,
            "INSERT INTO orders (id, total) VALUES (1, 5), (2, 25)",
            None
        )
        .name,
        "INSERT orders"
    );

    // One span per DB, Tx, Stmt (the prepared text) and Conn call, each a child of the server
    // span that joined the incoming trace; db.BeginTx / tx.Commit / db.Prepare make none.
    let orders = server(&spans, "/orders/2");
    assert_eq!(
        (orders.trace_id.as_str(), orders.parent.as_str()),
        (TRACE, PARENT)
    );
    for q in [
        "SELECT total FROM orders WHERE id = ?",
        "UPDATE orders SET views = views + 1 WHERE id = ?",
        "SELECT count(*) FROM orders WHERE total > 10",
        "INSERT INTO audit (what) VALUES ('viewed')",
    ] {
        let s = check_db_span(
            &spans,
            &reference(backend, &backend.ph(q), None),
            &srv,
            &orders.span_id,
        );
        assert_eq!(s.trace_id, TRACE);
    }

    // No row is an outcome, not a failure.
    let missing = server(&spans, "/missing");
    let q = backend.ph("SELECT total FROM orders WHERE id = ?");
    let s = check_db_span(
        &spans,
        &reference(backend, &q, None),
        &srv,
        &missing.span_id,
    );
    assert_eq!(
        (s.trace_id.as_str(), s.status_code),
        (missing.trace_id.as_str(), 0)
    );

    // A failed query: Error status, error.type the driver's error type.
    let broken = server(&spans, "/broken");
    let (type_name, code) = backend.missing_table();
    let err = DbError {
        type_name: type_name.into(),
        message: broken_error,
        status_code: code.map(Into::into),
    };
    let want = reference(backend, "SELECT * FROM nope", Some(err));
    assert_eq!(strings(&want)["error.type"], code.unwrap_or(type_name));
    check_db_span(&spans, &want, &srv, &broken.span_id);

    // Sanitizer and parser, Go against Rust, on texts that are valid or not (then the span is an
    // error whose error.type is the Go type the service printed).
    let scan = server(&spans, "/scan");
    let results: Vec<&str> = scan_results.lines().collect();
    assert_eq!(results.len(), SCAN_QUERIES.len(), "{scan_results}");
    for (q, r) in SCAN_QUERIES.iter().zip(&results) {
        let error = r.strip_prefix("err ").map(|t| {
            let (type_name, code) = t
                .split_once(' ')
                .map_or((t, None), |(t, c)| (t, Some(c.to_owned())));
            DbError {
                type_name: type_name.to_owned(),
                message: String::new(),
                status_code: code,
            }
        });
        assert!(error.is_some() || *r == "ok", "{r}");
        check_db_span(&spans, &reference(backend, q, error), &srv, &scan.span_id);
    }
    assert!(
        results.contains(&"ok") && results.iter().any(|r| r.starts_with("err ")),
        "{scan_results}"
    );

    // Quoted table names (PostgreSQL's and SQLite's "…", SQLite's […], `…`) name the span.
    for (q, name) in [
        ("SELECT * FROM \"orders\" WHERE id = 1", "SELECT orders"),
        (
            "SELECT total FROM \"main\".\"orders\"",
            "SELECT main.orders",
        ),
    ] {
        let want = reference(backend, q, None);
        assert_eq!(want.name, name);
        assert!(
            spans.iter().any(|s| s.name == name),
            "no span {name}: {spans:#?}"
        );
    }
    if backend == Backend::Sqlite {
        assert_eq!(
            reference(backend, "SELECT total FROM [orders]", None).name,
            "SELECT orders"
        );
        assert!(spans.iter().filter(|s| s.name == "SELECT orders").count() >= 3);
        assert!(spans.iter().any(|s| s.name == "UPDATE orders"
            && s.attrs["db.query.text"] == "UPDATE `orders` SET views = views WHERE id = ?"));
    }

    assert_eq!(spans.len(), total, "unexpected extra spans: {spans:#?}");
    let raw = std::fs::read_to_string(&col.file).unwrap();
    assert!(raw.contains("db.namespace"), "{raw}");
    assert!(
        !raw.contains("secret") && !raw.contains("_pragma"),
        "a DSN parameter reached the Collector:\n{spans:#?}"
    );
    let _ = std::fs::remove_dir_all(&col.dir);
}

#[test]
fn woven_database_sql_spans_match_builder_sqlite_go126() {
    check(Toolchain::Go126, Backend::Sqlite);
}

#[test]
fn woven_database_sql_spans_match_builder_sqlite_go127() {
    check(Toolchain::Go127, Backend::Sqlite);
}

#[test]
fn woven_database_sql_spans_match_builder_postgres_go126() {
    check(Toolchain::Go126, Backend::Postgres);
}

#[test]
fn woven_database_sql_spans_match_builder_postgres_go127() {
    check(Toolchain::Go127, Backend::Postgres);
}

/// sqlsvc's `LeakQueries` for `backend` (same order) with the db.query.text each must export and
/// whether it fails.
fn leak_queries(backend: Backend) -> &'static [(&'static str, &'static str, bool)] {
    match backend {
        Backend::Postgres => &[
            ("SELECT $s$dollar-secret-1$s$", "SELECT ?", false),
            (
                "SELECT $$dollar-secret-2$$ AS \"Visible\"",
                "SELECT ? AS \"Visible\"",
                false,
            ),
            ("SELECT E'e-secret\\'s-3'", "SELECT ?", false),
            ("SELECT 1 'failing-secret-4'", "SELECT ? ?", true),
            ("SELECT $q$failing-secret-5$q$::int", "SELECT ?::int", true),
        ],
        Backend::Sqlite => &[
            ("SELECT \"dq-secret-1\"", "SELECT ?", false),
            ("SELECT 1 'a' 'failing-secret-2'", "SELECT ? ? ?", true),
            (
                "SELECT 'failing-secret-3' FROM nope",
                "SELECT ? FROM nope",
                true,
            ),
        ],
    }
}

/// Literals the dialect writes its own way (dollar quotes, E'' strings, PostgreSQL's `"…"`
/// identifiers kept; SQLite's double-quoted strings) and failing statements whose driver error
/// quotes the literal: nothing the Collector receives holds one of them, and the texts and status
/// messages are the Rust builder's (probe sites export the same).
fn leaks(tc: Toolchain, backend: Backend) {
    let bin = build_service(tc);
    let col = Collector::start(&format!(
        "gotap-build-sql-leaks-{}-{}",
        tc.label(),
        backend.label()
    ));
    let pg = (backend == Backend::Postgres).then(Postgres::start);
    let db = match &pg {
        Some(pg) => pg.dsn.clone(),
        None => col.dir.join("sqlsvc.db").display().to_string(),
    };
    let (svc, port) = start_service(&bin, &col, &db);
    let want = leak_queries(backend);
    let (status, body) = get(port, "/leaks", None);
    assert_eq!(status, 200);
    let results: Vec<bool> = body.lines().map(|l| l == "err").collect();
    assert_eq!(
        results,
        want.iter().map(|w| w.2).collect::<Vec<_>>(),
        "which queries fail: {body}"
    );
    let spans = col.wait_spans(3 + 1 + want.len());
    drop(svc);
    let leaks = server(&spans, "/leaks");
    let children: Vec<&Seen> = spans.iter().filter(|s| s.parent == leaks.span_id).collect();
    let texts: Vec<&str> = children
        .iter()
        .map(|s| s.attrs["db.query.text"].as_str())
        .collect();
    let mut expected: Vec<&str> = want.iter().map(|w| w.1).collect();
    let mut got = texts.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "{spans:#?}");
    // A failed query keeps its driver's message, the quoted literal scrubbed out of it.
    assert!(
        children.iter().any(|s| s.status_code == 2
            && s.status_message.contains("syntax error")
            && s.status_message.contains("\"?\"")),
        "{spans:#?}"
    );
    assert_eq!(
        children.iter().filter(|s| s.status_code == 2).count(),
        want.iter().filter(|w| w.2).count()
    );
    let raw = std::fs::read_to_string(&col.file).unwrap();
    assert!(raw.contains("db.query.text"), "{raw}");
    assert!(
        !raw.contains("secret-"),
        "a literal reached the Collector:\n{spans:#?}"
    );
}

#[test]
fn woven_sql_literals_never_exported_postgres_go127() {
    leaks(Toolchain::Go127, Backend::Postgres);
}

#[test]
fn woven_sql_literals_never_exported_sqlite_go127() {
    leaks(Toolchain::Go127, Backend::Sqlite);
}
