//! The built-in database/sql rules (instrumentations/databasesql/weave/rules.yaml): golden rewritten source, and every
//! join point found in the real database/sql of each supported toolchain. Set
//! GOTAP_UPDATE_GOLDEN=1 to rewrite the expected file after an intended change.
use gotap_testkit::Toolchain;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RULES: &[&str] = &[
    "database-sql-db-query",
    "database-sql-db-exec",
    "database-sql-conn-query",
    "database-sql-conn-exec",
    "database-sql-tx-query",
    "database-sql-tx-exec",
    "database-sql-stmt-query",
    "database-sql-stmt-exec",
    "database-sql-open",
    "database-sql-close",
];

fn rules() -> PathBuf {
    gotap_testkit::repo_root().join("instrumentations/databasesql/weave/rules.yaml")
}

fn apply(tc: Toolchain, dir: &Path, files: &[PathBuf], out: &Path) -> Output {
    let ex = gotap_weave::assets::extract().unwrap();
    let weaver = gotap_weave::assets::weaver(&ex, &tc.go(), &tc.version()).unwrap();
    Command::new(weaver)
        .current_dir(dir)
        .args([
            "apply",
            "-go",
            &tc.version(),
            "-pkg",
            "database/sql",
            "-out",
        ])
        .arg(out)
        .arg(rules())
        .arg("--")
        .args(files)
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gotap-weave-sql-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn database_sql_rules_golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/database_sql");
    let out = tempdir("golden");
    let res = apply(
        Toolchain::Go126,
        &dir,
        &[PathBuf::from("input/sql.go")],
        &out,
    );
    assert!(
        res.status.success(),
        "weaver failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let got = std::fs::read_to_string(out.join("sql.go")).unwrap();
    let want_path = dir.join("expected/sql.go");
    if std::env::var_os("GOTAP_UPDATE_GOLDEN").is_some() {
        std::fs::write(&want_path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&want_path).unwrap();
    assert_eq!(got, want, "sql.go differs from {}", want_path.display());
    let _ = std::fs::remove_dir_all(&out);
}

/// The rules apply to the real database/sql of Go 1.26 and 1.27 (the non-test files the compiler
/// gets), each join point once, and the woven package compiles: `go build -overlay` of
/// database/sql with the woven files in place of the originals.
#[test]
fn database_sql_rules_weave_real_sources() {
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
        let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "go")
                    && !p.to_string_lossy().ends_with("_test.go")
            })
            .collect();
        files.sort();
        let out = tempdir(&format!("real-{}", tc.label()));
        let res = apply(tc, &src, &files, &out);
        assert!(
            res.status.success(),
            "weaver failed on {}: {}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(json["warnings"], serde_json::json!([]), "{json}");
        let woven = std::fs::read_to_string(out.join("sql.go")).unwrap();
        for r in RULES {
            assert_eq!(
                woven
                    .matches(&format!("//line gotap-rule-{r}.go:1\n"))
                    .count(),
                1,
                "{r} in {}",
                tc.label()
            );
        }
        // The declarations go to one file of the package.
        let decls: usize = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .matches("var gotapSQLStart func")
                    .count()
            })
            .sum();
        assert_eq!(decls, 1, "{}", tc.label());

        // Compile database/sql with the woven files swapped in.
        let mut replace = serde_json::Map::new();
        for e in std::fs::read_dir(&out).unwrap() {
            let p = e.unwrap().path();
            replace.insert(
                src.join(p.file_name().unwrap()).display().to_string(),
                p.display().to_string().into(),
            );
        }
        // The DSN parser (gotap_dsn.go) is added to the package, as by `gotap toolexec`.
        let added: Vec<PathBuf> = json["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| PathBuf::from(v.as_str().unwrap()))
            .collect();
        assert_eq!(
            added,
            vec![
                gotap_testkit::repo_root().join("instrumentations/databasesql/probes/gotap_dsn.go")
            ],
            "{}",
            tc.label()
        );
        for p in added {
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
        let build = tc
            .command()
            .current_dir(&out)
            .arg("build")
            .arg(format!("-overlay={}", overlay.display()))
            .arg("database/sql")
            .env("GOFLAGS", "")
            // Go 1.27 here lives in the module cache, whose files an overlay may not replace;
            // database/sql needs no module, so any other module cache will do.
            .env("GOMODCACHE", out.join("modcache"))
            .output()
            .unwrap();
        assert!(
            build.status.success(),
            "woven database/sql does not compile with {}: {}",
            tc.label(),
            String::from_utf8_lossy(&build.stderr)
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}
