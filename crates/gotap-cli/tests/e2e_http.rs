//! End to end, eBPF strategy: two httpsvc processes (A calls B) built with each supported Go
//! toolchain and link variant, each started by the real `gotap run`, exporting over OTLP (gRPC or
//! HTTP) to the real OpenTelemetry Collector, whose file output is then checked span by span:
//! names, kinds, semconv attributes, statuses, and one trace across A-server → A-client →
//! B-server, adopting an incoming `traceparent`, including client calls made from goroutines the
//! handler starts. Runs as root (real uprobes).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{free_port, require_root, Toolchain, Variant};

#[derive(Clone, Copy)]
enum Proto {
    Grpc,
    Http,
}

struct Case {
    label: &'static str,
    tc: Toolchain,
    variant: Variant,
    proto: Proto,
    /// Configure export through OTEL_* variables instead of flags.
    by_env: bool,
    /// `--capture-query` on A.
    capture_query: bool,
}

const FULL: Variant = Variant {
    stripped: false,
    pie: false,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn by<'a>(
    spans: &'a [FlatSpan],
    service: &str,
    kind: i64,
    pred: impl Fn(&FlatSpan) -> bool,
) -> Vec<&'a FlatSpan> {
    spans
        .iter()
        .filter(|s| s.service == service && s.kind == kind && pred(s))
        .collect()
}

fn one<'a>(
    spans: &'a [FlatSpan],
    service: &str,
    kind: i64,
    what: &str,
    pred: impl Fn(&FlatSpan) -> bool,
) -> &'a FlatSpan {
    let found = by(spans, service, kind, pred);
    assert_eq!(
        found.len(),
        1,
        "want exactly one {service} span {what}, got {}:\n{}",
        found.len(),
        dump(spans)
    );
    found[0]
}

