//! End to end, both eBPF paths on the same service: httpsvc A → B built plainly and traced with
//! function uprobes, then built with `gotap build --probes` and traced through its probe sites,
//! both by the real `gotap run` writing OTLP/JSON files. The same requests must give the same
//! spans: names, kinds, attributes, statuses and the same trace trees (parent/child inside each
//! service and across the two, through `traceparent` on the wire, and an adopted incoming
//! `traceparent`). Go 1.26 and 1.27, stripped and not; with Go 1.26 the sites are also traced
//! with OTLP/HTTP as the only exporter, to the real Collector (spans encoded straight from the
//! event into the batch), which must receive the same spans. Runs as root (real uprobes).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{bin_dir, free_port, repo_root, require_root, Toolchain, Variant};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A first probe build recompiles the standard library: one build at a time on a small machine.
static BUILD: Mutex<()> = Mutex::new(());

use ebpf_support::trees::{self, INCOMING_PARENT_ID as PARENT_ID, INCOMING_TRACE_ID as TRACE_ID};

/// `gotap build --probes` of go/services/httpsvc.
fn httpsvc_probes(tc: Toolchain, variant: Variant) -> PathBuf {
    let out = bin_dir().join(format!(
        "httpsvc-e2e-probes-{}-{}",
        tc.label(),
        variant.label()
    ));
    let mut cmd = Command::new(GOTAP);
    cmd.current_dir(repo_root().join("go/services"))
        .args(["build", "--probes"]);
    if variant.stripped {
        cmd.arg("-ldflags=-s -w");
    }
    if variant.pie {
        cmd.arg("-buildmode=pie");
    }
    cmd.arg("-o").arg(&out).arg("./httpsvc");
    cmd.env("GOTAP_GO", tc.go())
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .env("CGO_ENABLED", "0");
    gotap_testkit::build_once(&out, || {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let res = cmd.output().unwrap();
        assert!(
            res.status.success(),
            "gotap build --probes with {} failed:\n{}",
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// What one strategy produced for the request script.
struct Run {
    spans: Vec<FlatSpan>,
    /// gotap's "tracing …" line and summary line, A's then B's.
    stderr: [String; 2],
}

/// B, then A calling B, each under its own `gotap run`; the same requests; both interrupted.
/// Spans go to OTLP/JSON files, or with `collector` only over OTLP/HTTP to the real Collector:
/// the path on which gotap writes each span's protobuf straight from the event into the batch.
fn run(
    bin: &Path,
    dir: &Path,
    label: &str,
    pa: u16,
    pb: u16,
    collector: Option<&Collector>,
    batch: bool,
) -> Run {
    let flags = |svc: &str| {
        let file = dir.join(format!("{label}-{svc}.jsonl"));
        let out = match collector {
            None => ["--output-file".to_string(), file.display().to_string()],
            Some(c) => [
                "--otlp-endpoint".to_string(),
                format!("http://127.0.0.1:{}", c.http_port),
            ],
        };
        let mut f = vec!["--no-console".to_string()];
        if !batch {
            f.push("--no-batch".to_string());
        }
        f.extend(out);
        f.extend(["--service-name".to_string(), svc.to_string()]);
        f
    };
    let mut b = gotap_run(
        &flags("svc-b"),
        bin,
        &svc_args(pb, "B", None),
        &format!("gotap run B ({label})"),
    );
    wait_listening(pb, &mut b);
    let mut a = gotap_run(
        &flags("svc-a"),
        bin,
        &svc_args(pa, "A", Some(pb)),
        &format!("gotap run A ({label})"),
    );
    wait_listening(pa, &mut a);

    // The responses are what the untraced service answers, whatever the build.
    assert_eq!(
        http(pa, "GET", "/users/42?x=1", &[]),
        (200, "A user 42 via [200 B user 42]\n".into()),
        "{label}"
    );
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    assert_eq!(
        http(pa, "GET", "/users/43", &[("traceparent", &tp)]),
        (200, "A user 43 via [200 B user 43]\n".into()),
        "{label}"
    );
    assert_eq!(
        http(pa, "GET", "/fanout", &[]),
        (200, "A fanout [200 B user 1] [200 B user 2]\n".into()),
        "{label}"
    );
    assert_eq!(http(pa, "GET", "/fail", &[]).0, 500, "{label}");
    // Longer than the 256 bytes of url.path both strategies keep: the cut must agree.
    let long = format!("/notfound/{}?q=1", "x".repeat(300));
    assert_eq!(http(pa, "GET", &long, &[]).0, 404, "{label}");
    // Stopping drains the ring buffers and flushes the exporters.
    let fa = a.interrupt();
    let fb = b.interrupt();
    let mut spans = Vec::new();
    match collector {
        None => {
            for svc in ["svc-a", "svc-b"] {
                let file = dir.join(format!("{label}-{svc}.jsonl"));
                spans.extend(parse_otlp_json_lines(
                    &std::fs::read_to_string(&file).unwrap_or_default(),
                ));
            }
        }
        Some(c) => spans = c.wait_for("13 spans", |s| s.len() >= 13),
    }
    Run {
        spans,
        stderr: [fa.stderr, fb.stderr],
    }
}

/// Both strategies agree on everything but ids, times and ephemeral ports.
fn signatures(spans: &[FlatSpan]) -> Vec<String> {
    trees::signatures(spans, &|k, _| {
        (k == "client.port").then(|| Value::from("<ephemeral>"))
    })
}

fn same_spans(tc: Toolchain, variant: Variant, over_otlp: bool) {
    require_root();
    let label = format!("{}-{}", tc.label(), variant.label());
    let dir = scratch(&format!("probes-{label}"));
    let plain_bin = httpsvc(tc, variant);
    let probes_bin = httpsvc_probes(tc, variant);
    let (pa, pb) = (free_port(), free_port());

    let functions = run(&plain_bin, &dir, "functions", pa, pb, None, true);
    let sites = run(&probes_bin, &dir, "sites", pa, pb, None, true);
    let per_span = run(&probes_bin, &dir, "sites-per-span", pa, pb, None, false);
    assert_eq!(
        signatures(&per_span.spans),
        signatures(&sites.spans),
        "{label}: batch sites and per-span sites disagree:\n{}",
        dump(&per_span.spans)
    );
    if over_otlp {
        // The Collector received exactly what the file exporter wrote.
        let collector = Collector::start(&dir);
        let otlp = run(
            &probes_bin,
            &dir,
            "sites-otlp",
            pa,
            pb,
            Some(&collector),
            true,
        );
        assert_eq!(
            signatures(&otlp.spans),
            signatures(&sites.spans),
            "{label}: sites over OTLP/HTTP and to a file disagree:\n{}",
            dump(&otlp.spans)
        );
    }

    // 5 server spans in A, 4 in B, 4 client spans in A.
    for (what, r) in [("function probes", &functions), ("probe sites", &sites)] {
        assert_eq!(r.spans.len(), 13, "{label} {what}:\n{}", dump(&r.spans));
    }
    assert_eq!(
        signatures(&sites.spans),
        signatures(&functions.spans),
        "{label}: sites and function probes disagree"
    );
    let cut = sites
        .spans
        .iter()
        .find_map(|s| s.str("url.path").filter(|p| p.starts_with("/notfound/")))
        .unwrap_or_else(|| {
            panic!(
                "{label}: no span for the long path:\n{}",
                dump(&sites.spans)
            )
        });
    assert_eq!(
        cut,
        &format!("/notfound/{}", "x".repeat(246)),
        "{label}: url.path cut at 256 bytes"
    );
    // The signatures compare trees, not just sets: spot-check the links they encode.
    let a43 = sites
        .spans
        .iter()
        .find(|s| s.service == "svc-a" && s.kind == 2 && s.str("url.path") == Some("/users/43"))
        .unwrap();
    assert_eq!(
        (a43.trace_id.as_str(), a43.parent.as_str()),
        (TRACE_ID, PARENT_ID),
        "{label}"
    );
    let b43 = sites
        .spans
        .iter()
        .find(|s| s.service == "svc-b" && s.str("url.path") == Some("/users/43"))
        .unwrap();
    let c43 = sites
        .spans
        .iter()
        .find(|s| s.span_id == b43.parent)
        .expect("B's parent is A's client span");
    assert_eq!(
        (c43.service.as_str(), c43.kind, c43.parent.as_str()),
        ("svc-a", 3, a43.span_id.as_str()),
        "{label}"
    );

    // Which path each gotap took, and what it cost in probe hits.
    for stderr in &functions.stderr {
        let tracing = stderr
            .lines()
            .find(|l| l.starts_with("gotap: tracing "))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            tracing.ends_with(" probes"),
            "{label}: function probes keep the plain line: {tracing}"
        );
    }
    let optimised = gotap_ebpf::kernel_optimises_nop5();
    let path = if optimised {
        "probe sites (nop5, kernel-optimised)"
    } else {
        "probe sites (int3: this kernel does not optimise nop5 uprobes)"
    };
    let lines = |stderr: &str| {
        let tracing = stderr
            .lines()
            .find(|l| l.starts_with("gotap: tracing "))
            .unwrap_or_else(|| panic!("{stderr}"))
            .to_string();
        let summary = stderr.lines().last().unwrap().to_string();
        assert!(summary.contains(", 0 dropped, "), "{label}: {summary}");
        (tracing, summary)
    };
    for stderr in &per_span.stderr {
        let (tracing, summary) = lines(stderr);
        assert!(
            tracing.ends_with(&format!(
                ": net/http server, net/http client; 2 probes on {path}"
            )),
            "{label}: {tracing}"
        );
        assert_eq!(
            hits_per_span(&summary),
            1.0,
            "{label}: one hit per span: {summary}"
        );
    }
    // Batched: one site for the package, hit once per buffer of spans (here a request's spans
    // end close together: several share a hit).
    for stderr in &sites.stderr {
        let (tracing, summary) = lines(stderr);
        assert!(
            tracing.ends_with(&format!(
                ": net/http server, net/http client; 1 probes on batched {path}"
            )),
            "{label}: {tracing}"
        );
        assert!(hits_per_span(&summary) <= 1.0, "{label}: {summary}");
    }
    assert!(
        sites
            .stderr
            .iter()
            .any(|e| hits_per_span(&lines(e).1) < 1.0),
        "{label}: A's client and server spans of a request share a hit: {:?}",
        sites.stderr
    );
}

#[test]
fn go126_same_spans() {
    same_spans(Toolchain::Go126, Variant::default(), true);
}

#[test]
fn go127_same_spans() {
    same_spans(Toolchain::Go127, Variant::default(), false);
}

#[test]
fn go126_stripped_same_spans() {
    same_spans(
        Toolchain::Go126,
        Variant {
            stripped: true,
            pie: false,
        },
        false,
    );
}

#[test]
fn go127_stripped_same_spans() {
    same_spans(
        Toolchain::Go127,
        Variant {
            stripped: true,
            pie: false,
        },
        false,
    );
}

/// The `(N per span)` figure of gotap's exit summary.
fn hits_per_span(summary: &str) -> f64 {
    summary
        .rsplit_once(" (")
        .and_then(|(_, r)| r.strip_suffix(" per span)"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no hits per span in {summary:?}"))
}

/// The value of the semaphore of probe `name` (`http_server`, `http_batch`) in process `pid`.
/// The semaphore once it reads `want`, or its value after 15 s. gotap exits as soon as it has
/// detached; its `gotap-detach` helper closes the links, and the kernel lowers the semaphores as
/// it removes each uprobe, within a few seconds.
fn semaphore_settled(pid: u32, bin: &Path, name: &str, want: u16) -> u16 {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v = semaphore(pid, bin, name);
        if v == want || std::time::Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

/// `gotap attach` to a running `--probes` build: the path line, spans while attached, and after
/// Ctrl-C the semaphore is back to 0 (the woven code stops preparing arguments) while the service
/// keeps answering.
#[test]
fn attach_and_detach_a_probes_build() {
    require_root();
    let dir = scratch("probes-attach");
    let bin = httpsvc_probes(Toolchain::Go126, Variant::default());
    let port = free_port();
    let mut svc = plain(&bin, &svc_args(port, "S", None), "httpsvc --probes");
    wait_listening(port, &mut svc);
    let (per_span, batch) = ("http_server", "http_batch");
    assert_eq!(semaphore(svc.pid(), &bin, batch), 0, "nobody attached yet");

    let file = dir.join("attach.jsonl");
    let mut cmd = Command::new(GOTAP);
    cmd.args([
        "attach",
        "--no-console",
        "--output-file",
        file.to_str().unwrap(),
        "--service-name",
        "svc-s",
        "--pid",
        &svc.pid().to_string(),
    ]);
    let mut g = Proc::spawn(cmd, "gotap attach");
    let line = g
        .stderr
        .text_containing("gotap: tracing ", Duration::from_secs(60));
    assert!(g.alive(), "gotap attach exited: {line}");
    assert!(
        line.contains("; 1 probes on batched probe sites ("),
        "{line}"
    );
    assert_eq!(semaphore(svc.pid(), &bin, batch), 1, "one tracer");
    assert_eq!(
        semaphore(svc.pid(), &bin, per_span),
        0,
        "the per-span sites stay off: nobody listens to them"
    );

    assert_eq!(http(port, "GET", "/users/5", &[]).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    let f = g.interrupt();
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(
        f.stderr
            .lines()
            .last()
            .unwrap()
            .ends_with("1 probe hits: batch sites 1 (1.0 per span)"),
        "{}",
        f.stderr
    );
    let spans = parse_otlp_json_lines(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(spans.len(), 1, "{}", dump(&spans));
    assert_eq!(
        (spans[0].name.as_str(), spans[0].str("url.path")),
        ("GET /users/{id}", Some("/users/5"))
    );

    assert_eq!(
        semaphore_settled(svc.pid(), &bin, batch, 0),
        0,
        "detached: semaphore back to 0"
    );
    assert_eq!(
        http(port, "GET", "/users/6", &[]).0,
        200,
        "the service keeps answering"
    );
    assert!(svc.alive());
}

/// Tracing through sites must not change what the target does: A → B (both `--probes` builds)
/// under concurrent load while one `gotap attach` for both attaches and detaches several times.
/// Every response is checked; every window exports spans at one hit per span; afterwards both
/// semaphores are 0 and both services serve.
#[test]
fn attach_detach_cycles_under_load() {
    require_root();
    let dir = scratch("probes-cycles");
    let bin = httpsvc_probes(Toolchain::Go127, Variant::default());
    let (pa, pb) = (free_port(), free_port());
    let mut b = plain(&bin, &svc_args(pb, "B", None), "httpsvc B --probes");
    wait_listening(pb, &mut b);
    let mut a = plain(&bin, &svc_args(pa, "A", Some(pb)), "httpsvc A --probes");
    wait_listening(pa, &mut a);

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0usize;
                while i < 50 || !stop.load(Ordering::SeqCst) {
                    let id = t * 100_000 + i;
                    let (path, want) = match i % 3 {
                        0 => (
                            format!("/users/{id}"),
                            (200, format!("A user {id} via [200 B user {id}]\n")),
                        ),
                        1 => (
                            "/fanout".to_string(),
                            (200, "A fanout [200 B user 1] [200 B user 2]\n".to_string()),
                        ),
                        _ => (
                            "/fail".to_string(),
                            (500, "A failed on purpose\n".to_string()),
                        ),
                    };
                    assert_eq!(http(pa, "GET", &path, &[]), want, "client {t} request {i}");
                    i += 1;
                    std::thread::sleep(Duration::from_millis(3));
                }
                i
            })
        })
        .collect();

    for cycle in 0..3 {
        let out = dir.join(format!("cycle-{cycle}.jsonl"));
        let mut cmd = Command::new(GOTAP);
        cmd.args([
            "attach",
            "--no-console",
            "--output-file",
            out.to_str().unwrap(),
        ])
        .args(["--pid", &a.pid().to_string(), "--pid", &b.pid().to_string()]);
        // Batch sites in even cycles, per-span sites in odd ones.
        let sem = if cycle % 2 == 1 {
            cmd.arg("--no-batch");
            "http_server"
        } else {
            "http_batch"
        };
        let g = Proc::spawn(cmd, "gotap attach A B");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while g.stderr.text().matches("probe sites").count() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "gotap never attached both: {}",
                g.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            (semaphore(a.pid(), &bin, sem), semaphore(b.pid(), &bin, sem)),
            (1, 1),
            "cycle {cycle}"
        );
        std::thread::sleep(Duration::from_millis(400));
        let f = g.interrupt();
        assert_eq!(f.code, Some(0), "cycle {cycle}: {f:?}");
        let summary = f.stderr.lines().last().unwrap();
        assert!(
            summary.contains(", 0 dropped, "),
            "cycle {cycle}: {summary}"
        );
        let per_span = hits_per_span(summary);
        if sem == "http_server" {
            assert_eq!(per_span, 1.0, "cycle {cycle}: {summary}");
        } else {
            assert!(per_span < 0.5, "cycle {cycle}: batched: {summary}");
        }
        let spans = parse_otlp_json_lines(&std::fs::read_to_string(&out).unwrap_or_default());
        assert!(
            spans.iter().any(|s| s.kind == 2) && spans.iter().any(|s| s.kind == 3),
            "cycle {cycle}: {}",
            dump(&spans)
        );
        // A complete request inside the window is one tree across both services.
        let linked = spans
            .iter()
            .filter(|s| s.kind == 2 && s.str("url.path").is_some_and(|p| p.starts_with("/users/")))
            .any(|bs| {
                spans
                    .iter()
                    .any(|c| c.kind == 3 && c.span_id == bs.parent && c.trace_id == bs.trace_id)
            });
        assert!(
            linked,
            "cycle {cycle}: no B span is the child of an A client span:\n{}",
            dump(&spans)
        );
        assert_eq!(
            (
                semaphore_settled(a.pid(), &bin, sem, 0),
                semaphore_settled(b.pid(), &bin, sem, 0)
            ),
            (0, 0),
            "cycle {cycle}: detached"
        );
        assert!(a.alive() && b.alive(), "cycle {cycle}");
    }
    stop.store(true, Ordering::SeqCst);
    let total: usize = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .sum();
    assert_eq!(
        http(pa, "GET", "/users/7", &[]),
        (200, "A user 7 via [200 B user 7]\n".into())
    );
    eprintln!("probe sites under load: {total} requests, all answered unchanged");
}

/// A process traced through batch sites that exits leaves no span in its buffer: the exit probe
/// reads it. Killed by a SIGTERM it does not handle (runtime.dieFromSignal) or by SIGKILL (the
/// exit tracepoint) right after its last response, and returning from main right after one
/// request (`-once`: runtime.exit), all before the buffer's 10 ms flush delay. Without the exit
/// probe the last spans (all of `-once`'s one) are lost.
fn spans_buffered_at_exit(tc: Toolchain, variant: Variant) {
    require_root();
    let dir = scratch(&format!("probes-exit-{}-{}", tc.label(), variant.label()));
    let bin = httpsvc_probes(tc, variant);
    let flags = |file: &Path| {
        vec![
            "--no-console".to_string(),
            "--output-file".to_string(),
            file.display().to_string(),
        ]
    };

    // Killed: 30 requests on one connection, then a signal to the service itself (not through
    // gotap run, which would let the buffer's delay pass before forwarding it). SIGTERM, which it
    // does not handle, goes through runtime.dieFromSignal; SIGKILL runs none of its code and only
    // the exit tracepoint sees it.
    for (sig, name) in [(libc::SIGTERM, "sigterm"), (libc::SIGKILL, "sigkill")] {
        let killed = dir.join(format!("killed-{name}.jsonl"));
        let port = free_port();
        let mut g = gotap_run(
            &flags(&killed),
            &bin,
            &svc_args(port, "K", None),
            "gotap run (killed)",
        );
        wait_listening(port, &mut g);
        let line = g
            .stderr
            .text_containing("gotap: tracing ", Duration::from_secs(30));
        assert!(line.contains("on batched probe sites ("), "{line}");
        let svc = g.pid_of_child();
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
        for i in 0..30 {
            use std::io::{BufRead, Read, Write};
            // One write: pieces would wait for delayed ACKs (Nagle), 40 ms per request.
            conn.write_all(format!("GET /users/{i} HTTP/1.1\r\nHost: k\r\n\r\n").as_bytes())
                .unwrap();
            let mut len = 0;
            loop {
                let mut l = String::new();
                reader.read_line(&mut l).unwrap();
                if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if l == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
        }
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(svc as i32, sig) };
        let f = g.wait(Duration::from_secs(60));
        assert!(!f.stderr.contains("when it is killed"), "{}", f.stderr);
        let spans = parse_otlp_json_lines(&std::fs::read_to_string(&killed).unwrap_or_default());
        let users: Vec<_> = spans
            .iter()
            .filter_map(|s| s.str("url.path"))
            .filter(|p| p.starts_with("/users/"))
            .collect();
        assert_eq!(users.len(), 30, "{name}: {}\n{}", f.stderr, dump(&spans));
        assert!(
            users.contains(&"/users/29"),
            "{name}: the last request's span: {users:?}"
        );
        // No hit per span: the requests came faster than the buffer's delay, and the buffer went
        // out at exit (one hit per process, not counted).
        assert!(
            hits_per_span(f.stderr.trim_end()) < 1.0,
            "{name}: through the batch site: {}",
            f.stderr
        );
    }

    // Returning from main right after its one client request.
    let once = dir.join("once.jsonl");
    let tport = free_port();
    let mut target = plain(&bin, &svc_args(tport, "T", None), "httpsvc (target)");
    wait_listening(tport, &mut target);
    let mut args = vec!["-name".to_string(), "O".to_string(), "-once".to_string()];
    args.push(format!("http://127.0.0.1:{tport}/users/7"));
    let f =
        gotap_run(&flags(&once), &bin, &args, "gotap run (-once)").wait(Duration::from_secs(60));
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(f.stdout.contains("O once 200"), "{f:?}");
    let spans = parse_otlp_json_lines(&std::fs::read_to_string(&once).unwrap_or_default());
    assert_eq!(spans.len(), 1, "{}\n{}", f.stderr, dump(&spans));
    assert_eq!(
        (
            spans[0].kind,
            spans[0].str("url.full"),
            spans[0].int("http.response.status_code")
        ),
        (
            3,
            Some(format!("http://127.0.0.1:{tport}/users/7").as_str()),
            Some(200)
        ),
        "{}",
        dump(&spans)
    );
}

#[test]
fn go126_spans_buffered_at_exit() {
    spans_buffered_at_exit(Toolchain::Go126, Variant::default());
}

#[test]
fn go127_stripped_pie_spans_buffered_at_exit() {
    spans_buffered_at_exit(
        Toolchain::Go127,
        Variant {
            stripped: true,
            pie: true,
        },
    );
}

/// Through the client probe site, as through function uprobes (e2e_http.rs): a query's values are
/// redacted in `url.full` (keys kept) unless `--capture-query`.
#[test]
fn client_query_values_redacted_unless_captured() {
    require_root();
    let dir = scratch("probes-client-query");
    let bin = httpsvc_probes(
        Toolchain::Go127,
        Variant {
            stripped: false,
            pie: false,
        },
    );
    let (url, base) = once_url_full(&bin, &dir, "default", &[]);
    assert_eq!(url, format!("{base}?apikey=REDACTED&x=REDACTED"));
    let (url, base) = once_url_full(&bin, &dir, "captured", &["--capture-query"]);
    assert_eq!(url, format!("{base}?apikey=s3cret&x=1"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gotap inspect` says how a binary is instrumented already, and which strategies trace each
/// library: a probes build is one `gotap run` traces through its sites.
#[test]
fn inspect_names_probe_sites_and_strategies() {
    let bin = httpsvc_probes(Toolchain::Go126, Variant::default());
    let out = Command::new(GOTAP)
        .arg("inspect")
        .arg(&bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("built:") && l.contains("gotap build --probes")),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("database/sql "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("uprobes, woven, probe sites"), "{row}");
    let json = Command::new(GOTAP)
        .args(["inspect", "--json"])
        .arg(&bin)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["built_with"], "probe-sites");
    let http = &v["instrumentations"][0];
    assert_eq!(http["name"], "net/http server");
    assert_eq!(
        http["strategies"],
        serde_json::json!(["uprobes", "woven", "probe-sites"])
    );
    // A plain build of the same service.
    let plain = httpsvc(Toolchain::Go126, Variant::default());
    let json = Command::new(GOTAP)
        .args(["inspect", "--json"])
        .arg(&plain)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["built_with"], "plain");
}
