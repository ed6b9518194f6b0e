//! `gotap build --probes` end to end on go/services/httpsvc with Go 1.26 and 1.27, full and
//! stripped: the net/http sites are in the binary with their 5-byte NOP, the USDT notes point at
//! them, the program serves exactly like the plain build while no tracer is attached, the user's
//! module (files and module graph) is untouched, and the build cache is reused but never leaks
//! probe objects into a plain build. Attaching to the sites is tested with `gotap run`
//! (crates/gotap-ebpf).
use gotap_binary::usdt::{read_probes, SITE_BATCH_PROLOGUE, SITE_EVENT_PROLOGUE};
use gotap_binary::GoBinary;
use gotap_testkit::{bin_dir, free_port, gotap_bin, repo_root, Toolchain};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// A first probe build recompiles the standard library: one build at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const SITES: [(&str, &str); 3] = [
    ("http_server", "net/http.gotapProbeHTTPServer"),
    ("http_client", "net/http.gotapProbeHTTPClient"),
    ("http_batch", "net/http.gotapProbeBatch"),
];

fn module_dir() -> PathBuf {
    repo_root().join("go/services")
}

fn gotap(tc: Toolchain, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(gotap_bin())
        .current_dir(dir)
        .args(args)
        .env("GOTAP_GO", tc.go())
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .env_remove("GOTAP_WEAVE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `gotap build --probes [flags] -o <bin> ./httpsvc`; panics with gotap's stderr on failure.
fn build_probes(tc: Toolchain, flags: &[&str], label: &str) -> PathBuf {
    let out = bin_dir().join(format!("httpsvc-probes-{}-{label}", tc.label()));
    gotap_testkit::build_once(&out, || {
        let o = out.display().to_string();
        let mut args = vec!["build", "--probes"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-o", &o, "./httpsvc"]);
        let res = gotap(tc, &module_dir(), &args, &[]);
        assert!(
            res.status.success(),
            "gotap build --probes {flags:?} with {} failed:\n{}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

fn plain_build(tc: Toolchain, flags: &[&str], label: &str) -> PathBuf {
    let out = bin_dir().join(format!("httpsvc-plain-{}-{label}", tc.label()));
    gotap_testkit::build_once(&out, || {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let res = tc
            .command()
            .current_dir(module_dir())
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg("./httpsvc")
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "go build failed: {}",
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// The sites start with the 5-byte NOP (found through pclntab, so also in stripped binaries) and
/// the USDT notes — read by binutils' readelf and by gotap-binary — name exactly those addresses
/// and net/http's semaphore (the batch site: its own).
fn check_sites(bin: &Path) {
    let go = GoBinary::open(bin).unwrap();
    let mut entries = BTreeMap::new();
    for (probe, func) in SITES {
        let f = go
            .function(func)
            .or_else(|| go.function(&format!("{func}.abi0")))
            .unwrap_or_else(|| panic!("{func} not in {}", bin.display()));
        // The event ABI (the batch site: its buffer) in two registers, then the nop5 the probe
        // sits on.
        let head = go.read_vaddr(f.entry, 15).unwrap();
        let prologue = if probe == "http_batch" {
            SITE_BATCH_PROLOGUE
        } else {
            SITE_EVENT_PROLOGUE
        };
        assert_eq!(
            (&head[..10], &head[10..]),
            (&prologue[..], &NOP5[..]),
            "{func} does not start with the site prologue and the 5-byte NOP"
        );
        entries.insert(probe, f.entry + 10);
    }
    let readelf = Command::new("readelf").arg("-n").arg(bin).output().unwrap();
    let text = String::from_utf8_lossy(&readelf.stdout);
    assert!(
        readelf.status.success(),
        "readelf -n failed: {}",
        String::from_utf8_lossy(&readelf.stderr)
    );
    for (probe, entry) in &entries {
        let needle = format!("Provider: gotap\n    Name: {probe}\n    Location: 0x{entry:016x}");
        assert!(
            text.contains(&needle),
            "readelf -n has no {needle:?}:\n{text}"
        );
    }
    let probes = read_probes(&std::fs::read(bin).unwrap()).unwrap();
    assert_eq!(probes.len(), 3, "{probes:#?}");
    for p in &probes {
        assert_eq!(
            (p.provider.as_str(), Some(p.address)),
            ("gotap", entries.get(p.name.as_str()).copied()),
            "{p:#?}"
        );
        // The per-span sites share net/http's semaphore; the batch site has its own.
        assert!(p.semaphore.is_some(), "{p:#?}");
        assert_eq!(
            p.semaphore == probes[0].semaphore,
            p.name != "http_batch",
            "{probes:#?}"
        );
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts httpsvc; returns it with its port once it listens.
fn start(bin: &Path, name: &str, downstream: Option<u16>) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-listen", &format!("127.0.0.1:{port}"), "-name", name]);
    if let Some(d) = downstream {
        cmd.args(["-downstream", &format!("http://127.0.0.1:{d}")]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "httpsvc said {line:?}");
    (Proc(child), port)
}

/// One GET over a fresh connection: status line and body (headers such as Date left out).
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: svc\r\nUser-Agent: gotap-test/1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// What a client and the services' own stdout see for a fixed set of requests, through a
/// front service (server site) that calls a backend (client site).
fn scenario(bin: &Path, backend_bin: &Path) -> (Vec<(String, String)>, String) {
    let (backend, backend_port) = start(backend_bin, "B", None);
    let (mut front, port) = start(bin, "A", Some(backend_port));
    let mut answers = Vec::new();
    for path in ["/users/7", "/fanout", "/fail", "/notfound", "/healthz"] {
        answers.push(get(port, path));
    }
    // Each log line is printed before the handler returns, so before the response ends.
    let mut stdout = front.0.stdout.take().unwrap();
    let _ = front.0.kill();
    let _ = front.0.wait();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    drop(backend);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    (answers, lines.join("\n"))
}

/// With no tracer attached (semaphore 0) the probe build answers and logs exactly like the
/// plain build, both as the server and as the client of its backend.
fn check_serves_like_plain(probed: &Path, plain: &Path) {
    let want = scenario(plain, plain);
    let got = scenario(probed, probed);
    assert_eq!(got, want);
    assert_eq!(want.0[0].0, "HTTP/1.1 200 OK");
    assert!(
        want.0[0].1.contains("A user 7 via [200 B user 7]"),
        "{:?}",
        want.0[0]
    );
    assert_eq!(want.1.lines().count(), 5, "{}", want.1);
}

fn probes_for(tc: Toolchain) {
    let full = build_probes(tc, &[], "full");
    check_sites(&full);
    let stripped = build_probes(tc, &["-ldflags=-s -w"], "stripped");
    check_sites(&stripped);
    let plain = plain_build(tc, &["-ldflags=-s -w"], "stripped");
    check_serves_like_plain(&stripped, &plain);
}

#[test]
fn probe_build_go126() {
    probes_for(Toolchain::Go126);
}

/// Go 1.27 here is the toolchain GOTOOLCHAIN downloads into GOMODCACHE, where the go command
/// refuses -overlay: the fragment gets in through toolexec.
#[test]
fn probe_build_go127() {
    probes_for(Toolchain::Go127);
}

fn tree(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            tree(&p, out);
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
}

fn list_modules(tc: Toolchain) -> String {
    let out = tc
        .command()
        .current_dir(module_dir())
        .args(["list", "-m", "all"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// No runtime module in probe mode: the module's files and its module graph stay as they were.
#[test]
fn module_tree_and_graph_untouched() {
    let tc = Toolchain::Go126;
    let mut before = BTreeMap::new();
    tree(&module_dir(), &mut before);
    let modules = list_modules(tc);
    let res = gotap(
        tc,
        &module_dir(),
        &[
            "build",
            "--probes",
            "-x",
            "-o",
            bin_dir().join("httpsvc-probes-graph").to_str().unwrap(),
            "./httpsvc",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        !stderr.contains("-modfile") && !stderr.contains("-overlay") && !stderr.contains("gotaprt"),
        "probe build used the runtime:\n{stderr}"
    );
    let mut after = BTreeMap::new();
    tree(&module_dir(), &mut after);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files added or removed"
    );
    assert!(before == after, "a file of the module changed");
    assert_eq!(list_modules(tc), modules);
}

fn nm(tc: Toolchain, bin: &Path) -> String {
    let out = tc.command().args(["tool", "nm"]).arg(bin).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Compile actions `go build -x` ran (through gotap's toolexec or not).
fn compiles(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("/compile ") && !l.contains("-V=full"))
        .collect()
}

#[test]
fn build_cache_is_reused_and_never_leaks_probe_objects() {
    let tc = Toolchain::Go126;
    build_probes(tc, &[], "full");
    // Second probe build: everything from the cache, net/http included, and still annotated.
    let again = bin_dir().join("httpsvc-probes-again");
    let res = gotap(
        tc,
        &module_dir(),
        &[
            "build",
            "--probes",
            "-x",
            "-o",
            again.to_str().unwrap(),
            "./httpsvc",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        compiles(&stderr).is_empty(),
        "cached probe build recompiled:\n{}",
        compiles(&stderr).join("\n")
    );
    check_sites(&again);

    // Plain go build afterwards: no probe object reused, no site, no notes.
    let plain = plain_build(tc, &[], "after-probes");
    assert!(
        !nm(tc, &plain).contains("gotapProbe"),
        "plain build got probe code"
    );
    assert!(read_probes(&std::fs::read(&plain).unwrap())
        .unwrap()
        .is_empty());
}

/// The tool identities gotap answers: probe and SDK modes never share a cache key, and in probe
/// mode the linker's identity is marked too (cached executables carry notes).
#[test]
fn tool_ids_are_marked_per_mode() {
    let tc = Toolchain::Go126;
    let goroot = String::from_utf8(
        tc.command()
            .args(["env", "GOROOT"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let tools = Path::new(goroot.trim()).join("pkg/tool/linux_amd64");
    let dir = std::env::temp_dir().join(format!("gotap-probes-toolid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let id = |tool: &str, probes: bool| -> String {
        let plan = dir.join(format!("plan-{probes}.json"));
        let json = serde_json::json!({
            "weaver": "/nonexistent", "rules": [], "go_version": tc.version(), "hash": "0123abcd",
            "packages": ["net/http"], "best_effort": false, "runtime_dir": "/nonexistent", "probes": probes,
        });
        std::fs::write(&plan, json.to_string()).unwrap();
        let out = Command::new(gotap_bin())
            .arg("toolexec")
            .arg(tools.join(tool))
            .arg("-V=full")
            .env("GOTAP_WEAVE_CONFIG", &plan)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        id("compile", true).ends_with(&format!(" gotap-probes@{version}+0123abcd")),
        "{}",
        id("compile", true)
    );
    assert!(
        id("compile", false).ends_with(&format!(" gotap@{version}+0123abcd")),
        "{}",
        id("compile", false)
    );
    assert!(
        id("link", true).contains(&format!(" gotap-probes@{version}+0123abcd+notes-")),
        "{}",
        id("link", true)
    );
    // SDK mode leaves the linker alone.
    assert!(
        !id("link", false).contains("gotap"),
        "{}",
        id("link", false)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn other_architectures_are_refused_with_one_line() {
    let res = gotap(
        Toolchain::Go126,
        &module_dir(),
        &["build", "--probes", "./httpsvc"],
        &[("GOARCH", "arm64")],
    );
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("supports linux/amd64 only")
            && err.contains("linux/arm64")
            && err.lines().count() == 1,
        "{err}"
    );
}

/// A backend that answers every request with 200 and remembers the `traceparent` it received
/// ("-" when none).
fn traceparent_backend() -> (u16, std::sync::mpsc::Receiver<String>) {
    let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ln.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in ln.incoming() {
            let Ok(mut s) = conn else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).to_lowercase();
            let tp = text
                .lines()
                .find_map(|l| l.strip_prefix("traceparent: "))
                .unwrap_or("-")
                .trim()
                .to_owned();
            let _ = tx.send(tp);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
            );
        }
    });
    (port, rx)
}

/// What the kernel does when a tracer attaches (uprobe ref_ctr_offset): the semaphore becomes
/// non-zero. Written here through /proc/<pid>/mem, the woven code then runs for real: outgoing
/// requests carry a traceparent, joined to the incoming one when there is one, and the
/// responses are unchanged. (Reading the sites' arguments is crates/gotap-ebpf's test.)
#[test]
fn woven_code_runs_once_the_semaphore_is_set() {
    gotap_testkit::require_root();
    let tc = Toolchain::Go126;
    let bin = build_probes(tc, &[], "full");
    let probes = read_probes(&std::fs::read(&bin).unwrap()).unwrap();
    let semaphore = probes[0].semaphore.expect("no semaphore in the notes");
    let (backend, seen) = traceparent_backend();
    let (svc, port) = start(&bin, "A", Some(backend));
    let recv = || seen.recv_timeout(Duration::from_secs(10)).unwrap();

    assert_eq!(get(port, "/users/1").1, "A user 1 via [200 ok]\n");
    assert_eq!(recv(), "-", "traceparent sent while no tracer is attached");

    {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{}/mem", svc.0.id()))
            .unwrap();
        let mut cur = [0u8; 16];
        mem.read_exact_at(&mut cur, semaphore).unwrap();
        assert_eq!(
            &cur[2..],
            b"gotap-semaphor",
            "the notes' semaphore address is not the semaphore"
        );
        assert_eq!(&cur[..2], &[0, 0]);
        mem.write_all_at(&[1, 0], semaphore).unwrap();
    }
    assert_eq!(get(port, "/users/2").1, "A user 2 via [200 ok]\n");
    let tp = recv();
    let parts: Vec<&str> = tp.split('-').collect();
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && parts[1].len() == 32
            && parts[2].len() == 16
            && parts[3] == "01",
        "{tp}"
    );
    assert_ne!(parts[1], "0".repeat(32));

    // An incoming traceparent is joined: same trace, a new span id (the client span's).
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /users/3 HTTP/1.1\r\nHost: svc\r\ntraceparent: 00-{trace}-b7ad6b7169203331-01\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200 OK") && resp.ends_with("A user 3 via [200 ok]\n"),
        "{resp}"
    );
    let tp = recv();
    assert!(
        tp.starts_with(&format!("00-{trace}-"))
            && tp.ends_with("-01")
            && !tp.contains("b7ad6b7169203331"),
        "{tp}"
    );

    // Invalid ones start a new trace: upper-case hex (W3C allows lower case only), a non-hex
    // digit, an all-zero trace id. The unsampled flag of a valid one is kept.
    let send = |tp: &str, n: u32| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET /users/{n} HTTP/1.1\r\nHost: svc\r\ntraceparent: {tp}\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
        recv()
    };
    let upper = trace.to_uppercase();
    for (bad, n) in [
        (format!("00-{upper}-b7ad6b7169203331-01"), 4),
        (format!("00-{}g-b7ad6b7169203331-01", &trace[..31]), 5),
        (format!("00-{}-b7ad6b7169203331-01", "0".repeat(32)), 6),
    ] {
        let tp = send(&bad, n);
        assert!(
            tp.len() == 55 && !tp.contains(&trace[..16]) && !tp.contains(&upper[..16]),
            "{bad} was joined: {tp}"
        );
    }
    let tp = send(&format!("00-{trace}-b7ad6b7169203331-00"), 7);
    assert!(
        tp.starts_with(&format!("00-{trace}-")) && tp.ends_with("-00"),
        "{tp}"
    );
}

/// `gotap test --probes`: the test binary of a package using net/http gets the sites and notes,
/// and its tests pass.
#[test]
fn gotap_test_probes_builds_annotated_test_binaries() {
    let tc = Toolchain::Go126;
    let dir = std::env::temp_dir().join(format!("gotap-probes-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/t\n\ngo 1.23\n").unwrap();
    std::fs::write(
        dir.join("t_test.go"),
        r#"package t

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestServe(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer s.Close()
	resp, err := http.Get(s.URL)
	if err != nil || resp.StatusCode != 204 {
		t.Fatal(err, resp)
	}
}
"#,
    )
    .unwrap();
    let bin = dir.join("t.test");
    let res = gotap(
        tc,
        &dir,
        &["test", "--probes", "-c", "-o", bin.to_str().unwrap(), "."],
        &[],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    check_sites(&bin);
    let res = gotap(tc, &dir, &["test", "--probes", "-count=1", "."], &[]);
    assert!(
        res.status.success(),
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Position-independent executables (the asm step gets the compiler's -shared) and race builds.
#[test]
fn pie_and_race_probe_builds_have_sites() {
    let tc = Toolchain::Go126;
    check_sites(&build_probes(tc, &["-buildmode=pie"], "pie"));
    check_sites(&build_probes(tc, &["-race"], "race"));
}
