//! One telemetry: `gotap run` on an unmodified binary and `gotap build` of the same source give
//! the same spans — names, kinds, attributes, statuses — in the same trace trees, each strategy
//! exporting to a real OpenTelemetry Collector.
//!
//! The program is crates/gotap-cli/tests/go/grpchttp, every library gotap traces in one process:
//! GET /q → gRPC client → gRPC server → SQLite query + HTTP client → GET /leaf, in the trace of
//! an incoming `traceparent`; GET /fail → gRPC client → gRPC server → a failing statement,
//! NOT_FOUND → 502. Built with `go build` for `gotap run` and with `gotap build` for the woven
//! SDK. Go 1.26 and 1.27; runs as root (real uprobes). Everything is compared.
mod ebpf_support;

use ebpf_support::trees::{self, incoming_traceparent, INCOMING_TRACE_ID};
use ebpf_support::*;
use gotap_testkit::{bin_dir, build_once, free_port, require_root, Toolchain};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn module() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/grpchttp")
}

/// `go build` of grpchttp: the binary `gotap run` gets, never touched by gotap.
fn plain_build(tc: Toolchain) -> PathBuf {
    let out = bin_dir().join(format!("grpchttp-plain-{}", tc.label()));
    build_once(&out, || {
        let res = tc
            .command()
            .current_dir(module())
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "go build of grpchttp with {}: {}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// `url.full` names each run's listening port: compared without it.
fn url_port(k: &str, v: &Value) -> Option<Value> {
    let url = v.as_str().filter(|_| k == "url.full")?;
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':')?;
    port.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| Value::from(format!("{scheme}://{host}:<port>{path}")))
}

/// A span as both strategies must give it: everything but ids, times and ports, with its parent
/// described the same way, recursively. Under `gotap run` the gRPC server span finds its client
/// span through the same-host link map (connection + HTTP/2 stream; the unmodified client sends
/// no `traceparent`), so the whole tree is compared.
fn signature(s: &FlatSpan, all: &[FlatSpan]) -> String {
    let attrs: std::collections::BTreeMap<&str, Value> = s
        .attrs
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                trees::any_port(k, v)
                    .or_else(|| url_port(k, v))
                    .unwrap_or_else(|| v.clone()),
            )
        })
        .collect();
    let parent = if s.parent.is_empty() {
        "root".to_string()
    } else if let Some(p) = all
        .iter()
        .find(|p| p.span_id == s.parent && p.trace_id == s.trace_id)
    {
        format!("child of [{}]", signature(p, all))
    } else if s.parent == trees::INCOMING_PARENT_ID && s.trace_id == INCOMING_TRACE_ID {
        "child of the incoming traceparent".to_string()
    } else {
        format!("child of unknown {}", s.parent)
    };
    format!(
        "{} kind={} {:?} status={} {attrs:?}, {parent}",
        s.service, s.kind, s.name, s.status
    )
}

fn signatures(spans: &[FlatSpan]) -> Vec<String> {
    let mut v: Vec<String> = spans.iter().map(|s| signature(s, spans)).collect();
    v.sort();
    v
}

/// Runs grpchttp (woven: exporting itself; plain: under `gotap run`), sends GET /q with a
/// traceparent and GET /fail, and returns the spans the strategy's own Collector received.
fn spans_of(tc: Toolchain, woven: bool, dir: &Path) -> (Vec<FlatSpan>, String) {
    let col_dir = dir.join(if woven { "woven" } else { "run" });
    std::fs::create_dir_all(&col_dir).unwrap();
    let col = Collector::start(&col_dir);
    let (port, gport) = (free_port(), free_port());
    // The same file name in both runs: db.namespace carries it.
    let db = col_dir.join("app.db");
    let mut cmd = if woven {
        let bin = gotap_testkit::gotap_build_once(
            &module(),
            tc,
            &format!("grpchttp-woven-{}", tc.label()),
        );
        let mut c = Command::new(bin);
        c.env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "grpchttp");
        c
    } else {
        let mut c = Command::new(GOTAP);
        c.args([
            "run",
            "--no-console",
            "--otlp-protocol",
            "grpc",
            "--otlp-endpoint",
        ])
        .arg(format!("http://127.0.0.1:{}", col.grpc_port))
        .args(["--service-name", "grpchttp", "--"])
        .arg(plain_build(tc));
        c
    };
    cmd.env("ADDR", format!("127.0.0.1:{port}"))
        .env("GRPC_ADDR", format!("127.0.0.1:{gport}"))
        .env("DB", &db);
    let mut p = Proc::spawn(
        cmd,
        if woven {
            "woven grpchttp"
        } else {
            "gotap run grpchttp"
        },
    );
    wait_listening(port, &mut p);
    let tp = incoming_traceparent();
    assert_eq!(
        http(port, "GET", "/q", &[("traceparent", &tp)]),
        (200, "ok\n".into())
    );
    assert_eq!(http(port, "GET", "/fail", &[]).0, 502);
    // /q: HTTP server, gRPC client, gRPC server, query, HTTP client, /leaf's HTTP server;
    // /fail: HTTP server, gRPC client, gRPC server, statement.
    let total = 10;
    let stderr = if woven {
        let spans = col.wait_for("the woven build's spans", |s| s.len() >= total);
        drop(p);
        return (spans, String::new());
    } else {
        // gotap flushes what it holds when it stops.
        p.interrupt().stderr
    };
    let spans = col.wait_for("gotap run's spans", |s| s.len() >= total);
    (spans, stderr)
}

fn same_tree(tc: Toolchain) {
    require_root();
    let label = tc.label();
    let dir = scratch(&format!("run-vs-build-{label}"));
    let (run, stderr) = spans_of(tc, false, &dir);
    let (woven, _) = spans_of(tc, true, &dir);
    assert_eq!(
        run.len(),
        10,
        "{label} gotap run:\n{}\n{stderr}",
        dump(&run)
    );
    assert_eq!(
        signatures(&run),
        signatures(&woven),
        "{label}: gotap run and gotap build disagree\n--- gotap run:\n{}\n--- gotap build:\n{}",
        dump(&run),
        dump(&woven)
    );
    // One trace, the incoming one: /leaf's server span ← HTTP client ← gRPC server (through the
    // link map) ← gRPC client ← /q's server span ← the incoming traceparent.
    let leaf = run
        .iter()
        .find(|s| s.kind == 2 && s.str("url.path") == Some("/leaf"))
        .unwrap_or_else(|| panic!("{label}: no /leaf server span:\n{}", dump(&run)));
    let chain: Vec<&FlatSpan> =
        std::iter::successors(Some(leaf), |s| run.iter().find(|p| p.span_id == s.parent)).collect();
    assert_eq!(
        chain.len(),
        5,
        "{label}: /leaf's ancestors:\n{}",
        dump(&run)
    );
    assert!(
        chain.iter().all(|s| s.trace_id == INCOMING_TRACE_ID),
        "{label}:\n{}",
        dump(&run)
    );
    assert_eq!(chain[4].parent, trees::INCOMING_PARENT_ID);
    // Function probes: a few hits per span.
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" 10 spans exported (") && summary.contains(", 0 dropped, "),
        "{label}: {summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn go126_run_and_build_give_the_same_tree() {
    same_tree(Toolchain::Go126);
}

#[test]
fn go127_run_and_build_give_the_same_tree() {
    same_tree(Toolchain::Go127);
}
