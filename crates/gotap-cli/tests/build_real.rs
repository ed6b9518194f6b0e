//! `gotap build` on real software (docs/build.md, "Modules that already use OpenTelemetry"):
//! modules that already depend on OpenTelemetry, built with Go 1.26, run, their spans read from the
//! real Collector, go.mod and go.sum byte-identical afterwards. Programs in crates/gotap-cli/tests/go:
//! `otelmetric` (the SDK's sdk/metric v1.39.0), `otelhttpapp` (contrib's otelhttp v0.64.0),
//! `oteltrace` (a TracerProvider of the program's own with the OTLP/HTTP trace exporter, otel
//! v1.28.0), `otelv147` (the same program on otel v1.47.0, newer than the runtime's) and
//! `otelgrpcapp` (contrib's otelgrpc v0.65.0 on otel v1.40.0, grpc v1.78.0, the OTLP gRPC trace
//! exporter). And reproducibility: the same module built from two directories with two gotap
//! caches gives byte-identical executables.
use gotap_testkit::collector::{Collector, Seen};
use gotap_testkit::{bin_dir, build_once, gotap_command, Toolchain};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

/// Woven builds recompile the standard library: one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

fn module(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/go")
        .join(name)
}

/// `gotap build -o <out> ARGS` in `dir`, Go 1.26.
fn gotap_build(dir: &Path, out: &Path, args: &[&str]) -> Output {
    gotap_build_with(dir, None, &[], out, args)
}

/// `gotap build GOTAP_FLAGS -o <out> GO_ARGS` in `dir`, Go 1.26, with `GOTAP_CACHE=cache` when
/// given (else the usual cache).
fn gotap_build_with(
    dir: &Path,
    cache: Option<&Path>,
    gotap_flags: &[&str],
    out: &Path,
    go_args: &[&str],
) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = gotap_command(Toolchain::Go126);
    if let Some(cache) = cache {
        c.env("GOTAP_CACHE", cache);
    }
    c.current_dir(dir)
        .arg("build")
        .args(gotap_flags)
        .arg("-o")
        .arg(out)
        .args(go_args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `gotap build -o <bin_dir>/<name>-woven-real .` of module `name`, once per test process; checks that go.mod and go.sum are
/// byte-identical afterwards and that the build info names the runtime as a module version.
/// The module is tidy (`go mod tidy -diff`): what gotap is given is what `go build` builds.
fn woven(name: &str) -> PathBuf {
    let dir = module(name);
    let out = bin_dir().join(format!("{name}-woven-real"));
    build_once(&out, || {
        let tidy = Command::new(Toolchain::Go126.go())
            .current_dir(&dir)
            .env("GOTOOLCHAIN", "local")
            .args(["mod", "tidy", "-diff"])
            .output()
            .unwrap();
        assert!(
            tidy.status.success(),
            "{name} is not tidy:\n{}{}",
            String::from_utf8_lossy(&tidy.stdout),
            stderr(&tidy)
        );
        let before = (
            std::fs::read(dir.join("go.mod")).unwrap(),
            std::fs::read(dir.join("go.sum")).unwrap(),
        );
        let res = gotap_build(&dir, &out, &["."]);
        assert!(
            res.status.success(),
            "gotap build of {name} failed:\n{}",
            stderr(&res)
        );
        assert_eq!(
            (
                std::fs::read(dir.join("go.mod")).unwrap(),
                std::fs::read(dir.join("go.sum")).unwrap()
            ),
            before,
            "gotap build wrote {name}'s go.mod or go.sum"
        );
    });
    runtime_is_a_module_version(&out);
    out
}

/// Which of the Collector's OTLP receivers the program's exporter is given.
#[derive(Clone, Copy)]
enum Otlp {
    Http,
    Grpc,
}

/// The Collector's OTLP gRPC port: the `endpoint` line of the `grpc` receiver in the config
/// scripts/collector.sh wrote into its directory.
fn grpc_port(col: &Collector) -> u16 {
    let cfg = std::fs::read_to_string(col.dir.join("collector.yaml")).unwrap();
    let mut lines = cfg.lines().skip_while(|l| l.trim() != "grpc:");
    lines
        .find_map(|l| l.trim().strip_prefix("endpoint: 127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no gRPC endpoint in the collector config:\n{cfg}"))
}

/// Runs `bin` (service name `name`) against a new Collector, `OTEL_EXPORTER_OTLP_ENDPOINT` naming
/// its `otlp` receiver; checks that the program succeeds and prints `want`; returns the spans of
/// service `name` once `enough` holds for them (or what arrived within 20 s).
fn run_and_collect(
    bin: &Path,
    name: &str,
    otlp: Otlp,
    want: &str,
    enough: impl Fn(&[&Seen]) -> bool,
) -> Vec<Seen> {
    run_and_collect_with(Command::new(bin), name, name, otlp, want, enough)
}

/// run_and_collect with the program started by `cmd` (the program itself, or `gotap run` of it)
/// and a Collector of its own named after `label` (two tests of one program run at once).
fn run_and_collect_with(
    mut cmd: Command,
    label: &str,
    name: &str,
    otlp: Otlp,
    want: &str,
    enough: impl Fn(&[&Seen]) -> bool,
) -> Vec<Seen> {
    let col = Collector::start(&format!("gotap-build-real-{label}"));
    let port = match otlp {
        Otlp::Http => col.http_port,
        Otlp::Grpc => grpc_port(&col),
    };
    let run = cmd
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_SERVICE_NAME", name)
        .output()
        .unwrap();
    assert!(run.status.success(), "{name} failed: {}", stderr(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), want);
    let mine = |spans: &[Seen]| -> Vec<Seen> {
        spans
            .iter()
            .filter(|s| s.service == name)
            .cloned()
            .collect()
    };
    let spans = col.wait_for(Duration::from_secs(20), |spans| {
        enough(
            &spans
                .iter()
                .filter(|s| s.service == name)
                .collect::<Vec<_>>(),
        )
    });
    mine(&spans)
}

/// Builds module `name` (package `.`, go.mod/go.sum untouched), runs it against a collector and
/// waits for gotap's server span (`server_span`) and client span; returns the spans.
fn builds_runs_and_exports(name: &str, server_span: &str) -> Vec<Seen> {
    let out = woven(name);
    let spans = run_and_collect(&out, name, Otlp::Http, "hello", |spans| {
        spans.iter().any(|s| s.scope == "gotap/net/http/server")
    });
    let server: Vec<_> = spans
        .iter()
        .filter(|s| s.scope == "gotap/net/http/server")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(server, [server_span], "{name}: spans {spans:?}");
    assert!(
        spans.iter().any(|s| s.scope == "gotap/net/http/client"),
        "{name}: no client span in {spans:?}"
    );
    spans
}

/// The one span of `scope` named `name` in `spans`.
fn one<'a>(spans: &'a [Seen], scope: &str, name: &str) -> &'a Seen {
    let found: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.scope == scope && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "not one span {name:?} of scope {scope}: {spans:#?}"
    );
    found[0]
}

