//! HTTP/2 and HTTPS server spans, end to end: tests/go/h2svc (HTTPS with a certificate generated
//! at start-up, serving HTTP/2 and HTTP/1.1 by ALPN, and h2c through `Server.Protocols`; handlers
//! answering 200, 418 and 503) built with `gotap build` (woven), with `gotap build --probes`
//! under `gotap run` (probe sites), and with plain `go build` under `gotap run` (function probes:
//! eBPF), Go 1.26 and 1.27 (the eBPF one also stripped), exporting to the real OpenTelemetry
//! Collector. Every server span must carry the status the handler wrote (HTTP/2's writer is not
//! HTTP/1's `*response`: it used to be reported as 200, or missing under eBPF), Error on the 503,
//! url.scheme `https` over TLS and `http` over h2c, network.protocol.version `2` or `1.1`, the
//! client's user_agent.original, and exactly the attribute keys of [`server_keys`]: the same set
//! for every strategy, transport and status.
//!
//! The client is the same binary with `-client`, run without tracing (not under `gotap run`;
//! OTEL_SDK_DISABLED for the woven build), so the Collector receives the server's spans only.
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{bin_dir, free_port, gotap_command, require_root, Toolchain, Variant};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Builds recompile the standard library: one at a time.
static BUILD: Mutex<()> = Mutex::new(());

fn service_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/h2svc")
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Strategy {
    Woven,
    Probes,
    /// Plain `go build` under `gotap run`; stripped with `-s -w` (PIE) when true.
    Ebpf(bool),
}

