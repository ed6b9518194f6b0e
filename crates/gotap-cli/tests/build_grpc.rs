//! `gotap build` and google.golang.org/grpc, end to end: the arena's `catalog` (gRPC server) and
//! `gateway` (HTTP server calling catalog over gRPC) are built with `gotap build` (plain builds:
//! no OpenTelemetry code of their own) under Go 1.26 and 1.27, run against the real OpenTelemetry
//! Collector, and their spans are compared with the ones crates/gotap-spans builds
//! (http.rs / rpc.rs): one trace from the gateway's HTTP server span through the gRPC client
//! span to catalog's gRPC server span, with `traceparent` carried in gRPC metadata. The orders
//! service the gateway asks first is replaced by a tiny HTTP responder in this test.
use gotap_spans::grpc::{self as rpc, GrpcClientCall, GrpcServerCall};
use gotap_spans::nethttp::{client_span, server_span, ClientRequest, ServerRequest};
use gotap_spans::SpanFrame;
use gotap_spans::{Resource, Span, Status, Value};
use gotap_testkit::collector::{Collector, Seen};
use gotap_testkit::{bin_dir, free_port, gotap_command, repo_root, wait_port, Proc, Toolchain};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// Woven builds recompile the standard library, grpc and the SDK: one at a time.
static BUILD: Mutex<()> = Mutex::new(());

fn gotap(tc: Toolchain, dir: &Path, args: &[&str]) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    gotap_command(tc)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn build(tc: Toolchain, service: &str) -> PathBuf {
    let out = bin_dir().join(format!("arena-{service}-woven-{}", tc.label()));
    let o = out.display().to_string();
    let res = gotap(
        tc,
        &repo_root().join("go/arena").join(service),
        &["build", "-o", &o, "."],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "gotap build of {service} with {} failed:\n{stderr}",
        tc.label()
    );
    // grpc v1.83 is inside the built-in rules' ranges: nothing to report.
    assert!(!stderr.contains("rules not applied"), "{stderr}");
    out
}

fn start(bin: &Path, service: &str, col: &Collector, args: &[String], port: u16) -> Proc {
    let child = Command::new(bin)
        .args(args)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", service)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_port(port, service);
    p
}

/// Stands in for the arena's orders service: order N is for product N+2, quantity 2; order 7 is
/// for a product catalog does not have. Every answer closes its connection.
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

