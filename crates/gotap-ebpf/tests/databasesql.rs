//! database/sql function probes (instrumentations/databasesql) against real Go programs
//! (tests/gosql: modernc.org/sqlite, and github.com/lib/pq against a real PostgreSQL): one HTTP
//! request runs a DB exec and query, two prepares and their statements, a transaction's exec and
//! query and a failing query; each gives one client span named and attributed as `gotap build`'s
//! (gotap_spans::db), child of the request's server span.
mod common;
use common::*;

use std::path::PathBuf;

use gotap_spans::db::{self, DbQuery};
use gotap_spans::http::SpanFrame;
use gotap_spans::{semconv as sc, Span, SpanKind, Status};
use gotap_testkit::{Toolchain, Variant};

/// The statements of one /ops request (tests/gosql/app/app.go), in order, with how many spans
/// each gives (a prepared one: the prepare and the execution).
fn statements(placeholder: &str) -> Vec<(String, usize)> {
    vec![
        ("INSERT INTO items (id, label) VALUES (2, 'pen')".into(), 1),
        ("SELECT name FROM users WHERE id = 1".into(), 1),
        (
            format!("SELECT id FROM users WHERE name = {placeholder}"),
            2,
        ),
        (
            format!("UPDATE users SET name = 'carol' WHERE id = {placeholder}"),
            2,
        ),
        ("DELETE FROM items WHERE id = 2".into(), 1),
        ("SELECT count(*) FROM items".into(), 1),
        (FAILING.into(), 1),
    ]
}
const FAILING: &str = "SELECT label FROM missing_table WHERE id = 3";

fn gosql(tc: Toolchain, variant: Variant, driver: &str) -> PathBuf {
    gotap_testkit::build(
        "../crates/gotap-ebpf/tests/gosql",
        &format!("./{driver}"),
        tc,
        variant,
    )
}

fn is_sql(s: &Span) -> bool {
    s.kind == SpanKind::Client && s.attr(db::DB_SYSTEM_NAME).is_some()
}

/// Traces tests/gosql/<driver> on `dsn`, sends one /ops request and checks every span.
fn check(tc: Toolchain, variant: Variant, driver: &str, package: &str, dsn: &str, ph: &str) {
    check_with(tc, variant, driver, &[], package, dsn, ph)
}

/// [`check`] of tests/gosql/<cmd> with more arguments after the DSN.
fn check_with(
    tc: Toolchain,
    variant: Variant,
    cmd: &str,
    more: &[&str],
    package: &str,
    dsn: &str,
    ph: &str,
) {
    let label = format!("{cmd} {more:?} {} {}", tc.label(), variant.label());
    let bin = gosql(tc, variant, cmd);
    let mut args = vec![dsn];
    args.extend_from_slice(more);
    let app = App::start_with(&bin, &args);
    let (mut agent, sink) = agent(false);
    let t = agent
        .trace_process(app.pid(), resource("sql-under-test"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        t.instrumentations.contains(&"database/sql"),
        "{label}: {t:?}"
    );
    assert!(
        t.warnings.iter().all(|w| !w.contains("database/sql")),
        "{label}: {:?}",
        t.warnings
    );
    assert_eq!(request(app.port, "/ops", &[]), 200, "{label}");
    let want = statements(ph);
    let n_sql: usize = want.iter().map(|(_, n)| n).sum();
    let spans = sink.wait_for(n_sql + 1, |s| is_sql(s) || s.kind == SpanKind::Server);
    let stats = agent.shutdown();

    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server)
        .unwrap_or_else(|| panic!("{label}: no server span in {spans:#?}"));
    let sql: Vec<&Span> = spans.iter().filter(|s| is_sql(s)).collect();
    assert_eq!(sql.len(), n_sql, "{label}: {sql:#?}");
    for (query, n) in &want {
        let sdk = db::client_span(
            &DbQuery {
                driver_package: package.into(),
                query: query.clone(),
                error: None,
            },
            SpanFrame {
                trace_id: [1; 16],
                span_id: [2; 8],
                parent_span_id: None,
                start_unix_nano: 0,
                end_unix_nano: 0,
                resource: Default::default(),
            },
        );
        let text = str_attr(&sdk, db::DB_QUERY_TEXT).unwrap();
        let got: Vec<&&Span> = sql
            .iter()
            .filter(|s| str_attr(s, db::DB_QUERY_TEXT) == Some(text))
            .collect();
        assert_eq!(got.len(), *n, "{label}: {text}: {sql:#?}");
        for s in got {
            assert_eq!(s.name, sdk.name, "{label}: {text}");
            for key in [
                db::DB_SYSTEM_NAME,
                db::DB_QUERY_TEXT,
                db::DB_OPERATION_NAME,
                db::DB_COLLECTION_NAME,
            ] {
                assert_eq!(s.attr(key), sdk.attr(key), "{label}: {text}: {key}");
            }
            assert_eq!(s.trace_id, server.trace_id, "{label}: {text}: same trace");
            assert_eq!(
                s.parent_span_id,
                Some(server.span_id),
                "{label}: {text}: child of the request's span"
            );
            assert!(
                s.start_unix_nano >= server.start_unix_nano
                    && s.end_unix_nano <= server.end_unix_nano
                    && s.start_unix_nano < s.end_unix_nano,
                "{label}: {text}: inside the request"
            );
            if query == FAILING {
                assert!(matches!(s.status, Status::Error(_)), "{label}: {s:#?}");
                assert!(s.attr(sc::ERROR_TYPE).is_some(), "{label}: {s:#?}");
            } else {
                assert_eq!(s.status, Status::Unset, "{label}: {s:#?}");
            }
        }
    }
    // Sanitised as gotap build does: no literal leaves the process.
    for s in &sql {
        let text = str_attr(s, db::DB_QUERY_TEXT).unwrap();
        assert!(
            !text.contains("pen") && !text.contains("carol") && !text.contains("= 1"),
            "{label}: {text}"
        );
    }
    assert_eq!(stats.ringbuf_drops, 0, "{label}");
    assert_eq!(stats.ret_without_entry, 0, "{label}");
    assert_eq!(stats.undecodable, 0, "{label}");
    // The server span's two hits (entry, after the call) and each SQL span's; goroutine-start
    // hits are not per span.
    let sql_hits = stats.probe_hits - stats.goroutine_hits - 2;
    assert!(
        sql_hits <= 3 * n_sql as u64,
        "{label}: {sql_hits} probe hits for {n_sql} SQL spans ({stats:?})"
    );
    eprintln!(
        "{label}: {sql_hits} probe hits for {n_sql} SQL spans ({:.2} per span)",
        sql_hits as f64 / n_sql as f64
    );
}

