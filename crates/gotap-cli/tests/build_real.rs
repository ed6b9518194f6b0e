//! `gotap build` on real software (docs/build.md): modules that already depend on OpenTelemetry
//! at an older release than the gotap runtime's (crates/gotap-cli/tests/go/otelmetric: the SDK's
//! sdk/metric v1.39.0; go/otelhttpapp: contrib's otelhttp v0.64.0), built with Go 1.26, run,
//! their spans read from the real Collector; go.mod and go.sum byte-identical afterwards.
use gotap_testkit::collector::Collector;
use gotap_testkit::{bin_dir, gotap_command, Toolchain};
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
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    gotap_command(Toolchain::Go126)
        .current_dir(dir)
        .args(["build", "-o"])
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Builds module `name` (package `.`), checks its go.mod/go.sum are untouched, runs it against a
/// collector and waits for gotap's server span (`server_span`) and client span; returns the spans.
fn builds_runs_and_exports(name: &str, server_span: &str) -> Vec<gotap_testkit::collector::Seen> {
    let dir = module(name);
    let before = (
        std::fs::read(dir.join("go.mod")).unwrap(),
        std::fs::read(dir.join("go.sum")).unwrap(),
    );
    let out = bin_dir().join(format!("{name}-woven-real"));
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
    runtime_is_a_module_version(&out);
    let col = Collector::start(&format!("gotap-build-real-{name}"));
    let run = Command::new(&out)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_SERVICE_NAME", name)
        .output()
        .unwrap();
    assert!(run.status.success(), "{name} failed: {}", stderr(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "hello");
    let spans = col.wait_for(Duration::from_secs(20), |spans| {
        spans
            .iter()
            .any(|s| s.service == name && s.scope == "gotap/net/http/server")
    });
    let server: Vec<_> = spans
        .iter()
        .filter(|s| s.service == name && s.scope == "gotap/net/http/server")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(server, [server_span], "{name}: spans {spans:?}");
    assert!(
        spans
            .iter()
            .any(|s| s.service == name && s.scope == "gotap/net/http/client"),
        "{name}: no client span in {spans:?}"
    );
    spans
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

/// The same runtime gives the same build info line wherever it is built: the module version and
/// its checksum come from the runtime's content only (a second gotap cache, as on another
/// machine, writes the same proxy files).
#[test]
fn runtime_version_is_the_same_from_another_cache() {
    let dir = module("otelmetric");
    let cache = std::env::temp_dir().join(format!("gotap-real-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let out = bin_dir().join(format!("otelmetric-othercache-{}", std::process::id()));
    let res = {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        gotap_command(Toolchain::Go126)
            .current_dir(&dir)
            .env("GOTAP_CACHE", &cache)
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .output()
            .unwrap()
    };
    assert!(res.status.success(), "{}", stderr(&res));
    runtime_is_a_module_version(&out);
    let rt_line = |bin: &Path| {
        build_info(bin)
            .lines()
            .find(|l| l.contains("gotap.dev/gotaprt"))
            .unwrap()
            .to_owned()
    };
    let usual = bin_dir().join(format!("otelmetric-usualcache-{}", std::process::id()));
    let res = gotap_build(&dir, &usual, &["."]);
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(rt_line(&out), rt_line(&usual));
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&usual);
    let _ = std::fs::remove_dir_all(&cache);
}
