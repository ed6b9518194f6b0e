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

fn apply(dir: &Path, pkg: &str, rules: &[&Path], files: &[&str], out: &Path, extra: &[&str]) -> Output {
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
    let rules = gotap_testkit::repo_root().join("rules/net_http.yaml");
    let out = tempdir("golden");
    let res = apply(&dir, "net/http", &[&rules], &["input/server.go", "input/roundtrip.go"], &out, &[]);
    assert!(res.status.success(), "weaver failed: {}", String::from_utf8_lossy(&res.stderr));
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
    let res = apply(&dir, "example.com/app", &[Path::new("rules.yaml")], &["app.go"], &out, &[]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let woven = std::fs::read_to_string(out.join("app.go")).unwrap();
    assert!(woven.contains("_ = len(s)"), "{woven}");
    // Type-check the woven file alone: `unused` is reported at its original line 4.
    let vet = Toolchain::Go126.command().current_dir(&out).args(["vet", "app.go"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&vet.stderr);
    assert!(stderr.contains("app.go:4:6: declared and not used: unused"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rule_without_join_point_fails_naming_rule_and_function() {
    let dir = golden_dir().join("errors");
    let out = tempdir("missing");
    let res = apply(&dir, "example.com/app", &[Path::new("rules.yaml")], &["app.go"], &out, &[]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("rule missing-function: no function (*Client).Gone in package example.com/app"), "{err}");
}

#[test]
fn unnamed_parameter_fails_naming_rule_and_position() {
    let dir = golden_dir().join("errors");
    let out = tempdir("unnamed");
    let res = apply(&dir, "example.com/app", &[Path::new("rules.yaml")], &["app.go"], &out, &["-best-effort"]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("rule unnamed-param: app.go:3:1:"), "{err}");
    assert!(err.contains("parameter 0 is unnamed"), "{err}");
}

#[test]
fn best_effort_turns_a_missing_join_point_into_a_warning() {
    let dir = tempdir("besteffort");
    std::fs::write(dir.join("app.go"), "package app\n\nfunc Handle(s string) {}\n").unwrap();
    let rules = golden_dir().join("errors/rules.yaml");
    // Only the missing-function rule: copy it alone.
    let text = std::fs::read_to_string(&rules).unwrap();
    let first = text.split("  - name: unnamed-param").next().unwrap();
    std::fs::write(dir.join("rules.yaml"), first).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let res = apply(&dir, "example.com/app", &[Path::new("rules.yaml")], &["app.go"], &out, &["-best-effort"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let w = json["warnings"][0].as_str().unwrap();
    assert!(w.contains("rule missing-function") && w.contains("--best-effort"), "{w}");
    // The declarations still go in (the runtime links against them), the advice does not.
    let woven = std::fs::read_to_string(out.join("app.go")).unwrap();
    assert!(woven.contains("var gotapMarker int") && !woven.contains("never"), "{woven}");
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
    let res = Command::new(weaver()).args(["plan", "-go", "go1.26.8"]).arg(dir.join("bad.yaml")).output().unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("rule \"bad\"") && err.contains("function-body"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