fn run_case(case: Case) {
    require_root();
    let dir = scratch(case.label);
    let collector = Collector::start(&dir);
    let bin = httpsvc(case.tc, case.variant);
    let (pa, pb) = (free_port(), free_port());
    let (endpoint, proto) = match case.proto {
        Proto::Grpc => (format!("http://127.0.0.1:{}", collector.grpc_port), "grpc"),
        Proto::Http => (
            format!("http://127.0.0.1:{}", collector.http_port),
            "http/protobuf",
        ),
    };
    let start = |svc: &str, args: Vec<String>, capture_query: bool| -> Proc {
        let mut cmd = std::process::Command::new(GOTAP);
        cmd.arg("run").arg("--no-console");
        if case.by_env {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
                .env("OTEL_SERVICE_NAME", svc)
                .env(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=e2e,team=gotap",
                );
        } else {
            cmd.args([
                "--otlp-endpoint",
                &endpoint,
                "--otlp-protocol",
                proto,
                "--service-name",
                svc,
            ]);
        }
        if capture_query {
            cmd.arg("--capture-query");
        }
        cmd.arg("--").arg(&bin).args(args);
        Proc::spawn(cmd, &format!("gotap run {svc}"))
    };

    let mut b = start("svc-b", svc_args(pb, "B", None), false);
    wait_listening(pb, &mut b);
    let mut a = start("svc-a", svc_args(pa, "A", Some(pb)), case.capture_query);
    wait_listening(pa, &mut a);

    // The responses must be what the untraced service answers.
    assert_eq!(
        http(pa, "GET", "/users/42?x=1&y=2", &[]),
        (200, "A user 42 via [200 B user 42]\n".into())
    );
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    assert_eq!(
        http(pa, "GET", "/users/43", &[("traceparent", &tp)]),
        (200, "A user 43 via [200 B user 43]\n".into())
    );
    assert_eq!(
        http(pa, "GET", "/fanout", &[]),
        (200, "A fanout [200 B user 1] [200 B user 2]\n".into())
    );
    assert_eq!(http(pa, "GET", "/fail", &[]).0, 500);
    assert_eq!(http(pa, "GET", "/notfound", &[]).0, 404);

    let a_paths = ["/users/42", "/users/43", "/fanout", "/fail", "/notfound"];
    let b_paths = ["/users/42", "/users/43", "/users/1", "/users/2"];
    let spans = collector.wait_for("every server and client span", |s| {
        a_paths
            .iter()
            .all(|p| by(s, "svc-a", 2, |x| x.str("url.path") == Some(p)).len() == 1)
            && b_paths
                .iter()
                .all(|p| by(s, "svc-b", 2, |x| x.str("url.path") == Some(p)).len() == 1)
            && by(s, "svc-a", 3, |_| true).len() >= 4
    });

    // Go ≥ 1.23 reports the ServeMux pattern (Request.Pattern): spans are named by route.
    let routes = case.tc != Toolchain::Go119;
    let server = |svc: &str, path: &str| {
        one(&spans, svc, 2, &format!("server {path}"), |x| {
            x.str("url.path") == Some(path)
        })
    };
    let client_to = |parent: &FlatSpan, path: &str| {
        let url = format!("http://127.0.0.1:{pb}{path}");
        one(&spans, "svc-a", 3, &format!("client {url}"), |x| {
            x.str("url.full") == Some(url.as_str()) && x.trace_id == parent.trace_id
        })
    };

    // A's server span: every attribute the semantic conventions ask for.
    let s42 = server("svc-a", "/users/42");
    assert_eq!(
        s42.name,
        if routes { "GET /users/{id}" } else { "GET" },
        "{s42:?}"
    );
    assert_eq!(s42.str("http.request.method"), Some("GET"));
    assert_eq!(
        s42.str("http.route"),
        if routes { Some("/users/{id}") } else { None },
        "{s42:?}"
    );
    assert_eq!(s42.int("http.response.status_code"), Some(200));
    assert_eq!(s42.str("server.address"), Some("127.0.0.1"));
    assert_eq!(s42.int("server.port"), Some(pa as i64));
    assert_eq!(s42.str("client.address"), Some("127.0.0.1"));
    assert_eq!(s42.str("user_agent.original"), Some("gotap-e2e/1.0"));
    assert_eq!(s42.str("network.protocol.version"), Some("1.1"));
    assert_eq!(s42.status, 0);
    assert_eq!(
        s42.parent, "",
        "no incoming traceparent: A's server span is a root"
    );
    assert_eq!(s42.trace_id.len(), 32);
    assert_eq!(
        s42.str("url.query"),
        if case.capture_query {
            Some("x=1&y=2")
        } else {
            None
        },
        "url.query only with --capture-query"
    );
    if case.by_env {
        assert_eq!(
            s42.resource
                .get("deployment.environment")
                .and_then(|v| v.as_str()),
            Some("e2e"),
            "{:?}",
            s42.resource
        );
        assert_eq!(
            s42.resource.get("team").and_then(|v| v.as_str()),
            Some("gotap")
        );
    }
    assert_eq!(
        s42.resource.get("process.pid").and_then(|v| v.as_i64()),
        Some(a.pid_of_child() as i64)
    );

    // A-server → A-client → B-server, one trace.
    let c42 = client_to(s42, "/users/42");
    assert_eq!(c42.name, "GET");
    assert_eq!(
        c42.parent, s42.span_id,
        "client span is a child of the handler's server span"
    );
    assert_eq!(c42.int("http.response.status_code"), Some(200));
    assert_eq!(c42.str("server.address"), Some("127.0.0.1"));
    assert_eq!(c42.int("server.port"), Some(pb as i64));
    let b42 = server("svc-b", "/users/42");
    assert_eq!(b42.trace_id, s42.trace_id, "B continues A's trace");
    assert_eq!(
        b42.parent, c42.span_id,
        "B's server span is a child of A's client span"
    );
    assert_eq!(b42.str("user_agent.original"), Some("Go-http-client/1.1"));
    assert_eq!(b42.int("server.port"), Some(pb as i64));

    // An incoming traceparent is adopted, and the chain continues below it.
    let s43 = server("svc-a", "/users/43");
    assert_eq!(
        (s43.trace_id.as_str(), s43.parent.as_str()),
        (TRACE_ID, PARENT_ID)
    );
    let c43 = client_to(s43, "/users/43");
    assert_eq!(c43.parent, s43.span_id);
    let b43 = server("svc-b", "/users/43");
    assert_eq!(
        (b43.trace_id.as_str(), b43.parent.as_str()),
        (TRACE_ID, c43.span_id.as_str())
    );

    // Client calls from goroutines the handler started are still children of its span.
    let fan = server("svc-a", "/fanout");
    assert_eq!(fan.name, if routes { "GET /fanout" } else { "GET" });
    for id in ["1", "2"] {
        let path = format!("/users/{id}");
        let c = client_to(fan, &path);
        assert_eq!(
            c.parent, fan.span_id,
            "goroutine's client call {path} is a child of /fanout"
        );
        let bs = server("svc-b", &path);
        assert_eq!(
            (bs.trace_id.as_str(), bs.parent.as_str()),
            (fan.trace_id.as_str(), c.span_id.as_str())
        );
    }

    // Status: 5xx is an error on the server, 404 is not.
    let fail = server("svc-a", "/fail");
    assert_eq!(
        (fail.int("http.response.status_code"), fail.status),
        (Some(500), 2),
        "{fail:?}"
    );
    assert_eq!(fail.str("error.type"), Some("500"));
    let nf = server("svc-a", "/notfound");
    assert_eq!(
        (nf.int("http.response.status_code"), nf.status),
        (Some(404), 0),
        "{nf:?}"
    );
    assert_eq!(
        server("svc-b", "/users/42")
            .resource
            .get("service.name")
            .and_then(|v| v.as_str()),
        Some("svc-b")
    );

    // gotap forwards SIGINT; Go dies of it: 128+2, spans flushed, summary printed; the services'
    // own stdout is untouched.
    let fa = a.interrupt();
    let fb = b.interrupt();
    for (f, name) in [(&fa, "A"), (&fb, "B")] {
        assert_eq!(f.code, Some(130), "gotap run {name} exit: {f:?}");
        let last = f.stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("gotap: ")
                && last.contains("spans exported")
                && last.contains("probe hits"),
            "{name} summary: {}",
            f.stderr
        );
        assert!(!f.stderr.contains("panicked"), "{}", f.stderr);
    }
    let mut a_out: Vec<&str> = fa.stdout.lines().collect();
    a_out.sort();
    assert_eq!(
        a_out,
        [
            "A GET /fail 500 20",
            "A GET /fanout 200 39",
            "A GET /notfound 404 19",
            "A GET /users/42 200 30",
            "A GET /users/43 200 30"
        ]
    );
    let mut b_out: Vec<&str> = fb.stdout.lines().collect();
    b_out.sort();
    assert_eq!(
        b_out,
        [
            "B GET /users/1 200 9",
            "B GET /users/2 200 9",
            "B GET /users/42 200 10",
            "B GET /users/43 200 10"
        ]
    );
}

