//! Nothing lost when a signal ends things (docs/build.md, "Signals"):
//!
//! - a woven service (crates/gotap-cli/tests/go/sigapp, `gotap build` with Go 1.26 and 1.27, a
//!   batch delay of a minute) stopped by SIGTERM or SIGINT one second after its last request
//!   delivers its spans to the real Collector and still dies of the signal; one with its own
//!   SIGTERM handler leaves by its own shutdown path, with its spans, and is not killed by the
//!   runtime;
//! - a woven short-lived command with no collector says how many spans went nowhere, where, and
//!   why (connection refused), without waiting for the exit flush's bound;
//! - `gotap build` interrupted by SIGINT forwards it to the go command, removes its temporary
//!   directory and fails; the next build removes the directories of gotaps killed by SIGKILL,
//!   never those of a live one.
use gotap_testkit::collector::Collector;
use gotap_testkit::{bin_dir, free_port, gotap_command, Proc, Toolchain};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn sigapp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/sigapp")
}

fn build(tc: Toolchain) -> PathBuf {
    gotap_testkit::gotap_build_once(&sigapp_dir(), tc, &format!("sigapp-woven-{}", tc.label()))
}

/// Waits for `child` to end, at most `within` (a hang guard: a program the runtime kept from
/// stopping fails here).
fn wait_exit(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory preconditions.
    assert_eq!(
        unsafe { libc::kill(pid as i32, sig) },
        0,
        "kill {pid} {sig}"
    );
}

/// One `GET /hello/<n>` on a connection of its own, read to the end.
fn get(addr: &str, n: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /hello/{n} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "response: {resp}");
}

/// Starts sigapp (service `service`, `mode`), makes 10 requests, waits a second — the batch
/// delay is a minute, so nothing has been exported —, sends `sig`, and returns how it ended, its
/// output and the service's spans in the Collector.
fn serve_then_signal(
    bin: &Path,
    col: &Collector,
    service: &str,
    mode: &str,
    sig: i32,
) -> (ExitStatus, String, String, usize) {
    let mut cmd = Command::new(bin);
    // The program under test starts with the default dispositions, as under a service manager or
    // an interactive shell: a test run started in the background of a non-interactive shell
    // inherits SIGINT ignored, and a signal ignored at start is rightly left alone by the runtime.
    // SAFETY: signal() is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd
        .env("SIGAPP_MODE", mode)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("OTEL_SERVICE_NAME", service)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let mut stdout = BufReader::new(proc.0.stdout.take().unwrap());
    let mut addr = String::new();
    stdout.read_line(&mut addr).unwrap();
    let addr = addr.trim().to_owned();
    assert!(!addr.is_empty(), "{service}: no address printed");
    for n in 0..10 {
        get(&addr, n);
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        col.spans().iter().all(|s| s.service != service),
        "{service}: spans exported before the signal: the test would prove nothing"
    );
    signal(proc.0.id(), sig);
    let st = wait_exit(&mut proc.0, Duration::from_secs(15), service);
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    proc.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let spans = col.wait_for(Duration::from_secs(20), |spans| {
        spans.iter().filter(|s| s.service == service).count() >= 10
    });
    let mine: Vec<_> = spans.iter().filter(|s| s.service == service).collect();
    assert!(
        mine.iter()
            .all(|s| s.name == "GET /hello/{n}" && s.scope == "gotap/net/http/server"),
        "{service}: {mine:?}"
    );
    (st, out, err, mine.len())
}

fn no_handler(tc: Toolchain, sig: i32, name: &str) {
    let bin = build(tc);
    let col = Collector::start(&format!("gotap-build-signals-{name}-{}", tc.label()));
    let service = format!("sig-{name}");
    let (st, _, err, n) = serve_then_signal(&bin, &col, &service, "", sig);
    assert_eq!(
        st.signal(),
        Some(sig),
        "{}: the process must still die of {name}: {st:?}, stderr:\n{err}",
        tc.label()
    );
    assert_eq!(
        n,
        10,
        "{}: spans delivered after {name}; stderr:\n{err}",
        tc.label()
    );
}

