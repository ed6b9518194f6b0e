//! database/sql function probes (instrumentations/databasesql) against real Go programs
//! (tests/gosql: modernc.org/sqlite, and github.com/lib/pq against a real PostgreSQL): one HTTP
//! request runs a DB exec and query, two prepares and their statements, a transaction's exec and
//! query and a failing query; each gives one client span named and attributed as `gotap build`'s
//! (gotap_spans::databasesql), child of the request's server span: db.namespace, server.address and
//! server.port from the DSN, the failing one's error.type (the Go type, or lib/pq's SQLSTATE).
//!
//! Traced two ways: attached to the running program (`gotap attach`: sql.Open ran before, so the
//! DSN comes from the DB's dsnConnector, which drivers without OpenConnector have: modernc.org/
//! sqlite and lib/pq v1.10.9), and `gotap run`'s order (attached before exec: sql.Open's probes
//! see the DSN, whatever the driver).
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use gotap_spans::databasesql::{self as db, DbQuery};
use gotap_spans::SpanFrame;
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
/// The statements tests/gosql/app runs at start, before serving (traced under `gotap run` only).
const SETUP: usize = 5;

/// How the agent meets the program.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Attached to the running program (sql.Open is over).
    Attach,
    /// `gotap run`'s order: attached to the executable before the child execs it.
    Run,
}

/// A test program started as `gotap run` starts it; killed on drop.
struct Running {
    child: Option<Child>,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

/// The child is created and stopped before its exec; the agent attaches to the executable for
/// its pid; the child is released (as tests/exec.rs and gotap-cli's run).
fn run_traced(bin: &Path, args: &[&str], agent: &mut gotap_ebpf::Agent) -> (Running, Vec<String>) {
    let port = gotap_testkit::free_port();
    let (pid_r, pid_w) = pipe();
    let (go_r, go_w) = pipe();
    let spawner = {
        let bin = bin.to_owned();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            let mut cmd = Command::new(&bin);
            cmd.arg(port.to_string()).args(&args).stdout(Stdio::piped());
            // SAFETY: only async-signal-safe calls (getpid, write, read) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let pid = libc::getpid().to_ne_bytes();
                    libc::write(pid_w, pid.as_ptr().cast(), 4);
                    let mut b = [0u8; 1];
                    libc::read(go_r, b.as_mut_ptr().cast(), 1);
                    Ok(())
                });
            }
            cmd.spawn().unwrap()
        })
    };
    let mut pid = [0u8; 4];
    // SAFETY: reading 4 bytes into our buffer from our pipe.
    assert_eq!(unsafe { libc::read(pid_r, pid.as_mut_ptr().cast(), 4) }, 4);
    let pid = i32::from_ne_bytes(pid) as u32;
    let t = agent.trace_executable(bin, pid, resource("sql-under-test"));
    // SAFETY: writing one byte from our buffer to our pipe.
    assert_eq!(unsafe { libc::write(go_w, [1u8].as_ptr().cast(), 1) }, 1);
    let mut child = spawner.join().unwrap();
    let t = t.unwrap_or_else(|e| panic!("{e}"));
    assert!(t.instrumentations.contains(&"database/sql"), "{t:?}");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    agent.confirm_exec(pid).unwrap_or_else(|e| panic!("{e}"));
    (
        Running {
            child: Some(child),
            port,
        },
        t.warnings,
    )
}

/// What gotap build's gotap_dsn.go gives for the DSNs of these tests: SQLite, the file's name;
/// PostgreSQL (`postgres://postgres@127.0.0.1:PORT/arena?sslmode=disable`, scripts/postgres.sh),
/// host, port and database, taken apart here by hand.
fn want_server(package: &str, dsn: &str) -> (Option<String>, Option<i64>, Option<String>) {
    if db::system_name(package) == "sqlite" {
        let file = Path::new(dsn).file_name().unwrap().to_str().unwrap();
        return (None, None, Some(file.to_owned()));
    }
    let rest = dsn.strip_prefix("postgres://").expect("a postgres:// DSN");
    let (hostport, path) = rest.split_once('/').unwrap();
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let (host, port) = hostport.split_once(':').unwrap();
    let name = path.split('?').next().unwrap();
    (
        Some(host.to_owned()),
        Some(port.parse().unwrap()),
        Some(name.to_owned()),
    )
}

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

