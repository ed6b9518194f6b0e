//! The eBPF strategy against real Go programs (tests/go) built with every supported toolchain:
//! attach, send requests, assert the spans.
mod common;
use common::*;

use gotap_spans::{ids, semconv as sc, Span, SpanKind, Status};
use gotap_testkit::{Toolchain, Variant, ALL_TOOLCHAINS};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn server_path(s: &Span) -> Option<&str> {
    (s.kind == SpanKind::Server)
        .then(|| str_attr(s, sc::URL_PATH))
        .flatten()
}

fn find<'a>(spans: &'a [Span], pred: impl Fn(&Span) -> bool, what: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| pred(s))
        .unwrap_or_else(|| panic!("no {what} span in {spans:#?}"))
}

fn server_spans(tc: Toolchain, variant: Variant) {
    let bin = app(tc, variant);
    let app = App::start(&bin);
    let (mut agent, sink) = agent(true);
    let t = agent
        .trace_process(app.pid(), resource("server-under-test"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.instrumentations.contains(&"net/http server"), "{t:?}");
    assert_eq!(t.go_version, tc.version());

    assert_eq!(
        request(
            app.port,
            "/hello?a=1&b=2",
            &[
                ("User-Agent", "gotap-test/1.0"),
                ("traceparent", TRACEPARENT)
            ]
        ),
        200
    );
    assert_eq!(request(app.port, "/fail", &[]), 503);
    assert_eq!(
        request(app.port, "/silent", &[("TRACEPARENT", "00-zz-bad-01")]),
        200
    );
    assert_eq!(request(app.port, "/users/42", &[]), 200);
    let spans = sink.wait_for(4, |s| s.kind == SpanKind::Server);
    let stats = agent.shutdown();
    assert_eq!(stats.ringbuf_drops, 0);
    assert_eq!(stats.ret_without_entry, 0);
    assert_eq!(stats.header_window_truncated, 0);

    let hello = find(&spans, |s| server_path(s) == Some("/hello"), "/hello");
    let (trace, parent, _) = ids::parse_traceparent(TRACEPARENT).unwrap();
    assert_eq!(hello.trace_id, trace, "joins the caller's trace");
    assert_eq!(hello.parent_span_id, Some(parent));
    assert_ne!(hello.span_id, parent);
    // Request.Pattern (Go >= 1.23) names the span by route.
    assert_eq!(
        hello.name,
        if tc == Toolchain::Go119 {
            "GET"
        } else {
            "GET /hello"
        }
    );
    assert_eq!(str_attr(hello, sc::HTTP_REQUEST_METHOD), Some("GET"));
    assert_eq!(str_attr(hello, sc::URL_QUERY), Some("a=1&b=2"));
    assert_eq!(
        str_attr(hello, sc::USER_AGENT_ORIGINAL),
        Some("gotap-test/1.0")
    );
    assert_eq!(str_attr(hello, sc::SERVER_ADDRESS), Some("127.0.0.1"));
    assert_eq!(int_attr(hello, sc::SERVER_PORT), Some(app.port as i64));
    assert_eq!(str_attr(hello, sc::CLIENT_ADDRESS), Some("127.0.0.1"));
    assert!(int_attr(hello, sc::CLIENT_PORT).is_some_and(|p| p > 0));
    assert_eq!(str_attr(hello, sc::NETWORK_PROTOCOL_VERSION), Some("1.1"));
    assert_eq!(str_attr(hello, sc::URL_SCHEME), Some("http"), "no TLS");
    assert_eq!(int_attr(hello, sc::HTTP_RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(hello.status, Status::Unset);
    assert_eq!(hello.resource.service_name(), "server-under-test");
    assert!(hello.end_unix_nano >= hello.start_unix_nano);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        now - hello.start_unix_nano < 60_000_000_000,
        "timestamps are Unix time"
    );

    let fail = find(&spans, |s| server_path(s) == Some("/fail"), "/fail");
    assert_eq!(int_attr(fail, sc::HTTP_RESPONSE_STATUS_CODE), Some(503));
    assert!(matches!(fail.status, Status::Error(_)));
    assert_eq!(fail.parent_span_id, None, "no traceparent: a new trace");
    assert_ne!(fail.trace_id, hello.trace_id);

    let silent = find(&spans, |s| server_path(s) == Some("/silent"), "/silent");
    assert_eq!(
        int_attr(silent, sc::HTTP_RESPONSE_STATUS_CODE),
        Some(200),
        "nothing written means 200"
    );
    assert_eq!(
        silent.parent_span_id, None,
        "a malformed traceparent is ignored"
    );

    let user = find(&spans, |s| server_path(s) == Some("/users/42"), "/users/42");
    if tc == Toolchain::Go119 {
        assert_eq!(user.name, "GET", "no Request.Pattern before Go 1.23");
        assert_eq!(user.attr(sc::HTTP_ROUTE), None);
    } else {
        assert_eq!(user.name, "GET /users/{id}");
        assert_eq!(str_attr(user, sc::HTTP_ROUTE), Some("/users/{id}"));
    }
}

#[test]
fn server_spans_go119() {
    server_spans(Toolchain::Go119, Variant::default());
}
#[test]
fn server_spans_go126() {
    server_spans(Toolchain::Go126, Variant::default());
}
#[test]
fn server_spans_go127() {
    server_spans(Toolchain::Go127, Variant::default());
}
#[test]
fn server_spans_go126_stripped_pie() {
    server_spans(
        Toolchain::Go126,
        Variant {
            stripped: true,
            pie: true,
        },
    );
}
#[test]
fn server_spans_go119_stripped() {
    server_spans(
        Toolchain::Go119,
        Variant {
            stripped: true,
            pie: false,
        },
    );
}

/// /call and /async: the handler calls /hello of the same server, inline or from a goroutine
/// it starts. Expect server(/call) → client(GET /hello) → server(/hello), one trace.
fn client_chain(tc: Toolchain, variant: Variant, handler: &str) {
    let bin = app(tc, variant);
    let app = App::start(&bin);
    let (mut agent, sink) = agent(false);
    let t = agent
        .trace_process(app.pid(), resource("chain"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.warnings.is_empty(), "{t:?}");
    let target = app.url("/hello?x=1");
    assert_eq!(
        request(app.port, &format!("{handler}?url={target}"), &[]),
        200
    );
    let spans = sink.wait_for(3, |_| true);
    let stats = agent.shutdown();

    let outer = find(&spans, |s| server_path(s) == Some(handler), handler);
    let client = find(&spans, |s| s.kind == SpanKind::Client, "client");
    let inner = find(&spans, |s| server_path(s) == Some("/hello"), "/hello");
    assert_eq!(client.name, "GET");
    // Query values are redacted by default (keys kept), as on server spans.
    assert_eq!(
        str_attr(client, sc::URL_FULL),
        Some(target.replace("x=1", "x=REDACTED").as_str())
    );
    assert_eq!(int_attr(client, sc::HTTP_RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(int_attr(client, sc::SERVER_PORT), Some(app.port as i64));
    assert_eq!(
        client.parent_span_id,
        Some(outer.span_id),
        "client span is a child of the handler's span"
    );
    assert_eq!(client.trace_id, outer.trace_id);
    assert_eq!(
        inner.parent_span_id,
        Some(client.span_id),
        "linked through the pinned tuple map"
    );
    assert_eq!(inner.trace_id, outer.trace_id);
    assert!(
        client.start_unix_nano >= outer.start_unix_nano
            && client.end_unix_nano <= outer.end_unix_nano
    );
    assert!(
        inner.start_unix_nano >= client.start_unix_nano
            && inner.end_unix_nano <= client.end_unix_nano
    );
    assert_eq!(stats.spans, 3);
    eprintln!(
        "{handler} {}: {} probe hits for {} spans",
        tc.label(),
        stats.probe_hits,
        stats.spans
    );
}

#[test]
fn client_span_inline_all_toolchains() {
    for tc in ALL_TOOLCHAINS {
        client_chain(tc, Variant::default(), "/call");
    }
}

#[test]
fn client_span_in_goroutine_all_toolchains() {
    for tc in ALL_TOOLCHAINS {
        client_chain(tc, Variant::default(), "/async");
    }
}

/// Stripped binaries: no DWARF, every offset (runtime.m.curg included) from the table.
#[test]
fn client_span_in_goroutine_stripped() {
    client_chain(
        Toolchain::Go119,
        Variant {
            stripped: true,
            pie: false,
        },
        "/async",
    );
    client_chain(
        Toolchain::Go127,
        Variant {
            stripped: true,
            pie: true,
        },
        "/async",
    );
}

/// A goroutine started during a request (a worker) outlives it: its later calls are made outside
/// any request, so their client spans start new traces instead of joining the first request's.
#[test]
fn worker_started_in_a_request_does_not_keep_its_parent() {
    let bin = app(Toolchain::Go126, Variant::default());
    let app = App::start(&bin);
    let (mut agent, sink) = agent(false);
    agent.trace_process(app.pid(), resource("worker")).unwrap();
    assert_eq!(request(app.port, "/startworker", &[]), 200);
    let first = sink.wait_for(1, |s| server_path(s) == Some("/startworker"));
    let start = find(
        &first,
        |s| server_path(s) == Some("/startworker"),
        "/startworker",
    );
    let target = app.url("/hello");
    assert_eq!(request(app.port, &format!("/kick?url={target}"), &[]), 200);
    assert_eq!(request(app.port, &format!("/kick?url={target}"), &[]), 200);
    let spans = sink.wait_for(4, |s| {
        s.kind == SpanKind::Client || server_path(s) == Some("/hello")
    });
    agent.shutdown();
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .collect();
    assert_eq!(clients.len(), 2, "{spans:#?}");
    for c in &clients {
        assert_eq!(
            c.parent_span_id, None,
            "worker call parented to an ended request: {c:#?}"
        );
        assert_ne!(c.trace_id, start.trace_id);
        // The callee still joins the worker's client span through the link map.
        let inner = find(
            &spans,
            |s| server_path(s) == Some("/hello") && s.parent_span_id == Some(c.span_id),
            "/hello",
        );
        assert_eq!(inner.trace_id, c.trace_id);
    }
    assert_ne!(clients[0].trace_id, clients[1].trace_id);
}

/// A header block longer than the raw window, its traceparent before the cut: counted, not silent.
#[test]
fn truncated_header_window_is_counted() {
    let app = App::start(&app(Toolchain::Go126, Variant::default()));
    let (mut agent, sink) = agent(false);
    agent.trace_process(app.pid(), resource("pad")).unwrap();
    let pad = "x".repeat(1500);
    assert_eq!(
        request(
            app.port,
            "/hello",
            &[("traceparent", TRACEPARENT), ("X-Pad", &pad)]
        ),
        200
    );
    assert_eq!(
        request(
            app.port,
            "/silent",
            &[("X-Pad", &pad), ("traceparent", TRACEPARENT)]
        ),
        200
    );
    let spans = sink.wait_for(2, |_| true);
    let stats = agent.shutdown();
    // The first request's traceparent fell out of the window (User-Agent is absent in both).
    assert_eq!(
        find(&spans, |s| server_path(s) == Some("/hello"), "/hello").parent_span_id,
        None
    );
    assert!(
        find(&spans, |s| server_path(s) == Some("/silent"), "/silent")
            .parent_span_id
            .is_some()
    );
    assert_eq!(stats.header_window_truncated, 2);
    assert_eq!(stats.ret_without_entry, 0);
}

#[test]
fn client_transport_error() {
    let bin = app(Toolchain::Go126, Variant::default());
    let app = App::start(&bin);
    let (mut agent, sink) = agent(false);
    agent.trace_process(app.pid(), resource("err")).unwrap();
    let closed = gotap_testkit::free_port();
    assert_eq!(
        request(
            app.port,
            &format!("/call?url=http://127.0.0.1:{closed}/x"),
            &[]
        ),
        200
    );
    let spans = sink.wait_for(2, |_| true);
    agent.shutdown();
    let client = find(&spans, |s| s.kind == SpanKind::Client, "client");
    assert!(
        matches!(&client.status, Status::Error(m) if m == "transport error"),
        "{client:?}"
    );
    assert_eq!(client.attr(sc::HTTP_RESPONSE_STATUS_CODE), None);
}

/// Two processes, each traced by its own agent: the callee's server span is the caller's client
/// span's child through the map pinned in bpffs.
#[test]
fn two_agents_link_through_pinned_map() {
    let a = App::start(&app(Toolchain::Go127, Variant::default()));
    let b = App::start(&app(Toolchain::Go119, Variant::default()));
    let (mut agent_a, sink_a) = agent(false);
    let (mut agent_b, sink_b) = agent(false);
    agent_a
        .trace_process(a.pid(), resource("frontend"))
        .unwrap();
    agent_b.trace_process(b.pid(), resource("backend")).unwrap();
    assert_eq!(
        request(a.port, &format!("/call?url={}", b.url("/hello")), &[]),
        200
    );
    let spans_a = sink_a.wait_for(2, |_| true);
    let spans_b = sink_b.wait_for(1, |_| true);
    agent_a.shutdown();
    agent_b.shutdown();
    let client = find(&spans_a, |s| s.kind == SpanKind::Client, "client");
    let server_b = find(
        &spans_b,
        |s| server_path(s) == Some("/hello"),
        "backend /hello",
    );
    assert_eq!(server_b.resource.service_name(), "backend");
    assert_eq!(server_b.trace_id, client.trace_id);
    assert_eq!(server_b.parent_span_id, Some(client.span_id));
}

/// After untrace_process no span is produced; the process keeps serving.
#[test]
fn untrace_detaches() {
    let app = App::start(&app(Toolchain::Go126, Variant::default()));
    let (mut agent, sink) = agent(false);
    agent.trace_process(app.pid(), resource("x")).unwrap();
    assert_eq!(request(app.port, "/hello", &[]), 200);
    sink.wait_for(1, |_| true);
    agent.untrace_process(app.pid()).unwrap();
    let hits = agent.stats().probe_hits;
    assert_eq!(request(app.port, "/hello", &[]), 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let stats = agent.shutdown();
    assert_eq!(stats.spans, 1);
    assert_eq!(stats.probe_hits, hits, "no probe fires after untrace");
}

/// Keep-alive requests: the documented cost of a server span is entry + return site + the `go`
/// statement net/http runs per request (its background reader), i.e. 3 probe hits.
#[test]
fn probe_hits_per_server_span() {
    use std::io::{Read, Write};
    let app = App::start(&app(Toolchain::Go126, Variant::default()));
    let (mut agent, sink) = agent(false);
    agent.trace_process(app.pid(), resource("hits")).unwrap();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    const N: usize = 50;
    for _ in 0..N {
        conn.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    sink.wait_for(N, |_| true);
    let stats = agent.shutdown();
    assert_eq!(stats.spans, N as u64);
    eprintln!(
        "server span, keep-alive: {:.2} probe hits per span",
        stats.hits_per_span()
    );
    // + 1 for the connection's own goroutine, spread over N requests.
    assert!(
        stats.hits_per_span() <= 3.0 + 1.0 / N as f64 + 1e-9,
        "{stats:?}"
    );
    assert!(stats.hits_per_span() >= 2.0, "{stats:?}");
    // By kind: entry + return site per request; the goroutine-start hook once per request
    // (net/http's background reader) and once for the connection.
    assert_eq!(
        stats.probe_hits - stats.goroutine_hits,
        2 * N as u64,
        "{stats:?}"
    );
    assert!(
        (N as u64..=N as u64 + 2).contains(&stats.goroutine_hits),
        "{stats:?}"
    );
}

#[test]
fn errors_are_sentences() {
    let (mut agent, _sink) = agent(false);
    // Not a Go program.
    let mut sleep = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let e = agent
        .trace_process(sleep.id(), resource("x"))
        .unwrap_err()
        .to_string();
    let _ = sleep.kill();
    let _ = sleep.wait();
    assert!(e.contains("not a Go binary"), "{e}");
    // No such process.
    let e = agent
        .trace_process(999_999_999, resource("x"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("process 999999999 does not exist"), "{e}");
    // Not traced.
    let e = agent.untrace_process(4_000_000).unwrap_err().to_string();
    assert_eq!(e, "process 4000000 is not traced by this agent");
    // Traced twice.
    let app = App::start(&app(Toolchain::Go119, Variant::default()));
    agent.trace_process(app.pid(), resource("x")).unwrap();
    let e = agent
        .trace_process(app.pid(), resource("x"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("process {} is already traced by this agent", app.pid())
    );
    agent.shutdown();
}

/// The caller's own traceparent header and the link map disagree: the link map (the client span
/// that wrote this request on this connection) wins, as documented.
#[test]
fn link_map_wins_over_an_application_traceparent() {
    let app = App::start(&app(Toolchain::Go126, Variant::default()));
    let (mut agent, sink) = agent(false);
    agent
        .trace_process(app.pid(), resource("precedence"))
        .unwrap();
    let target = app.url("/hello");
    assert_eq!(
        request(
            app.port,
            &format!("/call?tp={TRACEPARENT}&url={target}"),
            &[]
        ),
        200
    );
    let spans = sink.wait_for(3, |_| true);
    agent.shutdown();
    let client = find(&spans, |s| s.kind == SpanKind::Client, "client");
    let inner = find(&spans, |s| server_path(s) == Some("/hello"), "/hello");
    assert_eq!(inner.parent_span_id, Some(client.span_id));
    assert_eq!(inner.trace_id, client.trace_id);
}

/// Concurrent requests: every chain server → client → server stays separate (per-goroutine keys,
/// one link-map slot per connection).
#[test]
fn concurrent_chains_stay_apart() {
    let app = App::start(&app(Toolchain::Go127, Variant::default()));
    let (mut agent, sink) = agent(true);
    agent
        .trace_process(app.pid(), resource("concurrent"))
        .unwrap();
    const N: usize = 16;
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (port, target) = (app.port, app.url(&format!("/hello?i={i}")));
            let handler = if i % 2 == 0 { "/call" } else { "/async" };
            std::thread::spawn(move || {
                assert_eq!(request(port, &format!("{handler}?url={target}"), &[]), 200)
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let spans = sink.wait_for(3 * N, |_| true);
    let stats = agent.shutdown();
    assert_eq!(stats.spans, 3 * N as u64, "{spans:#?}");
    for i in 0..N {
        let q = format!("i={i}");
        let inner = find(
            &spans,
            |s| server_path(s) == Some("/hello") && str_attr(s, sc::URL_QUERY) == Some(&q),
            "inner",
        );
        let client = find(
            &spans,
            |s| {
                s.kind == SpanKind::Client
                    && str_attr(s, sc::URL_FULL).is_some_and(|u| u.ends_with(&q))
            },
            "client",
        );
        let outer = find(
            &spans,
            |s| Some(s.span_id) == client.parent_span_id,
            "outer",
        );
        assert_eq!(inner.parent_span_id, Some(client.span_id), "request {i}");
        assert!(
            str_attr(outer, sc::URL_QUERY).is_some_and(|u| u.ends_with(&q)),
            "request {i}: {outer:?}"
        );
        assert!(
            inner.trace_id == client.trace_id && client.trace_id == outer.trace_id,
            "request {i}"
        );
    }
}

/// HTTPS: HTTP/1.1 spans are complete (headers come from the decrypted bytes); HTTP/2 spans keep
/// what the Request gives (no status, no headers: documented limits).
#[test]
fn tls_server_http1_and_http2() {
    tls_server(Toolchain::Go126, Variant::default());
}

/// The same without DWARF: Request.TLS from the offsets table, HTTP/2's writer from the measured
/// rows of instrumentations/nethttp/ebpf.rs.
#[test]
fn tls_server_http1_and_http2_go127_stripped() {
    tls_server(
        Toolchain::Go127,
        Variant {
            stripped: true,
            pie: true,
        },
    );
}

#[test]
fn tls_server_http1_and_http2_go119_stripped() {
    tls_server(
        Toolchain::Go119,
        Variant {
            stripped: true,
            pie: false,
        },
    );
}

/// HTTPS, HTTP/1.1 and HTTP/2 by ALPN: both say url.scheme https (Request.TLS); the HTTP/2 spans
/// carry the status the handler wrote (HTTP/2's writer is not a *response: its state's status),
/// Error on 5xx, like HTTP/1.1's.
fn tls_server(tc: Toolchain, variant: Variant) {
    let app = App::start_with(&app(tc, variant), &["tls"]);
    let (mut agent, sink) = agent(false);
    let t = agent.trace_process(app.pid(), resource("tls")).unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .args(args)
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = format!("https://127.0.0.1:{}", app.port);
    assert_eq!(
        curl(&[
            "--http1.1",
            "-A",
            "tls-ua",
            "-H",
            &format!("traceparent: {TRACEPARENT}"),
            &format!("{base}/hello"),
        ]),
        "1.1 200"
    );
    assert_eq!(
        curl(&["--http1.1", "-A", "tls-ua", &format!("{base}/fail")]),
        "1.1 503"
    );
    for path in ["/hello?h2", "/fail?h2", "/silent?h2"] {
        let want = if path.starts_with("/fail") {
            "2 503"
        } else {
            "2 200"
        };
        let ua = format!("h2-ua {path}");
        let mut args = vec!["--http2", "-A", &ua];
        // A request with many headers: Request.Header outgrows a Swiss map's single group.
        let many: Vec<String> = (0..12).map(|i| format!("x-extra-{i}: {i}")).collect();
        let tp = format!("traceparent: {TRACEPARENT}");
        if path.starts_with("/silent") {
            for h in &many {
                args.extend(["-H", h]);
            }
            args.extend(["-H", &tp]);
        }
        let url = format!("{base}{path}");
        args.push(&url);
        assert_eq!(curl(&args), want, "{path}");
    }
    let spans = sink.wait_for(5, |_| true);
    agent.shutdown();
    let span = |version: &str, path: &str| {
        find(
            &spans,
            |s| {
                str_attr(s, sc::NETWORK_PROTOCOL_VERSION) == Some(version)
                    && server_path(s) == Some(path)
            },
            &format!("HTTP/{version} {path}"),
        )
    };
    let h1 = span("1.1", "/hello");
    assert_eq!(str_attr(h1, sc::USER_AGENT_ORIGINAL), Some("tls-ua"));
    assert_eq!(h1.trace_id, ids::parse_traceparent(TRACEPARENT).unwrap().0);
    assert_eq!(int_attr(h1, sc::HTTP_RESPONSE_STATUS_CODE), Some(200));
    let h1_fail = span("1.1", "/fail");
    assert_eq!(int_attr(h1_fail, sc::HTTP_RESPONSE_STATUS_CODE), Some(503));
    assert!(matches!(h1_fail.status, Status::Error(_)));
    for (path, code) in [("/hello", 200), ("/fail", 503), ("/silent", 200)] {
        let h2 = span("2", path);
        assert_eq!(
            h2.name,
            if tc == Toolchain::Go119 {
                "GET".to_string()
            } else {
                format!("GET {path}")
            }
        );
        assert_eq!(
            int_attr(h2, sc::HTTP_RESPONSE_STATUS_CODE),
            Some(code),
            "HTTP/2 {path}"
        );
        assert_eq!(
            matches!(h2.status, Status::Error(_)),
            code >= 500,
            "HTTP/2 {path}: {:?}",
            h2.status
        );
        // From Request.Header: HTTP/2 has no raw header bytes to scan.
        assert_eq!(
            str_attr(h2, sc::USER_AGENT_ORIGINAL),
            Some(format!("h2-ua {path}?h2").as_str()),
            "HTTP/2 {path}"
        );
        // The same attribute keys as the HTTP/1.1 span of the same answer.
        let h1_twin = if code >= 500 { h1_fail } else { h1 };
        let keys = |s: &Span| {
            let mut k: Vec<&str> = s.attributes.iter().map(|(k, _)| *k).collect();
            k.sort();
            k
        };
        assert_eq!(keys(h2), keys(h1_twin), "HTTP/2 {path} vs HTTP/1.1");
    }
    let silent = span("2", "/silent");
    let (trace, parent, _) = ids::parse_traceparent(TRACEPARENT).unwrap();
    assert_eq!(
        (silent.trace_id, silent.parent_span_id),
        (trace, Some(parent)),
        "HTTP/2 traceparent, found among 15 headers"
    );
    assert_eq!(span("2", "/hello").parent_span_id, None);
    for s in spans.iter().filter(|s| s.kind == SpanKind::Server) {
        assert_eq!(str_attr(s, sc::URL_SCHEME), Some("https"), "{}", s.name);
    }
}

/// One agent, two processes of the same executable: each span comes once, from its own process
/// (pid-filtered probes on the same file, per-process cookie).
#[test]
fn one_agent_two_processes_same_binary() {
    let bin = app(Toolchain::Go126, Variant::default());
    let (a, b) = (App::start(&bin), App::start(&bin));
    let (mut agent, sink) = agent(false);
    agent.trace_process(a.pid(), resource("a")).unwrap();
    agent.trace_process(b.pid(), resource("b")).unwrap();
    assert_eq!(agent.traced().len(), 2);
    assert_eq!(request(a.port, "/hello?from=a", &[]), 200);
    assert_eq!(request(b.port, "/fail", &[]), 503);
    let spans = sink.wait_for(3, |_| true);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let stats = agent.shutdown();
    assert_eq!(
        stats.spans, 2,
        "one span per request, not one per attached process: {spans:#?}"
    );
    let sa = find(&spans, |s| server_path(s) == Some("/hello"), "a");
    let sb = find(&spans, |s| server_path(s) == Some("/fail"), "b");
    assert_eq!(sa.resource.service_name(), "a");
    assert_eq!(sb.resource.service_name(), "b");
    assert_eq!(int_attr(sa, sc::SERVER_PORT), Some(a.port as i64));
    assert_eq!(int_attr(sb, sc::SERVER_PORT), Some(b.port as i64));
}