#[test]
fn sigterm_flushes_then_kills_go126() {
    no_handler(Toolchain::Go126, libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigterm_flushes_then_kills_go127() {
    no_handler(Toolchain::Go127, libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_flushes_then_kills_go126() {
    no_handler(Toolchain::Go126, libc::SIGINT, "SIGINT");
}

/// The program's own handler (signal.NotifyContext, registered after the runtime's) gets the
/// signal; the runtime neither kills the process nor flushes: the program's return from main
/// does, after its graceful shutdown.
fn own_handler(tc: Toolchain) {
    let bin = build(tc);
    let col = Collector::start(&format!("gotap-build-signals-own-{}", tc.label()));
    let (st, out, err, n) = serve_then_signal(&bin, &col, "sig-own", "own", libc::SIGTERM);
    assert_eq!(
        (st.code(), st.signal()),
        (Some(0), None),
        "{}: the program's own shutdown path must end it: {st:?}, stderr:\n{err}",
        tc.label()
    );
    assert!(
        out.contains("sigapp: graceful shutdown"),
        "{}: stdout: {out}",
        tc.label()
    );
    assert_eq!(
        n,
        10,
        "{}: spans after the graceful shutdown; stderr:\n{err}",
        tc.label()
    );
}

#[test]
fn own_sigterm_handler_keeps_its_shutdown_go126() {
    own_handler(Toolchain::Go126);
}

#[test]
fn own_sigterm_handler_keeps_its_shutdown_go127() {
    own_handler(Toolchain::Go127);
}

/// No collector: the exit flush reports the lost spans with the endpoint and the cause, and a
/// refused connection is not retried until the flush's bound.
#[test]
fn no_collector_at_exit_reports_connection_refused_go126() {
    let bin = build(Toolchain::Go126);
    let port = free_port(); // free a moment ago: nothing listens there
    let start = Instant::now();
    let res = Command::new(&bin)
        .env("SIGAPP_MODE", "oneshot")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .output()
        .unwrap();
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    let want = format!(
        "gotap: 2 spans not exported at exit to http://127.0.0.1:{port}/v1/traces: connection refused"
    );
    assert!(
        err.lines().any(|l| l == want),
        "stderr must say {want:?}; it is:\n{err}"
    );
    assert!(!err.contains("deadline exceeded"), "stderr:\n{err}");
    // Hang guard only: the exit flush's bound is 3 s, and a refusal must not wait for it.
    assert!(took < Duration::from_millis(2500), "exit took {took:?}");
}

/// `$TMPDIR` of one test: gotap's temporary directories are looked for there only.
fn private_tmp(name: &str) -> PathBuf {
    let d = bin_dir().join(format!("tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gotap_dirs(tmp: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gotap-build-"))
        .collect();
    v.sort();
    v
}

/// SIGINT to gotap alone (as `kill -INT` would; a terminal's Ctrl-C also reaches the go command)
/// in the middle of a build: gotap forwards it, waits for the go command, removes its directory
/// and exits with 130.
#[test]
fn interrupted_build_removes_its_temporary_directory() {
    let tmp = private_tmp("interrupt");
    // An empty build cache: the build compiles the standard library, so it is surely still
    // running when the signal comes.
    let gocache = tmp.join("gocache");
    let out = tmp.join("sigapp");
    let child = gotap_command(Toolchain::Go126)
        .current_dir(sigapp_dir())
        .env("TMPDIR", &tmp)
        .env("GOCACHE", &gocache)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    // The go build has started once the plan is written (the last file before it).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let dirs = gotap_dirs(&tmp);
        if dirs.iter().any(|d| tmp.join(d).join("plan.json").exists()) {
            break;
        }
        assert!(
            proc.0.try_wait().unwrap().is_none(),
            "gotap build ended before the go command started"
        );
        assert!(
            Instant::now() < deadline,
            "no plan.json in {}",
            tmp.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        proc.0.try_wait().unwrap().is_none(),
        "the build finished before the signal: the test would prove nothing"
    );
    signal(proc.0.id(), libc::SIGINT);
    let st = wait_exit(
        &mut proc.0,
        Duration::from_secs(60),
        "interrupted gotap build",
    );
    let mut err = String::new();
    proc.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!st.success(), "an interrupted build must fail: {st:?}");
    assert_eq!(st.code(), Some(130), "128 + SIGINT: {st:?}, stderr:\n{err}");
    assert_eq!(gotap_dirs(&tmp), Vec::<String>::new(), "left behind");
    assert!(!out.exists(), "no executable from an interrupted build");
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&tmp)
        .status();
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Field 22 of /proc/PID/stat, as gotap records it in a directory's `owner` file.
fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().to_owned()
}

/// A directory left by a gotap killed by SIGKILL (its pid gone) is removed by the next build;
/// one whose owner is alive stays.
#[test]
fn next_build_removes_directories_of_dead_gotaps_only() {
    let tmp = private_tmp("stale");
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap(); // reaped: the pid is free
    let stale = tmp.join(format!("gotap-build-{dead_pid}-1"));
    std::fs::create_dir_all(stale.join("sub")).unwrap();
    std::fs::write(stale.join("owner"), format!("{dead_pid} 1\n")).unwrap();
    std::fs::write(stale.join("sub/plan.json"), "{}").unwrap();
    // Owned by a live process: this test's.
    let me = std::process::id();
    let live = tmp.join(format!("gotap-build-{me}-2"));
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("owner"), format!("{me} {}\n", start_time(me))).unwrap();

    let bin = build(Toolchain::Go126); // warm caches for the build below
    let _ = bin;
    let res = gotap_command(Toolchain::Go126)
        .current_dir(sigapp_dir())
        .env("TMPDIR", &tmp)
        .args(["build", "-o"])
        .arg(tmp.join("sigapp"))
        .arg(".")
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(!stale.exists(), "directory of a dead gotap kept");
    assert!(live.exists(), "directory of a live gotap removed");
    assert_eq!(
        gotap_dirs(&tmp),
        vec![format!("gotap-build-{me}-2")],
        "only the live owner's directory remains"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
