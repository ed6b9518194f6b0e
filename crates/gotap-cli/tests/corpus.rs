//! The corpus (docs/corpus.md): real open-source Go services, none written here, fetched through
//! the Go module proxy at the versions that the tool modules of crates/gotap-cli/tests/go/corpus
//! pin, built with Go 1.26 and traced by every strategy:
//!
//! - `run`: the plain `go build` under `gotap run` (function probes);
//! - `woven`: `gotap build` (the woven runtime exports, gotap is not running);
//! - `probes`: `gotap build --probes` under `gotap run` (probe sites).
//!
//! The services: Caddy (HTTPS with its internal CA, HTTP/2 and HTTP/1.1 by ALPN, h2c, `respond`
//! 200/418/503 and a reverse_proxy hop to a second site), grpc-go's helloworld greeter server and
//! client, and Miniflux on a real PostgreSQL (its storage runs `db.QueryRow`/`db.Exec` without
//! the request's context). Every span is read back from the real OpenTelemetry Collector. Each
//! binary is built once per test process (`build_once`), all in the one module and build cache.
mod ebpf_support;

use ebpf_support::{scratch, Proc};
use gotap_testkit::collector::{Collector, Seen};
use gotap_testkit::{
    bin_dir, build_once, free_port, gotap_command, require_root, Postgres, Toolchain,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TC: Toolchain = Toolchain::Go126;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Run,
    Woven,
    Probes,
}

impl Strategy {
    fn label(self) -> &'static str {
        match self {
            Strategy::Run => "run",
            Strategy::Woven => "woven",
            Strategy::Probes => "probes",
        }
    }
}

/// Builds of these services are large: one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

fn module(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/go/corpus")
        .join(name)
}

/// Package `pkg` (a main package of a dependency, named as a `tool` by the corpus module
/// `module_name`) built for `strategy`, once per test process. The module's go.mod and go.sum
/// must come out of the build unchanged: the pinned versions are the versions built.
fn build(module_name: &str, pkg: &str, strategy: Strategy) -> PathBuf {
    let short = pkg.rsplit('/').next().unwrap();
    let out = bin_dir().join(format!(
        "corpus-{short}-{}-{}",
        strategy.label(),
        TC.label()
    ));
    build_once(&out, || {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let dir = module(module_name);
        let before = (
            std::fs::read(dir.join("go.mod")).unwrap(),
            std::fs::read(dir.join("go.sum")).unwrap(),
        );
        let mut cmd = match strategy {
            Strategy::Run => {
                let mut c = TC.command();
                c.arg("build");
                c
            }
            Strategy::Woven => {
                let mut c = gotap_command(TC);
                c.arg("build");
                c
            }
            Strategy::Probes => {
                let mut c = gotap_command(TC);
                c.args(["build", "--probes"]);
                c
            }
        };
        let started = Instant::now();
        let res = cmd
            .current_dir(&dir)
            .env("CGO_ENABLED", "0")
            .arg("-o")
            .arg(&out)
            .arg(pkg)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{} build of {pkg} failed:\n{}",
            strategy.label(),
            String::from_utf8_lossy(&res.stderr)
        );
        // Shown with --nocapture: how long each build of the corpus takes (docs/corpus.md).
        eprintln!(
            "corpus: {} build of {pkg} took {:.0?}",
            strategy.label(),
            started.elapsed()
        );
        assert_eq!(
            (
                std::fs::read(dir.join("go.mod")).unwrap(),
                std::fs::read(dir.join("go.sum")).unwrap()
            ),
            before,
            "the {} build wrote {module_name}'s go.mod or go.sum",
            strategy.label()
        );
    });
    out
}

