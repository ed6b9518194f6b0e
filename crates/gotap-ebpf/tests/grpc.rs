//! instrumentations/grpc against a real program (tests/gogrpc: an HTTP server whose handlers call
//! grpc's health service in the same process), unmodified: attach, drive it over HTTP, assert the
//! gRPC server and client spans (names, attributes, status codes, parents: the same-host link
//! map within one process and between two, incoming traceparent metadata from an untraced
//! caller) and the probe hits they cost.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use gotap_spans::grpc::{RPC_GRPC_STATUS_CODE, RPC_METHOD, RPC_SERVICE, RPC_SYSTEM};
use gotap_spans::{ids, semconv as sc, Span, SpanKind, Status};
use gotap_testkit::{Toolchain, Variant};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CHECK: &str = "grpc.health.v1.Health/Check";
const WATCH: &str = "grpc.health.v1.Health/Watch";
const RELAY: &str = "gotap.test.Relay/Fetch";

/// tests/gogrpc built with `tc` against the grpc of `modfile` (go.mod: v1.77; go.158.mod,
/// go.166.mod, go.185.mod: the layouts and signatures of other version ranges).
fn grpc_app(tc: Toolchain, variant: Variant, modfile: &str) -> PathBuf {
    let flag = format!("-modfile={modfile}");
    let flags: &[&str] = if modfile == "go.mod" { &[] } else { &[&flag] };
    gotap_testkit::build_with(
        "../crates/gotap-ebpf/tests/gogrpc",
        ".",
        tc,
        variant,
        flags,
        &[],
    )
}

struct GrpcApp {
    child: Child,
    http: u16,
    grpc: u16,
}

impl GrpcApp {
    fn start(bin: &Path) -> GrpcApp {
        let http = gotap_testkit::free_port();
        let mut child = Command::new(bin)
            .arg(http.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/gogrpc");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grpc = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("tests/gogrpc did not start: {line:?}"));
        GrpcApp { child, http, grpc }
    }
    /// GET path; the body's first line (the gRPC code the handler saw).
    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
        body.lines().next().unwrap_or_default().to_string()
    }
}

