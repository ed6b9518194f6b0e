//! The probe-site strategy against go/testapps/cmd/usdtsites: a Go program with gotap's two sites
//! in package main, annotated with USDT notes. It calls its sites only while the semaphore is
//! non-zero, with fixed values (see its main.go), so the spans must carry exactly those values,
//! and it stops printing "fired" once the agent has detached (semaphore back to 0).
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gotap_binary::usdt::{self, SiteDef, UsdtProbe};
use gotap_ebpf::TracingPath;
use gotap_spans::{ids, semconv as sc, Span, SpanKind, Status};
use gotap_testkit::{Toolchain, Variant};

const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// usdtsites built with `tc`, copied (to a file of its own per `tag`: tests run in parallel) and
/// annotated with gotap's notes (sites in package main).
fn annotated(tc: Toolchain, variant: Variant, tag: &str) -> PathBuf {
    annotated_with(tc, variant, tag, |_| {})
}

/// [`annotated`], with `patch` applied to the annotated file before it is installed. The edits are
/// made on a work copy, installed by `cp` (see [`gotap_testkit::install_exe`]: no ETXTBSY race).
fn annotated_with(
    tc: Toolchain,
    variant: Variant,
    tag: &str,
    patch: impl FnOnce(&Path),
) -> PathBuf {
    let built = gotap_testkit::build("testapps", "./cmd/usdtsites", tc, variant);
    let out = gotap_testkit::bin_dir().join(format!(
        "usdtsites-annotated-{tag}-{}-{}",
        tc.label(),
        variant.label()
    ));
    let work = gotap_testkit::bin_dir().join(format!(
        "usdtsites-annotated-{tag}-{}-{}.work",
        tc.label(),
        variant.label()
    ));
    std::fs::copy(&built, &work).unwrap();
    let sites = [
        SiteDef {
            name: "http_server",
            function: "main.gotapProbeHTTPServer",
            ..usdt::GOTAP_SITES[0]
        },
        SiteDef {
            name: "http_client",
            function: "main.gotapProbeHTTPClient",
            ..usdt::GOTAP_SITES[1]
        },
    ];
    let n = usdt::annotate(&work, &sites, Some(usdt::GOTAP_SEMAPHORE_MARKER))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 2);
    patch(&work);
    gotap_testkit::install_exe(&work, &out);
    out
}

fn probes(bin: &Path) -> Vec<UsdtProbe> {
    usdt::read_probes(&std::fs::read(bin).unwrap()).unwrap()
}

/// A running usdtsites; its stdout lines are collected by a thread. Killed on drop.
struct Sites {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sites {
    fn start(bin: &Path) -> Sites {
        let mut child = Command::new(bin).stdout(Stdio::piped()).spawn().unwrap();
        Sites {
            lines: Sites::collect(&mut child),
            child,
        }
    }

    fn collect(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let l = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
        }
        lines
    }