/// Every span was exported by the program's own provider: its resource (app.provider=`name`),
/// not the one gotap's provider would have given it (telemetry.distro.name=gotap), so gotap never
/// created a provider or exporter of its own.
fn all_from_the_programs_provider(spans: &[Seen], name: &str) {
    for s in spans {
        assert_eq!(
            s.resource.get("app.provider").map(String::as_str),
            Some(name),
            "span {:?} ({}) not from the program's provider: {spans:#?}",
            s.name,
            s.scope
        );
        assert!(
            !s.resource.contains_key("telemetry.distro.name"),
            "span {:?} exported by gotap's own provider: {spans:#?}",
            s.name
        );
    }
}

/// The program installs its own TracerProvider (otel.SetTracerProvider) exporting through
/// otlptracehttp, starts a span "main" around a request to its own server, whose handler starts
/// "work" (crates/gotap-cli/tests/go/oteltrace). gotap's client and server spans go to the
/// program's provider and join its trace: main → gotap's client span → gotap's server span →
/// work, four spans, each once, all with the program's resource.
fn own_provider_spans_join_the_programs_trace(name: &str) {
    let bin = woven(name);
    let spans = run_and_collect(&bin, name, Otlp::Http, "hello", |spans| spans.len() >= 4);
    let scope = format!("example.com/{name}");
    let main = one(&spans, &scope, "main");
    let client = one(&spans, "gotap/net/http/client", "GET");
    let server = one(&spans, "gotap/net/http/server", "GET /hello");
    let work = one(&spans, &scope, "work");
    assert_eq!(spans.len(), 4, "{name}: spans {spans:#?}");
    assert!(main.parent.is_empty(), "{name}: main has a parent");
    for (child, parent) in [(client, main), (server, client), (work, server)] {
        assert_eq!(
            (&child.trace_id, &child.parent),
            (&main.trace_id, &parent.span_id),
            "{name}: {:?} is not a child of {:?}: {spans:#?}",
            child.name,
            parent.name
        );
    }
    all_from_the_programs_provider(&spans, name);
}