#[test]
fn go126_two_gotaps_grpc_capture_query() {
    run_case(Case {
        label: "go126-grpc",
        tc: Toolchain::Go126,
        variant: FULL,
        proto: Proto::Grpc,
        by_env: false,
        capture_query: true,
    });
}

#[test]
fn go127_http_protobuf_configured_by_env() {
    run_case(Case {
        label: "go127-http",
        tc: Toolchain::Go127,
        variant: FULL,
        proto: Proto::Http,
        by_env: true,
        capture_query: false,
    });
}

#[test]
fn go119_grpc() {
    run_case(Case {
        label: "go119-grpc",
        tc: Toolchain::Go119,
        variant: FULL,
        proto: Proto::Grpc,
        by_env: false,
        capture_query: false,
    });
}

#[test]
fn go126_stripped() {
    run_case(Case {
        label: "go126-stripped",
        tc: Toolchain::Go126,
        variant: Variant {
            stripped: true,
            pie: false,
        },
        proto: Proto::Http,
        by_env: false,
        capture_query: false,
    });
}

#[test]
fn go126_pie() {
    run_case(Case {
        label: "go126-pie",
        tc: Toolchain::Go126,
        variant: Variant {
            stripped: false,
            pie: true,
        },
        proto: Proto::Grpc,
        by_env: false,
        capture_query: false,
    });
}

#[test]
fn go127_stripped_pie() {
    run_case(Case {
        label: "go127-stripped-pie",
        tc: Toolchain::Go127,
        variant: Variant {
            stripped: true,
            pie: true,
        },
        proto: Proto::Grpc,
        by_env: false,
        capture_query: false,
    });
}