fn build(tc: Toolchain, strategy: Strategy) -> PathBuf {
    let probes = match strategy {
        Strategy::Woven => false,
        Strategy::Probes => true,
        Strategy::Ebpf(stripped) => {
            let variant = Variant {
                stripped,
                pie: stripped,
            };
            return gotap_testkit::build("../crates/gotap-cli/tests/go/h2svc", ".", tc, variant);
        }
    };
    let kind = if probes { "probes" } else { "woven" };
    let out = bin_dir().join(format!("h2svc-{kind}-{}", tc.label()));
    gotap_testkit::build_once(&out, || {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = gotap_command(tc);
        cmd.current_dir(service_dir()).arg("build");
        if probes {
            cmd.arg("--probes");
        }
        cmd.arg("-o").arg(&out).arg(".").env("CGO_ENABLED", "0");
        let res = cmd.output().unwrap();
        assert!(
            res.status.success(),
            "gotap build {kind} of h2svc with {} failed:\n{}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// (url.path, url.scheme, network.protocol.version, http.response.status_code, OTLP status).
type Row = (String, String, String, Option<i64>, i64);

fn expected() -> Vec<Row> {
    let mut want = Vec::new();
    for (scheme, version) in [("https", "2"), ("https", "1.1"), ("http", "2")] {
        for (path, code) in [("/ok", 200), ("/teapot", 418), ("/unavailable", 503)] {
            let status = if code >= 500 { 2 } else { 0 };
            want.push((
                path.to_string(),
                scheme.to_string(),
                version.to_string(),
                Some(code),
                status,
            ));
        }
    }
    want.sort();
    want
}

/// The attribute keys of every server span here, whatever the strategy: the 503s add error.type.
fn server_keys(code: Option<i64>) -> Vec<&'static str> {
    let mut k = vec![
        "client.address",
        "client.port",
        "http.request.method",
        "http.response.status_code",
        "http.route",
        "network.protocol.version",
        "server.address",
        "server.port",
        "url.path",
        "url.scheme",
        "user_agent.original",
    ];
    if code.is_some_and(|c| c >= 500) {
        k.push("error.type");
        k.sort();
    }
    k
}

fn check(tc: Toolchain, strategy: Strategy) {
    let probes = strategy != Strategy::Woven;
    if probes {
        require_root();
    }
    let label = format!(
        "{}-{}",
        match strategy {
            Strategy::Woven => "woven",
            Strategy::Probes => "probes",
            Strategy::Ebpf(false) => "ebpf",
            Strategy::Ebpf(true) => "ebpf-stripped",
        },
        tc.label()
    );
    let dir = scratch(&format!("http2-{label}"));
    let bin = build(tc, strategy);
    let col = Collector::start(&dir);
    let (tls_port, h2c_port) = (free_port(), free_port());
    let args = vec![
        "-tls".to_string(),
        format!("127.0.0.1:{tls_port}"),
        "-h2c".to_string(),
        format!("127.0.0.1:{h2c_port}"),
    ];
    let endpoint = format!("http://127.0.0.1:{}", col.http_port);
    let mut server = if probes {
        let flags = [
            "--no-console".to_string(),
            "--otlp-endpoint".to_string(),
            endpoint,
            "--service-name".to_string(),
            "h2svc".to_string(),
        ];
        gotap_run(&flags, &bin, &args, &format!("gotap run h2svc ({label})"))
    } else {
        let mut cmd = Command::new(&bin);
        cmd.args(&args)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_SERVICE_NAME", "h2svc");
        Proc::spawn(cmd, &format!("h2svc ({label})"))
    };
    wait_listening(tls_port, &mut server);
    wait_listening(h2c_port, &mut server);
    if probes {
        // gotap run attaches before it starts the target, but give the uprobes a moment.
        std::thread::sleep(Duration::from_millis(200));
    }

    let client = Command::new(&bin)
        .arg("-client")
        .args(&args)
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&client.stdout);
    assert!(
        client.status.success(),
        "client ({label}) failed:\n{out}{}",
        String::from_utf8_lossy(&client.stderr)
    );
    // What the service answered, whatever the build: the transports really are h2, h1 and h2c.
    let mut answered: Vec<&str> = out.lines().collect();
    answered.sort();
    let mut want_answers = Vec::new();
    for (t, proto) in [("h2", "HTTP/2.0"), ("h1", "HTTP/1.1"), ("h2c", "HTTP/2.0")] {
        for (p, c) in [("/ok", 200), ("/teapot", 418), ("/unavailable", 503)] {
            want_answers.push(format!("{t} {p} {c} {proto}"));
        }
    }
    want_answers.sort();
    assert_eq!(answered, want_answers, "{label}");

    let spans = col.wait_for("9 server spans", |s| {
        s.iter().filter(|s| s.kind == 2).count() >= 9
    });
    let mut got: Vec<Row> = spans
        .iter()
        .filter(|s| s.kind == 2)
        .map(|s| {
            (
                s.str("url.path").unwrap_or("").to_string(),
                s.str("url.scheme").unwrap_or("").to_string(),
                s.str("network.protocol.version").unwrap_or("").to_string(),
                s.int("http.response.status_code"),
                s.status,
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected(), "{label}: spans\n{}", dump(&spans));
    for s in spans.iter().filter(|s| s.kind == 2) {
        let code = s.int("http.response.status_code");
        let error_type = s.str("error.type");
        assert_eq!(
            error_type,
            (code == Some(503)).then_some("503"),
            "{label}: error.type of {}",
            s.name
        );
        assert_eq!(s.service, "h2svc");
        let transport = match (s.str("url.scheme"), s.str("network.protocol.version")) {
            (Some("https"), Some("2")) => "h2",
            (Some("https"), Some("1.1")) => "h1",
            _ => "h2c",
        };
        assert_eq!(
            s.str("user_agent.original"),
            Some(format!("h2svc-client/{transport}").as_str()),
            "{label}: user agent of {} over {transport}",
            s.name
        );
        let keys: Vec<&str> = s.attrs.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            server_keys(code),
            "{label}: attribute keys of {} over {transport}",
            s.name
        );
    }
    server.interrupt();
}

#[test]
fn woven_http2_and_https_server_spans_go126() {
    check(Toolchain::Go126, Strategy::Woven);
}

#[test]
fn woven_http2_and_https_server_spans_go127() {
    check(Toolchain::Go127, Strategy::Woven);
}

#[test]
fn probes_http2_and_https_server_spans_go126() {
    check(Toolchain::Go126, Strategy::Probes);
}

#[test]
fn probes_http2_and_https_server_spans_go127() {
    check(Toolchain::Go127, Strategy::Probes);
}

#[test]
fn ebpf_http2_and_https_server_spans_go126() {
    check(Toolchain::Go126, Strategy::Ebpf(false));
}

#[test]
fn ebpf_http2_and_https_server_spans_go127_stripped() {
    check(Toolchain::Go127, Strategy::Ebpf(true));
}