    fn fired(&self) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("fired"))
            .count()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "usdtsites ready")
        {
            assert!(Instant::now() < deadline, "usdtsites did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where file offset `off` of `bin` is mapped in process `pid` (PIE or not).
fn runtime_addr(pid: u32, bin: &Path, off: u64) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
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
        .unwrap_or_else(|| {
            panic!(
                "file offset {off:#x} of {} not mapped in\n{maps}",
                bin.display()
            )
        })
}

/// `n` bytes of process `pid`'s memory at file offset `off` of `bin`.
fn peek(pid: u32, bin: &Path, off: u64, n: usize) -> Vec<u8> {
    let addr = runtime_addr(pid, bin, off);
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut buf = vec![0u8; n];
    mem.read_exact_at(&mut buf, addr).unwrap();
    buf
}

/// A server span and the client span of the same loop iteration of usdtsites (which starts its
/// client span 1000 ns after its server span). Not simply the first of each kind: the kernel
/// raises the semaphore just before it writes the last site's breakpoint, so the first call of
/// that site can go unseen, and the first client span may belong to the next iteration.
fn pair(spans: &[Span]) -> (&Span, &Span) {
    spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .find_map(|srv| {
            let cli = spans.iter().find(|c| {
                c.kind == SpanKind::Client && c.start_unix_nano == srv.start_unix_nano + 1000
            })?;
            Some((srv, cli))
        })
        .unwrap_or_else(|| panic!("no server span with its client span in {spans:#?}"))
}

fn trace_sites(tc: Toolchain, variant: Variant) {
    let label = format!("{} {}", tc.label(), variant.label());
    let bin = annotated(tc, variant, "trace");
    let notes = probes(&bin);
    let server_site = notes.iter().find(|p| p.name == "http_server").unwrap();
    let sem = server_site.semaphore_offset.unwrap();
    let sites = Sites::start(&bin);
    sites.wait_ready();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        sites.fired(),
        0,
        "{label}: the sites are not called while nobody traces"
    );
    let pid = sites.pid();
    assert_eq!(
        peek(pid, &bin, sem, 2),
        [0, 0],
        "{label}: semaphore before attach"
    );
    for site in &notes {
        assert_eq!(
            peek(pid, &bin, site.offset, 5),
            NOP5,
            "{label}: {} before attach",
            site.name
        );
    }

    let (mut agent, sink) = agent(true);
    let t = agent
        .trace_process(pid, resource("usdtsites"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(t.probes, 2, "{label}");
    assert!(
        t.instrumentations.contains(&"net/http server")
            && t.instrumentations.contains(&"net/http client"),
        "{label}: {t:?}"
    );
    let optimises = gotap_ebpf::kernel_optimises_nop5();
    assert_eq!(
        t.tracing,
        TracingPath::ProbeSites {
            nop5: true,
            kernel_optimises: optimises
        },
        "{label}"
    );
    assert!(t.warnings.is_empty(), "{label}: {:?}", t.warnings);

    let spans = sink.wait_for(6, |_| true);
    let (servers, clients) = (
        spans.iter().filter(|s| s.kind == SpanKind::Server).count(),
        spans.iter().filter(|s| s.kind == SpanKind::Client).count(),
    );
    assert!(
        servers.abs_diff(clients) <= 1,
        "{label}: both sites traced from the first call: {servers} server, {clients} client spans"
    );
    assert!(spans.len() >= 6, "{label}: {} spans", spans.len());
    // One tracer: the kernel counted it once (only the last site's uprobe carries the semaphore,
    // so the sites are called only once both are probed).
    assert_eq!(
        peek(pid, &bin, sem, 2),
        [1, 0],
        "{label}: semaphore while traced"
    );
    for site in &notes {
        let code = peek(pid, &bin, site.offset, 5);
        if optimises {
            // The kernel rewrote the nop5 into a CALL (6.18; a JMP is being discussed upstream)
            // to its uprobe trampoline: hits enter the kernel by syscall, not by trap.
            assert!(
                matches!(code[0], 0xe8 | 0xe9),
                "{label} {}: optimised site is a CALL/JMP rel32: {code:02x?}",
                site.name
            );
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
            let tramp = maps
                .lines()
                .find(|l| l.ends_with("[uprobes-trampoline]"))
                .unwrap_or_else(|| panic!("{label}: no trampoline in\n{maps}"));
            let (lo, hi) = tramp
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            let (lo, hi) = (
                u64::from_str_radix(lo, 16).unwrap(),
                u64::from_str_radix(hi, 16).unwrap(),
            );
            let next = runtime_addr(pid, &bin, site.offset) + 5;
            let target =
                next.wrapping_add_signed(i32::from_le_bytes(code[1..5].try_into().unwrap()) as i64);
            assert!(
                (lo..hi).contains(&target),
                "{label} {}: CALL {target:#x} lands in the trampoline {tramp}",
                site.name
            );
        } else {
            assert_eq!(
                code[0], 0xcc,
                "{label} {}: site is an int3: {code:02x?}",
                site.name
            );
        }
    }

    // Exactly the values usdtsites passes.
    let (server, client) = pair(&spans);
    assert_eq!(
        ids::hex(&server.trace_id),
        "0af7651916cd43dd8448eb211c80319c",
        "{label}"
    );
    assert_eq!(ids::hex(&server.span_id), "b7ad6b7169203331");
    assert_eq!(
        server.parent_span_id.map(|p| ids::hex(&p)).as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert_eq!(server.name, "GET /users/{id}");
    assert_eq!(server.end_unix_nano - server.start_unix_nano, 5000);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        now - server.start_unix_nano < 60_000_000_000,
        "timestamps are Unix time"
    );
    assert_eq!(str_attr(server, sc::HTTP_REQUEST_METHOD), Some("GET"));
    assert_eq!(str_attr(server, sc::URL_PATH), Some("/users/42"));
    assert_eq!(str_attr(server, sc::URL_QUERY), Some("q=1"));
    assert_eq!(str_attr(server, sc::HTTP_ROUTE), Some("/users/{id}"));
    assert_eq!(str_attr(server, sc::SERVER_ADDRESS), Some("example.com"));
    assert_eq!(int_attr(server, sc::SERVER_PORT), Some(8080));
    assert_eq!(str_attr(server, sc::CLIENT_ADDRESS), Some("10.1.2.3"));
    assert_eq!(int_attr(server, sc::CLIENT_PORT), Some(4567));
    assert_eq!(
        str_attr(server, sc::USER_AGENT_ORIGINAL),
        Some("usdtsites/1")
    );
    assert_eq!(str_attr(server, sc::NETWORK_PROTOCOL_VERSION), Some("1.1"));
    assert_eq!(int_attr(server, sc::HTTP_RESPONSE_STATUS_CODE), Some(503));
    assert_eq!(str_attr(server, sc::ERROR_TYPE), Some("503"));
    assert!(
        matches!(server.status, Status::Error(_)),
        "{label}: 503 is a server error"
    );
    assert_eq!(server.resource.service_name(), "usdtsites");

    assert_eq!(
        client.trace_id, server.trace_id,
        "{label}: client in the server's trace"
    );
    assert_eq!(
        client.parent_span_id,
        Some(server.span_id),
        "{label}: parent from the record"
    );
    assert_eq!(ids::hex(&client.span_id), "1111111111111111");
    assert_eq!(client.name, "POST");
    assert_eq!(client.end_unix_nano - client.start_unix_nano, 2000);
    assert_eq!(
        str_attr(client, sc::URL_FULL),
        Some("http://127.0.0.1:9/orders?id=7")
    );
    assert_eq!(str_attr(client, sc::SERVER_ADDRESS), Some("127.0.0.1"));
    assert_eq!(int_attr(client, sc::SERVER_PORT), Some(9));
    assert_eq!(int_attr(client, sc::HTTP_RESPONSE_STATUS_CODE), None);
    assert_eq!(str_attr(client, sc::ERROR_TYPE), Some("connection_refused"));
    assert_eq!(
        client.status,
        Status::Error("dial tcp 127.0.0.1:9: connect: connection refused".into())
    );

    let stats = agent.shutdown();
    assert_eq!(
        (stats.ringbuf_drops, stats.undecodable),
        (0, 0),
        "{label}: {stats:?}"
    );
    assert!(stats.spans >= 6);
    assert_eq!(
        stats.probe_hits, stats.spans,
        "{label}: one hit per span: {stats:?}"
    );

    // Detached: the semaphore is 0 again, so the program stops calling its sites. A pass that
    // read the semaphore just before the detach may still print its line: wait until the count
    // settles (no new line for 200 ms) before watching for a quiet window.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = sites.fired();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = sites.fired();
        if now == after || Instant::now() > deadline {
            break;
        }
        after = now;
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sites.fired(), after, "{label}: still firing after detach");
    assert_eq!(
        peek(pid, &bin, sem, 2),
        [0, 0],
        "{label}: semaphore after detach"
    );
    for site in &notes {
        assert_eq!(
            peek(pid, &bin, site.offset, 5),
            NOP5,
            "{label}: {} restored after detach",
            site.name
        );
    }
}

#[test]
fn sites_go126() {
    trace_sites(Toolchain::Go126, Variant::default());
}
#[test]
fn sites_go127() {
    trace_sites(Toolchain::Go127, Variant::default());
}
#[test]
fn sites_go126_stripped() {
    trace_sites(
        Toolchain::Go126,
        Variant {
            stripped: true,
            pie: false,
        },
    );
}
#[test]
fn sites_go127_stripped_pie() {
    trace_sites(
        Toolchain::Go127,
        Variant {
            stripped: true,
            pie: true,
        },
    );
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

/// `gotap run`'s order: probes created on the file before the child execs it. The kernel raises
/// the semaphore when the data segment is mapped by the exec, so the sites fire from the start.
#[test]
fn sites_attached_before_exec() {
    let bin = annotated(Toolchain::Go126, Variant::default(), "exec");
    let (pid_r, pid_w) = pipe();
    let (go_r, go_w) = pipe();
    let spawner = {
        let bin = bin.clone();
        std::thread::spawn(move || {
            let mut cmd = Command::new(&bin);
            cmd.stdout(Stdio::piped());
            // SAFETY: only async-signal-safe calls (getpid, write, read) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let pid = libc::getpid().to_ne_bytes();
                    libc::write(pid_w, pid.as_ptr().cast(), 4);
                    let mut b = [0u8; 1];
                    libc::read(go_r, b.as_mut_ptr().cast(), 1);
                    Ok(())
                });
            }
            cmd.spawn().unwrap()
        })
    };
    let mut pid = [0u8; 4];
    // SAFETY: reading 4 bytes into our buffer from our pipe.
    assert_eq!(unsafe { libc::read(pid_r, pid.as_mut_ptr().cast(), 4) }, 4);
    let pid = i32::from_ne_bytes(pid) as u32;

    let (mut agent, sink) = agent(false);
    let t = agent
        .trace_executable(&bin, pid, resource("run"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(t.tracing, TracingPath::ProbeSites { .. }), "{t:?}");
    // SAFETY: writing one byte from our buffer to our pipe.
    assert_eq!(unsafe { libc::write(go_w, [1u8].as_ptr().cast(), 1) }, 1);
    let mut child = spawner.join().unwrap();
    let sites = Sites {
        lines: Sites::collect(&mut child),
        child,
    };
    sites.wait_ready();
    agent.confirm_exec(pid).unwrap_or_else(|e| panic!("{e}"));
    let spans = sink.wait_for(4, |_| true);
    let notes = probes(&bin);
    assert_eq!(
        peek(pid, &bin, notes[0].semaphore_offset.unwrap(), 2),
        [1, 0],
        "semaphore raised at exec"
    );
    let stats = agent.shutdown();
    assert!(
        spans.iter().any(|s| s.kind == SpanKind::Server)
            && spans.iter().any(|s| s.kind == SpanKind::Client),
        "{spans:#?}"
    );
    assert_eq!(stats.probe_hits, stats.spans, "{stats:?}");
}

