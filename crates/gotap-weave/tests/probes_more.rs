//! The probe-mode rules of database/sql and grpc (instrumentations/databasesql/weave/probes.yaml,
//! instrumentations/grpc/weave/probes.yaml): golden rewritten sources (the fixtures of the SDK-mode tests), the
//! fragments reported as added files, and every join point found in the real database/sql of
//! each supported toolchain. Set GOTAP_UPDATE_GOLDEN=1 to rewrite the expected files after an
//! intended change (then review the diff).
use gotap_testkit::{repo_root, Toolchain};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn apply(
    tc: Toolchain,
    dir: &Path,
    pkg: &str,
    rules: &Path,
    files: &[&str],
    out: &Path,
    extra: &[&str],
) -> Output {
    let ex = gotap_weave::assets::extract().unwrap();
    let weaver = gotap_weave::assets::weaver(&ex, &tc.go(), &tc.version()).unwrap();
    Command::new(weaver)
        .current_dir(dir)
        .args(["apply", "-go", &tc.version(), "-pkg", pkg, "-out"])
        .arg(out)
        .args(extra)
        .arg(rules)
        .arg("--")
        .args(files)
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gotap-weave-probes-more-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn golden(out: &Path, file: &str, want_path: &Path) {
    let got =
        std::fs::read_to_string(out.join(file)).unwrap_or_else(|e| panic!("{file} not woven: {e}"));
    if std::env::var_os("GOTAP_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(want_path.parent().unwrap()).unwrap();
        std::fs::write(want_path, &got).unwrap();
    }
    let want = std::fs::read_to_string(want_path).unwrap();
    assert_eq!(got, want, "{file} differs from {}", want_path.display());
}

fn added(res: &Output) -> Vec<PathBuf> {
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    json["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect()
}

#[test]
fn database_sql_probe_rules_golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/database_sql");
    let rules = repo_root().join("instrumentations/databasesql/weave/probes.yaml");
    let out = tempdir("sql");
    let res = apply(
        Toolchain::Go126,
        &dir,
        "database/sql",
        &rules,
        &["input/sql.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    golden(&out, "sql.go", &dir.join("expected_probes/sql.go"));
    let frag = repo_root().join("instrumentations/databasesql/probes");
    assert_eq!(
        added(&res),
        vec![
            frag.join("gotap_probes.go"),
            frag.join("gotap_probes_amd64.s"),
            repo_root().join("go/probes/shared/gotap_batch.go"),
            repo_root().join("go/probes/shared/gotap_batch_amd64.s"),
            repo_root().join("go/probes/shared/gotap_trace.go"),
            frag.join("gotap_dsn.go")
        ]
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The same rules file adds net/http's parent lookup (the context accessor database/sql and grpc
/// spans use) to net/http, and only that and the goroutine's request in serverHandler.ServeHTTP
/// (the parent of statements without the request's context).
#[test]
fn database_sql_probe_rules_add_the_parent_lookup_to_net_http() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/nethttp");
    let rules = repo_root().join("instrumentations/databasesql/weave/probes.yaml");
    let out = tempdir("nethttp");
    let res = apply(
        Toolchain::Go126,
        &dir,
        "net/http",
        &rules,
        &["input/server.go", "input/roundtrip.go"],
        &out,
        &[],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        added(&res),
        vec![repo_root().join("instrumentations/databasesql/probes/nethttp/gotap_probes_parent.go")]
    );
    let server = std::fs::read_to_string(out.join("server.go")).unwrap();
    assert_eq!(
        server
            .matches("defer gotapProbeGoroutineLeave(gotapProbeGoroutineEnter(")
            .count(),
        1,
        "serverHandler.ServeHTTP names the goroutine's request:\n{server}"
    );
    assert!(
        !out.join("roundtrip.go").exists(),
        "nothing else rewritten in net/http"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Every join point of the probe rules exists in the real database/sql of Go 1.26 and 1.27.
#[test]
fn database_sql_probe_rules_apply_to_real_database_sql() {
    for tc in [Toolchain::Go126, Toolchain::Go127] {
        let goroot = PathBuf::from(
            String::from_utf8(
                tc.command()
                    .args(["env", "GOROOT"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim(),
        );
        let src = goroot.join("src/database/sql");
        let files: Vec<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".go") && !f.ends_with("_test.go"))
            .collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let out = tempdir(&format!("real-{}", tc.label()));
        let rules = repo_root().join("instrumentations/databasesql/weave/probes.yaml");
        let res = apply(tc, &src, "database/sql", &rules, &files, &out, &[]);
        assert!(
            res.status.success(),
            "{}: weaver failed: {}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
        let woven = std::fs::read_to_string(out.join("sql.go")).unwrap();
        for m in ["QueryContext(gotapCtx", "ExecContext(gotapCtx"] {
            assert_eq!(
                woven.matches(m).count(),
                4,
                "{}: {m} in DB, Conn, Tx, Stmt",
                tc.label()
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// grpc below and from 1.84 (different server join points; 1.84 has 1.85's processRPC): the probe rules of each range apply,
/// nothing is skipped, and the fragments are added.
#[test]
fn grpc_probe_rules_golden_per_version() {
    let rules = repo_root().join("instrumentations/grpc/weave/probes.yaml");
    for (dir, version) in [
        ("v1.83", "v1.83.2"),
        ("v1.85", "v1.84.0"),
        ("v1.85", "v1.85.0"),
    ] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/grpc")
            .join(dir);
        let out = tempdir(&format!("grpc-{version}"));
        let modver = format!("-modver=google.golang.org/grpc={version}");
        let res = apply(
            Toolchain::Go126,
            &dir,
            "google.golang.org/grpc",
            &rules,
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
            golden(&out, f, &dir.join("expected_probes").join(f));
        }
        let frag = repo_root().join("instrumentations/grpc/probes");
        let shared = repo_root().join("go/probes/shared");
        assert_eq!(
            added(&res),
            vec![
                frag.join("gotap_probes.go"),
                frag.join("gotap_probes_amd64.s"),
                shared.join("gotap_batch.go"),
                shared.join("gotap_batch_amd64.s"),
                shared.join("gotap_trace.go")
            ],
            "{version}"
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// A grpc below every range: nothing woven, no fragment added (its sites would be dead code).
#[test]
fn grpc_probe_rules_skip_out_of_range_grpc() {
    let rules = repo_root().join("instrumentations/grpc/weave/probes.yaml");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/grpc/v1.83");
    let out = tempdir("grpc-old");
    let res = apply(
        Toolchain::Go126,
        &dir,
        "google.golang.org/grpc",
        &rules,
        &["input/server.go", "input/stream.go"],
        &out,
        &["-modver=google.golang.org/grpc=v1.70.0"],
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        added(&res).is_empty(),
        "{}",
        String::from_utf8_lossy(&res.stdout)
    );
    assert!(!out.join("server.go").exists());
    let _ = std::fs::remove_dir_all(&out);
}

/// The fragments every woven package shares (go/probes/shared: the batch buffer, the
/// trace-context helpers): their Go tests, with each supported toolchain.
#[test]
fn shared_batch_fragment_go_tests() {
    for tc in [Toolchain::Go126, Toolchain::Go127] {
        let out = tc
            .command()
            .current_dir(repo_root().join("go/probes/shared"))
            .args(["test", "-count=1", "-v", "."])
            .env("GOFLAGS", "")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{}: {text}", tc.label());
        for t in [
            "TestSemaphoreMarker",
            "TestEventsAreAppendedWithTheirKind",
            "TestFullBufferIsFlushedBeforeTheNextEvent",
            "TestBufferIsFlushedAfterTheDelay",
            "TestOversizedEventIsRefused",
            "TestTraceparentRoundTrip",
            "TestTraceparentRejects",
            "TestNonZeroIds",
        ] {
            assert!(
                text.contains(&format!("--- PASS: {t} ")),
                "{}: {t} did not run:\n{text}",
                tc.label()
            );
        }
    }
}