/// `gotap run` attaches before the program runs any Go code: a program whose very first act is
/// one HTTP call, and which exits right after, is still traced; gotap exits with its code after
/// flushing. Checked for the oldest and newest toolchain, against a B traced by its own gotap.
#[test]
fn run_traces_the_first_call_of_a_short_lived_program() {
    require_root();
    let dir = scratch("first-call");
    for tc in [Toolchain::Go119, Toolchain::Go127] {
        let bin = httpsvc(tc, FULL);
        let pb = free_port();
        let b_file = dir.join(format!("b-{}.jsonl", tc.label()));
        let c_file = dir.join(format!("c-{}.jsonl", tc.label()));
        let flags = |f: &std::path::Path, svc: &str| {
            [
                "--no-console",
                "--output-file",
                f.to_str().unwrap(),
                "--service-name",
                svc,
            ]
            .map(String::from)
            .to_vec()
        };
        let mut b = gotap_run(
            &flags(&b_file, "svc-b"),
            &bin,
            &svc_args(pb, "B", None),
            "gotap run B",
        );
        wait_listening(pb, &mut b);
        let url = format!("http://127.0.0.1:{pb}/users/9");
        let c = gotap_run(
            &flags(&c_file, "svc-c"),
            &bin,
            &["-name".into(), "C".into(), "-once".into(), url.clone()],
            "gotap run C",
        );
        let fc = c.wait(std::time::Duration::from_secs(90));
        assert_eq!(fc.code, Some(0), "{fc:?}");
        assert_eq!(fc.stdout, "C once 200\n");
        assert!(
            fc.stderr
                .lines()
                .last()
                .unwrap()
                .starts_with("gotap: 1 spans exported (file 1), 0 dropped"),
            "{}",
            fc.stderr
        );
        let cs = parse_otlp_json_lines(&std::fs::read_to_string(&c_file).unwrap());
        assert_eq!(cs.len(), 1, "{}", dump(&cs));
        assert_eq!(
            (
                cs[0].kind,
                cs[0].str("url.full"),
                cs[0].int("http.response.status_code")
            ),
            (3, Some(url.as_str()), Some(200))
        );
        assert_eq!(
            cs[0].parent, "",
            "a call outside any request starts a trace"
        );
        let fb = b.interrupt();
        assert_eq!(fb.code, Some(130));
        let bs = parse_otlp_json_lines(&std::fs::read_to_string(&b_file).unwrap());
        assert_eq!(bs.len(), 1, "{}", dump(&bs));
        assert_eq!(
            (bs[0].trace_id.as_str(), bs[0].parent.as_str()),
            (cs[0].trace_id.as_str(), cs[0].span_id.as_str()),
            "B continues C's trace"
        );
    }
}

