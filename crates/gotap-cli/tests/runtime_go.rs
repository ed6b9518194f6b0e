//! The woven runtime's own Go tests (go/gotaprt), run by `cargo test` so CI runs them: the SQL
//! sanitizer's corpus tests (internal/sqltext, the same corpus crates/gotap-spans runs, so both
//! strategies export the same text) with each toolchain the runtime supports (go.mod says 1.25:
//! Go 1.26 and 1.27; Go 1.19 cannot build it). internal/otlp's tests are run by
//! build_weave.rs::runtime_otlp_exporter_go_tests; a new Go test package must be added to one
//! of the two, which [`every_runtime_go_test_package_is_run`] checks.
use gotap_testkit::{repo_root, Toolchain};
use std::path::Path;

/// `go test -count=1 -v PKG` in go/gotaprt with `tc`; asserts success and that each of `tests`
/// ran and passed (a renamed or skipped test would otherwise go unnoticed).
fn go_test(tc: Toolchain, pkg: &str, tests: &[&str]) {
    let out = tc
        .command()
        .current_dir(repo_root().join("go/gotaprt"))
        .env("GOFLAGS", "-mod=readonly")
        .env("GOWORK", "off")
        .args(["test", "-count=1", "-v", pkg])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} go test {pkg}:\n{stdout}\n{stderr}",
        tc.label()
    );
    for t in tests {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("--- PASS: {t} "))),
            "{} go test {pkg}: {t} did not run and pass:\n{stdout}",
            tc.label()
        );
    }
    assert!(
        !stdout.contains("--- SKIP") && !stdout.contains("--- FAIL"),
        "{} go test {pkg}:\n{stdout}",
        tc.label()
    );
    let pkg_line = format!("ok  \tgotap.dev/gotaprt/{}", pkg.trim_start_matches("./"));
    assert!(
        stdout.lines().any(|l| l.starts_with(&pkg_line)),
        "{} go test {pkg}: no {pkg_line:?} line:\n{stdout}",
        tc.label()
    );
}

const SQLTEXT_TESTS: &[&str] = &["TestSanitizeCorpus", "TestNamesCorpus"];

#[test]
fn runtime_sql_sanitizer_go_tests_go126() {
    go_test(Toolchain::Go126, "./internal/sqltext", SQLTEXT_TESTS);
}

#[test]
fn runtime_sql_sanitizer_go_tests_go127() {
    go_test(Toolchain::Go127, "./internal/sqltext", SQLTEXT_TESTS);
}

/// Directories (relative to `root`) holding a `_test.go` file.
fn test_dirs(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut has_test = false;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            // Go ignores testdata and _/. directories.
            if name != "testdata" && !name.starts_with('_') && !name.starts_with('.') {
                test_dirs(root, &p, out);
            }
        } else if name.ends_with("_test.go") {
            has_test = true;
        }
    }
    if has_test {
        out.push(
            dir.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
}

/// Every Go package under go/gotaprt with tests is run by a Rust test: this file's, or
/// build_weave.rs's for internal/otlp.
#[test]
fn every_runtime_go_test_package_is_run() {
    let root = repo_root().join("go/gotaprt");
    let mut dirs = Vec::new();
    test_dirs(&root, &root, &mut dirs);
    dirs.sort();
    assert_eq!(
        dirs,
        ["internal/otlp", "internal/sqltext"],
        "a Go test package under go/gotaprt is not run by cargo test: add it to tests/runtime_go.rs"
    );
}
