//! End to end, database/sql and gRPC through probe sites: the same services built in SDK mode
//! (`gotap build`, spans exported by the woven OpenTelemetry SDK to the real Collector) and with
//! `gotap build --probes`, traced by the real `gotap run` (OTLP/JSON file). The same requests
//! must give the same spans: names, kinds, attributes, statuses and trace trees (parent/child in
//! each service and across services through `traceparent` in gRPC metadata, and an adopted
//! incoming `traceparent`).
//!
//! - crates/gotap-cli/tests/go/sqlsvc on SQLite: startup execs (root spans), the DB, Tx, Stmt and
//!   Conn calls of one request (children of its server span), no-rows, a failed query and the
//!   sanitizer's tricky texts;
//! - the arena's gateway (HTTP server, HTTP client to orders, gRPC client) and catalog (gRPC
//!   server), OK and NOT_FOUND;
//! - programs where the fragments find each other's spans: a query in a gRPC handler (grpcsql,
//!   written by the test), and an HTTP call in a gRPC handler (crates/gotap-cli/tests/go/grpchttp).
//!
//! Go 1.26 and 1.27. Runs as root (real uprobes).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{bin_dir, free_port, repo_root, require_root, Postgres, Toolchain};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Woven builds recompile the standard library (and grpc): one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

use ebpf_support::trees::{
    self, read_spans, INCOMING_PARENT_ID as PARENT_ID, INCOMING_TRACE_ID as TRACE_ID,
};