/// One gotap for both services: `gotap attach --pid A --pid B` (one agent, one pipeline). A's call
/// to B still lands in A's trace, B's server span the child of A's client span.
#[test]
fn one_gotap_attached_to_both_services_links_them() {
    require_root();
    let dir = scratch("attach-both");
    let collector = Collector::start(&dir);
    let bin = httpsvc(Toolchain::Go126, FULL);
    let (pa, pb) = (free_port(), free_port());
    let mut b = plain(&bin, &svc_args(pb, "B", None), "httpsvc B");
    wait_listening(pb, &mut b);
    let mut a = plain(&bin, &svc_args(pa, "A", Some(pb)), "httpsvc A");
    wait_listening(pa, &mut a);

    let endpoint = format!("http://127.0.0.1:{}", collector.grpc_port);
    let mut cmd = std::process::Command::new(GOTAP);
    cmd.args([
        "attach",
        "--no-console",
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        "grpc",
    ])
    .args(["--pid", &a.pid().to_string(), "--pid", &b.pid().to_string()]);
    let mut g = Proc::spawn(cmd, "gotap attach A B");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while g.stderr.text().matches("gotap: tracing ").count() < 2 {
        assert!(g.alive(), "gotap exited: {}", g.stderr.text());
        assert!(
            std::time::Instant::now() < deadline,
            "gotap never attached both: {}",
            g.stderr.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    assert_eq!(
        http(pa, "GET", "/users/7", &[]),
        (200, "A user 7 via [200 B user 7]\n".into())
    );
    let (a_pid, b_pid) = (a.pid() as i64, b.pid() as i64);
    let pid_of = |s: &FlatSpan| s.resource.get("process.pid").and_then(|v| v.as_i64());
    let spans = collector.wait_for("A server, A client, B server", |s| {
        s.iter()
            .filter(|x| x.kind == 2 && x.str("url.path") == Some("/users/7"))
            .count()
            == 2
            && s.iter().any(|x| x.kind == 3)
    });
    let a_server = spans
        .iter()
        .find(|x| x.kind == 2 && pid_of(x) == Some(a_pid))
        .expect("A's server span");
    let b_server = spans
        .iter()
        .find(|x| x.kind == 2 && pid_of(x) == Some(b_pid))
        .expect("B's server span");
    let a_client = spans
        .iter()
        .find(|x| x.kind == 3 && pid_of(x) == Some(a_pid))
        .expect("A's client span");
    assert_eq!(a_client.parent, a_server.span_id, "{}", dump(&spans));
    assert_eq!(b_server.parent, a_client.span_id, "{}", dump(&spans));
    assert!(
        a_server.trace_id == a_client.trace_id && a_client.trace_id == b_server.trace_id,
        "{}",
        dump(&spans)
    );

    // B exits: gotap keeps tracing A; SIGINT then detaches from A, which keeps serving.
    b.signal(libc::SIGKILL);
    let gone = format!("process {b_pid} exited");
    assert!(
        g.stderr
            .text_containing(&gone, std::time::Duration::from_secs(10))
            .contains(&gone),
        "{}",
        g.stderr.text()
    );
    assert!(
        g.alive(),
        "gotap stopped when only one of its targets exited: {}",
        g.stderr.text()
    );
    let f = g.interrupt();
    assert_eq!(f.code, Some(0), "{f:?}");
    assert_eq!(http(pa, "GET", "/healthz", &[]).0, 200);
    assert!(a.alive());
}

/// `httpsvc -selfload` (the closed loop of scripts/bench-probes.sh) under `gotap run`: it reports
/// its requests and CPU per request and exits 0, and every request it made is one server span (its
/// client writes raw bytes: no client span, as with wrk).
#[test]
fn selfload_is_traced_as_one_server_span_per_request() {
    require_root();
    let dir = scratch("selfload");
    let bin = httpsvc(Toolchain::Go126, FULL);
    let file = dir.join("spans.jsonl");
    let out = gotap_run(
        &[
            "--no-console".into(),
            "--output-file".into(),
            file.to_str().unwrap().into(),
        ],
        &bin,
        &[
            "-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "-selfload".into(),
            "300ms".into(),
        ],
        "gotap run selfload",
    )
    .wait(std::time::Duration::from_secs(90));
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("selfload requests="))
        .unwrap_or_else(|| panic!("no selfload result: {}", out.stderr));
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    let requests = field("requests=");
    assert!(requests >= 10 && field("cpu_ns_per_request=") > 0, "{line}");
    let spans = parse_otlp_json_lines(&std::fs::read_to_string(&file).unwrap());
    // The warm-up second's requests are traced too.
    assert!(
        spans.len() as u64 > requests,
        "{requests} requests, {} spans",
        spans.len()
    );
    for s in &spans {
        assert_eq!(
            (
                s.kind,
                s.str("http.route"),
                s.int("http.response.status_code")
            ),
            (2, Some("/users/{id}"), Some(200)),
            "{}",
            dump(std::slice::from_ref(s))
        );
    }
}

/// Client spans keep a query's keys and redact its values (`apikey=REDACTED`) unless
/// `--capture-query`, as server spans leave out `url.query` unless asked.
#[test]
fn client_query_values_redacted_unless_captured() {
    require_root();
    let dir = scratch("client-query");
    let bin = httpsvc(Toolchain::Go127, FULL);
    let (url, base) = once_url_full(&bin, &dir, "default", &[]);
    assert_eq!(url, format!("{base}?apikey=REDACTED&x=REDACTED"));
    let (url, base) = once_url_full(&bin, &dir, "captured", &["--capture-query"]);
    assert_eq!(url, format!("{base}?apikey=s3cret&x=1"));
    let _ = std::fs::remove_dir_all(&dir);
}