/// Starts `bin ARGS` with `env`, traced by `strategy`, exporting to `col` as `service`.
fn start(
    strategy: Strategy,
    bin: &Path,
    args: &[String],
    env: &[(&str, String)],
    col: &Collector,
    service: &str,
) -> Proc {
    let endpoint = format!("http://127.0.0.1:{}", col.http_port);
    let what = format!("{service} ({})", strategy.label());
    let mut cmd = match strategy {
        Strategy::Run | Strategy::Probes => {
            let mut c = Command::new(ebpf_support::GOTAP);
            c.args(["run", "--no-console", "--otlp-endpoint", &endpoint])
                .args(["--service-name", service, "--"])
                .arg(bin)
                .args(args);
            c
        }
        Strategy::Woven => {
            let mut c = Command::new(bin);
            c.args(args)
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
                .env("OTEL_BSP_SCHEDULE_DELAY", "100")
                .env("OTEL_SERVICE_NAME", service);
            c
        }
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::spawn(cmd, &what)
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (no HTTP request, so no
/// span). Generous: `gotap run` analyses and attaches to a binary of tens of megabytes (Caddy's)
/// before it starts it, and this machine may be running other builds meanwhile.
fn wait_up(port: u16, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !gotap_testkit::listening(port) {
        assert!(
            proc.alive(),
            "{} exited before listening on {port}; stderr:\n{}",
            proc.what,
            proc.stderr.text()
        );
        assert!(
            Instant::now() < deadline,
            "{} does not listen on {port}; stderr:\n{}",
            proc.what,
            proc.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dump(spans: &[Seen]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "  [{}] {} {:?} kind={} trace={} span={} parent={} status={} {:?}",
                s.service,
                s.scope,
                s.name,
                s.kind,
                s.trace_id,
                s.span_id,
                s.parent,
                s.status_code,
                s.attrs
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn attr<'a>(s: &'a Seen, k: &str) -> &'a str {
    s.attrs.get(k).map(String::as_str).unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Caddy

const CADDY: &str = "github.com/caddyserver/caddy/v2/cmd/caddy";

/// (transport, curl flags, the protocol curl must report, url.scheme, network.protocol.version).
const TRANSPORTS: [(&str, &str, &str, &str, &str); 3] = [
    ("h2", "--http2", "2", "https", "2"),
    ("h1", "--http1.1", "1.1", "https", "1.1"),
    ("h2c", "--http2-prior-knowledge", "2", "http", "2"),
];

/// The front sites' routes (Caddyfile): path and status.
const ROUTES: [(&str, u16); 4] = [
    ("/ok", 200),
    ("/teapot", 418),
    ("/fail", 503),
    ("/proxy", 200),
];

/// One curl request: (status, HTTP version) as curl saw them. A TLS handshake that fails (Caddy
/// may still be issuing its certificate) reaches no handler and makes no span: retried.
fn curl(flags: &[String], url: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
            ])
            .args(["--max-time", "15"])
            .args(flags)
            .arg(url)
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (code, version) = text.split_once(' ').unwrap_or(("000", ""));
        let code: u16 = code.parse().unwrap_or(0);
        if out.status.success() && code != 0 {
            return (code, version.to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "curl {flags:?} {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn caddy(strategy: Strategy) {
    if strategy != Strategy::Woven {
        require_root();
    }
    let label = format!("caddy-{}", strategy.label());
    let bin = build("caddy", CADDY, strategy);
    let dir = scratch(&format!("corpus-{label}"));
    let col = Collector::start(&format!("gotap-corpus-{label}"));
    let (tls, h2c, backend) = (free_port(), free_port(), free_port());
    let data = dir.join("data");
    let env = vec![
        ("CORPUS_TLS_PORT", tls.to_string()),
        ("CORPUS_H2C_PORT", h2c.to_string()),
        ("CORPUS_BACKEND_PORT", backend.to_string()),
        ("XDG_DATA_HOME", data.display().to_string()),
        ("XDG_CONFIG_HOME", dir.join("config").display().to_string()),
        ("HOME", dir.display().to_string()),
    ];
    let caddyfile = module("caddy").join("Caddyfile");
    let args = vec![
        "run".to_string(),
        "--config".into(),
        caddyfile.display().to_string(),
        "--adapter".into(),
        "caddyfile".into(),
    ];
    let mut server = start(strategy, &bin, &args, &env, &col, "caddy");
    for p in [tls, h2c, backend] {
        wait_up(p, &mut server);
    }
    // The internal CA's root: curl verifies the served chain against it (no --insecure).
    let root = data.join("caddy/pki/authorities/local/root.crt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !root.is_file() {
        assert!(
            Instant::now() < deadline,
            "caddy wrote no root certificate at {}; stderr:\n{}",
            root.display(),
            server.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if strategy != Strategy::Woven {
        // gotap run attaches before it starts the target; give the uprobes a moment.
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut answered = Vec::new();
    let mut want_answers = Vec::new();
    for (t, flag, curl_version, scheme, _) in TRANSPORTS {
        for (path, code) in ROUTES {
            let (flags, url) = if scheme == "https" {
                (
                    vec![
                        flag.to_string(),
                        "--cacert".into(),
                        root.display().to_string(),
                        "--resolve".into(),
                        format!("localhost:{tls}:127.0.0.1"),
                    ],
                    format!("https://localhost:{tls}{path}"),
                )
            } else {
                (
                    vec![flag.to_string()],
                    format!("http://127.0.0.1:{h2c}{path}"),
                )
            };
            let (got, version) = curl(&flags, &url);
            answered.push(format!("{t} {path} {got} {version}"));
            want_answers.push(format!("{t} {path} {code} {curl_version}"));
        }
    }
    // What Caddy answered, whatever the strategy: the transports really are h2, h1 and h2c.
    assert_eq!(answered, want_answers, "{label}");

    // 12 front requests and 3 proxied ones: 15 server spans, 3 client spans.
    let spans = col.wait_for(Duration::from_secs(60), |s| {
        s.iter().filter(|s| s.kind == 2).count() >= 15
            && s.iter().filter(|s| s.kind == 3).count() >= 3
    });
    let servers: Vec<&Seen> = spans.iter().filter(|s| s.kind == 2).collect();
    let clients: Vec<&Seen> = spans.iter().filter(|s| s.kind == 3).collect();

    // (url.path, url.scheme, network.protocol.version, http.response.status_code, OTLP status,
    // server.port, whether the span has a parent): the front sites' and the upstream's.
    // reverse_proxy keeps the incoming Host header, so the upstream's server.address/port are
    // the front site's, as the request says.
    type Row = (String, String, String, String, i64, String, bool);
    let mut want: Vec<Row> = Vec::new();
    for (_, _, _, scheme, version) in TRANSPORTS {
        let port = if scheme == "https" { tls } else { h2c };
        for (path, code) in ROUTES {
            let status = if code >= 500 { 2 } else { 0 };
            want.push((
                path.into(),
                scheme.into(),
                version.into(),
                code.to_string(),
                status,
                port.to_string(),
                false,
            ));
        }
        // Caddy's reverse_proxy speaks HTTP/1.1 to the upstream.
        want.push((
            "/proxy".into(),
            "http".into(),
            "1.1".into(),
            "200".into(),
            0,
            port.to_string(),
            true,
        ));
    }
    want.sort();
    let mut got: Vec<Row> = servers
        .iter()
        .map(|s| {
            (
                attr(s, "url.path").to_owned(),
                attr(s, "url.scheme").to_owned(),
                attr(s, "network.protocol.version").to_owned(),
                attr(s, "http.response.status_code").to_owned(),
                s.status_code,
                attr(s, "server.port").to_owned(),
                !s.parent.is_empty(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want, "{label}: server spans\n{}", dump(&spans));
    for s in &servers {
        // Caddy routes with its own handlers, not a ServeMux pattern: no http.route, the name is
        // the method.
        assert_eq!(
            (s.service.as_str(), s.scope.as_str(), s.name.as_str()),
            ("caddy", "gotap/net/http/server", "GET"),
            "{label}: {s:#?}"
        );
        assert_eq!(attr(s, "http.request.method"), "GET", "{label}: {s:#?}");
        assert!(!s.attrs.contains_key("http.route"), "{label}: {s:#?}");
        let code = attr(s, "http.response.status_code");
        assert_eq!(
            s.attrs.get("error.type").map(String::as_str),
            (code == "503").then_some("503"),
            "{label}: error.type of {s:#?}"
        );
        // The Host header: the front site's, also as the upstream sees it.
        let host = if attr(s, "server.port") == tls.to_string() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        assert_eq!(attr(s, "server.address"), host, "{label}: {s:#?}");
        assert!(
            attr(s, "user_agent.original").starts_with("curl/"),
            "{label}: {s:#?}"
        );
    }

    // The proxy hop: each /proxy front span has one client span under it, and the upstream's
    // server span is that client span's child, in the same trace.
    assert_eq!(clients.len(), 3, "{label}: client spans\n{}", dump(&spans));
    let url = format!("http://127.0.0.1:{backend}/proxy");
    for (_, _, _, scheme, version) in TRANSPORTS {
        let port = if scheme == "https" { tls } else { h2c };
        let front = servers
            .iter()
            .find(|s| {
                attr(s, "url.path") == "/proxy"
                    && s.parent.is_empty()
                    && attr(s, "server.port") == port.to_string()
                    && attr(s, "network.protocol.version") == version
            })
            .unwrap();
        let client = clients
            .iter()
            .find(|c| c.parent == front.span_id)
            .unwrap_or_else(|| {
                panic!(
                    "{label}: no client span under the {scheme} {version} /proxy span:\n{}",
                    dump(&spans)
                )
            });
        assert_eq!(client.trace_id, front.trace_id, "{label}");
        assert_eq!(
            (client.scope.as_str(), client.name.as_str()),
            ("gotap/net/http/client", "GET"),
            "{label}: {client:#?}"
        );
        assert_eq!(attr(client, "url.full"), url, "{label}: {client:#?}");
        assert_eq!(attr(client, "http.request.method"), "GET", "{label}");
        assert_eq!(attr(client, "http.response.status_code"), "200", "{label}");
        assert_eq!(attr(client, "server.port"), backend.to_string(), "{label}");
        let upstream: Vec<&&Seen> = servers
            .iter()
            .filter(|s| s.parent == client.span_id)
            .collect();
        assert_eq!(
            upstream.len(),
            1,
            "{label}: upstream span under {client:#?}\n{}",
            dump(&spans)
        );
        assert_eq!(upstream[0].trace_id, front.trace_id, "{label}");
        assert_eq!(
            (
                attr(upstream[0], "url.path"),
                attr(upstream[0], "url.scheme")
            ),
            ("/proxy", "http"),
            "{label}"
        );
    }
    drop(server);
}

#[test]
fn caddy_woven() {
    caddy(Strategy::Woven);
}

#[test]
fn caddy_run() {
    caddy(Strategy::Run);
}

#[test]
fn caddy_probes() {
    caddy(Strategy::Probes);
}

// ---------------------------------------------------------------------------------------------
// grpc-go's helloworld

const GREETER_SERVER: &str = "google.golang.org/grpc/examples/helloworld/greeter_server";
const GREETER_CLIENT: &str = "google.golang.org/grpc/examples/helloworld/greeter_client";

fn greeter(strategy: Strategy) {
    if strategy != Strategy::Woven {
        require_root();
    }
    let label = format!("greeter-{}", strategy.label());
    let server_bin = build("grpc", GREETER_SERVER, strategy);
    let client_bin = build("grpc", GREETER_CLIENT, strategy);
    let col = Collector::start(&format!("gotap-corpus-{label}"));
    let port = free_port();
    let mut server = start(
        strategy,
        &server_bin,
        &["-port".into(), port.to_string()],
        &[],
        &col,
        "greeter-server",
    );
    wait_up(port, &mut server);
    if strategy != Strategy::Woven {
        std::thread::sleep(Duration::from_millis(200));
    }
    let client = start(
        strategy,
        &client_bin,
        &[
            "-addr".into(),
            format!("127.0.0.1:{port}"),
            "-name".into(),
            "corpus".into(),
        ],
        &[],
        &col,
        "greeter-client",
    )
    .wait(Duration::from_secs(90));
    assert_eq!(
        client.code,
        Some(0),
        "{label}: client failed:\n{}",
        client.stderr
    );
    // The example logs its answer (log package: stderr).
    assert!(
        client.stderr.contains("Greeting: Hello corpus"),
        "{label}: client said:\n{}{}",
        client.stdout,
        client.stderr
    );

    let name = "helloworld.Greeter/SayHello";
    let spans = col.wait_for(Duration::from_secs(60), |s| {
        s.iter().any(|s| s.kind == 2 && s.name == name)
            && s.iter().any(|s| s.kind == 3 && s.name == name)
    });
    let one = |kind: i64, service: &str, scope: &str| -> Seen {
        let hits: Vec<&Seen> = spans
            .iter()
            .filter(|s| s.kind == kind && s.service == service && s.scope == scope)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{label}: one {scope} span of {service}:\n{}",
            dump(&spans)
        );
        hits[0].clone()
    };
    let srv = one(2, "greeter-server", "gotap/grpc/server");
    let cli = one(3, "greeter-client", "gotap/grpc/client");
    for s in [&srv, &cli] {
        assert_eq!(s.name, name, "{label}: {s:#?}");
        assert_eq!(attr(s, "rpc.system"), "grpc", "{label}: {s:#?}");
        assert_eq!(
            attr(s, "rpc.service"),
            "helloworld.Greeter",
            "{label}: {s:#?}"
        );
        assert_eq!(attr(s, "rpc.method"), "SayHello", "{label}: {s:#?}");
        assert_eq!(attr(s, "rpc.grpc.status_code"), "0", "{label}: {s:#?}");
        assert_eq!(s.status_code, 0, "{label}: {s:#?}");
    }
    assert_eq!(
        attr(&cli, "server.address"),
        "127.0.0.1",
        "{label}: {cli:#?}"
    );
    assert_eq!(
        attr(&cli, "server.port"),
        port.to_string(),
        "{label}: {cli:#?}"
    );
    assert_eq!(
        attr(&srv, "network.peer.address"),
        "127.0.0.1",
        "{label}: {srv:#?}"
    );
    // The call's context crosses the wire: the server span is the client span's child.
    assert_eq!(
        cli.parent, "",
        "{label}: the client's call is a root: {cli:#?}"
    );
    assert_eq!(
        (srv.trace_id.as_str(), srv.parent.as_str()),
        (cli.trace_id.as_str(), cli.span_id.as_str()),
        "{label}: server span not under the client span\n{}",
        dump(&spans)
    );
    drop(server);
}

#[test]
fn greeter_run() {
    greeter(Strategy::Run);
}

#[test]
fn greeter_woven() {
    greeter(Strategy::Woven);
}

#[test]
fn greeter_probes() {
    greeter(Strategy::Probes);
}

// ---------------------------------------------------------------------------------------------
// Miniflux on PostgreSQL

const MINIFLUX: &str = "miniflux.app/v2";
const ADMIN: (&str, &str) = ("corpus", "corpus-password");

/// GET `path` with basic auth `user:password`: (status, body).
fn get_basic(port: u16, path: &str, user: &str, password: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http1.1",
            "--max-time",
            "15",
            "-w",
            "\n%{http_code}",
        ])
        .arg("-u")
        .arg(format!("{user}:{password}"))
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

/// Miniflux's statements for GET /v1/me with basic auth (internal/api/middleware.go
/// validateBasicAuth, user_handlers.go): each is issued with `db.QueryRow`/`db.Exec`, no context.
const ME_QUERIES: [&str; 2] = [
    "SELECT password FROM users WHERE username=$1",
    "UPDATE users SET last_login_at=now() WHERE id=$1",
];

fn miniflux(strategy: Strategy) {
    if strategy != Strategy::Woven {
        require_root();
    }
    let label = format!("miniflux-{}", strategy.label());
    let bin = build("miniflux", MINIFLUX, strategy);
    let pg = Postgres::start();
    let col = Collector::start(&format!("gotap-corpus-{label}"));
    let port = free_port();
    let env = vec![
        ("DATABASE_URL", pg.dsn.clone()),
        ("RUN_MIGRATIONS", "1".to_string()),
        ("CREATE_ADMIN", "1".to_string()),
        ("ADMIN_USERNAME", ADMIN.0.to_string()),
        ("ADMIN_PASSWORD", ADMIN.1.to_string()),
        ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
        ("LOG_LEVEL", "info".to_string()),
    ];
    let mut server = start(strategy, &bin, &[], &env, &col, "miniflux");
    wait_up(port, &mut server);
    let (code, body) = get_basic(port, "/v1/me", ADMIN.0, ADMIN.1);
    assert_eq!(code, 200, "{label}: /v1/me said {body}");
    assert!(
        body.contains(&format!("\"username\":\"{}\"", ADMIN.0)),
        "{label}: /v1/me said {body}"
    );

    let is_me = |s: &Seen| s.kind == 2 && attr(s, "url.path") == "/v1/me";
    let spans = col.wait_for(Duration::from_secs(60), |s| {
        s.iter().any(is_me)
            && ME_QUERIES
                .iter()
                .all(|q| s.iter().any(|x| attr(x, "db.query.text") == *q))
    });
    let me: Vec<&Seen> = spans.iter().filter(|s| is_me(s)).collect();
    assert_eq!(
        me.len(),
        1,
        "{label}: one /v1/me server span\n{}",
        dump(&spans)
    );
    let me = me[0];
    // Three ServeMuxes route the request (internal/http/server/routes.go: rootMux "/", appMux
    // "/v1/", the API's "GET /v1/me"), and a middleware between the first two hands the others a
    // copy (r.WithContext): the inner patterns land on that copy, the request the server made
    // keeps rootMux's "/", and that is the route the server span reports.
    assert_eq!(
        (me.service.as_str(), me.scope.as_str(), me.name.as_str()),
        ("miniflux", "gotap/net/http/server", "GET /"),
        "{label}: {me:#?}"
    );
    assert_eq!(attr(me, "http.route"), "/", "{label}: {me:#?}");
    assert_eq!(attr(me, "http.request.method"), "GET", "{label}: {me:#?}");
    assert_eq!(
        attr(me, "http.response.status_code"),
        "200",
        "{label}: {me:#?}"
    );
    assert_eq!(attr(me, "url.scheme"), "http", "{label}: {me:#?}");
    assert_eq!(me.status_code, 0, "{label}: {me:#?}");

    // Every database span: PostgreSQL, from the DSN's address, no DSN, no password.
    let (host, db_port, namespace) = dsn_parts(&pg.dsn);
    let sql: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.attrs.contains_key("db.system.name"))
        .collect();
    assert!(
        !sql.is_empty(),
        "{label}: no database span\n{}",
        dump(&spans)
    );
    for s in &sql {
        assert_eq!(s.kind, 3, "{label}: {s:#?}");
        assert_eq!(s.scope, "gotap/database/sql", "{label}: {s:#?}");
        assert_eq!(attr(s, "db.system.name"), "postgresql", "{label}: {s:#?}");
        assert_eq!(attr(s, "server.address"), host, "{label}: {s:#?}");
        assert_eq!(attr(s, "server.port"), db_port, "{label}: {s:#?}");
        assert_eq!(attr(s, "db.namespace"), namespace, "{label}: {s:#?}");
        assert!(
            !s.attrs
                .values()
                .any(|v| v.contains("://") || v.contains(ADMIN.1)),
            "{label}: DSN or password exported: {s:#?}"
        );
    }
    // The request's statements, issued without its context, are children of its server span.
    let mut names = BTreeMap::new();
    for (q, name) in ME_QUERIES.iter().zip(["SELECT users", "UPDATE users"]) {
        let hits: Vec<&&Seen> = sql
            .iter()
            .filter(|s| attr(s, "db.query.text") == *q)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{label}: one span of {q:?}\n{}",
            dump(&spans)
        );
        let s = hits[0];
        assert_eq!(s.name, name, "{label}: {s:#?}");
        assert_eq!(
            attr(s, "db.operation.name"),
            name.split(' ').next().unwrap(),
            "{label}"
        );
        assert_eq!(attr(s, "db.collection.name"), "users", "{label}");
        names.insert(*q, (s.trace_id.clone(), s.parent.clone()));
    }
    for (q, (trace, parent)) in &names {
        assert_eq!(
            (trace.as_str(), parent.as_str()),
            (me.trace_id.as_str(), me.span_id.as_str()),
            "{label}: {q:?} is not a child of the GET /v1/me server span\n{}",
            dump(&spans)
        );
    }
    // Whatever else the request queried (the user, by name and by id) is under it too: at least
    // the two statements above and the two user look-ups.
    let under_me = sql.iter().filter(|s| s.parent == me.span_id).count();
    assert!(
        under_me >= 4,
        "{label}: {under_me} database spans under /v1/me\n{}",
        dump(&spans)
    );
    drop(server);
}

/// (host, port, database) of scripts/postgres.sh's `postgres://postgres@HOST:PORT/DB?…` DSN.
fn dsn_parts(dsn: &str) -> (String, String, String) {
    let rest = dsn
        .strip_prefix("postgres://postgres@")
        .unwrap_or_else(|| panic!("unexpected DSN {dsn}"));
    let (hostport, path) = rest.split_once('/').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    (
        host.to_owned(),
        port.to_owned(),
        path.split('?').next().unwrap().to_owned(),
    )
}

#[test]
fn miniflux_run() {
    miniflux(Strategy::Run);
}

#[test]
fn miniflux_woven() {
    miniflux(Strategy::Woven);
}

#[test]
fn miniflux_probes() {
    miniflux(Strategy::Probes);
}