/// `gotap build [--probes]` of the main package in `dir`.
fn build(tc: Toolchain, dir: &Path, name: &str, probes: bool) -> PathBuf {
    let out = bin_dir().join(format!(
        "{name}-{}-{}",
        if probes { "probes" } else { "sdk" },
        tc.label()
    ));
    let mut cmd = Command::new(GOTAP);
    cmd.current_dir(dir).arg("build");
    if probes {
        cmd.arg("--probes");
    }
    cmd.arg("-o").arg(&out).arg(".");
    cmd.env("GOTAP_GO", tc.go())
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .env_remove("GOTAP_WEAVE_CONFIG");
    gotap_testkit::build_once(&out, || {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let res = cmd.output().unwrap();
        assert!(
            res.status.success(),
            "gotap build (probes: {probes}) of {name} with {} failed:\n{}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// How a service is run: SDK mode exporting to the collector, or under `gotap run`.
enum Mode<'a> {
    Sdk(&'a Collector),
    Sites(&'a Path),
}

fn start(mode: &Mode, bin: &Path, service: &str, args: &[String], env: &[(&str, String)]) -> Proc {
    let mut cmd = match mode {
        Mode::Sdk(col) => {
            let mut c = Command::new(bin);
            c.env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", col.http_port),
            )
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_SERVICE_NAME", service);
            c
        }
        Mode::Sites(dir) => {
            let mut c = Command::new(GOTAP);
            let file = dir.join(format!("{service}.jsonl"));
            c.args(["run", "--no-console", "--output-file"])
                .arg(file)
                .args(["--service-name", service, "--"])
                .arg(bin);
            c
        }
    };
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::spawn(cmd, service)
}

/// Both modes agree on everything but ids, times and ports; each mode has its own SQLite file
/// (sdk.db, sites.db): the namespace is its name.
fn norm(k: &str, v: &Value) -> Option<Value> {
    trees::any_port(k, v).or_else(|| match v.as_str() {
        Some(db) if k == "db.namespace" && (db == "sdk.db" || db == "sites.db") => {
            Some(Value::from("<the run's database file>"))
        }
        _ => None,
    })
}

fn signatures(spans: &[FlatSpan]) -> Vec<String> {
    trees::signatures(spans, &norm)
}

/// gotap's "tracing …" line and summary of a stopped `gotap run`.
fn check_run(stderr: &str, label: &str, instrumentations: &str) {
    let tracing = stderr
        .lines()
        .find(|l| l.starts_with("gotap: tracing "))
        .unwrap_or_else(|| panic!("{label}: {stderr}"));
    assert!(
        tracing.contains(&format!(": {instrumentations}; "))
            && tracing.contains(" on batched probe sites ("),
        "{label}: {tracing}"
    );
    // A cut SQL text is counted after the hits (checked by the database/sql test).
    let summary = stderr
        .lines()
        .last()
        .unwrap()
        .trim_end_matches(", 1 span texts cut at 4096 bytes");
    // Batched: at most one hit per span (a span alone in its buffer takes one).
    let per_span: f64 = summary
        .rsplit_once(" (")
        .and_then(|(_, r)| r.strip_suffix(" per span)"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{label}: {summary}"));
    assert!(
        summary.contains(", 0 dropped, ") && per_span <= 1.0,
        "{label}: {summary}"
    );
}

// ---------- notes ----------

/// `gotap probes list --json`: (name, semaphore address, first 5 bytes of the site).
fn notes(bin: &Path) -> Vec<(String, u64, Vec<u8>)> {
    let out = Command::new(GOTAP)
        .args(["probes", "list", "--json"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let data = std::fs::read(bin).unwrap();
    v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let off = p["offset"].as_u64().unwrap() as usize;
            (
                p["name"].as_str().unwrap().to_owned(),
                p["semaphore"].as_u64().unwrap(),
                data[off..off + 5].to_vec(),
            )
        })
        .collect()
}

/// The sites of each woven package are noted with that package's own semaphore, every site is a
/// nop5, readelf reads the notes without a warning, and `.probes` spans every semaphore (bcc
/// turns a semaphore's address into a file offset with its header).
fn notes_per_package(tc: Toolchain) {
    let sql = build(
        tc,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sqlsvc"),
        "sqlsvc",
        true,
    );
    let gateway = build(
        tc,
        &repo_root().join("go/arena/gateway"),
        "arena-gateway",
        true,
    );
    for (bin, want) in [
        (
            &sql,
            &["http_server", "sql_query", "http_batch", "sql_batch"][..],
        ),
        (
            &gateway,
            &[
                "http_server",
                "http_client",
                "grpc_server",
                "grpc_client",
                "http_batch",
                "grpc_batch",
            ][..],
        ),
    ] {
        let n = notes(bin);
        assert_eq!(
            n.iter()
                .map(|(name, _, _)| name.as_str())
                .collect::<Vec<_>>(),
            want,
            "{}",
            bin.display()
        );
        for (name, _, first) in &n {
            assert_eq!(
                first,
                &[0x0f, 0x1f, 0x44, 0x00, 0x00],
                "{name}: the probe sits on the 5-byte NOP"
            );
        }
        let sem = |name: &str| n.iter().find(|(n, _, _)| n == name).map(|(_, s, _)| *s);
        let mut sems: Vec<u64> = n.iter().map(|(_, s, _)| *s).collect();
        sems.sort();
        sems.dedup();
        assert_eq!(
            sems.len(),
            4,
            "per package, one semaphore for its per-span sites and one for its batch site: {n:?}"
        );
        assert_ne!(sem("http_server"), sem("http_batch"));
        assert_eq!(
            sem("http_server"),
            sem("http_client").or(sem("http_server"))
        );
        assert_eq!(sem("grpc_server"), sem("grpc_client"));
        let readelf = Command::new("readelf")
            .args(["-nSW"])
            .arg(bin)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&readelf.stdout).into_owned()
            + &String::from_utf8_lossy(&readelf.stderr);
        assert!(!text.to_lowercase().contains("warning"), "{text}");
        let probes = text
            .lines()
            .find(|l| l.contains(" .probes "))
            .unwrap_or_else(|| panic!("no .probes: {text}"));
        let f: Vec<&str> = probes.split_whitespace().collect();
        let at = f.iter().position(|w| *w == ".probes").unwrap();
        let (addr, size) = (
            u64::from_str_radix(f[at + 2], 16).unwrap(),
            u64::from_str_radix(f[at + 4], 16).unwrap(),
        );
        assert_eq!(
            (addr, addr + size),
            (sems[0], sems[sems.len() - 1] + 2),
            "{probes}"
        );
    }
}

#[test]
fn go126_notes_per_package() {
    notes_per_package(Toolchain::Go126);
}

#[test]
fn go127_notes_per_package() {
    notes_per_package(Toolchain::Go127);
}

// ---------- database/sql ----------

/// The requests of build_sql.rs and /long; the number of spans they make (3 startup execs, 5
/// server spans, 7 request queries, one per scan query).
fn sql_requests(port: u16) -> usize {
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    assert_eq!(
        http(port, "GET", "/orders/2", &[("traceparent", &tp)]),
        (200, "total 25, big orders 1\n".into())
    );
    assert_eq!(http(port, "GET", "/missing", &[]).0, 404);
    assert_eq!(http(port, "GET", "/broken", &[]).0, 500);
    let (status, scan) = http(port, "GET", "/scan", &[]);
    assert_eq!(status, 200);
    assert_eq!(http(port, "GET", "/long", &[]), (200, "2\n".into()));
    3 + 5 + 7 + scan.lines().count()
}

/// sqlsvc's LongQuery (4,839 bytes): probe sites hand gotap its first 4,096 bytes.
fn long_query() -> String {
    format!(
        "SELECT count(*) FROM orders WHERE {}1 = 1",
        "id = id AND ".repeat(400)
    )
}

fn sql_spans(tc: Toolchain) {
    require_root();
    let label = tc.label();
    let dir = scratch(&format!("probes-more-sql-{label}"));
    let svc_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sqlsvc");
    let sdk_bin = build(tc, &svc_dir, "sqlsvc", false);
    let probes_bin = build(tc, &svc_dir, "sqlsvc", true);

    let col = Collector::start(&dir);
    let run = |mode: Mode, db: &str| {
        let port = free_port();
        // Parameters in the DSN, one a password: db.namespace is the file name in both modes,
        // and `secret` is exported by neither.
        let env = [
            ("ADDR", format!("127.0.0.1:{port}")),
            (
                "DB",
                format!(
                    "{}?_pragma=busy_timeout(5000)&_auth_pass=secret",
                    dir.join(db).display()
                ),
            ),
        ];
        let mut p = start(
            &mode,
            if matches!(mode, Mode::Sdk(_)) {
                &sdk_bin
            } else {
                &probes_bin
            },
            "sqlsvc",
            &[],
            &env,
        );
        wait_listening(port, &mut p);
        (p, sql_requests(port))
    };
    let (sdk_proc, total) = run(Mode::Sdk(&col), "sdk.db");
    let sdk = col.wait_for("the SDK build's spans", |s| s.len() >= total);
    drop(sdk_proc);
    let (sites_proc, n) = run(Mode::Sites(&dir), "sites.db");
    assert_eq!(n, total);
    std::thread::sleep(Duration::from_millis(300)); // the agent drains its ring buffer every 20 ms
    let fin = sites_proc.interrupt();
    let sites = read_spans(&dir, &["sqlsvc"]);

    assert_eq!(sdk.len(), total, "{label} SDK:\n{}", dump(&sdk));
    assert_eq!(
        sites.len(),
        total,
        "{label} sites:\n{}\n{}",
        dump(&sites),
        fin.stderr
    );
    // The long query: the SDK exports its text whole (sanitized: `1 = 1` -> `? = ?`), the probe
    // site its first 4,096 bytes, counted in gotap's summary. Then the spans agree otherwise.
    let long = long_query();
    assert_eq!(long.len(), 4839);
    let is_long = |s: &FlatSpan| {
        s.str("db.query.text")
            .is_some_and(|t| t.starts_with("SELECT count(*) FROM orders WHERE id = id AND "))
    };
    let text_of = |spans: &[FlatSpan]| -> String {
        let l: Vec<&FlatSpan> = spans.iter().filter(|s| is_long(s)).collect();
        assert_eq!(l.len(), 1, "{label}: one long query span:\n{}", dump(spans));
        l[0].str("db.query.text").unwrap().to_string()
    };
    assert_eq!(text_of(&sdk), long.replace("1 = 1", "? = ?"), "{label} SDK");
    assert_eq!(text_of(&sites), long[..4096], "{label} sites");
    assert!(
        fin.stderr
            .lines()
            .last()
            .unwrap()
            .ends_with(" per span), 1 span texts cut at 4096 bytes"),
        "{label}: {}",
        fin.stderr
    );
    let same_text = |mut spans: Vec<FlatSpan>| {
        for s in spans.iter_mut().filter(|s| is_long(s)) {
            s.attrs
                .insert("db.query.text".into(), Value::from("<the long query>"));
        }
        spans
    };
    let (sdk, sites) = (same_text(sdk), same_text(sites));
    assert_eq!(
        signatures(&sites),
        signatures(&sdk),
        "{label}: probe sites and SDK disagree"
    );
    // The signatures compare trees: spot-check one link they encode.
    let server = sites
        .iter()
        .find(|s| s.kind == 2 && s.str("url.path") == Some("/orders/2"))
        .unwrap();
    assert_eq!(
        (server.trace_id.as_str(), server.parent.as_str()),
        (TRACE_ID, PARENT_ID)
    );
    assert_eq!(
        sites
            .iter()
            .filter(|s| s.parent == server.span_id && s.str("db.system.name") == Some("sqlite"))
            .count(),
        4
    );
    for (spans, file) in [(&sdk, "sdk.db"), (&sites, "sites.db")] {
        let dbs: Vec<&FlatSpan> = spans
            .iter()
            .filter(|s| s.str("db.system.name") == Some("sqlite"))
            .collect();
        assert!(!dbs.is_empty());
        for s in dbs {
            assert_eq!(
                s.str("db.namespace"),
                Some(file),
                "{label}: {}",
                dump(spans)
            );
        }
    }
    // A quoted table names the span in both modes (the signatures compared the rest).
    for spans in [&sdk, &sites] {
        for name in ["SELECT main.orders", "UPDATE orders"] {
            assert!(spans.iter().any(|s| s.name == name), "{label}: no {name}");
        }
    }
    let sdk_raw = std::fs::read_to_string(&col.file).unwrap();
    let sites_raw = std::fs::read_to_string(dir.join("sqlsvc.jsonl")).unwrap();
    for raw in [&sdk_raw, &sites_raw] {
        assert!(raw.contains("db.namespace"), "{label}: {raw}");
        assert!(
            !raw.contains("secret") && !raw.contains("_pragma"),
            "{label}: a DSN parameter was exported:\n{raw}"
        );
    }
    check_run(&fin.stderr, label, "net/http server, database/sql");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go126_sql_spans_match_sdk() {
    sql_spans(Toolchain::Go126);
}

#[test]
fn go127_sql_spans_match_sdk() {
    sql_spans(Toolchain::Go127);
}

// ---------- gRPC ----------

/// Stands in for the arena's orders service (as in build_grpc.rs): order N is for product N+2,
/// order 7 for a product catalog does not have. Every answer closes its connection.
fn fake_orders() -> u16 {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ln.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in ln.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req);
            let id: i64 = text
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.strip_prefix("/orders/"))
                .and_then(|i| i.parse().ok())
                .unwrap_or(1);
            let product = if id == 7 { 99_999 } else { id + 2 };
            let body = format!(
                r#"{{"id":{id},"customer_id":5,"product_id":{product},"quantity":2,"created_at":"2026-01-01T00:00:00Z"}}"#
            );
            let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

/// catalog and gateway in `mode`; two requests through both; returns the processes (catalog's,
/// gateway's) still running and gateway's port.
fn grpc_run(mode: &Mode, catalog: &Path, gateway: &Path, orders: u16) -> (Proc, Proc, u16) {
    let (cp, gp) = (free_port(), free_port());
    let mut c = start(
        mode,
        catalog,
        "catalog",
        &[format!("-addr=127.0.0.1:{cp}")],
        &[],
    );
    wait_listening(cp, &mut c);
    let args = [
        format!("-addr=127.0.0.1:{gp}"),
        format!("-orders=http://127.0.0.1:{orders}"),
        format!("-catalog=127.0.0.1:{cp}"),
    ];
    let mut g = start(mode, gateway, "gateway", &args, &[]);
    wait_listening(gp, &mut g);
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    assert_eq!(
        http(gp, "GET", "/orders/1/details", &[("traceparent", &tp)]).0,
        200
    );
    assert_eq!(http(gp, "GET", "/orders/7/details", &[]).0, 404);
    (c, g, gp)
}

fn grpc_spans(tc: Toolchain) {
    require_root();
    let label = tc.label();
    let dir = scratch(&format!("probes-more-grpc-{label}"));
    let arena = repo_root().join("go/arena");
    let bins: Vec<PathBuf> = [
        ("catalog", false),
        ("gateway", false),
        ("catalog", true),
        ("gateway", true),
    ]
    .iter()
    .map(|(svc, probes)| build(tc, &arena.join(svc), &format!("arena-{svc}"), *probes))
    .collect();
    let orders = fake_orders();

    // Per request: gateway HTTP server, HTTP client to orders, gRPC client; catalog gRPC server.
    // Then catalog stops and a third request fails in the gRPC client (UNAVAILABLE, through
    // grpc's OnFinish): its HTTP server, HTTP client and gRPC client spans.
    let total = 8 + 3;
    let col = Collector::start(&dir);
    let (c, g, gp) = grpc_run(&Mode::Sdk(&col), &bins[0], &bins[1], orders);
    col.wait_for("the SDK builds' spans", |s| s.len() >= 8);
    drop(c);
    assert_eq!(http(gp, "GET", "/orders/2/details", &[]).0, 502);
    let sdk = col.wait_for("the SDK builds' spans", |s| s.len() >= total);
    drop(g);
    let (c, g, gp) = grpc_run(&Mode::Sites(&dir), &bins[2], &bins[3], orders);
    std::thread::sleep(Duration::from_millis(300)); // the agent drains its ring buffer every 20 ms
    let fc = c.interrupt();
    assert_eq!(http(gp, "GET", "/orders/2/details", &[]).0, 502);
    std::thread::sleep(Duration::from_millis(300));
    let fg = g.interrupt();
    let sites = read_spans(&dir, &["catalog", "gateway"]);

    assert_eq!(sdk.len(), total, "{label} SDK:\n{}", dump(&sdk));
    assert_eq!(
        sites.len(),
        total,
        "{label} sites:\n{}\n{}\n{}",
        dump(&sites),
        fg.stderr,
        fc.stderr
    );
    assert_eq!(
        signatures(&sites),
        signatures(&sdk),
        "{label}: probe sites and SDK disagree"
    );
    // Spot-check the cross-service link the signatures encode: catalog's server span is the
    // child of gateway's client span, in the incoming trace.
    let served = sites
        .iter()
        .find(|s| s.service == "catalog" && s.trace_id == TRACE_ID)
        .expect("catalog span in the incoming trace");
    let client = sites
        .iter()
        .find(|s| s.span_id == served.parent)
        .expect("its parent");
    assert_eq!(
        (
            client.service.as_str(),
            client.kind,
            client.str("rpc.method")
        ),
        ("gateway", 3, Some("GetProduct"))
    );
    assert_eq!(
        sites
            .iter()
            .filter(|s| s.int("rpc.grpc.status_code") == Some(14) && s.status == 2)
            .count(),
        1,
        "UNAVAILABLE"
    );
    check_run(
        &fg.stderr,
        label,
        "net/http server, net/http client, grpc server, grpc client",
    );
    check_run(
        &fc.stderr,
        label,
        "net/http server, grpc server, grpc client",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go126_grpc_spans_match_sdk() {
    grpc_spans(Toolchain::Go126);
}

#[test]
fn go127_grpc_spans_match_sdk() {
    grpc_spans(Toolchain::Go127);
}

// ---------- a query in a gRPC handler ----------

/// A program made for this test (written to a scratch module): GET /q → gRPC client →
/// gRPC server in the same process → a SQLite query with the handler's context. Its spans
/// exercise the parent lookups the fragments share: net/http's server span for the gRPC client
/// (gotap.probeHTTPParent), the gRPC server span for the query (gotap.probeCtxKey).
const GRPCSQL_MAIN: &str = r#"// A gRPC server whose handler queries SQLite, and an HTTP server whose handler calls it over
// gRPC: GET /q → gRPC /gotap.test.Q/Run → SELECT. Listens on $ADDR (HTTP) and $GRPC_ADDR.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", os.Getenv("DB"))
	if err != nil {
		log.Fatal(err)
	}
	run := func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT 40 + 2").Scan(&n); err != nil {
			return nil, err
		}
		return new(emptypb.Empty), nil
	}
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "gotap.test.Q",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Run", Handler: run}},
	}, struct{}{})
	gl, err := net.Listen("tcp", os.Getenv("GRPC_ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(gl)
	cc, err := grpc.NewClient(os.Getenv("GRPC_ADDR"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("GET /q", func(w http.ResponseWriter, r *http.Request) {
		if err := cc.Invoke(r.Context(), "/gotap.test.Q/Run", new(emptypb.Empty), new(emptypb.Empty)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	hl, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(hl, nil))
}
"#;

const GRPCSQL_MOD: &str = r#"module gotap.dev/grpcsql

go 1.26.0

require (
	google.golang.org/grpc v1.83.2
	google.golang.org/protobuf v1.36.11
	modernc.org/sqlite v1.62.0
)

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	golang.org/x/net v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.41.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260526163538-3dc84a4a5aaa // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)
"#;

fn grpcsql_spans(tc: Toolchain) {
    require_root();
    let label = tc.label();
    let dir = scratch(&format!("probes-more-grpcsql-{label}"));
    let module = dir.join("grpcsql");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(module.join("main.go"), GRPCSQL_MAIN).unwrap();
    std::fs::write(module.join("go.mod"), GRPCSQL_MOD).unwrap();
    // go.sum from the module cache (-mod=mod writes it), for both builds.
    let tidy = tc
        .command()
        .current_dir(&module)
        .args(["build", "-o", "/dev/null", "."])
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw -mod=mod")
        .output()
        .unwrap();
    assert!(
        tidy.status.success(),
        "{}",
        String::from_utf8_lossy(&tidy.stderr)
    );
    let sdk_bin = build(tc, &module, "grpcsql", false);
    let probes_bin = build(tc, &module, "grpcsql", true);

    let col = Collector::start(&dir);
    let run = |mode: Mode, db: &str| {
        let (port, gport) = (free_port(), free_port());
        let env = [
            ("ADDR", format!("127.0.0.1:{port}")),
            ("GRPC_ADDR", format!("127.0.0.1:{gport}")),
            ("DB", dir.join(db).display().to_string()),
        ];
        let mut p = start(
            &mode,
            if matches!(mode, Mode::Sdk(_)) {
                &sdk_bin
            } else {
                &probes_bin
            },
            "grpcsql",
            &[],
            &env,
        );
        wait_listening(port, &mut p);
        let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
        assert_eq!(
            http(port, "GET", "/q", &[("traceparent", &tp)]),
            (200, "ok\n".into())
        );
        p
    };
    // HTTP server, gRPC client, gRPC server, query.
    let total = 4;
    let p = run(Mode::Sdk(&col), "sdk.db");
    let sdk = col.wait_for("the SDK build's spans", |s| s.len() >= total);
    drop(p);
    let p = run(Mode::Sites(&dir), "sites.db");
    std::thread::sleep(Duration::from_millis(300));
    let fin = p.interrupt();
    let sites = read_spans(&dir, &["grpcsql"]);

    assert_eq!(sdk.len(), total, "{label} SDK:\n{}", dump(&sdk));
    assert_eq!(
        sites.len(),
        total,
        "{label} sites:\n{}\n{}",
        dump(&sites),
        fin.stderr
    );
    assert_eq!(
        signatures(&sites),
        signatures(&sdk),
        "{label}: probe sites and SDK disagree"
    );
    // One chain: HTTP server ← gRPC client ← gRPC server ← query, in the incoming trace.
    let query = sites
        .iter()
        .find(|s| s.str("db.system.name") == Some("sqlite"))
        .unwrap();
    let kinds: Vec<i64> = std::iter::successors(Some(query), |s| {
        sites.iter().find(|p| p.span_id == s.parent)
    })
    .map(|s| s.kind)
    .collect();
    assert_eq!(kinds, [3, 2, 3, 2], "{}", dump(&sites));
    assert!(sites.iter().all(|s| s.trace_id == TRACE_ID));
    check_run(
        &fin.stderr,
        label,
        "net/http server, database/sql, grpc server, grpc client",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go126_query_in_grpc_handler_matches_sdk() {
    grpcsql_spans(Toolchain::Go126);
}

#[test]
fn go127_query_in_grpc_handler_matches_sdk() {
    grpcsql_spans(Toolchain::Go127);
}

// ---------- an HTTP call in a gRPC handler ----------

/// crates/gotap-cli/tests/go/grpchttp: GET /q → gRPC Run, whose handler queries SQLite and calls
/// GET /leaf on the same server with its context; GET /fail → gRPC Fail → a failing statement,
/// NOT_FOUND. The HTTP client span must be the gRPC server span's child (net/http's client finds
/// gotap.probeCtxKey before its own server span), and the reverse lookups keep working: the gRPC
/// client in an HTTP handler, the query in a gRPC handler. One chain per request, in the trace
/// it came with, and the same spans as SDK mode.
fn grpchttp_spans(tc: Toolchain) {
    require_root();
    let label = tc.label();
    let dir = scratch(&format!("probes-more-grpchttp-{label}"));
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/grpchttp");
    let sdk_bin = build(tc, &module, "grpchttp", false);
    let probes_bin = build(tc, &module, "grpchttp", true);

    let col = Collector::start(&dir);
    // The same ports and database file in both modes, one after the other: url.full and
    // db.namespace carry them.
    let (port, gport) = (free_port(), free_port());
    let run = |mode: Mode| {
        let env = [
            ("ADDR", format!("127.0.0.1:{port}")),
            ("GRPC_ADDR", format!("127.0.0.1:{gport}")),
            ("DB", dir.join("app.db").display().to_string()),
        ];
        let mut p = start(
            &mode,
            if matches!(mode, Mode::Sdk(_)) {
                &sdk_bin
            } else {
                &probes_bin
            },
            "grpchttp",
            &[],
            &env,
        );
        wait_listening(port, &mut p);
        let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
        assert_eq!(
            http(port, "GET", "/q", &[("traceparent", &tp)]),
            (200, "ok\n".into())
        );
        assert_eq!(http(port, "GET", "/fail", &[]).0, 502);
        p
    };
    // /q: HTTP server, gRPC client, gRPC server, query, HTTP client, HTTP server /leaf;
    // /fail: HTTP server, gRPC client, gRPC server, statement.
    let total = 10;
    let p = run(Mode::Sdk(&col));
    let sdk = col.wait_for("the SDK build's spans", |s| s.len() >= total);
    drop(p);
    let p = run(Mode::Sites(&dir));
    std::thread::sleep(Duration::from_millis(300)); // the agent drains its ring buffer every 20 ms
    let fin = p.interrupt();
    let sites = read_spans(&dir, &["grpchttp"]);

    assert_eq!(
        sites.len(),
        total,
        "{label} sites:\n{}\n{}",
        dump(&sites),
        fin.stderr
    );
    // /leaf's server span ← HTTP client ← gRPC server ← gRPC client ← /q's server span, all in
    // the incoming trace.
    let leaf = sites
        .iter()
        .find(|s| s.kind == 2 && s.str("url.path") == Some("/leaf"))
        .unwrap_or_else(|| panic!("{}", dump(&sites)));
    let chain: Vec<&FlatSpan> =
        std::iter::successors(Some(leaf), |s| sites.iter().find(|p| p.span_id == s.parent))
            .collect();
    let kinds: Vec<(i64, bool)> = chain
        .iter()
        .map(|s| (s.kind, s.str("rpc.method").is_some()))
        .collect();
    assert_eq!(
        kinds,
        [(2, false), (3, false), (2, true), (3, true), (2, false)],
        "{label}:\n{}",
        dump(&sites)
    );
    assert_eq!(chain.last().unwrap().parent, PARENT_ID);
    assert!(
        chain.iter().all(|s| s.trace_id == TRACE_ID),
        "{label}: one trace:\n{}",
        dump(&sites)
    );
    let query = sites
        .iter()
        .find(|s| s.str("db.system.name") == Some("sqlite") && s.status != 2)
        .unwrap();
    assert_eq!(
        query.parent, chain[2].span_id,
        "{label}: the query is the gRPC server span's child"
    );
    // /fail: statement ← gRPC server ← gRPC client ← HTTP server (a root).
    let failed = sites
        .iter()
        .find(|s| s.str("db.system.name") == Some("sqlite") && s.status == 2)
        .unwrap();
    let kinds: Vec<i64> = std::iter::successors(Some(failed), |s| {
        sites.iter().find(|p| p.span_id == s.parent)
    })
    .map(|s| s.kind)
    .collect();
    assert_eq!(kinds, [3, 2, 3, 2], "{label}:\n{}", dump(&sites));
    check_run(
        &fin.stderr,
        label,
        "net/http server, net/http client, database/sql, grpc server, grpc client",
    );

    assert_eq!(sdk.len(), total, "{label} SDK:\n{}", dump(&sdk));
    assert_eq!(
        signatures(&sites),
        signatures(&sdk),
        "{label}: probe sites and SDK disagree"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go126_http_call_in_grpc_handler_matches_sdk() {
    grpchttp_spans(Toolchain::Go126);
}

#[test]
fn go127_http_call_in_grpc_handler_matches_sdk() {
    grpchttp_spans(Toolchain::Go127);
}

// ---------- literals never exported ----------

/// sqlsvc's `LeakQueries` through probe sites, traced by `gotap run` exporting OTLP/HTTP to the
/// real Collector: the texts are the SDK build's (build_sql.rs checks the same list), and no
/// literal, of the query or quoted back by the driver's error, reaches the Collector.
fn sql_leaks(tc: Toolchain, postgres: bool) {
    require_root();
    let label = format!("{}-{}", tc.label(), if postgres { "pg" } else { "sqlite" });
    let dir = scratch(&format!("probes-more-leaks-{label}"));
    let svc_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sqlsvc");
    let bin = build(tc, &svc_dir, "sqlsvc", true);
    let col = Collector::start(&dir);
    let pg = postgres.then(Postgres::start);
    let db = match &pg {
        Some(pg) => pg.dsn.clone(),
        None => dir.join("sites.db").display().to_string(),
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
    let (status, body) = http(port, "GET", "/leaks", &[]);
    assert_eq!(status, 200);
    let want: &[(&str, bool)] = if postgres {
        &[
            ("SELECT ?", false),
            ("SELECT ? AS \"Visible\"", false),
            ("SELECT ?", false),
            ("SELECT ? ?", true),
            ("SELECT ?::int", true),
        ]
    } else {
        &[
            ("SELECT ?", false),
            ("SELECT ? ? ?", true),
            ("SELECT ? FROM nope", true),
        ]
    };
    assert_eq!(
        body.lines().map(|l| l == "err").collect::<Vec<_>>(),
        want.iter().map(|w| w.1).collect::<Vec<_>>(),
        "{label}: {body}"
    );
    let spans = col.wait_for("the /leaks spans", |s| {
        s.iter().any(|x| x.str("url.path") == Some("/leaks"))
            && s.iter()
                .filter(|x| x.str("db.system.name").is_some())
                .count()
                >= 3 + want.len()
    });
    drop(p.interrupt());
    let leaks = spans
        .iter()
        .find(|s| s.str("url.path") == Some("/leaks"))
        .unwrap();
    let children: Vec<&FlatSpan> = spans.iter().filter(|s| s.parent == leaks.span_id).collect();
    let mut got: Vec<(&str, bool)> = children
        .iter()
        .map(|s| (s.str("db.query.text").unwrap_or(""), s.status == 2))
        .collect();
    let mut expected = want.to_vec();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{label}:\n{}", dump(&spans));
    let raw = std::fs::read_to_string(&col.file).unwrap();
    assert!(
        !raw.contains("secret-"),
        "{label}: a literal reached the Collector:\n{raw}"
    );
    // The failed queries keep their driver's message, scrubbed.
    assert!(raw.contains("syntax error"), "{label}: {raw}");
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go127_sql_literals_never_exported_postgres() {
    sql_leaks(Toolchain::Go127, true);
}

#[test]
fn go127_sql_literals_never_exported_sqlite() {
    sql_leaks(Toolchain::Go127, false);
}