impl Drop for GrpcApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gogrpc call ADDR`: a client in a process of its own, making one unary Check per `check`.
struct Caller {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Caller {
    fn start(bin: &Path, grpc_port: u16) -> Caller {
        let mut child = Command::new(bin)
            .arg("call")
            .arg(format!("127.0.0.1:{grpc_port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/gogrpc call");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "tests/gogrpc call did not start");
        Caller { child, out }
    }
    /// One Check of `service` (with `traceparent` metadata if given); the code it got.
    fn check(&mut self, service: &str, traceparent: Option<&str>) -> String {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{service} {}", traceparent.unwrap_or_default()).unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The client span of `server`'s trace that is its parent: the same-host link's evidence.
fn linked_client<'a>(spans: &'a [Span], server: &Span) -> Option<&'a Span> {
    spans.iter().find(|c| {
        c.kind == SpanKind::Client
            && c.name == server.name
            && c.trace_id == server.trace_id
            && server.parent_span_id == Some(c.span_id)
    })
}

fn is_rpc(s: &Span, kind: SpanKind, name: &str) -> bool {
    s.kind == kind && s.name == name && str_attr(s, RPC_SYSTEM) == Some("grpc")
}

fn find<'a>(spans: &'a [Span], pred: impl Fn(&Span) -> bool, what: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| pred(s))
        .unwrap_or_else(|| panic!("no {what} span in {spans:#?}"))
}

fn the_http_server<'a>(spans: &'a [Span], path: &str) -> &'a Span {
    find(
        spans,
        |s| s.kind == SpanKind::Server && str_attr(s, sc::URL_PATH) == Some(path),
        path,
    )
}

/// The client span of `name` whose parent is `parent`, and the server span whose trace is it.
fn pair<'a>(spans: &'a [Span], name: &str, parent: &Span) -> &'a Span {
    find(
        spans,
        |s| {
            is_rpc(s, SpanKind::Client, name)
                && s.trace_id == parent.trace_id
                && s.parent_span_id == Some(parent.span_id)
        },
        &format!("{name} client under {}", parent.name),
    )
}

fn unary_and_streaming(tc: Toolchain, variant: Variant, modfile: &str) {
    let label = format!("{} {} {modfile}", tc.label(), variant.label());
    let bin = grpc_app(tc, variant, modfile);
    let app = GrpcApp::start(&bin);
    let (mut agent, sink) = agent(true);
    let t = agent
        .trace_process(app.child.id(), resource("gogrpc"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    for i in ["grpc server", "grpc client", "net/http server"] {
        assert!(t.instrumentations.contains(&i), "{label}: {t:?}");
    }
    assert!(
        !t.warnings.iter().any(|w| w.contains("gRPC")),
        "{label}: {:?}",
        t.warnings
    );
    // Probe hits per gRPC span: one HTTP request making 50 unary calls (100 gRPC spans).
    // A gRPC client span costs 3 hits, a server span 3 (2, and 1 for the stream's HEADERS
    // frame); the HTTP server span 2, and 1 more if its entry restarts. Go 1.19's prologue has
    // no emulated instruction after the stack check: an entry probe sits on the check's Jcc and
    // fires again when the call restarts after growing a new goroutine's stack (each stream's
    // handler goroutine). Goroutine-start hits are counted apart.
    let before = agent.stats();
    assert_eq!(app.get("/loop?n=50"), "OK", "{label}");
    let looped = sink.wait_for(100, |s| str_attr(s, RPC_SYSTEM) == Some("grpc"));
    assert_eq!(
        looped
            .iter()
            .filter(|s| str_attr(s, RPC_SYSTEM) == Some("grpc"))
            .count(),
        100,
        "{label}"
    );
    let after = agent.stats();
    let hits =
        after.probe_hits - before.probe_hits - (after.goroutine_hits - before.goroutine_hits);
    let restarts = if tc == Toolchain::Go119 { 50 } else { 0 };
    eprintln!("{label}: {hits} probe hits for 1 HTTP and 100 gRPC spans");
    assert!(
        hits <= 3 + 100 * 3 + restarts,
        "{label}: {hits} probe hits for 1 HTTP and 100 gRPC spans ({before:?} -> {after:?})"
    );
    // Every one of the 50 server spans is the child of its client span (the same-host link;
    // the client sends no traceparent), all in the trace of the /loop request.
    let mut linked = 0;
    for srv in looped.iter().filter(|s| is_rpc(s, SpanKind::Server, CHECK)) {
        let cli = linked_client(&looped, srv)
            .unwrap_or_else(|| panic!("{label}: server span not linked: {srv:#?}"));
        assert!(cli.parent_span_id.is_some(), "{label}");
        linked += 1;
    }
    assert_eq!(linked, 50, "{label}");
    let traces: std::collections::HashSet<_> = looped
        .iter()
        .filter(|s| str_attr(s, RPC_SYSTEM) == Some("grpc"))
        .map(|s| s.trace_id)
        .collect();
    assert_eq!(traces.len(), 1, "{label}");
    sink.wait_for(101, |_| true);
    sink.0.lock().unwrap().clear();

    assert_eq!(app.get("/check?service=catalog"), "OK", "{label}");
    assert_eq!(app.get("/check?service=missing"), "NotFound", "{label}");
    assert_eq!(app.get("/watch"), "Canceled", "{label}");
    assert_eq!(
        app.get(&format!("/remote?tp={TRACEPARENT}")),
        "OK",
        "{label}"
    );
    assert_eq!(app.get("/relay"), "OK", "{label}");
    // 5 HTTP server spans, 1 HTTP client span, 6 gRPC client spans, 6 gRPC server spans.
    let spans = sink.wait_for(18, |s| s.kind != SpanKind::Internal);
    let stats = agent.shutdown();
    assert_eq!(stats.ringbuf_drops, 0, "{label}");
    assert_eq!(stats.ret_without_entry, 0, "{label}");
    let grpc_spans = spans
        .iter()
        .filter(|s| str_attr(s, RPC_SYSTEM) == Some("grpc"))
        .count();
    assert_eq!(grpc_spans, 12, "{label}: {spans:#?}");

    // Unary OK: client span child of the HTTP handler's span; server span the client span's
    // child through the same-host link (the unmodified client sends no traceparent).
    let http_ok = the_http_server(&spans, "/check");
    let ok_client = pair(&spans, CHECK, http_ok);
    for srv in spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && str_attr(s, RPC_SYSTEM).is_some())
    {
        let cli = linked_client(&spans, srv)
            .unwrap_or_else(|| panic!("{label}: server span not linked: {srv:#?}"));
        assert_eq!(str_attr(cli, RPC_SYSTEM), Some("grpc"));
    }
    let ok_server = find(
        &spans,
        |s| is_rpc(s, SpanKind::Server, CHECK) && s.parent_span_id == Some(ok_client.span_id),
        "server span of /check",
    );
    assert_eq!(ok_server.trace_id, http_ok.trace_id, "{label}");
    assert_eq!(int_attr(ok_server, RPC_GRPC_STATUS_CODE), Some(0));
    assert_eq!(
        str_attr(ok_client, RPC_SERVICE),
        Some("grpc.health.v1.Health")
    );
    assert_eq!(str_attr(ok_client, RPC_METHOD), Some("Check"));
    assert_eq!(
        int_attr(ok_client, RPC_GRPC_STATUS_CODE),
        Some(0),
        "{label}"
    );
    assert_eq!(str_attr(ok_client, sc::SERVER_ADDRESS), Some("127.0.0.1"));
    assert_eq!(int_attr(ok_client, sc::SERVER_PORT), Some(app.grpc as i64));
    assert_eq!(ok_client.status, Status::Unset);
    assert!(ok_client.end_unix_nano > ok_client.start_unix_nano);
    assert!(ok_client.start_unix_nano >= http_ok.start_unix_nano);
    assert!(ok_client.end_unix_nano <= http_ok.end_unix_nano);

    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| is_rpc(s, SpanKind::Server, CHECK))
        .collect();
    assert_eq!(servers.len(), 4, "{label}: {servers:#?}");
    for s in &servers {
        assert_eq!(str_attr(s, RPC_SERVICE), Some("grpc.health.v1.Health"));
        assert_eq!(str_attr(s, RPC_METHOD), Some("Check"));
        assert_eq!(
            str_attr(s, sc::NETWORK_PEER_ADDRESS),
            Some("127.0.0.1"),
            "{label}: {s:#?}"
        );
        assert!(int_attr(s, sc::NETWORK_PEER_PORT).is_some_and(|p| p > 0 && p != app.grpc as i64));
    }
    let not_found: Vec<&&Span> = servers
        .iter()
        .filter(|s| int_attr(s, RPC_GRPC_STATUS_CODE) == Some(5))
        .collect();
    assert_eq!(not_found.len(), 1, "{label}: {servers:#?}");
    // NOT_FOUND is not a server error (rpc.rs), but a client one.
    assert_eq!(not_found[0].status, Status::Unset);
    let missing_client = find(
        &spans,
        |s| is_rpc(s, SpanKind::Client, CHECK) && int_attr(s, RPC_GRPC_STATUS_CODE) == Some(5),
        "NOT_FOUND client",
    );
    assert_eq!(
        missing_client.status,
        Status::Error("unknown service".into()),
        "{label}"
    );

    // Server streaming, canceled by the client after the first message.
    let http_watch = the_http_server(&spans, "/watch");
    let watch_client = pair(&spans, WATCH, http_watch);
    assert_eq!(
        int_attr(watch_client, RPC_GRPC_STATUS_CODE),
        Some(1),
        "{label}"
    );
    assert!(matches!(watch_client.status, Status::Error(_)));
    let watch_server = find(
        &spans,
        |s| is_rpc(s, SpanKind::Server, WATCH),
        "Watch server",
    );
    assert_eq!(
        int_attr(watch_server, RPC_GRPC_STATUS_CODE),
        Some(1),
        "{label}: {watch_server:#?}"
    );

    // A traced client on this host that also sends traceparent metadata of its own: the link
    // wins (it names the exact client span), as for net/http; the /remote handler's client
    // span is still the child of its HTTP span.
    let (trace, parent, _) = ids::parse_traceparent(TRACEPARENT).unwrap();
    let http_remote = the_http_server(&spans, "/remote");
    let remote_client = pair(&spans, CHECK, http_remote);
    let remote_server = find(
        &spans,
        |s| is_rpc(s, SpanKind::Server, CHECK) && s.parent_span_id == Some(remote_client.span_id),
        "server span of /remote",
    );
    assert_eq!(remote_server.trace_id, http_remote.trace_id, "{label}");
    assert_ne!(remote_server.trace_id, trace, "{label}");

    // A client span inside a gRPC handler is a child of its server span (goctx).
    let http_relay = the_http_server(&spans, "/relay");
    pair(&spans, RELAY, http_relay);
    let relay_server = find(
        &spans,
        |s| is_rpc(s, SpanKind::Server, RELAY),
        "Relay server",
    );
    assert_eq!(int_attr(relay_server, RPC_GRPC_STATUS_CODE), Some(0));
    let inner = find(
        &spans,
        |s| s.kind == SpanKind::Client && str_attr(s, RPC_SYSTEM).is_none(),
        "HTTP client",
    );
    assert_eq!(inner.trace_id, relay_server.trace_id, "{label}");
    assert_eq!(inner.parent_span_id, Some(relay_server.span_id), "{label}");
    assert_eq!(relay_server.trace_id, http_relay.trace_id, "{label}");

    // From another host: a caller gotap does not trace (a process of its own, standing for a
    // remote client) writes no link; its traceparent metadata is the server span's parent.
    let mut remote = Caller::start(&bin, app.grpc);
    let (mut agent, sink) = self::agent(true);
    agent
        .trace_process(app.child.id(), resource("gogrpc"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(remote.check("catalog", Some(TRACEPARENT)), "OK", "{label}");
    assert_eq!(remote.check("catalog", None), "OK", "{label}");
    let spans = sink.wait_for(2, |s| is_rpc(s, SpanKind::Server, CHECK));
    agent.shutdown();
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| is_rpc(s, SpanKind::Server, CHECK))
        .collect();
    assert_eq!(servers.len(), 2, "{label}: {spans:#?}");
    assert_eq!(servers[0].trace_id, trace, "{label}: {:#?}", servers[0]);
    assert_eq!(servers[0].parent_span_id, Some(parent), "{label}");
    assert_eq!(int_attr(servers[0], RPC_GRPC_STATUS_CODE), Some(0));
    assert_eq!(
        servers[1].parent_span_id, None,
        "{label}: {:#?}",
        servers[1]
    );
    assert_ne!(servers[1].trace_id, trace, "{label}");
}

/// Two processes on one host, both traced by one agent: the server span of a call from the
/// other process is its client span's child through the pinned link map (no traceparent sent).
fn two_processes(tc: Toolchain, variant: Variant, modfile: &str) {
    let label = format!("{} {} {modfile}", tc.label(), variant.label());
    let bin = grpc_app(tc, variant, modfile);
    let app = GrpcApp::start(&bin);
    let mut caller = Caller::start(&bin, app.grpc);
    let (mut agent, sink) = agent(true);
    let ts = agent
        .trace_process(app.child.id(), resource("grpc-server"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let tc_ = agent
        .trace_process(caller.child.id(), resource("grpc-caller"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    for w in ts.warnings.iter().chain(&tc_.warnings) {
        assert!(!w.contains("gRPC"), "{label}: {w}");
    }
    // The first call may dial (the caller's connection is made lazily): measure the others.
    assert_eq!(caller.check("catalog", None), "OK", "{label}");
    sink.wait_for(2, |s| str_attr(s, RPC_SYSTEM) == Some("grpc"));
    let before = agent.stats();
    for _ in 0..9 {
        assert_eq!(caller.check("catalog", None), "OK", "{label}");
    }
    assert_eq!(caller.check("missing", None), "NotFound", "{label}");
    let spans = sink.wait_for(22, |s| str_attr(s, RPC_SYSTEM) == Some("grpc"));
    let stats = agent.shutdown();
    assert_eq!(stats.ringbuf_drops, 0, "{label}");
    // At most 3 hits per gRPC span, on both sides (Go 1.19: +1 per restarted server entry).
    let hits =
        stats.probe_hits - before.probe_hits - (stats.goroutine_hits - before.goroutine_hits);
    let restarts = if tc == Toolchain::Go119 { 10 } else { 0 };
    eprintln!("{label}: {hits} probe hits for 20 gRPC spans in two processes");
    assert!(
        hits <= 20 * 3 + restarts,
        "{label}: {hits} probe hits for 20 gRPC spans"
    );
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| is_rpc(s, SpanKind::Server, CHECK))
        .collect();
    assert_eq!(servers.len(), 11, "{label}: {spans:#?}");
    for srv in &servers {
        assert_eq!(srv.resource.service_name(), "grpc-server", "{label}");
        let cli = linked_client(&spans, srv)
            .unwrap_or_else(|| panic!("{label}: server span not linked: {srv:#?}"));
        assert_eq!(cli.resource.service_name(), "grpc-caller", "{label}");
        assert_eq!(cli.parent_span_id, None, "{label}");
        assert_eq!(
            int_attr(cli, RPC_GRPC_STATUS_CODE),
            int_attr(srv, RPC_GRPC_STATUS_CODE),
            "{label}"
        );
        assert!(cli.start_unix_nano <= srv.start_unix_nano, "{label}");
    }
    // Each client span links to one server span only.
    let mut parents: Vec<_> = servers.iter().map(|s| s.parent_span_id).collect();
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 11, "{label}");
}

/// grpc 1.77 on Go 1.26 (ClientStream embedding its Stream by value).
#[test]
fn grpc_two_processes_go126() {
    two_processes(Toolchain::Go126, Variant::default(), "go.mod");
}

/// grpc 1.58 on Go 1.19 (transport.Stream with ct *http2Client), stripped PIE: offsets from
/// the table.
#[test]
fn grpc_two_processes_go119_stripped_pie_v158() {
    two_processes(Toolchain::Go119, STRIPPED_PIE, "go.158.mod");
}

/// grpc 1.66 (ct a ClientTransport interface) on Go 1.27, PIE.
#[test]
fn grpc_two_processes_go127_pie_v166() {
    two_processes(
        Toolchain::Go127,
        Variant {
            stripped: false,
            pie: true,
        },
        "go.166.mod",
    );
}

const STRIPPED_PIE: Variant = Variant {
    stripped: true,
    pie: true,
};

/// grpc 1.77 (ServerStream embedding its Stream by value, writeStatus, peer.Peer).
#[test]
fn grpc_go126() {
    unary_and_streaming(Toolchain::Go126, Variant::default(), "go.mod");
}

/// grpc 1.58 on Go 1.19: processUnaryRPC(t, stream, …), WriteStatus, remoteAddr, operateHeaders'
/// frame in RBX.
#[test]
fn grpc_go119_v158() {
    unary_and_streaming(Toolchain::Go119, Variant::default(), "go.158.mod");
}

/// grpc 1.66: processUnaryRPC(ctx, t, stream, …) (the stream in R8), transport.Stream.
#[test]
fn grpc_go126_v166() {
    unary_and_streaming(Toolchain::Go126, Variant::default(), "go.166.mod");
}

/// grpc 1.85: processRPC for unary and streaming.
#[test]
fn grpc_go126_v185() {
    unary_and_streaming(Toolchain::Go126, Variant::default(), "go.185.mod");
}

#[test]
fn grpc_go127_pie() {
    unary_and_streaming(
        Toolchain::Go127,
        Variant {
            stripped: false,
            pie: true,
        },
        "go.mod",
    );
}

/// Stripped PIE (no DWARF): every offset from offsets/grpc.json, by the module versions in the
/// build info.
#[test]
fn grpc_go126_stripped_pie() {
    unary_and_streaming(Toolchain::Go126, STRIPPED_PIE, "go.mod");
}

#[test]
fn grpc_go127_stripped_v185() {
    unary_and_streaming(Toolchain::Go127, STRIPPED_PIE, "go.185.mod");
}

#[test]
fn grpc_go119_stripped_pie_v158() {
    unary_and_streaming(Toolchain::Go119, STRIPPED_PIE, "go.158.mod");
}

/// The table's rows agree with the DWARF of real builds, for every field the plan may read and
/// every version range the tests build (with the toolchains they use).
#[test]
fn offsets_table_matches_dwarf() {
    use gotap_binary::modoffsets::{lookup, module_version, ModOffset};
    use gotap_ebpf::libs::grpc::ALL_FIELDS;
    for (tc, modfile) in [
        (Toolchain::Go119, "go.158.mod"),
        (Toolchain::Go126, "go.166.mod"),
        (Toolchain::Go126, "go.mod"),
        (Toolchain::Go127, "go.185.mod"),
    ] {
        let path = grpc_app(tc, Variant::default(), modfile);
        let bin = gotap_binary::GoBinary::open(&path).unwrap();
        let refs: Vec<_> = ALL_FIELDS.iter().map(|f| f.field).collect();
        let dwarf = gotap_binary::dwarf::struct_offsets(bin.data(), &refs).unwrap();
        for f in ALL_FIELDS {
            // genproto's status struct belongs to whichever genproto module is linked.
            let module = if f.module == "google.golang.org/genproto/googleapis/rpc"
                && module_version(&bin, f.module).is_none()
            {
                "google.golang.org/genproto"
            } else {
                f.module
            };
            let version = module_version(&bin, module)
                .unwrap_or_else(|| panic!("{modfile}: no {module} in the build info"));
            let f2 = gotap_binary::modoffsets::ModField { module, ..*f };
            let table = lookup(&f2, &version);
            let want = match dwarf.get(&f.field) {
                Some(Some(o)) => Some(*o),
                Some(None) | None => None,
            };
            match (&table, want) {
                (ModOffset::Found { offset, .. }, Some(o)) => {
                    assert_eq!(
                        *offset,
                        o,
                        "{modfile} {} {version}: {}",
                        tc.label(),
                        f.field
                    )
                }
                (ModOffset::Absent, None) => {}
                other => panic!(
                    "{modfile} {} {module} {version}: {}: {other:?}",
                    tc.label(),
                    f.field
                ),
            }
        }
    }
}
