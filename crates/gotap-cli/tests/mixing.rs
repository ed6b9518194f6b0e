//! One tracer per process (issue #22, "Mixing strategies goes undetected"): a second gotap on a
//! process another gotap traces is refused in one line with a non-zero exit, and the first one
//! keeps tracing, no span twice. Function probes (`gotap run` of a plain httpsvc, then `gotap
//! attach` on it), probe sites (`gotap build --probes`: a second `gotap attach` while one is
//! attached, and `gotap attach` on a `gotap run`), and another tracer that no claim shows:
//! bpftrace enabling the sites, seen by their USDT semaphore. Real processes, real uprobes (root).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{bin_dir, free_port, repo_root, require_root, Toolchain, Variant};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `gotap build --probes` of go/services/httpsvc (its own output name: other test binaries build
/// theirs at the same time).
fn httpsvc_probes() -> PathBuf {
    let out = bin_dir().join("httpsvc-mixing-probes-go1.26");
    gotap_testkit::build_once(&out, || {
        let res = Command::new(GOTAP)
            .current_dir(repo_root().join("go/services"))
            .args(["build", "--probes", "-o"])
            .arg(&out)
            .arg("./httpsvc")
            .env("GOTAP_GO", Toolchain::Go126.go())
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-modcacherw")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "gotap build --probes failed:\n{}",
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

fn file_flags(file: &Path) -> Vec<String> {
    vec![
        "--no-console".into(),
        "--output-file".into(),
        file.display().to_string(),
    ]
}

fn attach(file: &Path, pid: u32, what: &str) -> Proc {
    let mut cmd = Command::new(GOTAP);
    cmd.arg("attach")
        .args(file_flags(file))
        .args(["--pid", &pid.to_string()]);
    Proc::spawn(cmd, what)
}

/// Waits until `p`'s stderr says it traces something.
fn wait_tracing(p: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p.stderr.text().contains("gotap: tracing ") {
        assert!(p.alive(), "{} exited: {}", p.what, p.stderr.text());
        assert!(
            Instant::now() < deadline,
            "{} never attached: {}",
            p.what,
            p.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The second tracer's refusal: exit code 2 and a single line that contains `want`.
fn assert_refused(second: Proc, want: &str) -> String {
    let f = second.wait(Duration::from_secs(60));
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(f.code, Some(2), "second tracer: {f:?}");
    assert_eq!(lines.len(), 1, "one line: {:?}", f.stderr);
    assert!(lines[0].starts_with("gotap: "), "{}", lines[0]);
    assert!(lines[0].contains(want), "{}", lines[0]);
    lines[0].to_string()
}

/// `/users/N` server spans in an OTLP/JSON file, by path.
fn server_paths(file: &Path) -> Vec<String> {
    let spans = parse_otlp_json_lines(&std::fs::read_to_string(file).unwrap_or_default());
    let mut v: Vec<String> = spans
        .iter()
        .filter(|s| s.kind == 2)
        .filter_map(|s| s.str("url.path").map(str::to_string))
        .collect();
    v.sort();
    v
}

fn get_user(port: u16, id: u32) {
    assert_eq!(
        http(port, "GET", &format!("/users/{id}"), &[]),
        (200, format!("M user {id}\n"))
    );
}

/// Function probes: `gotap run` traces httpsvc; a `gotap attach` on it is refused, naming the
/// first gotap; the first one still traces the requests after the refusal, each span once.
#[test]
fn attach_on_a_gotap_run_of_function_probes_is_refused() {
    require_root();
    let dir = scratch("mixing-fn");
    let bin = httpsvc(Toolchain::Go126, Variant::default());
    let (first, second) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    let port = free_port();
    let mut g1 = gotap_run(
        &file_flags(&first),
        &bin,
        &svc_args(port, "M", None),
        "gotap run",
    );
    wait_listening(port, &mut g1);
    let pid = g1.pid_of_child();
    // Killed if an assertion fails (Proc's drop kills gotap, which leaves its program running).
    let _child = Reap(pid);
    get_user(port, 1);

    let line = assert_refused(
        attach(&second, pid, "second gotap attach"),
        &format!(
            "process {pid} is already traced by another gotap (pid {})",
            g1.pid()
        ),
    );
    eprintln!("refused: {line}");
    get_user(port, 2);

    let f = g1.interrupt();
    // The hits by library: two server spans, each an entry and a return probe of net/http.
    let summary = f.stderr.lines().last().unwrap_or("");
    assert!(
        summary.contains(" probe hits: net/http 4") && summary.contains(" spans exported ("),
        "{summary}"
    );
    assert_eq!(
        server_paths(&first),
        ["/users/1", "/users/2"],
        "{}",
        f.stderr
    );
    assert!(
        server_paths(&second).is_empty(),
        "the refused gotap exported nothing"
    );
}

/// Probe sites: a second `gotap attach` while one is attached, and a `gotap attach` on a
/// `gotap run`, are refused; the first tracer's spans arrive once each.
#[test]
fn a_second_tracer_of_probe_sites_is_refused() {
    require_root();
    let dir = scratch("mixing-sites");
    let bin = httpsvc_probes();

    // attach + attach
    let port = free_port();
    let mut svc = plain(&bin, &svc_args(port, "M", None), "httpsvc (probe sites)");
    wait_listening(port, &mut svc);
    let (first, second) = (dir.join("a1.jsonl"), dir.join("a2.jsonl"));
    let mut g1 = attach(&first, svc.pid(), "first gotap attach");
    wait_tracing(&mut g1);
    assert!(
        g1.stderr.text().contains("probe sites"),
        "{}",
        g1.stderr.text()
    );
    get_user(port, 1);
    assert_refused(
        attach(&second, svc.pid(), "second gotap attach"),
        &format!(
            "process {} is already traced by another gotap (pid {})",
            svc.pid(),
            g1.pid()
        ),
    );
    get_user(port, 2);
    // Batch sites: the last buffer reaches gotap within its delay; the SIGINT waits for it.
    let f = g1.interrupt();
    assert_eq!(
        server_paths(&first),
        ["/users/1", "/users/2"],
        "{}",
        f.stderr
    );
    assert!(server_paths(&second).is_empty());
    assert!(svc.alive(), "the service survives both");
    drop(svc);

    // run + attach
    let port = free_port();
    let (first, second) = (dir.join("r1.jsonl"), dir.join("r2.jsonl"));
    let mut g1 = gotap_run(
        &file_flags(&first),
        &bin,
        &svc_args(port, "M", None),
        "gotap run (probe sites)",
    );
    wait_listening(port, &mut g1);
    let pid = g1.pid_of_child();
    // Killed if an assertion fails (Proc's drop kills gotap, which leaves its program running).
    let _child = Reap(pid);
    get_user(port, 3);
    assert_refused(
        attach(&second, pid, "gotap attach on gotap run"),
        &format!(
            "process {pid} is already traced by another gotap (pid {})",
            g1.pid()
        ),
    );
    get_user(port, 4);
    let f = g1.interrupt();
    assert_eq!(
        server_paths(&first),
        ["/users/3", "/users/4"],
        "{}",
        f.stderr
    );
    assert!(server_paths(&second).is_empty());
}

/// A tracer that holds no gotap claim (bpftrace here; a gotap in another PID namespace alike)
/// has raised the sites' semaphore: `gotap attach` is refused on it, and attaches once bpftrace
/// has gone (so the refusal was bpftrace's doing).
#[test]
fn probe_sites_another_tracer_enabled_are_refused() {
    require_root();
    let dir = scratch("mixing-bpftrace");
    // A copy of its own: bpftrace enables the sites of every process running the file, the
    // other tests' services too.
    let bin = dir.join("httpsvc-probes");
    gotap_testkit::install_exe(&httpsvc_probes(), &bin);
    let port = free_port();
    let mut svc = plain(&bin, &svc_args(port, "M", None), "httpsvc (probe sites)");
    wait_listening(port, &mut svc);

    let script = format!(
        "usdt:{}:gotap:http_server {{ @n = count(); }}",
        bin.display()
    );
    let mut bt = Command::new("bpftrace")
        .args(["-e", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bpftrace (Debian package bpftrace)");
    let bt_pid = bt.id();
    let _reap = Reap(bt_pid);
    // Enabled once the semaphore is up (the kernel raises it for every mapping of the file).
    let deadline = Instant::now() + Duration::from_secs(60);
    while semaphore(svc.pid(), &bin, "http_server") == 0 {
        assert!(bt.try_wait().unwrap().is_none(), "bpftrace exited");
        assert!(Instant::now() < deadline, "bpftrace never enabled the site");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.join("refused.jsonl");
    let line = assert_refused(
        attach(&out, svc.pid(), "gotap attach beside bpftrace"),
        "its probe sites are already enabled by another tracer (the semaphore of gotap:http_server is 1",
    );
    eprintln!("refused: {line}");

    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(bt_pid as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(60);
    while bt.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "bpftrace did not stop");
        unsafe { libc::kill(bt_pid as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(200));
    }
    let ok = dir.join("after.jsonl");
    let mut g = attach(&ok, svc.pid(), "gotap attach after bpftrace");
    wait_tracing(&mut g);
    get_user(port, 5);
    let f = g.interrupt();
    assert_eq!(f.code, Some(0), "{f:?}");
    assert_eq!(server_paths(&ok), ["/users/5"], "{}", f.stderr);
}

/// Kills a child left running by a failed assertion.
struct Reap(u32);
impl Drop for Reap {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

/// The value of USDT probe `name`'s semaphore in process `pid` (read through /proc/PID/mem).
fn semaphore(pid: u32, bin: &Path, name: &str) -> u16 {
    use std::os::unix::fs::FileExt;
    let probes = gotap_binary::usdt::read_probes(&std::fs::read(bin).unwrap()).unwrap();
    let off = probes
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no probe {name}"))
        .semaphore_offset
        .expect("a semaphore");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let addr = maps
        .lines()
        .filter(|l| l.ends_with(bin.to_str().unwrap()))
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (lo, hi) = f[0].split_once('-')?;
            let (lo, hi) = (
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
            );
            let foff = u64::from_str_radix(f[2], 16).ok()?;
            (foff <= off && off < foff + (hi - lo)).then(|| lo + off - foff)
        })
        .unwrap_or_else(|| panic!("semaphore not mapped:\n{maps}"));
    let mut b = [0u8; 2];
    std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap()
        .read_exact_at(&mut b, addr)
        .unwrap();
    u16::from_le_bytes(b)
}
