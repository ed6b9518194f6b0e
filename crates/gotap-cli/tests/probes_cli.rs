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
    let (code, stdout, stderr) = gotap(&[
        "probes",
        "annotate",
        "--package",
        "main",
        dst.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "annotate failed: {stderr}");
    assert!(stdout.is_empty());
    assert_eq!(
        stderr.trim(),
        format!("gotap: {}: 2 gotap probe site(s) noted", dst.display())
    );
    dst
}

fn plain_copy(tc: Toolchain, v: Variant, tag: &str) -> PathBuf {
    let src = build("testapps", "./cmd/usdtsites", tc, v);
    let dir = std::env::temp_dir().join(format!("gotap-probes-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(format!("usdtsites-{}-{}-{tag}", tc.label(), v.label()));
    gotap_testkit::install_exe(&src, &dst);
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
    for (tc, v) in [
        (Toolchain::Go126, Variant::default()),
        (
            Toolchain::Go127,
            Variant {
                stripped: true,
                pie: true,
            },
        ),
    ] {
        let bin = annotated(tc, v, "list");
        let go = GoBinary::open(&bin).unwrap();
        let server = go.function("main.gotapProbeHTTPServer").unwrap();
        let client = go.function("main.gotapProbeHTTPClient").unwrap();

        let (code, out, err) = gotap(&["probes", "list", s(&bin)]);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            lines[0],
            [
                "PROVIDER",
                "NAME",
                "ADDRESS",
                "OFFSET",
                "SEMAPHORE",
                "ARGUMENTS"
            ]
        );
        let sema = lines[1][4];
        for (row, (name, f)) in lines[1..]
            .iter()
            .zip([("http_server", server), ("http_client", client)])
        {
            assert_eq!(
                row[..4],
                [
                    "gotap",
                    name,
                    &format!("{:#x}", f.entry),
                    &format!("{:#x}", f.offset)
                ],
                "{out}"
            );
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
        assert_eq!(
            format!("{:#x}", probes[1]["semaphore"].as_u64().unwrap()),
            sema
        );
        let sema_off = probes[1]["semaphore_offset"].as_u64().unwrap();
        // The semaphore's file offset points at the counter, followed by the marker.
        let bytes = std::fs::read(&bin).unwrap();
        assert_eq!(
            &bytes[sema_off as usize..sema_off as usize + 16],
            b"\0\0gotap-semaphor"
        );
        assert_eq!(
            probes[1]["args"][4],
            serde_json::json!({"size": 8, "signed": true, "location": {"kind": "memory", "offset": 40, "base": "rsp", "index": null, "scale": 1}})
        );
        assert_eq!(probes[1]["args_raw"], ARGS);
        std::fs::remove_file(&bin).unwrap();
    }
}

#[test]
fn errors_are_one_line() {
    let plain = plain_copy(Toolchain::Go126, Variant::default(), "plain");
    let want = format!(
        "gotap: {} has no gotap probe sites; build it with `gotap build --probes`",
        plain.display()
    );
    assert_eq!(assert_user_error(&["probes", "list", s(&plain)]), want);
    assert_eq!(assert_user_error(&["probes", "bpftrace", s(&plain)]), want);
    // usdtsites has no net/http sites: the default package finds nothing.
    assert_eq!(assert_user_error(&["probes", "annotate", s(&plain)]), want);

    let text = sibling(&plain, ".txt");
    std::fs::write(&text, "not a binary").unwrap();
    assert_eq!(
        assert_user_error(&["probes", "list", s(&text)]),
        format!("gotap: {}: not an ELF file", text.display())
    );
    let missing = sibling(&plain, ".missing");
    let e = assert_user_error(&["probes", "bpftrace", s(&missing)]);
    assert!(
        e.starts_with(&format!("gotap: cannot read {}: ", missing.display())),
        "{e}"
    );
    // Not a Go binary: same message as `gotap inspect`.
    let sh = PathBuf::from("/bin/sh");
    assert_eq!(
        assert_user_error(&["probes", "list", "/bin/sh"]),
        assert_user_error(&["inspect", "/bin/sh"])
    );
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
        assert!(
            script.contains(&format!("usdt:{}:gotap:{probe}\n", abs.display())),
            "{script}"
        );
    }
    let out = sibling(&bin, ".bt");
    let (code, stdout, err) = gotap(&["probes", "bpftrace", s(&bin), "-o", s(&out)]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), script);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o111,
        0o111,
        "script not executable"
    );
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
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
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
fn collect_until(
    rx: &mpsc::Receiver<String>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while !done(&lines) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {what}; got {lines:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the process exited before {what}; got {lines:?}")
            }
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

/// bpftrace running `script`, once it has said "Attaching N probes...". That line comes before
/// the probes are attached (and Debian's 0.17 runs BEGIN before attaching them too), so callers
/// wait for the lines they expect, never for a fixed time.
fn start_bpftrace(script: &Path) -> (Proc, mpsc::Receiver<String>) {
    let (bt, rx) = spawn_lines(
        Command::new(bpftrace_path())
            .args(["-B", "line"])
            .arg(script),
    );
    collect_until(
        &rx,
        "bpftrace's Attaching line",
        Duration::from_secs(60),
        |l| l.iter().any(|l| l.starts_with("Attaching ")),
    );
    (bt, rx)
}

/// Stops bpftrace with Ctrl-C; it must exit cleanly.
fn stop_bpftrace(mut bt: Proc) {
    // SIGINT, repeated: bpftrace (0.2x) can miss one that lands between its exit check and its
    // epoll_wait, and then sleeps until the next event (seen in CI: 12 minutes with no event).
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe { libc::kill(bt.0.id() as i32, libc::SIGINT) };
        let again = Instant::now() + Duration::from_millis(500);
        while Instant::now() < again {
            if bt.0.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The status of a child reaped above is kept by `Child`.
        if let Some(status) = bt.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "bpftrace did not stop on SIGINT");
    };
    assert!(status.success(), "bpftrace exited with {status}");
}