/// otel v1.28.0, much older than the runtime's: otel, sdk, trace and metric are raised to the
/// runtime's release while otlptracehttp and otlptrace stay at v1.28.0 (nothing the runtime
/// requires moves them), and the program runs as built by `go build`.
#[test]
fn module_with_its_own_tracer_provider_builds() {
    own_provider_spans_join_the_programs_trace("oteltrace");
}

/// otel v1.47.0, newer than the runtime's: nothing is raised, the runtime is compiled against
/// the module's release.
#[test]
fn module_on_a_newer_otel_than_the_runtime_builds() {
    own_provider_spans_join_the_programs_trace("otelv147");
}

/// contrib's otelgrpc v0.65.0 (otel v1.40.0, grpc v1.78.0, inside the built-in grpc rules'
/// range), the program's own provider exporting through otlptracegrpc
/// (crates/gotap-cli/tests/go/otelgrpcapp): main → gotap's client span (its hook runs at the top
/// of newClientStream) → otelgrpc's client span (its stats handler runs inside) → otelgrpc's
/// server span (its stats handler's TagRPC runs before processUnaryRPC) → work, one trace, each
/// span once, the program's resource. gotap makes no server span of its own there and leaves the
/// RPC's ctx alone: otelgrpc's server span is exported, ended by otelgrpc with its own attributes
/// (`rpc.response.status_code`, none of gotap's), and it is the only server span of the RPC.
#[test]
fn module_with_otelgrpc_and_its_own_provider_builds() {
    let name = "otelgrpcapp";
    let bin = woven(name);
    let method = "grpc.health.v1.Health/Check";
    let otelgrpc = "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc";
    let spans = run_and_collect(&bin, name, Otlp::Grpc, "SERVING", |spans| {
        spans.len() >= 5 && spans.iter().any(|s| s.name == "main")
    });
    let scope = format!("example.com/{name}");
    let main = one(&spans, &scope, "main");
    let gotap_client = one(&spans, "gotap/grpc/client", method);
    let work = one(&spans, &scope, "work");
    let of_kind = |kind: i64| -> Vec<&Seen> {
        spans
            .iter()
            .filter(|s| s.scope == otelgrpc && s.kind == kind)
            .collect()
    };
    let (otel_client, otel_server) = (of_kind(3), of_kind(2));
    assert_eq!(otel_client.len(), 1, "otelgrpc client spans: {spans:#?}");
    assert_eq!(otel_server.len(), 1, "otelgrpc server spans: {spans:#?}");
    let (otel_client, otel_server) = (otel_client[0], otel_server[0]);
    assert_eq!(otel_client.name, method);
    assert_eq!(otel_server.name, method);
    // Ended by otelgrpc itself: its status attribute, its (unset) status, none of gotap's.
    assert_eq!(
        otel_server
            .attrs
            .get("rpc.response.status_code")
            .map(String::as_str),
        Some("OK"),
        "otelgrpc's server span: {otel_server:#?}"
    );
    assert_eq!(otel_server.status_code, 0, "{otel_server:#?}");
    assert!(
        !otel_server.attrs.contains_key("rpc.grpc.status_code"),
        "gotap's attribute on otelgrpc's server span: {otel_server:#?}"
    );
    let servers: Vec<&Seen> = spans.iter().filter(|s| s.kind == 2).collect();
    assert_eq!(
        servers.len(),
        1,
        "server spans of the one RPC: {servers:#?}"
    );
    assert!(main.parent.is_empty(), "main has a parent");
    for (child, parent) in [
        (gotap_client, main),
        (otel_client, gotap_client),
        (otel_server, otel_client),
        (work, otel_server),
    ] {
        assert_eq!(
            (&child.trace_id, &child.parent),
            (&main.trace_id, &parent.span_id),
            "{} ({}) is not a child of {} ({}): {spans:#?}",
            child.name,
            child.scope,
            parent.name,
            parent.scope
        );
    }
    let gotaps: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.scope.starts_with("gotap/"))
        .collect();
    assert_eq!(gotaps.len(), 1, "gotap spans: {gotaps:#?}");
    all_from_the_programs_provider(&spans, name);
}