/// Traces tests/gosql/<cmd> on `dsn` (and more arguments), sends one /ops request and checks
/// every span.
#[allow(clippy::too_many_arguments)]
fn check_with(
    tc: Toolchain,
    variant: Variant,
    mode: Mode,
    cmd: &str,
    more: &[&str],
    package: &str,
    dsn: &str,
    ph: &str,
) {
    let label = format!("{cmd} {more:?} {} {} {mode:?}", tc.label(), variant.label());
    let bin = gosql(tc, variant, cmd);
    let mut args = vec![dsn];
    args.extend_from_slice(more);
    let (mut agent, sink) = agent(false);
    // Kept alive until the spans are in.
    let (_attached, _run, port, warnings);
    match mode {
        Mode::Attach => {
            let app = App::start_with(&bin, &args);
            let t = agent
                .trace_process(app.pid(), resource("sql-under-test"))
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert!(
                t.instrumentations.contains(&"database/sql"),
                "{label}: {t:?}"
            );
            port = app.port;
            warnings = t.warnings;
            _attached = Some(app);
            _run = None;
        }
        Mode::Run => {
            let (r, w) = run_traced(&bin, &args, &mut agent);
            port = r.port;
            warnings = w;
            _run = Some(r);
            _attached = None;
        }
    }
    assert!(
        warnings.iter().all(|w| !w.contains("database/sql")),
        "{label}: {warnings:?}"
    );
    assert_eq!(request(port, "/ops", &[]), 200, "{label}");
    let want = statements(ph);
    let n_sql: usize = want.iter().map(|(_, n)| n).sum();
    // Under gotap run the program's start-up statements are traced too (roots of their own).
    let n_all = n_sql + if mode == Mode::Run { SETUP } else { 0 };
    let spans = sink.wait_for(n_all + 1, |s| is_sql(s) || s.kind == SpanKind::Server);
    let stats = agent.shutdown();
    let (address, port, namespace) = want_server(package, dsn);
    let all_sql: Vec<&Span> = spans.iter().filter(|s| is_sql(s)).collect();
    assert_eq!(all_sql.len(), n_all, "{label}: {all_sql:#?}");
    // Every span of the DB, the start-up ones included, names its server.
    for s in &all_sql {
        let text = str_attr(s, db::DB_QUERY_TEXT).unwrap_or_default();
        assert_eq!(
            str_attr(s, db::DB_NAMESPACE),
            namespace.as_deref(),
            "{label}: {text}: db.namespace"
        );
        assert_eq!(
            str_attr(s, sc::SERVER_ADDRESS),
            address.as_deref(),
            "{label}: {text}: server.address"
        );
        assert_eq!(
            int_attr(s, sc::SERVER_PORT),
            port,
            "{label}: {text}: server.port"
        );
    }

    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server)
        .unwrap_or_else(|| panic!("{label}: no server span in {spans:#?}"));
    let sql: Vec<&Span> = all_sql
        .iter()
        .copied()
        .filter(|s| s.trace_id == server.trace_id)
        .collect();
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
                // gotap build's sqlErrorType: lib/pq's SQLSTATE (undefined_table), else %T.
                let (want_type, want_code) = match db::system_name(package) {
                    "postgresql" => ("42P01", Some("42P01")),
                    _ => ("*sqlite.Error", None),
                };
                assert_eq!(
                    str_attr(s, sc::ERROR_TYPE),
                    Some(want_type),
                    "{label}: {s:#?}"
                );
                assert_eq!(
                    str_attr(s, db::DB_RESPONSE_STATUS_CODE),
                    want_code,
                    "{label}: {s:#?}"
                );
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
    // hits are not per span. Under gotap run, sql.Open's two (once per DB) are in the count.
    let sql_hits = stats.probe_hits - stats.goroutine_hits - 2;
    assert!(
        sql_hits <= 3 * n_all as u64,
        "{label}: {sql_hits} probe hits for {n_all} SQL spans ({stats:?})"
    );
    eprintln!(
        "{label}: {sql_hits} probe hits for {n_all} SQL spans ({:.2} per span)",
        sql_hits as f64 / n_all as f64
    );
}