/// Every line received so far (without blocking).
fn drain(rx: &mpsc::Receiver<String>, into: &mut Vec<String>) {
    while let Ok(l) = rx.try_recv() {
        into.push(l);
    }
}

/// The generated script, run by bpftrace: a usdtsites started before bpftrace attaches and one
/// started after must both be enabled (the kernel increments the semaphore of every mapping of
/// the file, through `.probes`), and every line must carry the values usdtsites passes. Both
/// processes fire every 10 ms for as long as their semaphore is set, so how long bpftrace takes
/// to attach (its probes come up one after the other) changes only how many lines there are.
#[test]
fn bpftrace_prints_the_known_values() {
    require_root();
    for (tc, v) in [
        (Toolchain::Go126, Variant::default()),
        (
            Toolchain::Go127,
            Variant {
                stripped: true,
                pie: true,
            },
        ),
    ] {
        let bin = annotated(tc, v, "bpftrace");
        let script = sibling(&bin, ".bt");
        let (code, _, err) = gotap(&["probes", "bpftrace", s(&bin), "-o", s(&script)]);
        assert_eq!(code, 0, "{err}");
        let count =
            |lines: &[String], what: &str| lines.iter().filter(|l| l.starts_with(what)).count();

        // Started first: the semaphore is 0, so it only says it is ready.
        let (early, early_rx) = spawn_lines(Command::new(&bin).args(["-n", "0"]));
        collect_until(&early_rx, "usdtsites ready", Duration::from_secs(10), |l| {
            l.len() == 1
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            early_rx.try_recv().is_err(),
            "usdtsites fired with nobody attached"
        );

        let (bt, bt_rx) = start_bpftrace(&script);
        // Only the early process runs: both of its sites reach bpftrace once both are attached.
        let mut lines = collect_until(
            &bt_rx,
            "the early process's lines",
            Duration::from_secs(60),
            |l| count(l, "server ") >= 1 && count(l, "client ") >= 1,
        );
        // Started after attaching: enabled from its exec on.
        let (late, late_rx) = spawn_lines(Command::new(&bin).args(["-n", "0"]));
        collect_until(
            &late_rx,
            "the late usdtsites to fire",
            Duration::from_secs(20),
            |l| l.iter().any(|l| l == "fired 3"),
        );
        drop(early);
        drain(&bt_rx, &mut lines);
        let before = (count(&lines, "server "), count(&lines, "client "));
        // The late process alone keeps firing: more lines must come.
        lines.extend(collect_until(
            &bt_rx,
            "the late process's lines",
            Duration::from_secs(30),
            |l| count(l, "server ") >= 3 && count(l, "client ") >= 3,
        ));
        drop(late);
        stop_bpftrace(bt);
        assert!(
            count(&lines, "server ") >= before.0 + 3 && count(&lines, "client ") >= before.1 + 3
        );

        let server = r#"server GET /users/42 status=503 duration_us=5 route="GET /users/{id}" trace=0af7651916cd43dd8448eb211c80319c span=b7ad6b7169203331 parent=00f067aa0ba902b7"#;
        let client = r#"client POST http://127.0.0.1:9/orders?id=7 status=0 duration_us=2 error="dial tcp 127.0.0.1:9: connect: connection refused" trace=0af7651916cd43dd8448eb211c80319c span=1111111111111111 parent=b7ad6b7169203331"#;
        for l in lines.iter().filter(|l| {
            !l.starts_with("Attaching ")
                && !l.starts_with("tracing gotap probes of ")
                && !l.is_empty()
        }) {
            assert!(
                l == server || l == client,
                "{} {}: unexpected line {l:?}",
                tc.label(),
                v.label()
            );
        }
        std::fs::remove_file(&script).unwrap();
        std::fs::remove_file(&bin).unwrap();
    }
}

/// crates/gotap-cli/tests/go/grpchttp built with `gotap build --probes` (extra go build flags).
fn grpchttp(tc: Toolchain, tag: &str, flags: &[&str]) -> PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let out = gotap_testkit::bin_dir().join(format!("grpchttp-bpftrace-{}-{tag}", tc.label()));
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let res = gotap_testkit::gotap_command(tc)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/grpchttp"))
        .args(["build", "--probes", "-o", s(&out)])
        .args(flags)
        .arg(".")
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "gotap build --probes of grpchttp with {} failed:\n{}",
        tc.label(),
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

/// A line of the script without its durations and ephemeral ports, and its ids: (text, trace,
/// span, parent).
fn parse_line(l: &str, ports: &[(u16, &str)]) -> (String, String, String, String) {
    let (text, ids) = l
        .split_once(" trace=")
        .unwrap_or_else(|| panic!("no ids in {l:?}"));
    let (trace, rest) = ids.split_once(" span=").unwrap();
    let (span, parent) = rest.split_once(" parent=").unwrap();
    let mut words: Vec<String> = Vec::new();
    for w in text.split(' ') {
        let w = if w.starts_with("duration_us=") && w[12..].parse::<u64>().is_ok() {
            "duration_us=_".to_string()
        } else if let Some(p) = w
            .strip_prefix("peer=127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
        {
            assert!(
                !ports.iter().any(|(q, _)| *q == p),
                "{l}: the peer is the client's own address"
            );
            "peer=127.0.0.1:_".to_string()
        } else {
            ports.iter().fold(w.to_string(), |w, (p, name)| {
                w.replace(&format!("127.0.0.1:{p}"), name)
            })
        };
        words.push(w);
    }
    (words.join(" "), trace.into(), span.into(), parent.into())
}

/// The lines of one trace as a tree: each line's text followed by its parent's, recursively
/// (`incoming` for the traceparent the request came with, `root`), sorted.
fn tree(lines: &[(String, String, String, String)], trace: &str, incoming: &str) -> Vec<String> {
    let of: Vec<&(String, String, String, String)> =
        lines.iter().filter(|l| l.1 == trace).collect();
    type Line = (String, String, String, String);
    let describe = |first: &Line| {
        let mut l = first;
        let mut chain = vec![l.0.clone()];
        loop {
            match of.iter().copied().find(|p| p.2 == l.3) {
                Some(p) if chain.len() < 10 => {
                    chain.push(p.0.clone());
                    l = p;
                }
                _ => {
                    chain.push(if l.3 == incoming {
                        "incoming".into()
                    } else if l.3 == "0000000000000000" {
                        "root".into()
                    } else {
                        format!("unknown {}", l.3)
                    });
                    break;
                }
            }
        }
        chain.join(" <- ")
    };
    let mut v: Vec<String> = of.iter().map(|l| describe(l)).collect();
    v.sort();
    v
}

/// The generated script against a real `--probes` build doing database/sql queries and gRPC
/// calls (crates/gotap-cli/tests/go/grpchttp: GET /q → gRPC Run → SELECT + GET /leaf; GET /fail
/// → gRPC Fail → a failing statement, NOT_FOUND): every site's line with the values the program
/// passes, and the trace tree the ids describe (the HTTP client in the gRPC handler is the gRPC
/// server span's child). Go 1.26 full and Go 1.27 stripped. Requests are repeated, each in its
/// own trace, until one round is complete: bpftrace attaches its probes one after the other.
#[test]
fn bpftrace_prints_sql_and_grpc() {
    require_root();
    const PARENT: &str = "00f067aa0ba902b7";
    for (tc, tag, flags) in [
        (Toolchain::Go126, "full", &[][..]),
        (Toolchain::Go127, "stripped", &["-ldflags=-s -w"][..]),
    ] {
        let bin = grpchttp(tc, tag, flags);
        let script = sibling(&bin, ".bt");
        let (code, _, err) = gotap(&["probes", "bpftrace", s(&bin), "-o", s(&script)]);
        assert_eq!(code, 0, "{err}");
        let text = std::fs::read_to_string(&script).unwrap();
        for probe in [
            "http_server",
            "http_client",
            "sql_query",
            "grpc_server",
            "grpc_client",
        ] {
            assert!(
                text.contains(&format!(":gotap:{probe}\n")),
                "{probe} missing:\n{text}"
            );
        }

        let dir = std::env::temp_dir().join(format!(
            "gotap-probes-cli-{}-grpchttp-{}",
            std::process::id(),
            tc.label()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, gport) = (gotap_testkit::free_port(), gotap_testkit::free_port());
        let (bt, bt_rx) = start_bpftrace(&script);
        let (_app, app_rx) = spawn_lines(
            Command::new(&bin)
                .env("ADDR", format!("127.0.0.1:{port}"))
                .env("GRPC_ADDR", format!("127.0.0.1:{gport}"))
                .env("DB", dir.join("app.db")),
        );
        let ports = [(port, "HTTP"), (gport, "GRPC")];
        let q_want = vec![
            r#"client GET http://HTTP/leaf status=200 duration_us=_ error="" <- grpc-server /gotap.test.Q/Run peer=127.0.0.1:_ code=0 duration_us=_ message="" <- grpc-client /gotap.test.Q/Run target=GRPC code=0 duration_us=_ message="" <- server GET /q status=200 duration_us=_ route="GET /q" <- incoming"#,
            r#"grpc-client /gotap.test.Q/Run target=GRPC code=0 duration_us=_ message="" <- server GET /q status=200 duration_us=_ route="GET /q" <- incoming"#,
            r#"grpc-server /gotap.test.Q/Run peer=127.0.0.1:_ code=0 duration_us=_ message="" <- grpc-client /gotap.test.Q/Run target=GRPC code=0 duration_us=_ message="" <- server GET /q status=200 duration_us=_ route="GET /q" <- incoming"#,
            r#"server GET /leaf status=200 duration_us=_ route="GET /leaf" <- client GET http://HTTP/leaf status=200 duration_us=_ error="" <- grpc-server /gotap.test.Q/Run peer=127.0.0.1:_ code=0 duration_us=_ message="" <- grpc-client /gotap.test.Q/Run target=GRPC code=0 duration_us=_ message="" <- server GET /q status=200 duration_us=_ route="GET /q" <- incoming"#,
            r#"server GET /q status=200 duration_us=_ route="GET /q" <- incoming"#,
            r#"sql modernc.org/sqlite query="SELECT 40 + 2" failed=0 duration_us=_ error="" error_type="" <- grpc-server /gotap.test.Q/Run peer=127.0.0.1:_ code=0 duration_us=_ message="" <- grpc-client /gotap.test.Q/Run target=GRPC code=0 duration_us=_ message="" <- server GET /q status=200 duration_us=_ route="GET /q" <- incoming"#,
        ];
        let fail_want = vec![
            r#"grpc-client /gotap.test.Q/Fail target=GRPC code=5 duration_us=_ message="nothing here" <- server GET /fail status=502 duration_us=_ route="GET /fail" <- incoming"#,
            r#"grpc-server /gotap.test.Q/Fail peer=127.0.0.1:_ code=5 duration_us=_ message="nothing here" <- grpc-client /gotap.test.Q/Fail target=GRPC code=5 duration_us=_ message="nothing here" <- server GET /fail status=502 duration_us=_ route="GET /fail" <- incoming"#,
            r#"server GET /fail status=502 duration_us=_ route="GET /fail" <- incoming"#,
            r#"sql modernc.org/sqlite query="DELETE FROM missing" failed=1 duration_us=_ error="SQL logic error: no such table: missing (1)" error_type="*sqlite.Error" <- grpc-server /gotap.test.Q/Fail peer=127.0.0.1:_ code=5 duration_us=_ message="nothing here" <- grpc-client /gotap.test.Q/Fail target=GRPC code=5 duration_us=_ message="nothing here" <- server GET /fail status=502 duration_us=_ route="GET /fail" <- incoming"#,
        ];

        let mut raw = Vec::new();
        let mut done = None;
        let deadline = Instant::now() + Duration::from_secs(90);
        for round in 1u32.. {
            assert!(
                Instant::now() < deadline,
                "{} {tag}: no complete round of lines; got {raw:?}",
                tc.label()
            );
            if round == 1 {
                // The program listens once it has started.
                while !gotap_testkit::listening(port) {
                    assert!(
                        Instant::now() < deadline,
                        "grpchttp does not listen: {:?}",
                        app_rx.try_iter().collect::<Vec<_>>()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let (q_trace, fail_trace) = (
                format!("4bf92f3577b34da6a3ce929d{round:08x}"),
                format!("5bf92f3577b34da6a3ce929d{round:08x}"),
            );
            let tp = |t: &str| format!("00-{t}-{PARENT}-01");
            assert_eq!(get(port, "/q", &tp(&q_trace)), (200, "ok\n".to_string()));
            assert_eq!(get(port, "/fail", &tp(&fail_trace)).0, 502);
            // This round's ten lines, or the next round (lines arrive late only when the probe
            // attached in between, which the next round's complete set shows).
            let until = Instant::now() + Duration::from_secs(2);
            loop {
                drain(&bt_rx, &mut raw);
                let parsed: Vec<_> = raw
                    .iter()
                    .filter(|l| l.contains(" trace="))
                    .map(|l| parse_line(l, &ports))
                    .collect();
                if parsed
                    .iter()
                    .filter(|l| l.1 == q_trace || l.1 == fail_trace)
                    .count()
                    >= 10
                {
                    done = Some((
                        tree(&parsed, &q_trace, PARENT),
                        tree(&parsed, &fail_trace, PARENT),
                    ));
                    break;
                }
                if Instant::now() > until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if done.is_some() {
                break;
            }
        }
        stop_bpftrace(bt);
        let (q, fail) = done.unwrap();
        assert_eq!(q, q_want, "{} {tag}: GET /q", tc.label());
        assert_eq!(fail, fail_want, "{} {tag}: GET /fail", tc.label());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::remove_file(&script).unwrap();
    }
}

/// One GET with a `traceparent`, on a new connection: (status, body).
fn get(port: u16, path: &str, traceparent: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ntraceparent: {traceparent}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {raw:?}"));
    (
        head.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        body.to_string(),
    )
}

/// `bpftrace -l` lists the probes of an annotated binary.
#[test]
fn bpftrace_lists_the_probes() {
    require_root();
    let bin = annotated(Toolchain::Go127, Variant::default(), "bpftrace-l");
    let abs = std::fs::canonicalize(&bin).unwrap();
    let out = Command::new(bpftrace_path())
        .arg("-l")
        .arg(format!("usdt:{}:*", abs.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            format!("usdt:{}:gotap:http_client", abs.display()),
            format!("usdt:{}:gotap:http_server", abs.display())
        ]
    );
    std::fs::remove_file(&bin).unwrap();
}