fn sqlite(tc: Toolchain, variant: Variant) {
    let dir = std::env::temp_dir().join(format!(
        "gotap-sql-{}-{}-{}.db",
        std::process::id(),
        tc.label(),
        variant.label()
    ));
    let _ = std::fs::remove_file(&dir);
    check(
        tc,
        variant,
        "sqlite",
        "modernc.org/sqlite",
        dir.to_str().unwrap(),
        "?",
    );
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn sqlite_go126() {
    for v in Variant::ALL {
        sqlite(Toolchain::Go126, v);
    }
}

#[test]
fn sqlite_go119() {
    for v in Variant::ALL {
        sqlite(Toolchain::Go119, v);
    }
}

#[test]
fn sqlite_go127() {
    for v in Variant::ALL {
        sqlite(Toolchain::Go127, v);
    }
}

#[test]
fn postgres_lib_pq() {
    let pg = gotap_testkit::Postgres::start();
    for (tc, v) in [
        (Toolchain::Go126, Variant::default()),
        (
            Toolchain::Go126,
            Variant {
                stripped: true,
                pie: true,
            },
        ),
        (Toolchain::Go119, Variant::default()),
        (
            Toolchain::Go119,
            Variant {
                stripped: true,
                pie: true,
            },
        ),
        (Toolchain::Go127, Variant::default()),
    ] {
        check(tc, v, "pq", "github.com/lib/pq", &pg.dsn, "$1");
    }
}

/// One binary linking modernc.org/sqlite and lib/pq: each conn's driver is told by its type (the
/// itab symbols of Go < 1.27 binaries with a symbol table).
#[test]
fn two_drivers_in_one_binary() {
    let pg = gotap_testkit::Postgres::start();
    let db = std::env::temp_dir().join(format!("gotap-sql-{}-both.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    for tc in [Toolchain::Go119, Toolchain::Go126] {
        for v in [
            Variant::default(),
            Variant {
                stripped: false,
                pie: true,
            },
        ] {
            check_with(
                tc,
                v,
                "both",
                &["sqlite"],
                "modernc.org/sqlite",
                db.to_str().unwrap(),
                "?",
            );
            check_with(
                tc,
                v,
                "both",
                &["postgres"],
                "github.com/lib/pq",
                &pg.dsn,
                "$1",
            );
        }
    }
    let _ = std::fs::remove_file(&db);
}

/// Stripped, the same binary has no itab symbols: gotap says it cannot tell the drivers apart
/// (spans get db.system.name other_sql) instead of guessing.
#[test]
fn two_drivers_stripped_are_not_guessed() {
    let bin = gosql(
        Toolchain::Go126,
        Variant {
            stripped: true,
            pie: false,
        },
        "both",
    );
    let db = std::env::temp_dir().join(format!("gotap-sql-{}-stripped.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let app = App::start_with(&bin, &[db.to_str().unwrap(), "sqlite"]);
    let (mut agent, sink) = agent(false);
    let t = agent
        .trace_process(app.pid(), resource("sql-under-test"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("several drivers") && w.contains("other_sql")),
        "{:?}",
        t.warnings
    );
    assert_eq!(request(app.port, "/ops", &[]), 200);
    let spans = sink.wait_for(9, is_sql);
    agent.shutdown();
    let sql: Vec<&Span> = spans.iter().filter(|s| is_sql(s)).collect();
    assert_eq!(sql.len(), 9, "{sql:#?}");
    for s in sql {
        assert_eq!(str_attr(s, db::DB_SYSTEM_NAME), Some("other_sql"), "{s:#?}");
    }
    let _ = std::fs::remove_file(&db);
}
