//! `gotap build --rules FILE` with a user rules file using the call-site and struct-definition
//! join points: crates/gotap-cli/tests/go/wraprule is built with Go 1.26 and 1.27, run, and its
//! output shows the wrapped calls (advice before and after each `strconv.Atoi`, the argument
//! evaluated once, in order) and the added field.
use gotap_testkit::{bin_dir, gotap_bin, gotap_command, repo_root, Toolchain};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Woven builds recompile the standard library: one at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

fn app_dir() -> PathBuf {
    repo_root().join("crates/gotap-cli/tests/go/wraprule")
}

fn gotap_build(tc: Toolchain, rules: &Path, out: &Path) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    // gotap_command(tc) sets GOTAP_GO: without it every build would use the default Go.
    gotap_command(tc)
        .current_dir(app_dir())
        .args(["build", "--rules"])
        .arg(rules)
        .arg("-o")
        .arg(out)
        .arg(".")
        .output()
        .unwrap()
}

fn run(bin: &Path) -> (String, String) {
    let res = Command::new(bin)
        .args(["7", "x"])
        .env("OTEL_TRACES_EXPORTER", "none")
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{} failed: {}",
        bin.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    (
        String::from_utf8(res.stdout).unwrap(),
        String::from_utf8(res.stderr).unwrap(),
    )
}

#[test]
fn user_rules_wrap_calls_and_add_fields() {
    for tc in [Toolchain::Go126, Toolchain::Go127] {
        // The same program unwoven: what the rules must change.
        let plain = bin_dir().join(format!("wraprule-plain-{}", tc.label()));
        let res = tc
            .command()
            .current_dir(app_dir())
            .arg("build")
            .arg("-o")
            .arg(&plain)
            .arg(".")
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let (stdout, stderr) = run(&plain);
        assert!(
            !stdout.contains("before strconv.Atoi")
                && !stderr.contains("wrapped")
                && stdout.ends_with("{ID:1}\nbuilt\n"),
            "{stdout}{stderr}"
        );

        let woven = bin_dir().join(format!("wraprule-woven-{}", tc.label()));
        let res = gotap_build(tc, &app_dir().join("rules.yaml"), &woven);
        assert!(
            res.status.success(),
            "gotap build with {}: {}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
        let (stdout, stderr) = run(&woven);
        // Before-advice runs before the argument is evaluated (the call is inside the wrapper),
        // the argument once, then the original call's results pass through the after-advice.
        assert_eq!(
            stdout,
            "before strconv.Atoi\nargument 1: 7\nparsed \"7\": 7, <nil>\n\
             before strconv.Atoi\nargument 2: x\nparsed \"x\": 0, strconv.Atoi: parsing \"x\": invalid syntax\n\
             {ID:1 gotapTag:}\nbefore (*strings.Builder).WriteString\nbuilt\n",
            "{}",
            tc.label()
        );
        assert_eq!(
            stderr,
            "wrapped strconv.Atoi: 7, <nil>\nwrapped strconv.Atoi: 0, strconv.Atoi: parsing \"x\": invalid syntax\n",
            "{}",
            tc.label()
        );
    }
}

/// A call-site rule whose callee the package never calls fails the build naming the rule and
/// the package's files; `--best-effort` builds it unwoven with a warning.
#[test]
fn call_site_rule_without_calls_fails_naming_the_rule() {
    let dir = std::env::temp_dir().join(format!("gotap-build-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: wrap-itoa\n    join: {package: main, function-call: strconv.Itoa}\n    advice: {wrap-call: \"{{.Call}}\"}\n",
    )
    .unwrap();
    let out = dir.join("bin");
    let res = gotap_build(Toolchain::Go126, &rules, &out);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{err}");
    assert!(
        err.contains("rule wrap-itoa: no call to strconv.Itoa in package main")
            && err.contains("main.go"),
        "{err}"
    );

    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let res = Command::new(gotap_bin())
        .current_dir(app_dir())
        .args(["build", "--best-effort", "--rules"])
        .arg(&rules)
        .arg("-o")
        .arg(&out)
        .arg(".")
        .env("GOTAP_GO", Toolchain::Go126.go())
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .env_remove("GOTAP_WEAVE_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(
        err.contains("rule wrap-itoa: no call to strconv.Itoa") && err.contains("--best-effort"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
