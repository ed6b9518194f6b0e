//! `gotap probes list|bpftrace|annotate` against go/testapps/cmd/usdtsites (the probe-site
//! contract of docs/probes.md in package main, annotated with `gotap probes annotate --package
//! main`), and the generated bpftrace script run by the real bpftrace against the real kernel:
//! attaching must enable the sites through the semaphore, and every line must carry the values
//! usdtsites passes.
mod common;

use common::*;
use gotap_binary::GoBinary;
use gotap_testkit::{build, require_root, Toolchain, Variant};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A private, annotated copy of usdtsites.
fn annotated(tc: Toolchain, v: Variant, tag: &str) -> PathBuf {
    let dst = plain_copy(tc, v, tag);
    let (code, stdout, stderr) = gotap(&["probes", "annotate", "--package", "main", dst.to_str().unwrap()]);
    assert_eq!(code, 0, "annotate failed: {stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.trim(), format!("gotap: {}: 2 gotap probe site(s) noted", dst.display()));
    dst
}

fn plain_copy(tc: Toolchain, v: Variant, tag: &str) -> PathBuf {
    let src = build("testapps", "./cmd/usdtsites", tc, v);
    let dir = std::env::temp_dir().join(format!("gotap-probes-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(format!("usdtsites-{}-{}-{tag}", tc.label(), v.label()));
    std::fs::copy(&src, &dst).unwrap();
    dst
}

/// `p` with `suffix` appended to its file name (not `with_extension`: the names contain `go1.26`).
fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let mut name = p.file_name().unwrap().to_os_string();
    name.push(suffix);
    p.with_file_name(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const ARGS: &str = "8@8(%rsp) 8@16(%rsp) 8@24(%rsp) 8@32(%rsp) -8@40(%rsp) -8@48(%rsp) 8@56(%rsp) 8@64(%rsp) 8@72(%rsp)";

#[test]
fn list_shows_the_sites() {
    for (tc, v) in [(Toolchain::Go126, Variant::default()), (Toolchain::Go127, Variant { stripped: true, pie: true })] {
        let bin = annotated(tc, v, "list");
        let go = GoBinary::open(&bin).unwrap();
        let server = go.function("main.gotapProbeHTTPServer").unwrap();
        let client = go.function("main.gotapProbeHTTPClient").unwrap();

        let (code, out, err) = gotap(&["probes", "list", s(&bin)]);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[0], ["PROVIDER", "NAME", "ADDRESS", "OFFSET", "SEMAPHORE", "ARGUMENTS"]);
        let sema = lines[1][4];
        for (row, (name, f)) in lines[1..].iter().zip([("http_server", server), ("http_client", client)]) {
            assert_eq!(row[..4], ["gotap", name, &format!("{:#x}", f.entry), &format!("{:#x}", f.offset)], "{out}");
            assert_eq!(row[4], sema);
            assert_eq!(row[5..].join(" "), ARGS);
        }

        let (code, out, err) = gotap(&["probes", "list", "--json", s(&bin)]);
        assert_eq!(code, 0, "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        let probes = doc["probes"].as_array().unwrap();
        assert_eq!(probes.len(), 2);
        assert_eq!(probes[0]["name"], "http_server");
        assert_eq!(probes[0]["address"], server.entry);
        assert_eq!(probes[0]["offset"], server.offset);
        assert_eq!(format!("{:#x}", probes[1]["semaphore"].as_u64().unwrap()), sema);
        let sema_off = probes[1]["semaphore_offset"].as_u64().unwrap();
        // The semaphore's file offset points at the counter, followed by the marker.
        let bytes = std::fs::read(&bin).unwrap();
        assert_eq!(&bytes[sema_off as usize..sema_off as usize + 16], b"\0\0gotap-semaphor");
        assert_eq!(probes[1]["args"][4], serde_json::json!({"size": 8, "signed": true, "location": {"kind": "memory", "offset": 40, "base": "rsp", "index": null, "scale": 1}}));
        assert_eq!(probes[1]["args_raw"], ARGS);
        std::fs::remove_file(&bin).unwrap();
    }
}

#[test]
fn errors_are_one_line() {
    let plain = plain_copy(Toolchain::Go126, Variant::default(), "plain");
    let want = format!("gotap: {} has no gotap probe sites; build it with `gotap build --probes`", plain.display());
    assert_eq!(assert_user_error(&["probes", "list", s(&plain)]), want);
    assert_eq!(assert_user_error(&["probes", "bpftrace", s(&plain)]), want);
    // usdtsites has no net/http sites: the default package finds nothing.
    assert_eq!(assert_user_error(&["probes", "annotate", s(&plain)]), want);

    let text = sibling(&plain, ".txt");
    std::fs::write(&text, "not a binary").unwrap();
    assert_eq!(assert_user_error(&["probes", "list", s(&text)]), format!("gotap: {}: not an ELF file", text.display()));
    let missing = sibling(&plain, ".missing");
    let e = assert_user_error(&["probes", "bpftrace", s(&missing)]);
    assert!(e.starts_with(&format!("gotap: cannot read {}: ", missing.display())), "{e}");
    // Not a Go binary: same message as `gotap inspect`.
    let sh = PathBuf::from("/bin/sh");
    assert_eq!(assert_user_error(&["probes", "list", "/bin/sh"]), assert_user_error(&["inspect", "/bin/sh"]));
    assert!(sh.exists());
    std::fs::remove_file(&text).unwrap();
    std::fs::remove_file(&plain).unwrap();
}

#[test]
fn bpftrace_script_to_stdout_or_file() {
    let bin = annotated(Toolchain::Go126, Variant::default(), "script");
    let abs = std::fs::canonicalize(&bin).unwrap();
    let (code, script, err) = gotap(&["probes", "bpftrace", s(&bin)]);
    assert_eq!(code, 0, "{err}");
    assert!(script.starts_with("#!/usr/bin/env bpftrace\n"));
    for probe in ["http_server", "http_client"] {
        assert!(script.contains(&format!("usdt:{}:gotap:{probe}\n", abs.display())), "{script}");
    }
    let out = sibling(&bin, ".bt");
    let (code, stdout, err) = gotap(&["probes", "bpftrace", s(&bin), "-o", s(&out)]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), script);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o111, 0o111, "script not executable");
    std::fs::remove_file(&out).unwrap();
    std::fs::remove_file(&bin).unwrap();
}

/// A child that is killed if the test fails before waiting for it (no stray bpftrace).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A child whose stdout lines arrive on a channel.
fn spawn_lines(cmd: &mut Command) -> (Proc, mpsc::Receiver<String>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

/// Lines from `rx` until one satisfies `done` (or the deadline passes: then panics with `what`).
fn collect_until(rx: &mpsc::Receiver<String>, what: &str, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while !done(&lines) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("timed out waiting for {what}; got {lines:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the process exited before {what}; got {lines:?}"),
        }
    }
    lines
}

fn bpftrace_path() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("bpftrace");
        if p.is_file() {
            return p;
        }
    }
    panic!("bpftrace is not installed — run scripts/toolchains.sh (Debian package `bpftrace`)");
}

