//! `gotap build` end to end: weave go/services/weavetest (plain net/http, no OpenTelemetry code)
//! with Go 1.26 and 1.27, run it against the real OpenTelemetry Collector (scripts/collector.sh)
//! and compare the spans with the ones crates/gotap-spans builds for the same requests — the
//! spans the eBPF strategy exports. Also: build cache behaviour, -race, -cover, flag errors.
use gotap_spans::nethttp::{client_span, server_span, ClientRequest, ServerRequest};
use gotap_spans::SpanFrame;
use gotap_spans::{Resource, Span, Value};
use gotap_testkit::collector::{Collector, Seen};
use gotap_testkit::{bin_dir, free_port, gotap_bin, gotap_command, repo_root, Proc, Toolchain};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// Clean woven builds recompile the standard library: one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

fn service_dir() -> PathBuf {
    repo_root().join("go/services/weavetest")
}

fn gotap(tc: Toolchain, dir: &Path, args: &[&str]) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    gotap_command(tc)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// `gotap build [flags] -o <bin> .` of the test service; panics with gotap's stderr on failure.
fn build_service(tc: Toolchain, flags: &[&str], label: &str) -> PathBuf {
    let out = bin_dir().join(format!("weavetest-woven-{}-{label}", tc.label()));
    gotap_testkit::build_once(&out, || {
        let mut args = vec!["build"];
        args.extend_from_slice(flags);
        let o = out.display().to_string();
        args.extend_from_slice(&["-o", &o, "."]);
        let res = gotap(tc, &service_dir(), &args);
        assert!(
            res.status.success(),
            "gotap build {flags:?} with {} failed:\n{}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// Starts a woven service exporting to `col`; returns it with its address once it listens.
fn start_service(bin: &Path, col: &Collector, env: &[(&str, &str)]) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(bin)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "weavetest")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "service said {line:?}");
    (Proc(child), port)
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

/// The reference span (what the eBPF strategy exports) matches the woven one: name, scope,
/// status and every attribute.
fn assert_same(seen: &Seen, want: &Span) {
    assert_eq!(seen.name, want.name, "span name; seen {seen:#?}");
    assert_eq!(seen.scope, want.scope, "scope of {}", seen.name);
    assert_eq!(seen.attrs, strings(want), "attributes of {}", seen.name);
    let error = matches!(want.status, gotap_spans::Status::Error(_));
    assert_eq!(
        seen.status_code == 2,
        error,
        "status of {}: {seen:#?}",
        seen.name
    );
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

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

/// Runs the request scenario against a woven binary and checks every span.
fn check_service(tc: Toolchain, bin: &Path, name: &str, env: &[(&str, &str)]) {
    let col = Collector::start(&format!("gotap-build-test-{name}"));
    let (svc, port) = start_service(bin, &col, env);
    let (status, users_port) = get(port, "/users/42", Some(&format!("00-{TRACE}-{PARENT}-01")));
    assert_eq!(status, 200);
    let (status, fail_port) = get(port, "/fail", None);
    assert_eq!(status, 500);
    let spans = col.wait_spans(4);
    let pid = svc.0.id().to_string();
    drop(svc);

    // Incoming traceparent joined: same trace, parent is the caller's span.
    let users = find(
        &spans,
        |s| s.attrs.get("url.path").map(String::as_str) == Some("/users/42"),
        "/users/42 server",
    );
    assert_eq!(
        (users.kind, users.trace_id.as_str(), users.parent.as_str()),
        (2, TRACE, PARENT)
    );
    let host = format!("127.0.0.1:{port}");
    let want = server_span(
        &ServerRequest {
            method: "GET".into(),
            path: "/users/42".into(),
            pattern: Some("GET /users/{id}".into()),
            host: Some(host.clone()),
            client_address: Some("127.0.0.1".into()),
            client_port: Some(users_port),
            user_agent: Some("gotap-test/1".into()),
            protocol: Some("HTTP/1.1".into()),
            status_code: Some(200),
            tls: false,
            query: None,
        },
        frame(),
        false,
    );
    assert_same(users, &want);

    // Client span from the handler's goroutine: child of the server span; exactly one (the
    // exporter's own uploads are not traced).
    let client = find(&spans, |s| s.kind == 3, "client");
    assert_eq!(
        (client.trace_id.as_str(), client.parent.as_str()),
        (TRACE, users.span_id.as_str())
    );
    let want = client_span(
        &ClientRequest {
            method: "GET".into(),
            url: format!("http://{host}/backend"),
            status_code: Some(200),
            error: None,
        },
        frame(),
    );
    assert_same(client, &want);

    // traceparent injected: the backend's server span is the client span's child.
    let backend = find(
        &spans,
        |s| s.attrs.get("url.path").map(String::as_str) == Some("/backend"),
        "/backend server",
    );
    assert_eq!(
        (backend.trace_id.as_str(), backend.parent.as_str()),
        (TRACE, client.span_id.as_str())
    );
    let backend_port = backend.attrs["client.port"].parse().unwrap();
    let want = server_span(
        &ServerRequest {
            method: "GET".into(),
            path: "/backend".into(),
            pattern: Some("GET /backend".into()),
            host: Some(host.clone()),
            client_address: Some("127.0.0.1".into()),
            client_port: Some(backend_port),
            user_agent: Some("Go-http-client/1.1".into()),
            protocol: Some("HTTP/1.1".into()),
            status_code: Some(200),
            tls: false,
            query: None,
        },
        frame(),
        false,
    );
    assert_same(backend, &want);

    // 5xx: server span in error, new trace (no traceparent sent).
    let fail = find(
        &spans,
        |s| s.attrs.get("url.path").map(String::as_str) == Some("/fail"),
        "/fail server",
    );
    assert!(
        fail.parent.is_empty() && fail.trace_id != TRACE,
        "{fail:#?}"
    );
    let want = server_span(
        &ServerRequest {
            method: "GET".into(),
            path: "/fail".into(),
            pattern: Some("GET /fail".into()),
            host: Some(host),
            client_address: Some("127.0.0.1".into()),
            client_port: Some(fail_port),
            user_agent: Some("gotap-test/1".into()),
            protocol: Some("HTTP/1.1".into()),
            status_code: Some(500),
            tls: false,
            query: None,
        },
        frame(),
        false,
    );
    assert_same(fail, &want);
    assert_eq!(spans.len(), 4, "unexpected extra spans: {spans:#?}");

    let r = &users.resource;
    assert_eq!(r.get("service.name").map(String::as_str), Some("weavetest"));
    assert_eq!(
        r.get("telemetry.distro.name").map(String::as_str),
        Some("gotap")
    );
    assert_eq!(
        r.get("process.runtime.name").map(String::as_str),
        Some("go")
    );
    assert_eq!(r.get("process.runtime.version"), Some(&tc.version()));
    assert_eq!(r.get("process.pid"), Some(&pid));
    assert_eq!(
        r.get("process.executable.path").map(PathBuf::from),
        Some(bin.to_path_buf())
    );
    assert!(r.get("host.name").is_some_and(|h| !h.is_empty()), "{r:?}");
}

fn e2e(tc: Toolchain) {
    let bin = build_service(tc, &[], "default");
    check_service(tc, &bin, tc.label(), &[]);
}

#[test]
fn woven_service_spans_match_ebpf_strategy_go126() {
    e2e(Toolchain::Go126);
}

#[test]
fn woven_service_spans_match_ebpf_strategy_go127() {
    e2e(Toolchain::Go127);
}

#[test]
fn race_build_works() {
    let bin = build_service(Toolchain::Go126, &["-race"], "race");
    check_service(Toolchain::Go126, &bin, "race", &[]);
}

#[test]
fn cover_build_works_and_writes_coverage() {
    let bin = build_service(Toolchain::Go126, &["-cover"], "cover");
    let covdir = std::env::temp_dir().join(format!("gotap-build-cover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&covdir);
    std::fs::create_dir_all(&covdir).unwrap();
    check_service(
        Toolchain::Go126,
        &bin,
        "cover",
        &[("GOCOVERDIR", covdir.to_str().unwrap())],
    );
    // Killed services write no counters, but the meta-data file is written at start-up.
    let files: Vec<_> = std::fs::read_dir(&covdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().starts_with("covmeta.")),
        "no coverage meta-data in {covdir:?}: {files:?}"
    );
}

fn nm(tc: Toolchain, bin: &Path) -> String {
    let out = tc.command().args(["tool", "nm"]).arg(bin).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Compile actions `go build -x` ran through gotap's toolexec.
fn compiles(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(" toolexec ") && l.contains("/compile ") && !l.contains("-V=full"))
        .collect()
}

#[test]
fn build_cache_is_reused_and_never_leaks_woven_objects() {
    let tc = Toolchain::Go126;
    let woven = build_service(tc, &[], "default");
    let symbols = nm(tc, &woven);
    assert!(
        symbols.contains("gotap.dev/gotaprt.serverStart")
            && symbols.contains("net/http.gotapServerStart")
    );

    // Second gotap build: everything from the cache, no compile at all.
    let again = bin_dir().join("weavetest-woven-again");
    let res = gotap(
        tc,
        &service_dir(),
        &["build", "-x", "-o", again.to_str().unwrap(), "."],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        compiles(&stderr).is_empty(),
        "cached gotap build recompiled:\n{}",
        compiles(&stderr).join("\n")
    );

    // Plain go build afterwards: no woven object reused, no gotap code in the binary.
    let plain = bin_dir().join("weavetest-plain-after-woven");
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = tc
        .command()
        .current_dir(service_dir())
        .args(["build", "-o"])
        .arg(&plain)
        .arg(".")
        .output()
        .unwrap();
    drop(_guard);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let symbols = nm(tc, &plain);
    assert!(
        !symbols.contains("gotaprt") && !symbols.contains("gotapServerStart"),
        "plain build got woven code"
    );
}

#[test]
fn changed_rules_rebuild_woven_packages() {
    let tc = Toolchain::Go126;
    build_service(tc, &[], "default");
    // A user rule on the service's own main package changes the plan hash: net/http is compiled
    // again (new cache key) and the new rule's advice is in the binary.
    let dir = std::env::temp_dir().join(format!("gotap-build-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("extra.yaml");
    // A fresh rule each run (the comment is part of the hash), so this never passes from cache.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(
        &rules,
        format!("# run {nonce}\n") + "rules:\n  - name: weavetest-main\n    join: {package: main, function-body: main}\n    advice:\n      declarations: |\n        //go:noinline\n        func gotapTestMarker() {}\n      prepend: |\n        gotapTestMarker()\n",
    )
    .unwrap();
    let out = bin_dir().join("weavetest-woven-extra-rules");
    let res = gotap(
        tc,
        &service_dir(),
        &[
            "build",
            "--rules",
            rules.to_str().unwrap(),
            "-x",
            "-o",
            out.to_str().unwrap(),
            ".",
        ],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        compiles(&stderr).iter().any(|l| l.contains("-p net/http ")),
        "net/http was not recompiled after a rule change"
    );
    assert!(nm(tc, &out).contains("main.gotapTestMarker"));
}

#[test]
fn unsupported_flags_are_named() {
    for (args, needle) in [
        (
            &["build", "-toolexec=x", "."][..],
            "flag -toolexec is not supported",
        ),
        (
            &["build", "-overlay", "o.json", "."][..],
            "flag -overlay is not supported",
        ),
        (
            &["build", "-mod=vendor", "."][..],
            "flag -mod=vendor is not supported",
        ),
    ] {
        let res = gotap(Toolchain::Go126, &service_dir(), args);
        assert_eq!(res.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains(needle) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn go_mod_and_tree_are_untouched() {
    let dir = service_dir();
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let gomod = std::fs::read(dir.join("go.mod")).unwrap();
    build_service(Toolchain::Go126, &[], "default");
    let after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        before.len(),
        after.len(),
        "gotap build left files in the source tree: {after:?}"
    );
    assert_eq!(std::fs::read(dir.join("go.mod")).unwrap(), gomod);
}

#[test]
fn gotap_test_weaves_the_test_binary() {
    let tc = Toolchain::Go126;
    let bin = bin_dir().join("weavetest-woven.test");
    let res = gotap(
        tc,
        &service_dir(),
        &["test", "-c", "-o", bin.to_str().unwrap(), "."],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let symbols = nm(tc, &bin);
    assert!(
        symbols.contains("gotap.dev/gotaprt.serverStart")
            && symbols.contains("net/http.gotapServerStart")
    );
    let res = gotap(tc, &service_dir(), &["test", "-count=1", "."]);
    assert!(
        res.status.success(),
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// A module pinned below what the runtime needs: gotap names the upgrade minimal version
/// selection makes, and the user's files stay as they were.
#[test]
fn mvs_upgrade_is_reported() {
    let dir = std::env::temp_dir().join(format!("gotap-build-mvs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let gomod = "module example.com/mvs\n\ngo 1.25.0\n\nrequire golang.org/x/sys v0.30.0\n";
    std::fs::write(dir.join("go.mod"), gomod).unwrap();
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport \"net/http\"\n\nfunc main() { http.ListenAndServe(\"127.0.0.1:0\", nil) }\n",
    )
    .unwrap();
    // go.sum for the pinned module's go.mod (the sum database is not reachable from the test
    // machine; the module proxy is).
    let dl = Toolchain::Go126
        .command()
        .current_dir(&dir)
        .env("GOSUMDB", "off")
        .args(["mod", "download", "golang.org/x/sys"])
        .output()
        .unwrap();
    assert!(
        dl.status.success(),
        "{}",
        String::from_utf8_lossy(&dl.stderr)
    );
    let sum = std::fs::read(dir.join("go.sum")).unwrap();
    let out = dir.join("app");
    let res = gotap(
        Toolchain::Go126,
        &dir,
        &["build", "-o", out.to_str().unwrap(), "."],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("adding the gotap runtime upgrades golang.org/x/sys from v0.30.0 to v0.47.0"),
        "no MVS warning in:\n{stderr}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("go.mod")).unwrap(), gomod);
    assert_eq!(std::fs::read(dir.join("go.sum")).unwrap(), sum);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An application with its own OTel SDK provider: gotap's server span goes to that provider and
/// the application's span (made from the request context) is its child — one trace, one exporter.
#[test]
fn joins_the_applications_own_tracer_provider() {
    let tc = Toolchain::Go126;
    let dir = service_dir().join("otelapp");
    let bin = bin_dir().join("weavetest-otelapp-woven");
    let res = gotap(tc, &dir, &["build", "-o", bin.to_str().unwrap(), "."]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let col = Collector::start("gotap-build-test-otelapp");
    let (svc, port) = start_service(&bin, &col, &[]);
    let (status, _) = get(port, "/work", Some(&format!("00-{TRACE}-{PARENT}-01")));
    assert_eq!(status, 200);
    let spans = col.wait_spans(2);
    drop(svc);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = find(
        &spans,
        |s| s.scope == "gotap/net/http/server",
        "gotap server",
    );
    let app = find(&spans, |s| s.name == "app-work", "application");
    assert_eq!(server.name, "GET /work");
    assert_eq!(
        (server.trace_id.as_str(), server.parent.as_str()),
        (TRACE, PARENT)
    );
    assert_eq!(
        (app.trace_id.as_str(), app.parent.as_str()),
        (TRACE, server.span_id.as_str())
    );
    for s in [server, app] {
        assert_eq!(
            s.resource.get("service.name").map(String::as_str),
            Some("otelapp-own-sdk"),
            "{s:#?}"
        );
    }
}

/// -trimpath, cgo on and build tags together (one more full rebuild instead of three).
#[test]
fn trimpath_cgo_and_tags_build_works() {
    let tc = Toolchain::Go126;
    let out = bin_dir().join(format!("weavetest-woven-{}-trimpath-cgo", tc.label()));
    let res = {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        Command::new(gotap_bin())
            .current_dir(service_dir())
            .args([
                "build",
                "-trimpath",
                "-tags",
                "gotaptest",
                "-o",
                out.to_str().unwrap(),
                ".",
            ])
            .env("GOTAP_GO", tc.go())
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-modcacherw")
            .env("CGO_ENABLED", "1")
            .output()
            .unwrap()
    };
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // -trimpath reached the woven files too: no absolute source path of this machine in the binary.
    let data = std::fs::read(&out).unwrap();
    let goroot = String::from_utf8(
        tc.command()
            .args(["env", "GOROOT"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for needle in [
        service_dir().display().to_string(),
        format!("{}/src/net/http", goroot.trim()),
    ] {
        assert!(
            !data.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "binary contains {needle}"
        );
    }
    check_service(tc, &out, "trimpath", &[]);
}

/// weavetest's go.mod says go 1.23, older than the runtime needs, so the temporary modfile raises
/// the language version; the program's GODEBUG defaults must stay those of a plain build.
#[test]
fn raised_go_line_keeps_the_programs_godebug_defaults() {
    let tc = Toolchain::Go126;
    let woven = build_service(tc, &[], "default");
    let plain = bin_dir().join(format!("weavetest-plain-{}", tc.label()));
    let st = Command::new(tc.go())
        .current_dir(service_dir())
        .args(["build", "-o", plain.to_str().unwrap(), "."])
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .status()
        .unwrap();
    assert!(st.success());
    let godebug = |bin: &Path| {
        let out = Command::new(tc.go())
            .args(["version", "-m", bin.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find(|l| l.contains("DefaultGODEBUG="))
            .map(|l| l.trim().to_owned())
            .unwrap_or_default()
    };
    let (p, w) = (godebug(&plain), godebug(&woven));
    assert!(
        p.contains("DefaultGODEBUG="),
        "plain build of a go 1.22 module has old GODEBUG defaults: {p:?}"
    );
    assert_eq!(w, p);
}

/// The runtime's OTLP exporter (go/gotaprt/internal/otlp): protobuf fields and bytes, the
/// OTEL_EXPORTER_OTLP_* configuration, retries, gzip and headers (`go test`; the end-to-end tests
/// above read its exports from the real Collector).
#[test]
fn runtime_otlp_exporter_go_tests() {
    let out = Toolchain::Go126
        .command()
        .current_dir(repo_root().join("go/gotaprt"))
        .env("GOFLAGS", "-mod=readonly")
        .env("GOWORK", "off")
        .args(["test", "-count=1", "./internal/otlp"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One strategy per binary: `gotap run` on a woven binary would trace every request twice (its
/// woven spans and the uprobes' ones, unlinked) and its own OTLP export as client spans. gotap
/// refuses, in one line, before the program starts.
#[test]
fn gotap_run_refuses_a_woven_binary() {
    gotap_testkit::require_root();
    let bin = build_service(Toolchain::Go126, &[], "default");
    let out = std::process::Command::new(gotap_testkit::gotap_bin())
        .args(["run", "--no-console", "--"])
        .arg(&bin)
        .args(["-listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "gotap: {}: already instrumented by `gotap build`",
            bin.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "the program never ran");
    // And inspect says so.
    let out = std::process::Command::new(gotap_testkit::gotap_bin())
        .arg("inspect")
        .arg(&bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("built:") && l.contains("woven by gotap build")),
        "{text}"
    );
}

/// `gotap build` of go/services/httpsvc (its `-once URL` mode makes one client call).
fn build_httpsvc(tc: Toolchain) -> PathBuf {
    let out = bin_dir().join(format!("httpsvc-woven-{}", tc.label()));
    gotap_testkit::build_once(&out, || {
        let o = out.display().to_string();
        let res = gotap(
            tc,
            &repo_root().join("go/services"),
            &["build", "-o", &o, "./httpsvc"],
        );
        assert!(
            res.status.success(),
            "gotap build of httpsvc with {} failed:\n{}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// The woven client span's `url.full` of a call to `?apikey=s3cret&x=1`, and the url.query of the
/// (woven) server's span, both with `env` (GOTAP_CAPTURE_QUERY or not).
fn woven_query(bin: &Path, label: &str, env: &[(&str, &str)]) -> (String, Option<String>, String) {
    let col = Collector::start(&format!("gotap-build-query-{label}"));
    let endpoint = format!("http://127.0.0.1:{}", col.http_port);
    let port = free_port();
    let mut target = Command::new(bin);
    target
        .args(["-name", "T", "-listen", &format!("127.0.0.1:{port}")])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "target")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    let _target = Proc(target.spawn().unwrap());
    gotap_testkit::wait_port(port, "the woven httpsvc target");
    let base = format!("http://127.0.0.1:{port}/users/7");
    let once = Command::new(bin)
        .args(["-name", "O", "-once", &format!("{base}?apikey=s3cret&x=1")])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SERVICE_NAME", "once")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let spans = col.wait_spans(2);
    let client = find(&spans, |s| s.kind == 3, "client");
    let server = find(&spans, |s| s.kind == 2, "server");
    (
        client.attrs["url.full"].clone(),
        server.attrs.get("url.query").cloned(),
        base,
    )
}

/// Woven client spans keep a query's keys and redact its values unless GOTAP_CAPTURE_QUERY=1
/// (gotap run's --capture-query), which also records url.query on server spans.
#[test]
fn woven_client_query_values_redacted_unless_captured() {
    let bin = build_httpsvc(Toolchain::Go127);
    let (url, query, base) = woven_query(&bin, "default", &[]);
    assert_eq!(url, format!("{base}?apikey=REDACTED&x=REDACTED"));
    assert_eq!(query, None);
    let (url, query, base) = woven_query(&bin, "captured", &[("GOTAP_CAPTURE_QUERY", "1")]);
    assert_eq!(url, format!("{base}?apikey=s3cret&x=1"));
    assert_eq!(query.as_deref(), Some("apikey=s3cret&x=1"));
}