fn sqlite(tc: Toolchain, variant: Variant, mode: Mode) {
    let dir = std::env::temp_dir().join(format!(
        "gotap-sql-{}-{}-{}.db",
        std::process::id(),
        tc.label(),
        variant.label()
    ));
    let _ = std::fs::remove_file(&dir);
    check_with(
        tc,
        variant,
        mode,
        "sqlite",
        &[],
        "modernc.org/sqlite",
        dir.to_str().unwrap(),
        "?",
    );
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn sqlite_go126() {
    for v in Variant::ALL {
        sqlite(Toolchain::Go126, v, Mode::Attach);
    }
}

#[test]
fn sqlite_go119() {
    for v in Variant::ALL {
        sqlite(Toolchain::Go119, v, Mode::Attach);
    }
}

#[test]
fn sqlite_go127() {
    for v in Variant::ALL {
        sqlite(Toolchain::Go127, v, Mode::Attach);
    }
}

/// `gotap run`'s order: sql.Open's probes give the DSN (and the start-up statements are traced).
#[test]
fn sqlite_run() {
    for tc in [Toolchain::Go119, Toolchain::Go126, Toolchain::Go127] {
        for v in [
            Variant::default(),
            Variant {
                stripped: true,
                pie: true,
            },
        ] {
            sqlite(tc, v, Mode::Run);
        }
    }
}

/// lib/pq: server.address, server.port and db.namespace from the DSN, the failing query's
/// SQLSTATE as error.type and db.response.status_code; under `gotap run` from sql.Open's probes,
/// attached later from the DB's dsnConnector (lib/pq v1.10.9 has no OpenConnector).
#[test]
fn postgres_lib_pq() {
    let pg = gotap_testkit::Postgres::start();
    for (tc, v, mode) in [
        (Toolchain::Go126, Variant::default(), Mode::Run),
        (
            Toolchain::Go126,
            Variant {
                stripped: true,
                pie: true,
            },
            Mode::Run,
        ),
        (Toolchain::Go119, Variant::default(), Mode::Run),
        (
            Toolchain::Go119,
            Variant {
                stripped: true,
                pie: true,
            },
            Mode::Run,
        ),
        (Toolchain::Go127, Variant::default(), Mode::Run),
        (
            Toolchain::Go127,
            Variant {
                stripped: true,
                pie: true,
            },
            Mode::Run,
        ),
        (Toolchain::Go126, Variant::default(), Mode::Attach),
        (
            Toolchain::Go119,
            Variant {
                stripped: true,
                pie: true,
            },
            Mode::Attach,
        ),
    ] {
        check_with(tc, v, mode, "pq", &[], "github.com/lib/pq", &pg.dsn, "$1");
    }
}

/// One binary linking modernc.org/sqlite and lib/pq: each conn's driver is told by its type,
/// known from the itab symbols of Go < 1.27 binaries with a symbol table, else (stripped, or Go
/// 1.27, whose linker names no itabs) by the type's Begin method, which pclntab always names.
#[test]
fn two_drivers_in_one_binary() {
    let pg = gotap_testkit::Postgres::start();
    let db = std::env::temp_dir().join(format!("gotap-sql-{}-both.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let plain = Variant::default();
    let pie = Variant {
        stripped: false,
        pie: true,
    };
    let stripped = Variant {
        stripped: true,
        pie: false,
    };
    for (tc, v) in [
        (Toolchain::Go119, plain),
        (Toolchain::Go119, pie),
        (Toolchain::Go126, plain),
        (Toolchain::Go126, pie),
        (Toolchain::Go126, stripped),
        (Toolchain::Go127, plain),
    ] {
        check_with(
            tc,
            v,
            Mode::Attach,
            "both",
            &["sqlite"],
            "modernc.org/sqlite",
            db.to_str().unwrap(),
            "?",
        );
        check_with(
            tc,
            v,
            Mode::Run,
            "both",
            &["postgres"],
            "github.com/lib/pq",
            &pg.dsn,
            "$1",
        );
    }
    let _ = std::fs::remove_file(&db);
}

/// The goroutine-start hook costs a probe hit at every `go` statement, and only a traced server
/// span ever gives a goroutine a context to hand on. A database/sql program with no server (a
/// batch job: gosql/batch) gets no hook; the database/sql test service (net/http server + SQL)
/// does, for statements run in goroutines a handler started.
#[test]
fn sql_without_a_server_skips_the_goroutine_hook() {
    let hook = |p: &gotap_ebpf::plan::Plan| {
        p.sites
            .iter()
            .any(|s| s.program == "newproc_runqput" || s.program == "newproc1_ret")
    };
    for tc in [Toolchain::Go126, Toolchain::Go127] {
        let batch = gotap_testkit::build(
            "../crates/gotap-ebpf/tests/gosql",
            "./batch",
            tc,
            Variant::default(),
        );
        let bin = gotap_binary::GoBinary::open(&batch).unwrap();
        let plan = gotap_ebpf::plan::plan(&bin).unwrap();
        assert!(
            plan.instrumentations.contains(&"database/sql"),
            "{tc:?}: batch's SQL is not planned: {:?}",
            plan.instrumentations
        );
        assert!(
            !hook(&plan),
            "{tc:?}: goroutine hook attached with no server"
        );

        let service = gotap_testkit::build(
            "../crates/gotap-ebpf/tests/gosql",
            "./sqlite",
            tc,
            Variant::default(),
        );
        let bin = gotap_binary::GoBinary::open(&service).unwrap();
        let plan = gotap_ebpf::plan::plan(&bin).unwrap();
        assert!(
            hook(&plan),
            "{tc:?}: no goroutine hook for a server with SQL"
        );
    }
}