/// The generated script, run by bpftrace: a usdtsites started before bpftrace attaches and one
/// started after must both be enabled (the kernel increments the semaphore of every mapping of
/// the file, through `.probes`), and every line must carry the values usdtsites passes.
#[test]
fn bpftrace_prints_the_known_values() {
    require_root();
    let bpftrace = bpftrace_path();
    for (tc, v) in [(Toolchain::Go126, Variant::default()), (Toolchain::Go127, Variant { stripped: true, pie: true })] {
        let bin = annotated(tc, v, "bpftrace");
        let script = sibling(&bin, ".bt");
        let (code, _, err) = gotap(&["probes", "bpftrace", s(&bin), "-o", s(&script)]);
        assert_eq!(code, 0, "{err}");

        // Started first: the semaphore is 0, so it only says it is ready.
        // 30 pairs: bpftrace attaches the two probes one after the other, and the first one
        // already raises the shared semaphore, so the first pairs may be seen half.
        let (mut early, early_rx) = spawn_lines(Command::new(&bin).args(["-n", "30"]));
        collect_until(&early_rx, "usdtsites ready", Duration::from_secs(10), |l| l.len() == 1);
        std::thread::sleep(Duration::from_millis(100));
        assert!(early_rx.try_recv().is_err(), "usdtsites fired with nobody attached");

        let (mut bt, bt_rx) = spawn_lines(Command::new(&bpftrace).args(["-B", "line"]).arg(&script));
        collect_until(&bt_rx, "bpftrace to attach", Duration::from_secs(60), |l| l.iter().any(|l| l.starts_with("tracing gotap probes of ")));
        // Started after attaching.
        let (mut late, late_rx) = spawn_lines(Command::new(&bin).args(["-n", "3"]));
        for (rx, who, n) in [(&early_rx, "early", 30), (&late_rx, "late", 3)] {
            let last = format!("fired {n}");
            collect_until(rx, &format!("{who} usdtsites to fire"), Duration::from_secs(20), |l| l.contains(&last));
        }
        assert!(early.0.wait().unwrap().success());
        assert!(late.0.wait().unwrap().success());
        // At least the late process's 3 pairs and 3 of the early one's.
        let lines = collect_until(&bt_rx, "6 pairs of lines", Duration::from_secs(30), |l| {
            l.iter().filter(|l| l.starts_with("server ")).count() >= 6 && l.iter().filter(|l| l.starts_with("client ")).count() >= 6
        });
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe { libc::kill(bt.0.id() as i32, libc::SIGINT) };
        let status = bt.0.wait().unwrap();
        assert!(status.success(), "bpftrace exited with {status}");

        let server = r#"server GET /users/42 status=503 duration_us=5 route="GET /users/{id}" trace=0af7651916cd43dd8448eb211c80319c span=b7ad6b7169203331 parent=00f067aa0ba902b7"#;
        let client = r#"client POST http://127.0.0.1:9/orders?id=7 status=0 duration_us=2 error="dial tcp 127.0.0.1:9: connect: connection refused" trace=0af7651916cd43dd8448eb211c80319c span=1111111111111111 parent=b7ad6b7169203331"#;
        for l in lines.iter().filter(|l| l.starts_with("server ") || l.starts_with("client ")) {
            assert!(l == server || l == client, "{} {}: unexpected line {l:?}", tc.label(), v.label());
        }
        std::fs::remove_file(&script).unwrap();
        std::fs::remove_file(&bin).unwrap();
    }
}

/// `bpftrace -l` lists the probes of an annotated binary.
#[test]
fn bpftrace_lists_the_probes() {
    require_root();
    let bin = annotated(Toolchain::Go127, Variant::default(), "bpftrace-l");
    let abs = std::fs::canonicalize(&bin).unwrap();
    let out = Command::new(bpftrace_path()).arg("-l").arg(format!("usdt:{}:*", abs.display())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, [format!("usdt:{}:gotap:http_client", abs.display()), format!("usdt:{}:gotap:http_server", abs.display())]);
    std::fs::remove_file(&bin).unwrap();
}