/// One HTTP/1.1 GET over a fresh connection; returns (status, our local port).
fn get(port: u16, path: &str, traceparent: Option<&str>) -> (u16, u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = s.local_addr().unwrap().port();
    let tp = traceparent
        .map(|t| format!("traceparent: {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: gotap-test/1\r\n{tp}Connection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, local)
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

/// The reference span matches the woven one: name, kind, scope, status (with its description)
/// and every attribute.
fn assert_same(seen: &Seen, want: &Span) {
    assert_eq!(seen.name, want.name, "span name; seen {seen:#?}");
    assert_eq!(seen.scope, want.scope, "scope of {}", seen.name);
    assert_eq!(
        seen.attrs,
        strings(want),
        "attributes of {} ({})",
        seen.name,
        seen.service
    );
    let kind = match want.kind {
        gotap_spans::SpanKind::Server => 2,
        gotap_spans::SpanKind::Client => 3,
        _ => 1,
    };
    assert_eq!(seen.kind, kind, "kind of {}", seen.name);
    match &want.status {
        Status::Error(msg) => assert_eq!(
            (seen.status_code, seen.status_message.as_str()),
            (2, msg.as_str()),
            "status of {}",
            seen.name
        ),
        _ => assert_eq!(seen.status_code, 0, "status of {}: {seen:#?}", seen.name),
    }
}

fn find<'a>(spans: &'a [Seen], f: impl Fn(&Seen) -> bool, what: &str) -> &'a Seen {
    let hits: Vec<&Seen> = spans.iter().filter(|s| f(s)).collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one {what} span, got {}: {spans:#?}",
        hits.len()
    );
    hits[0]
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const METHOD: &str = "/arena.catalog.v1.Catalog/GetProduct";

fn e2e(tc: Toolchain) {
    let catalog_bin = build(tc, "catalog");
    let gateway_bin = build(tc, "gateway");
    let col = Collector::start(&format!("gotap-build-grpc-{}", tc.label()));
    let (catalog_port, gateway_port) = (free_port(), free_port());
    let orders_port = fake_orders();
    let catalog = start(
        &catalog_bin,
        "catalog",
        &col,
        &[format!("-addr=127.0.0.1:{catalog_port}")],
        catalog_port,
    );
    let _gateway = start(
        &gateway_bin,
        "gateway",
        &col,
        &[
            format!("-addr=127.0.0.1:{gateway_port}"),
            format!("-orders=http://127.0.0.1:{orders_port}"),
            format!("-catalog=127.0.0.1:{catalog_port}"),
        ],
        gateway_port,
    );
    let target = format!("127.0.0.1:{catalog_port}");

    // 1. A found product, with an incoming traceparent: one trace across both services.
    let (status, ok_port) = get(
        gateway_port,
        "/orders/1/details",
        Some(&format!("00-{TRACE}-{PARENT}-01")),
    );
    assert_eq!(status, 200);
    // 2. A product catalog does not have: NOT_FOUND, an error for the client only.
    let (status, _) = get(gateway_port, "/orders/7/details", None);
    assert_eq!(status, 404);
    let spans = col.wait_spans(8);

    let server = find(
        &spans,
        |s| s.service == "gateway" && s.kind == 2 && s.trace_id == TRACE,
        "gateway HTTP server",
    );
    assert_eq!(server.parent, PARENT);
    let want = server_span(
        &ServerRequest {
            method: "GET".into(),
            path: "/orders/1/details".into(),
            pattern: Some("GET /orders/{id}/details".into()),
            host: Some(format!("127.0.0.1:{gateway_port}")),
            client_address: Some("127.0.0.1".into()),
            client_port: Some(ok_port),
            user_agent: Some("gotap-test/1".into()),
            protocol: Some("HTTP/1.1".into()),
            status_code: Some(200),
            tls: false,
            query: None,
        },
        frame(),
        false,
    );
    assert_same(server, &want);
    // The HTTP call to orders is the server span's child too (net/http rules, unchanged).
    let orders = find(
        &spans,
        |s| s.service == "gateway" && s.scope == "gotap/net/http/client" && s.trace_id == TRACE,
        "orders client",
    );
    assert_eq!(orders.parent, server.span_id);
    let want = client_span(
        &ClientRequest {
            method: "GET".into(),
            url: format!("http://127.0.0.1:{orders_port}/orders/1"),
            status_code: Some(200),
            error: None,
        },
        frame(),
    );
    assert_same(orders, &want);

    // gRPC client span: child of the handler's server span (the handler passed r.Context()).
    let client = find(
        &spans,
        |s| s.scope == rpc::CLIENT_SCOPE && s.trace_id == TRACE,
        "gRPC client",
    );
    assert_eq!(
        (client.service.as_str(), client.parent.as_str()),
        ("gateway", server.span_id.as_str())
    );
    let want = rpc::client_span(
        &GrpcClientCall {
            full_method: METHOD.into(),
            target: target.clone(),
            status_code: Some(0),
            status_message: None,
        },
        frame(),
    );
    assert_same(client, &want);

    // catalog's gRPC server span: child of the client span, through traceparent in gRPC metadata.
    let served = find(
        &spans,
        |s| s.scope == rpc::SERVER_SCOPE && s.trace_id == TRACE,
        "gRPC server",
    );
    assert_eq!(
        (served.service.as_str(), served.parent.as_str()),
        ("catalog", client.span_id.as_str())
    );
    let peer = format!(
        "127.0.0.1:{}",
        served.attrs.get("network.peer.port").expect("peer port")
    );
    let want = rpc::server_span(
        &GrpcServerCall {
            full_method: METHOD.into(),
            peer: Some(peer),
            status_code: Some(0),
            status_message: None,
        },
        frame(),
    );
    assert_same(served, &want);

    // NOT_FOUND: the client span is an error with the status message, the server span is not.
    let missing = "product 99999 not found";
    let client = find(
        &spans,
        |s| s.scope == rpc::CLIENT_SCOPE && s.trace_id != TRACE,
        "failed gRPC client",
    );
    let want = rpc::client_span(
        &GrpcClientCall {
            full_method: METHOD.into(),
            target: target.clone(),
            status_code: Some(5),
            status_message: Some(missing.into()),
        },
        frame(),
    );
    assert_same(client, &want);
    let served = find(
        &spans,
        |s| s.scope == rpc::SERVER_SCOPE && s.trace_id != TRACE,
        "NOT_FOUND gRPC server",
    );
    assert_eq!(
        (served.trace_id.as_str(), served.parent.as_str()),
        (client.trace_id.as_str(), client.span_id.as_str())
    );
    let peer = format!(
        "127.0.0.1:{}",
        served.attrs.get("network.peer.port").expect("peer port")
    );
    let want = rpc::server_span(
        &GrpcServerCall {
            full_method: METHOD.into(),
            peer: Some(peer),
            status_code: Some(5),
            status_message: Some(missing.into()),
        },
        frame(),
    );
    assert_same(served, &want);
    assert_eq!(spans.len(), 8, "unexpected extra spans: {spans:#?}");

    // 3. catalog gone: the RPC fails in the client (UNAVAILABLE) and its span still ends, through
    //    grpc's OnFinish call option.
    drop(catalog);
    let (status, _) = get(gateway_port, "/orders/2/details", None);
    assert_eq!(status, 502);
    let spans = col.wait_spans(11);
    let failed: Vec<&Seen> = spans
        .iter()
        .filter(|s| {
            s.scope == rpc::CLIENT_SCOPE
                && s.attrs.get("rpc.grpc.status_code").map(String::as_str) == Some("14")
        })
        .collect();
    assert_eq!(failed.len(), 1, "{spans:#?}");
    let want = rpc::client_span(
        &GrpcClientCall {
            full_method: METHOD.into(),
            target,
            status_code: Some(14),
            status_message: Some(failed[0].status_message.clone()),
        },
        frame(),
    );
    assert_same(failed[0], &want);
    assert!(
        !failed[0].status_message.is_empty(),
        "an UNAVAILABLE span says why"
    );
    assert_eq!(spans.len(), 11, "unexpected extra spans: {spans:#?}");
}

#[test]
fn grpc_spans_match_rust_builders_go126() {
    e2e(Toolchain::Go126);
}

#[test]
fn grpc_spans_match_rust_builders_go127() {
    e2e(Toolchain::Go127);
}

/// A rule scoped to a grpc version range the build's grpc (v1.83.2) is outside of: `gotap build`
/// warns once, naming module, version and rule, and the rule is not applied. `-n` (print the
/// commands, run nothing) keeps this cheap: the decision is made before the go command starts.
#[test]
fn out_of_range_rule_is_reported_once_by_gotap_build() {
    let dir = std::env::temp_dir().join(format!("gotap-build-grpc-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("old-grpc.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: old-grpc-client\n    join:\n      package: google.golang.org/grpc\n      module: google.golang.org/grpc\n      version: \">=1.20, <1.60\"\n      function-body: (*ClientConn).Invoke\n    advice:\n      prepend: |\n        panic(\"must not be woven\")\n",
    )
    .unwrap();
    let res = gotap(
        Toolchain::Go126,
        &repo_root().join("go/arena/catalog"),
        &[
            "build",
            "--rules",
            rules.to_str().unwrap(),
            "-n",
            "-o",
            "/dev/null",
            ".",
        ],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("gotap: warning:") && l.contains("old-grpc-client"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let w = warnings[0];
    assert_eq!(
        w,
        "gotap: warning: rules not applied: old-grpc-client (>=1.20, <1.60); module google.golang.org/grpc is at v1.83.2, outside their version ranges"
    );
    // The built-in grpc rules cover v1.83.2: nothing else is reported.
    assert_eq!(stderr.matches("rules not applied").count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// grpc 1.85 (one server join point, processRPC) and a server-streaming RPC: a small program
/// (crates/gotap-weave/tests/grpcapp) serving grpc's health service to itself. Every call gives
/// a client span and the server span as its child, with the statuses grpc reported.
#[test]
fn grpc_1_85_unary_and_streaming_go127() {
    let tc = Toolchain::Go127;
    let dir = repo_root().join("crates/gotap-weave/tests/grpcapp");
    let bin = bin_dir().join(format!("grpcapp-woven-{}", tc.label()));
    let res = gotap(tc, &dir, &["build", "-o", bin.to_str().unwrap(), "."]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "gotap build of grpcapp failed:\n{stderr}"
    );
    assert!(!stderr.contains("rules not applied"), "{stderr}");
    let col = Collector::start("gotap-build-grpc-grpcapp");
    let out = Command::new(&bin)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "grpcapp")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "check missing: NotFound\nwatch after cancel: Canceled\ndone\n"
    );
    let spans = col.wait_spans(6);
    assert_eq!(spans.len(), 6, "{spans:#?}");

    let check = "/grpc.health.v1.Health/Check";
    let watch = "/grpc.health.v1.Health/Watch";
    let calls: [(&str, u32, Option<&str>); 3] = [
        (check, 0, None),
        (check, 5, Some("unknown service")),
        (watch, 1, None),
    ];
    for (method, code, message) in calls {
        let code_s = code.to_string();
        let pick = |scope: &'static str| {
            let name = &method[1..];
            find(
                &spans,
                |s| {
                    s.scope == scope
                        && s.name == name
                        && s.attrs.get("rpc.grpc.status_code") == Some(&code_s)
                },
                &format!("{scope} {method} {code}"),
            )
        };
        let client = pick(rpc::CLIENT_SCOPE);
        assert!(
            client.parent.is_empty(),
            "a call made with context.Background() starts a trace"
        );
        // The status message of a cancelled stream is grpc's ("context canceled"): taken as seen.
        let msg = message
            .map(str::to_owned)
            .unwrap_or_else(|| client.status_message.clone());
        let target = client.attrs["server.address"].clone() + ":" + &client.attrs["server.port"];
        let want = rpc::client_span(
            &GrpcClientCall {
                full_method: method.into(),
                target,
                status_code: Some(code),
                status_message: Some(msg.clone()),
            },
            frame(),
        );
        assert_same(client, &want);
        let server = pick(rpc::SERVER_SCOPE);
        assert_eq!(
            (server.trace_id.as_str(), server.parent.as_str()),
            (client.trace_id.as_str(), client.span_id.as_str()),
            "{method} {code}"
        );
        let peer = format!(
            "127.0.0.1:{}",
            server.attrs.get("network.peer.port").expect("peer port")
        );
        let want = rpc::server_span(
            &GrpcServerCall {
                full_method: method.into(),
                peer: Some(peer),
                status_code: Some(code),
                status_message: Some(msg),
            },
            frame(),
        );
        assert_same(server, &want);
    }
}