/// The trap path: sites whose first instruction is not the nop5 (patched here to five 1-byte
/// NOPs, which the kernel does not optimise) still work, through an ordinary int3 uprobe, and
/// gotap says so. This is also what an older kernel does with real sites.
#[test]
fn sites_without_nop5_use_the_trap_path() {
    let bin = annotated_with(Toolchain::Go126, Variant::default(), "int3", |work| {
        let f = std::fs::OpenOptions::new().write(true).open(work).unwrap();
        for p in &probes(work) {
            f.write_all_at(&[0x90; 5], p.offset).unwrap();
        }
    });
    let notes = probes(&bin);
    let sites = Sites::start(&bin);
    sites.wait_ready();
    let pid = sites.pid();
    let (mut agent, sink) = agent(false);
    let t = agent
        .trace_process(pid, resource("int3"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.tracing,
        TracingPath::ProbeSites {
            nop5: false,
            kernel_optimises: gotap_ebpf::kernel_optimises_nop5()
        }
    );
    assert_eq!(
        t.tracing.to_string(),
        "probe sites (int3: the sites do not start with a 5-byte NOP)"
    );
    let spans = sink.wait_for(6, |_| true);
    for p in &notes {
        assert_eq!(
            peek(pid, &bin, p.offset, 1),
            [0xcc],
            "{}: an int3 stays an int3",
            p.name
        );
    }
    let stats = agent.shutdown();
    let (server, client) = pair(&spans);
    assert_eq!(
        (server.name.as_str(), client.name.as_str()),
        ("GET /users/{id}", "POST")
    );
    assert_eq!(client.parent_span_id, Some(server.span_id));
    assert_eq!(stats.probe_hits, stats.spans, "{stats:?}");
    for p in &notes {
        assert_eq!(
            peek(pid, &bin, p.offset, 5),
            [0x90; 5],
            "{}: restored after detach",
            p.name
        );
    }
}

/// A burst fills the ring buffer far faster than one drain interval allows: the record that
/// fills it past a quarter is submitted with a wakeup, so the reader drains it at once. With an
/// interval longer than the test (60 s), spans still arrive during the burst — more than the
/// 4 MiB ring could ever hold — and stopping the agent does not wait for the interval either.
#[test]
fn bursts_wake_the_reader_before_its_timer() {
    gotap_testkit::require_root();
    let built = gotap_testkit::build(
        "../crates/gotap-ebpf/examples/sitebench",
        ".",
        Toolchain::Go126,
        Variant::default(),
    );
    let work = gotap_testkit::bin_dir().join("sitebench-annotated.work");
    let bin = gotap_testkit::bin_dir().join("sitebench-annotated");
    std::fs::copy(&built, &work).unwrap();
    let sites = [
        SiteDef {
            name: "http_server",
            function: "main.gotapProbeHTTPServer",
            ..usdt::GOTAP_SITES[0]
        },
        SiteDef {
            name: "http_client",
            function: "main.gotapProbeHTTPClient",
            ..usdt::GOTAP_SITES[1]
        },
    ];
    usdt::annotate(&work, &sites, Some(usdt::GOTAP_SEMAPHORE_MARKER))
        .unwrap_or_else(|e| panic!("{e}"));
    gotap_testkit::install_exe(&work, &bin);

    let spans = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = spans.clone();
    let opts = gotap_ebpf::AgentOptions {
        link_map_pin_dir: PIN_DIR.into(),
        poll_interval: Duration::from_secs(60),
        ..Default::default()
    };
    let mut agent = gotap_ebpf::Agent::load(opts, move |_| {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // Bursts of 1000 spans every ~10 ms for 3 s (~300 bytes each: ~25 MB/s into a 4 MiB ring).
    let mut child = Command::new(&bin)
        .args(["-seconds", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    assert_eq!(lines.next().as_deref(), Some("sitebench ready"));
    agent
        .trace_process(child.id(), resource("sitebench"))
        .unwrap_or_else(|e| panic!("{e}"));
    let traced = Instant::now();
    let ring_holds = (4 << 20) / 88; // site records are at least their 88-byte header
    while spans.load(std::sync::atomic::Ordering::Relaxed) <= ring_holds
        && traced.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = spans.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        delivered > ring_holds,
        "only {delivered} spans within {:?} of a 60 s drain interval: the burst did not wake the reader",
        traced.elapsed()
    );
    for _ in lines {}
    let _ = child.wait();
    let stopping = Instant::now();
    let stats = agent.shutdown();
    assert!(
        stopping.elapsed() < Duration::from_secs(30),
        "shutdown waited for the drain interval ({:?})",
        stopping.elapsed()
    );
    assert!(stats.spans > ring_holds as u64, "{stats:?}");
}