/// The same program built with `gotap build --probes` and run under the real `gotap run` (probe
/// sites live): the server advice wraps the RPC's ctx only to add gotap's record under its own
/// key, so `trace.SpanFromContext` still finds otelgrpc's server span and otelgrpc ends it. The
/// program's spans reach the Collector intact (otelgrpc's server span with its own
/// `rpc.response.status_code`, main → otelgrpc client → otelgrpc server → work, no gotap span
/// among them) while gotap's own client and server spans go to gotap run's output file, which
/// shows the sites fired.
#[test]
fn module_with_otelgrpc_under_probe_sites_keeps_its_server_span() {
    let name = "otelgrpcapp";
    let dir = module(name);
    let bin = bin_dir().join(format!("{name}-probes-real"));
    build_once(&bin, || {
        let res = gotap_build_with(&dir, None, &["--probes"], &bin, &["."]);
        assert!(
            res.status.success(),
            "gotap build --probes of {name} failed:\n{}",
            stderr(&res)
        );
    });
    let method = "grpc.health.v1.Health/Check";
    let otelgrpc = "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc";
    let file = bin_dir().join(format!("{name}-probes-real.jsonl"));
    let _ = std::fs::remove_file(&file);
    let mut cmd = gotap_command(Toolchain::Go126);
    cmd.args(["run", "--no-console", "--output-file"])
        .arg(&file)
        .arg("--")
        .arg(&bin);
    let label = format!("{name}-probes");
    let spans = run_and_collect_with(cmd, &label, name, Otlp::Grpc, "SERVING", |spans| {
        spans.len() >= 4 && spans.iter().any(|s| s.name == "main")
    });
    let scope = format!("example.com/{name}");
    let main = one(&spans, &scope, "main");
    let work = one(&spans, &scope, "work");
    let of_kind = |kind: i64| -> Vec<&Seen> {
        spans
            .iter()
            .filter(|s| s.scope == otelgrpc && s.kind == kind)
            .collect()
    };
    let (otel_client, otel_server) = (of_kind(3), of_kind(2));
    assert_eq!(otel_client.len(), 1, "otelgrpc client spans: {spans:#?}");
    assert_eq!(otel_server.len(), 1, "otelgrpc server spans: {spans:#?}");
    let (otel_client, otel_server) = (otel_client[0], otel_server[0]);
    assert_eq!(
        otel_server
            .attrs
            .get("rpc.response.status_code")
            .map(String::as_str),
        Some("OK"),
        "otelgrpc's server span: {otel_server:#?}"
    );
    assert!(main.parent.is_empty(), "main has a parent");
    for (child, parent) in [
        (otel_client, main),
        (otel_server, otel_client),
        (work, otel_server),
    ] {
        assert_eq!(
            (&child.trace_id, &child.parent),
            (&main.trace_id, &parent.span_id),
            "{} ({}) is not a child of {} ({}): {spans:#?}",
            child.name,
            child.scope,
            parent.name,
            parent.scope
        );
    }
    assert_eq!(spans.len(), 4, "the program's spans: {spans:#?}");
    all_from_the_programs_provider(&spans, name);
    let gotaps = gotap_testkit::collector::read_spans(&file);
    for kind in [2, 3] {
        assert_eq!(
            gotaps
                .iter()
                .filter(|s| s.kind == kind && s.name == method)
                .count(),
            1,
            "gotap run's spans of kind {kind}: {gotaps:#?}"
        );
    }
}

/// The module requires go.opentelemetry.io/otel/sdk/metric v1.39.0: raising only the runtime's
/// own requirements (otel, sdk, trace, metric) left sdk/metric behind and the go command refused
/// the temporary graph ("updates to go.mod needed").
#[test]
fn module_with_otel_sdk_metric_builds() {
    builds_runs_and_exports("otelmetric", "GET /hello");
}

/// The module uses contrib's otelhttp, built on an older otel. otelhttp wraps the ServeMux, so
/// gotap's server span has no pattern (`GET`); otelhttp's own span (global provider, which is
/// gotap's) is its child in the same trace.
#[test]
fn module_with_otelhttp_builds() {
    let spans = builds_runs_and_exports("otelhttpapp", "GET");
    let server = spans
        .iter()
        .find(|s| s.scope == "gotap/net/http/server")
        .unwrap();
    assert!(
        spans.iter().any(|s| s.scope.ends_with("/otelhttp")
            && s.name == "hello"
            && s.trace_id == server.trace_id
            && s.parent == server.span_id),
        "otelhttp's span is not a child of gotap's: {spans:?}"
    );
}

