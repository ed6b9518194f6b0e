//! server.address, server.port and db.namespace of database/sql spans, in both modes: the real
//! database/sql of Go 1.26 and 1.27 is woven with instrumentations/databasesql/weave/rules.yaml (SDK mode) or
//! instrumentations/databasesql/weave/probes.yaml (probe mode), and its own `go test` runs with the woven files,
//! the added fragments and gotap's Go tests (instrumentations/databasesql/probes/*_test.go) in place through
//! `-overlay`: the DSN forms (PostgreSQL URL and key=value, MySQL, SQLite, other URLs), sql.Open
//! recording each DB's server once and Close forgetting it, the SDK hook getting the server with
//! every query, and the probe record carrying it at the offsets docs/probes.md gives.
use gotap_testkit::{repo_root, Toolchain};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gotap-weave-sql-server-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Weaves database/sql of `tc` with `rules` and runs its tests named `TestGotap…` with gotap's
/// test files `tests` added; returns the `go test -v` output.
fn woven_go_test(tc: Toolchain, rules: &str, tests: &[&str]) -> String {
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
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "go") && !p.to_string_lossy().ends_with("_test.go")
        })
        .collect();
    files.sort();
    let out = tempdir(&format!(
        "{}-{}",
        tc.label(),
        Path::new(rules).file_stem().unwrap().to_string_lossy()
    ));
    let ex = gotap_weave::assets::extract().unwrap();
    let weaver = gotap_weave::assets::weaver(&ex, &tc.go(), &tc.version()).unwrap();
    let res = Command::new(weaver)
        .current_dir(&src)
        .args([
            "apply",
            "-go",
            &tc.version(),
            "-pkg",
            "database/sql",
            "-out",
        ])
        .arg(&out)
        .arg(repo_root().join(rules))
        .arg("--")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}: weaver failed: {}",
        tc.label(),
        String::from_utf8_lossy(&res.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(json["warnings"], serde_json::json!([]), "{json}");

    let mut replace = serde_json::Map::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        replace.insert(
            src.join(p.file_name().unwrap()).display().to_string(),
            p.display().to_string().into(),
        );
    }
    let added: Vec<PathBuf> = json["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect();
    assert!(
        added.iter().any(|p| p.ends_with("gotap_dsn.go")),
        "{rules}: the DSN parser is added: {added:?}"
    );
    let frag = repo_root().join("instrumentations/databasesql/probes");
    for mut p in added
        .iter()
        .cloned()
        .chain(tests.iter().map(|t| frag.join(t)))
    {
        // A fragment shared by every woven package: `gotap toolexec` gives it the package's name.
        let text = std::fs::read_to_string(&p).unwrap();
        if text.contains("\npackage gotapshared\n") {
            let own = out.join(p.file_name().unwrap());
            std::fs::write(
                &own,
                text.replace("\npackage gotapshared\n", "\npackage sql\n"),
            )
            .unwrap();
            p = own;
        }
        replace.insert(
            src.join(p.file_name().unwrap()).display().to_string(),
            p.display().to_string().into(),
        );
    }
    let overlay = out.join("overlay.json");
    std::fs::write(
        &overlay,
        serde_json::json!({ "Replace": replace }).to_string(),
    )
    .unwrap();
    let test = tc
        .command()
        .current_dir(&out)
        .args(["test", "-count=1", "-v", "-run", "^TestGotap"])
        .arg(format!("-overlay={}", overlay.display()))
        .arg("database/sql")
        .env("GOFLAGS", "")
        // As in database_sql.rs: Go 1.27 here lives in the module cache, whose files an overlay
        // may not replace; database/sql needs no module, so any other module cache will do.
        .env("GOMODCACHE", out.join("modcache"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(
        test.status.success(),
        "{}: go test of the woven database/sql ({rules}) failed:\n{text}",
        tc.label()
    );
    let _ = std::fs::remove_dir_all(&out);
    text
}

#[test]
fn sdk_mode_records_the_server_of_each_db() {
    for tc in [Toolchain::Go126, Toolchain::Go127] {
        let text = woven_go_test(
            tc,
            "instrumentations/databasesql/weave/rules.yaml",
            &["gotap_dsn_test.go", "gotap_hook_test.go"],
        );
        for t in [
            "TestGotapParseDSN",
            "TestGotapOpenRecordsServer",
            "TestGotapHookGetsServer",
        ] {
            assert!(
                text.contains(&format!("--- PASS: {t} ")),
                "{}: {t} did not run:\n{text}",
                tc.label()
            );
        }
    }
}

#[test]
fn probe_mode_fills_server_fields_of_the_record() {
    for tc in [Toolchain::Go126, Toolchain::Go127] {
        let text = woven_go_test(
            tc,
            "instrumentations/databasesql/weave/probes.yaml",
            &["gotap_dsn_test.go", "gotap_probes_test.go"],
        );
        for t in [
            "TestGotapParseDSN",
            "TestGotapOpenRecordsServer",
            "TestGotapProbeRecordLayout",
            "TestGotapProbeEventHasServer",
        ] {
            assert!(
                text.contains(&format!("--- PASS: {t} ")),
                "{}: {t} did not run:\n{text}",
                tc.label()
            );
        }
    }
}
