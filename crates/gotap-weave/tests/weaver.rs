//! The weaver on checked-in fixtures: golden rewritten sources for the built-in rules, and the
//! errors a rule that cannot be applied must produce. Set GOTAP_UPDATE_GOLDEN=1 to rewrite the
//! expected files after an intended change (then review the diff).
use gotap_testkit::Toolchain;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn weaver() -> PathBuf {
    let ex = gotap_weave::assets::extract().unwrap();
    gotap_weave::assets::weaver(&ex, &Toolchain::Go126.go(), &Toolchain::Go126.version()).unwrap()
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn apply(
    dir: &Path,
    pkg: &str,
    rules: &[&Path],
    files: &[&str],
    out: &Path,
    extra: &[&str],
) -> Output {
    Command::new(weaver())
        .current_dir(dir)
        .args(["apply", "-go", "go1.26.8", "-pkg", pkg, "-out"])
        .arg(out)
        .args(extra)
        .args(rules)
        .arg("--")
        .args(files)
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gotap-weave-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn net_http_rules_golden() {
    let dir = golden_dir().join("nethttp");
    let rules = gotap_testkit::repo_root().join("instrumentations/nethttp/weave/rules.yaml");
    let out = tempdir("golden");
    let res = apply(
        &dir,
        "net/http",
        &[&rules],
        &["input/server.go", "input/roundtrip.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    for f in ["server.go", "roundtrip.go"] {
        let got = std::fs::read_to_string(out.join(f)).unwrap();
        let want_path = dir.join("expected").join(f);
        if std::env::var_os("GOTAP_UPDATE_GOLDEN").is_some() {
            std::fs::write(&want_path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&want_path).unwrap();
        assert_eq!(got, want, "{f} differs from {}", want_path.display());
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Probe-mode rules: the join points call the fragment's helpers, and the fragment files (Go and
/// assembly) are reported as added to net/http.
#[test]
fn net_http_probe_rules_golden() {
    let dir = golden_dir().join("nethttp");
    let rules = gotap_testkit::repo_root().join("instrumentations/nethttp/weave/probes.yaml");
    let out = tempdir("golden-probes");
    let res = apply(
        &dir,
        "net/http",
        &[&rules],
        &["input/server.go", "input/roundtrip.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    for f in ["server.go", "roundtrip.go"] {
        let got = std::fs::read_to_string(out.join(f)).unwrap();
        let want_path = dir.join("expected_probes").join(f);
        if std::env::var_os("GOTAP_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(want_path.parent().unwrap()).unwrap();
            std::fs::write(&want_path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&want_path).unwrap();
        assert_eq!(got, want, "{f} differs from {}", want_path.display());
    }
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let added: Vec<PathBuf> = json["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect();
    let frag = gotap_testkit::repo_root().join("instrumentations/nethttp/probes");
    assert_eq!(
        added,
        vec![
            frag.join("gotap_probes.go"),
            frag.join("gotap_probes_amd64.s"),
            gotap_testkit::repo_root().join("go/probes/shared/gotap_batch.go"),
            gotap_testkit::repo_root().join("go/probes/shared/gotap_batch_amd64.s"),
            gotap_testkit::repo_root().join("go/probes/shared/gotap_trace.go")
        ]
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The plan hash covers the files rules add: a changed fragment is a new cache key.
#[test]
fn plan_hash_covers_added_files() {
    let dir = tempdir("addfiles");
    std::fs::write(dir.join("frag.go"), "package app\n\nvar A = 1\n").unwrap();
    std::fs::write(dir.join("rules.yaml"), "rules:\n  - name: add\n    join: {package: example.com/app}\n    advice:\n      add-files: [frag.go]\n").unwrap();
    let plan = || {
        let res = Command::new(weaver())
            .args(["plan", "-go", "go1.26.8"])
            .arg(dir.join("rules.yaml"))
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(v["packages"], serde_json::json!(["example.com/app"]));
        v["hash"].as_str().unwrap().to_owned()
    };
    let before = plan();
    std::fs::write(dir.join("frag.go"), "package app\n\nvar A = 2\n").unwrap();
    assert_ne!(before, plan());
    // A missing added file, or one that is neither Go nor assembly, is a rules error.
    std::fs::write(dir.join("rules.yaml"), "rules:\n  - name: add\n    join: {package: example.com/app}\n    advice:\n      add-files: [frag.c]\n").unwrap();
    let res = Command::new(weaver())
        .args(["plan", "-go", "go1.26.8"])
        .arg(dir.join("rules.yaml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success()
            && err.contains("rule \"add\"")
            && err.contains("neither a .go nor a .s file"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Positions after an insertion map back to the original file: a compile error in the woven
/// file must name the user's file and line.
#[test]
fn woven_file_keeps_original_positions() {
    let dir = tempdir("positions");
    std::fs::write(dir.join("go.mod"), "module example.com/app\n\ngo 1.23\n").unwrap();
    std::fs::write(
        dir.join("app.go"),
        "package app\n\nfunc Handle(s string) {\n\tvar unused int\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        "rules:\n  - name: r\n    join: {package: example.com/app, function-body: Handle}\n    advice:\n      prepend: |\n        _ = len({{.Param 0}})\n        _ = 1\n",
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let woven = std::fs::read_to_string(out.join("app.go")).unwrap();
    assert!(woven.contains("_ = len(s)"), "{woven}");
    // Type-check the woven file alone: `unused` is reported at its original line 4.
    let vet = Toolchain::Go126
        .command()
        .current_dir(&out)
        .args(["vet", "app.go"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&vet.stderr);
    assert!(
        stderr.contains("app.go:4:6: declared and not used: unused"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rule_without_join_point_fails_naming_rule_and_function() {
    let dir = golden_dir().join("errors");
    let out = tempdir("missing");
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &[],
    );
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains(
            "rule missing-function: no function (*Client).Gone in package example.com/app"
        ),
        "{err}"
    );
}

#[test]
fn unnamed_parameter_fails_naming_rule_and_position() {
    let dir = golden_dir().join("errors");
    let out = tempdir("unnamed");
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &["-best-effort"],
    );
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("rule unnamed-param: app.go:3:1:"), "{err}");
    assert!(err.contains("parameter 0 is unnamed"), "{err}");
}

#[test]
fn best_effort_turns_a_missing_join_point_into_a_warning() {
    let dir = tempdir("besteffort");
    std::fs::write(
        dir.join("app.go"),
        "package app\n\nfunc Handle(s string) {}\n",
    )
    .unwrap();
    let rules = golden_dir().join("errors/rules.yaml");
    // Only the missing-function rule: copy it alone.
    let text = std::fs::read_to_string(&rules).unwrap();
    let first = text.split("  - name: unnamed-param").next().unwrap();
    std::fs::write(dir.join("rules.yaml"), first).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &["-best-effort"],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let w = json["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("rule missing-function") && w.contains("--best-effort"),
        "{w}"
    );
    // The declarations still go in (the runtime links against them), the advice does not.
    let woven = std::fs::read_to_string(out.join("app.go")).unwrap();
    assert!(
        woven.contains("var gotapMarker int") && !woven.contains("never"),
        "{woven}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_rules_are_rejected_by_plan() {
    let dir = tempdir("invalid");
    std::fs::write(
        dir.join("bad.yaml"),
        "rules:\n  - name: bad\n    join: {package: x, function-body: \"not a func\"}\n    advice: {prepend: \"x()\"}\n",
    )
    .unwrap();
    let res = Command::new(weaver())
        .args(["plan", "-go", "go1.26.8"])
        .arg(dir.join("bad.yaml"))
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("rule \"bad\"") && err.contains("function-body"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The grpc rules on trimmed sources of two grpc versions whose server join points differ
/// (processUnaryRPC + processStreamingRPC until 1.83, processRPC from 1.84: its server.go is
/// 1.85's, so the v1.85 golden serves both): each version gets the rules of its range, and the golden files show the hooks and the metadata helpers.
#[test]
fn grpc_rules_golden_per_version() {
    let rules = gotap_testkit::repo_root().join("instrumentations/grpc/weave/rules.yaml");
    for (dir, version) in [
        ("v1.83", "v1.83.2"),
        ("v1.85", "v1.84.0"),
        ("v1.85", "v1.85.0"),
    ] {
        let dir = golden_dir().join("grpc").join(dir);
        let out = tempdir(&format!("golden-grpc-{version}"));
        let modver = format!("-modver=google.golang.org/grpc={version}");
        let res = apply(
            &dir,
            "google.golang.org/grpc",
            &[&rules],
            &["input/server.go", "input/stream.go"],
            &out,
            &[&modver],
        );
        assert!(
            res.status.success(),
            "weaver failed for {version}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(
            json["skipped"],
            serde_json::json!([]),
            "{version}: a rule applies, nothing to report"
        );
        for f in ["server.go", "stream.go"] {
            let got = std::fs::read_to_string(out.join(f))
                .unwrap_or_else(|e| panic!("{version}: {f} not woven: {e}"));
            let want_path = dir.join("expected").join(f);
            if std::env::var_os("GOTAP_UPDATE_GOLDEN").is_some() {
                std::fs::create_dir_all(want_path.parent().unwrap()).unwrap();
                std::fs::write(&want_path, &got).unwrap();
            }
            let want = std::fs::read_to_string(&want_path).unwrap();
            assert_eq!(
                got,
                want,
                "{version}: {f} differs from {}",
                want_path.display()
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// A grpc outside every range of the grpc rules: nothing is woven, and the weaver reports the
/// module, its version and the rules (gotap build prints it once; see build_grpc.rs).
#[test]
fn grpc_rules_out_of_range_are_not_applied_and_reported() {
    let rules = gotap_testkit::repo_root().join("instrumentations/grpc/weave/rules.yaml");
    let dir = golden_dir().join("grpc/v1.83");
    let out = tempdir("grpc-old");
    let res = apply(
        &dir,
        "google.golang.org/grpc",
        &[&rules],
        &["input/server.go", "input/stream.go"],
        &out,
        &["-modver=google.golang.org/grpc=v1.70.0"],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(json["files"], serde_json::json!({}), "no file may change");
    let skipped = json["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "one report per module: {skipped:?}");
    assert_eq!(skipped[0]["module"], "google.golang.org/grpc");
    assert_eq!(skipped[0]["version"], "v1.70.0");
    let msg = skipped[0]["message"].as_str().unwrap();
    for r in [
        "grpc-server-unary",
        "grpc-server-streaming",
        "grpc-server (>=1.84, <2)",
        "grpc-client",
    ] {
        assert!(msg.contains(r), "{msg} does not name {r}");
    }
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written"
    );
    // Without a version (a directory replacement, or a vendored copy), nothing applies either.
    let res = apply(
        &dir,
        "google.golang.org/grpc",
        &[&rules],
        &["input/server.go", "input/stream.go"],
        &out,
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(json["files"], serde_json::json!({}));
    assert!(
        json["skipped"][0]["message"]
            .as_str()
            .unwrap()
            .contains("the version of module google.golang.org/grpc is unknown"),
        "{json}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// `weaver plan` with the module versions of the build: a package whose rules all miss the
/// version is not woven at all (toolexec leaves its compile alone), and the report names it.
#[test]
fn plan_drops_packages_of_out_of_range_modules() {
    let rules = gotap_testkit::repo_root().join("instrumentations/grpc/weave/rules.yaml");
    let plan = |extra: &[&str]| -> serde_json::Value {
        let res = Command::new(weaver())
            .args(["plan", "-go", "go1.26.8"])
            .args(extra)
            .arg(&rules)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        serde_json::from_slice(&res.stdout).unwrap()
    };
    // Versions not resolved yet: the package is a candidate, the module is to be looked up.
    let v = plan(&[]);
    assert_eq!(v["packages"], serde_json::json!(["google.golang.org/grpc"]));
    assert_eq!(v["modules"], serde_json::json!(["google.golang.org/grpc"]));
    let v = plan(&[
        "-modules-resolved",
        "-modver=google.golang.org/grpc=v1.83.2",
    ]);
    assert_eq!(v["packages"], serde_json::json!(["google.golang.org/grpc"]));
    assert_eq!(
        v["skipped"],
        serde_json::json!([]),
        "grpc-server (>=1.84) is an alternative, not a loss"
    );
    let v = plan(&["-modules-resolved", "-modver=google.golang.org/grpc=v2.0.0"]);
    assert_eq!(v["packages"], serde_json::json!([]));
    assert_eq!(v["skipped"][0]["version"], "v2.0.0");
    // grpc not in the build at all: nothing to weave, nothing to say.
    let v = plan(&["-modules-resolved"]);
    assert_eq!(v["packages"], serde_json::json!([]));
    assert_eq!(v["skipped"], serde_json::json!([]));
}

#[test]
fn version_range_needs_a_module_that_provides_the_package() {
    let dir = tempdir("badrange");
    let write = |join: &str| {
        std::fs::write(dir.join("r.yaml"), format!("rules:\n  - name: r\n    join: {{package: example.com/m/p, {join}}}\n    advice: {{declarations: \"var X int\"}}\n")).unwrap();
        let res = Command::new(weaver())
            .args(["plan", "-go", "go1.26.8"])
            .arg(dir.join("r.yaml"))
            .output()
            .unwrap();
        (
            res.status.success(),
            String::from_utf8_lossy(&res.stderr).into_owned(),
        )
    };
    let (ok, err) = write("version: \">=1.0\"");
    assert!(
        !ok && err.contains("join.version needs join.module"),
        "{err}"
    );
    let (ok, err) = write("module: example.com/other, version: \">=1.0\"");
    assert!(
        !ok && err.contains("does not provide package example.com/m/p"),
        "{err}"
    );
    let (ok, err) = write("module: example.com/m, version: \"~1.0\"");
    assert!(
        !ok && err.contains("join.version") && err.contains("~1.0"),
        "{err}"
    );
    let (ok, err) = write("module: example.com/m, version: \">=1.0, <2\"");
    assert!(ok, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Compares a woven file with its golden copy (rewritten under GOTAP_UPDATE_GOLDEN=1).
fn assert_golden(got_path: &Path, want_path: &Path) {
    let got = std::fs::read_to_string(got_path)
        .unwrap_or_else(|e| panic!("{} not woven: {e}", got_path.display()));
    if std::env::var_os("GOTAP_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(want_path.parent().unwrap()).unwrap();
        std::fs::write(want_path, &got).unwrap();
    }
    let want = std::fs::read_to_string(want_path).unwrap();
    assert_eq!(
        got,
        want,
        "{} differs from {}",
        got_path.display(),
        want_path.display()
    );
}

/// The importcfg a compile step of a package importing `imports` gets (export data from
/// `go list -export`), for the weaver's type-checked call-site resolution.
fn importcfg(dir: &Path, imports: &[&str]) -> PathBuf {
    let m = dir.join("mod");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("go.mod"),
        "module example.com/importcfg\n\ngo 1.23\n",
    )
    .unwrap();
    let res = Toolchain::Go126
        .command()
        .current_dir(&m)
        .args([
            "list",
            "-export",
            "-deps",
            "-f",
            "{{if .Export}}packagefile {{.ImportPath}}={{.Export}}{{end}}",
        ])
        .args(imports)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "go list -export: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let p = dir.join("importcfg");
    std::fs::write(&p, res.stdout).unwrap();
    p
}

/// Call-site join points without type information (as `gotap toolexec` runs the weaver today):
/// package-level functions of an import (`strconv.Atoi`) and of the package itself (`trim`)
/// are wrapped, nested calls nest, a local variable named like the import is left alone.
#[test]
fn call_site_wrap_golden() {
    let dir = golden_dir().join("callsite");
    let out = tempdir("callsite");
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["input/app.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_golden(&out.join("app.go"), &dir.join("expected/app.go"));
    // The woven file type-checks (multi-value results pass through the wrappers).
    std::fs::write(out.join("go.mod"), "module example.com/app\n\ngo 1.23\n").unwrap();
    let vet = Toolchain::Go126
        .command()
        .current_dir(&out)
        .args(["vet", "."])
        .output()
        .unwrap();
    assert!(
        vet.status.success(),
        "{}",
        String::from_utf8_lossy(&vet.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// With the compile step's importcfg the weaver type-checks the package: method calls
/// (`(*database/sql.DB).QueryContext` through a field, under an import alias) resolve, and
/// `{{.Results}}` is the call's result types as the file names them.
#[test]
fn call_site_wrap_typed_golden() {
    let dir = golden_dir().join("callsite");
    let out = tempdir("callsite-typed");
    let cfg = importcfg(&out, &["context", "database/sql", "strconv"]);
    let woven = out.join("woven");
    std::fs::create_dir_all(&woven).unwrap();
    let flag = format!("-importcfg={}", cfg.display());
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml"), Path::new("rules_typed.yaml")],
        &["input/app.go"],
        &woven,
        &[&flag],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_golden(&woven.join("app.go"), &dir.join("expected_typed/app.go"));
    std::fs::write(woven.join("go.mod"), "module example.com/app\n\ngo 1.23\n").unwrap();
    let vet = Toolchain::Go126
        .command()
        .current_dir(&woven)
        .args(["vet", "."])
        .output()
        .unwrap();
    assert!(
        vet.status.success(),
        "{}",
        String::from_utf8_lossy(&vet.stderr)
    );
    // Without type information the method rule matches nothing: an error that says why.
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules_typed.yaml")],
        &["input/app.go"],
        &woven,
        &[],
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{err}");
    assert!(err.contains("rule query: no call to (*database/sql.DB).QueryContext in package example.com/app (files: input/app.go)"), "{err}");
    assert!(
        err.contains("1 call(s) of something named QueryContext were not resolved"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Struct-definition join points: fields appended before the closing brace (one-line, empty
/// and generic structs), positions after them restored.
#[test]
fn struct_add_fields_golden() {
    let dir = golden_dir().join("structfield");
    let out = tempdir("structfield");
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["input/types.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_golden(&out.join("types.go"), &dir.join("expected/types.go"));
    std::fs::write(out.join("go.mod"), "module example.com/app\n\ngo 1.23\n").unwrap();
    let vet = Toolchain::Go126
        .command()
        .current_dir(&out)
        .args(["vet", "."])
        .output()
        .unwrap();
    assert!(
        vet.status.success(),
        "{}",
        String::from_utf8_lossy(&vet.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Join points the new advice cannot weave: each an error naming the rule and the position,
/// a warning with -best-effort (and the code left as written).
#[test]
fn call_site_and_struct_rules_that_cannot_apply() {
    let dir = tempdir("cannot");
    std::fs::write(
        dir.join("app.go"),
        "package app\n\nimport \"strconv\"\n\ntype T int\n\ntype S struct{ A, B int }\n\nvar s = S{1, 2}\n\nfunc F() {\n\tdefer strconv.Itoa(1)\n}\n",
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cases = [
        ("join: {package: example.com/app, function-call: strconv.Itoa}\n    advice: {wrap-call: \"{{.Call}}\"}", "rule r: app.go:12:8: the call to strconv.Itoa is the operand of a go or defer statement"),
        ("join: {package: example.com/app, struct-definition: T}\n    advice: {add-fields: [{name: x, type: int}]}", "rule r: app.go:5:6: type T is not a struct type declared in package example.com/app"),
        ("join: {package: example.com/app, struct-definition: S}\n    advice: {add-fields: [{name: x, type: int}]}", "rule r: app.go:9:9: a S literal without field names would lack the added fields"),
        ("join: {package: example.com/app, struct-definition: Gone}\n    advice: {add-fields: [{name: x, type: int}]}", "rule r: no type Gone in package example.com/app (files: app.go)"),
        ("join: {package: example.com/app, function-call: strconv.Quote}\n    advice: {wrap-call: \"{{.Call}}\"}", "rule r: no call to strconv.Quote in package example.com/app (files: app.go)"),
    ];
    for (rule, want) in cases {
        std::fs::write(
            dir.join("rules.yaml"),
            format!("rules:\n  - name: r\n    {rule}\n"),
        )
        .unwrap();
        let res = apply(
            &dir,
            "example.com/app",
            &[Path::new("rules.yaml")],
            &["app.go"],
            &out,
            &[],
        );
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success() && err.contains(want), "{rule}: {err}");
        let res = apply(
            &dir,
            "example.com/app",
            &[Path::new("rules.yaml")],
            &["app.go"],
            &out,
            &["-best-effort"],
        );
        assert!(
            res.status.success(),
            "{rule}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        let w = json["warnings"][0].as_str().unwrap_or_default();
        assert!(
            w.contains(want) && w.contains("(--best-effort)"),
            "{rule}: {json}"
        );
        assert_eq!(
            json["files"],
            serde_json::json!({}),
            "{rule}: nothing woven"
        );
    }
    // An added field the struct already has is an error even with -best-effort (the rule is wrong).
    std::fs::write(dir.join("rules.yaml"), "rules:\n  - name: r\n    join: {package: example.com/app, struct-definition: S}\n    advice: {add-fields: [{name: A, type: int}]}\n").unwrap();
    std::fs::write(
        dir.join("app.go"),
        "package app\n\ntype S struct{ A, B int }\n",
    )
    .unwrap();
    let res = apply(
        &dir,
        "example.com/app",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &["-best-effort"],
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success() && err.contains("rule r: app.go:3:8: struct S already has a field A"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_call_site_and_struct_rules_are_rejected_by_plan() {
    let dir = tempdir("invalid-new");
    let cases = [
        ("join: {package: p, function-call: \"net/http.\"}\n    advice: {wrap-call: \"{{.Call}}\"}", "join.function-call \"net/http.\" is not"),
        ("join: {package: p, function-call: net/http.Get}\n    advice: {wrap-call: \"f()\"}", "{{.Call}} must appear exactly once"),
        ("join: {package: p, function-call: net/http.Get}\n    advice: {wrap-call: \"f({{.Call}}, {{.Call}})\"}", "{{.Call}} must appear exactly once"),
        ("join: {package: p, function-call: net/http.Get}\n    advice: {wrap-call: \"x := {{.Call}}\"}", "advice.wrap-call does not parse as a Go expression"),
        ("join: {package: p, function-call: net/http.Get}\n    advice: {prepend: \"x()\"}", "advice.prepend needs join.function-body"),
        ("join: {package: p, function-body: F, function-call: net/http.Get}\n    advice: {wrap-call: \"{{.Call}}\"}", "exclude each other"),
        ("join: {package: p, struct-definition: T}\n    advice: {add-fields: [{name: \"a b\", type: int}]}", "is not a field name"),
        ("join: {package: p, struct-definition: T}\n    advice: {add-fields: [{name: a, type: \"int)\"}]}", "field a int) does not parse as Go"),
        ("join: {package: p, struct-definition: T}\n    advice: {declarations: \"var X int\"}", "advice.add-fields and join.struct-definition go together"),
    ];
    for (rule, want) in cases {
        std::fs::write(
            dir.join("bad.yaml"),
            format!("rules:\n  - name: bad\n    {rule}\n"),
        )
        .unwrap();
        let res = Command::new(weaver())
            .args(["plan", "-go", "go1.26.8"])
            .arg(dir.join("bad.yaml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            !res.status.success() && err.contains("rule \"bad\"") && err.contains(want),
            "{rule}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Call-site and struct rules are scoped by module version like function-body rules: the
/// module is the one providing the package whose code is rewritten (the caller).
#[test]
fn call_site_and_struct_rules_follow_module_version_ranges() {
    let dir = tempdir("callsite-version");
    std::fs::write(
        dir.join("app.go"),
        "package p\n\nimport \"strconv\"\n\ntype S struct{}\n\nvar N, _ = strconv.Atoi(\"1\")\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        "rules:\n  - name: wrap\n    join: {package: example.com/m/p, module: example.com/m, version: \">=1.2\", function-call: strconv.Atoi}\n    advice: {wrap-call: \"gotapW({{.Call}})\"}\n  - name: field\n    join: {package: example.com/m/p, module: example.com/m, version: \">=1.2\", struct-definition: S}\n    advice: {add-fields: [{name: x, type: int}]}\n",
    )
    .unwrap();
    let res = Command::new(weaver())
        .args(["plan", "-go", "go1.26.8"])
        .arg(dir.join("rules.yaml"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(v["packages"], serde_json::json!(["example.com/m/p"]));
    assert_eq!(v["modules"], serde_json::json!(["example.com/m"]));
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let res = apply(
        &dir,
        "example.com/m/p",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &["-modver=example.com/m=v1.1.0"],
    );
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(
        json["files"],
        serde_json::json!({}),
        "out of range: nothing woven"
    );
    let msg = json["skipped"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("wrap") && msg.contains("field") && msg.contains("v1.1.0"),
        "{msg}"
    );
    let res = apply(
        &dir,
        "example.com/m/p",
        &[Path::new("rules.yaml")],
        &["app.go"],
        &out,
        &["-modver=example.com/m=v1.2.0"],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let woven = std::fs::read_to_string(out.join("app.go")).unwrap();
    assert!(
        woven.contains("gotapW(/*line app.go:7:12*/strconv.Atoi(\"1\")")
            && woven.contains("\nx int\n"),
        "{woven}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