/// `go version -m` of `bin`.
fn build_info(bin: &Path) -> String {
    let out = Command::new(Toolchain::Go126.go())
        .args(["version", "-m"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A main package of a dependency module, in the module cache (github.com/tklauser/numcpus's
/// cmd/numcpus, a `tool` of crates/gotap-cli/tests/go/depmain): the go command refuses overlay
/// files beneath GOMODCACHE, so gotap builds it from a copy of the module. Both `gotap build` and
/// a plain `go build` with `--print-goflags`'s GOFLAGS link the runtime.
#[test]
fn main_package_of_a_dependency_module_builds() {
    let dir = module("depmain");
    let pkg = "github.com/tklauser/numcpus/cmd/numcpus";
    let before = (
        std::fs::read(dir.join("go.mod")).unwrap(),
        std::fs::read(dir.join("go.sum")).unwrap(),
    );
    let out = bin_dir().join("numcpus-woven-real");
    let res = gotap_build(&dir, &out, &[pkg]);
    assert!(
        res.status.success(),
        "gotap build {pkg} failed:\n{}",
        stderr(&res)
    );
    let run = Command::new(&out).output().unwrap();
    assert!(run.status.success(), "numcpus failed: {}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("online:"));
    let info = build_info(&out);
    assert!(
        info.lines()
            .any(|l| l.trim_start().starts_with("dep\tgotap.dev/gotaprt")),
        "the runtime is not linked:\n{info}"
    );

    let flags = gotap_command(Toolchain::Go126)
        .current_dir(&dir)
        .args(["build", "--print-goflags", pkg])
        .output()
        .unwrap();
    assert!(flags.status.success(), "{}", stderr(&flags));
    let plain_out = bin_dir().join("numcpus-woven-goflags");
    let plain = Command::new(Toolchain::Go126.go())
        .current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .env(
            "GOFLAGS",
            format!(
                "-modcacherw {}",
                String::from_utf8_lossy(&flags.stdout).trim()
            ),
        )
        .args(["build", "-o"])
        .arg(&plain_out)
        .arg(pkg)
        .output()
        .unwrap();
    assert!(
        plain.status.success(),
        "go build with --print-goflags failed:\n{}",
        stderr(&plain)
    );
    assert!(build_info(&plain_out).contains("dep\tgotap.dev/gotaprt"));
    assert_eq!(
        (
            std::fs::read(dir.join("go.mod")).unwrap(),
            std::fs::read(dir.join("go.sum")).unwrap()
        ),
        before,
        "gotap build wrote depmain's go.mod or go.sum"
    );
}

/// Warnings name only what the binary contains, and a rebuild with nothing changed repeats none.
/// crates/gotap-cli/tests/go/nogrpc requires grpc v1.77.0 (outside the built-in grpc rules'
/// range) for a package its main package does not import, and says `go 1.25`: no grpc warning,
/// no warning about modules only grpc's graph holds (testify…), no language-version warning.
/// The runtime's upgrades of modules the binary links (x/sys, otel) are reported, once.
#[test]
fn warnings_name_only_the_binary_and_are_not_repeated() {
    let dir = module("nogrpc");
    // A fresh output path: the warnings already shown are remembered per module and arguments.
    let out = bin_dir().join(format!("nogrpc-woven-{}", std::process::id()));
    let first = gotap_build(&dir, &out, &["."]);
    let first_err = stderr(&first);
    assert!(first.status.success(), "{first_err}");
    let warned: Vec<&str> = first_err
        .lines()
        .filter(|l| l.starts_with("gotap: warning:"))
        .collect();
    for bad in ["grpc", "testify", "language version", "protobuf"] {
        assert!(
            !warned.iter().any(|l| l.contains(bad)),
            "warning about {bad}:\n{first_err}"
        );
    }
    assert!(
        warned
            .iter()
            .any(|l| l.contains("upgrades golang.org/x/sys from v0.37.0 to v0.47.0")),
        "no warning about the x/sys the binary links:\n{first_err}"
    );
    let run = Command::new(&out).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "hello");

    let second = gotap_build(&dir, &out, &["."]);
    let second_err = stderr(&second);
    assert!(second.status.success(), "{second_err}");
    assert!(
        !second_err.contains("gotap: warning:"),
        "the rebuild repeated warnings:\n{second_err}"
    );
    let _ = std::fs::remove_file(&out);
}

/// The build info of a woven binary names the runtime as a module version with its checksum,
/// never a `replace` by a directory of the building machine (gotap's cache).
fn runtime_is_a_module_version(bin: &Path) {
    let info = build_info(bin);
    let lines: Vec<&str> = info.lines().map(str::trim).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("dep\tgotap.dev/gotaprt\t"))
        .unwrap_or_else(|| panic!("no runtime in the build info:\n{info}"));
    let f: Vec<&str> = lines[i].split('\t').collect();
    assert!(
        f.len() == 4 && f[2].starts_with("v0.") && f[2].contains("-rt") && f[3].starts_with("h1:"),
        "runtime not a module version: {}",
        lines[i]
    );
    assert!(
        !lines.get(i + 1).is_some_and(|l| l.starts_with("=>")),
        "runtime replaced: {info}"
    );
    assert!(
        !info.contains("/.cache/"),
        "a cache path in the build info:\n{info}"
    );
}

/// Copies the files of module directory `src` (no subdirectories: the test modules have none)
/// into a new directory `dst`.
fn copy_module(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        assert!(
            e.file_type().unwrap().is_file(),
            "{:?} in the module",
            e.path()
        );
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// A reproducible build: the same module, copied into two directories at different absolute
/// paths and built with `-trimpath` from two different gotap caches (the usual one and a new
/// `GOTAP_CACHE`, as on another machine), gives byte-identical executables, as plain `go build
/// -trimpath` does — woven (`gotap build -trimpath`) and with probe sites (`gotap build --probes
/// -trimpath`). Nothing of gotap's cache (the overlay file, the runtime's module proxy, the
/// extracted rules and fragments) and no directory of the build's reaches the executable. Without
/// `-trimpath` the module's own directory is in the executable, as with `go build`; the same
/// directory built from the two caches still gives identical executables.
#[test]
fn builds_are_reproducible_across_directories_and_caches() {
    let src = module("otelmetric");
    let tmp = std::env::temp_dir().join(format!("gotap-repro-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (a, b) = (
        tmp.join("a/otelmetric"),
        tmp.join("elsewhere/src/otelmetric"),
    );
    copy_module(&src, &a);
    copy_module(&src, &b);
    let cache = tmp.join("gotap-cache");
    let same = |what: &str, x: &Path, y: &Path| {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{what}: {} and {} differ",
            x.display(),
            y.display()
        );
    };

    for (dir, out) in [(&a, tmp.join("plain-a")), (&b, tmp.join("plain-b"))] {
        let plain = Command::new(Toolchain::Go126.go())
            .current_dir(dir)
            .env("GOTOOLCHAIN", "local")
            .args(["build", "-trimpath", "-o"])
            .arg(&out)
            .arg(".")
            .output()
            .unwrap();
        assert!(plain.status.success(), "go build: {}", stderr(&plain));
    }
    same(
        "go build -trimpath",
        &tmp.join("plain-a"),
        &tmp.join("plain-b"),
    );

    for (mode, flags) in [("woven", &[][..]), ("probes", &["--probes"][..])] {
        let (x, y) = (tmp.join(format!("{mode}-a")), tmp.join(format!("{mode}-b")));
        for (dir, cache, out) in [(&a, None, &x), (&b, Some(cache.as_path()), &y)] {
            let res = gotap_build_with(dir, cache, flags, out, &["-trimpath", "."]);
            assert!(
                res.status.success(),
                "gotap build {flags:?} -trimpath in {}: {}",
                dir.display(),
                stderr(&res)
            );
        }
        same(&format!("gotap build {flags:?} -trimpath"), &x, &y);
    }
    runtime_is_a_module_version(&tmp.join("woven-a"));
    assert!(
        build_info(&tmp.join("probes-a"))
            .lines()
            .all(|l| !l.contains("gotap.dev/gotaprt")),
        "the runtime is linked in probe mode"
    );

    // Without -trimpath, from one directory (a copy outside the repository: in it the go command
    // would stamp the repository's current commit, vcs.revision, which moves between two builds).
    let (x, y) = (tmp.join("woven-a-usual"), tmp.join("woven-a-other"));
    for (cache, out) in [(None, &x), (Some(cache.as_path()), &y)] {
        let res = gotap_build_with(&a, cache, &[], out, &["."]);
        assert!(res.status.success(), "{}", stderr(&res));
    }
    same("gotap build from two caches", &x, &y);
    let _ = std::fs::remove_dir_all(&tmp);
}
