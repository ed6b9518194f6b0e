//! Tracing must never change what the target does. A Go service (httpsvc A calling httpsvc B)
//! under concurrent load while `gotap attach` attaches and detaches (SIGINT) several times:
//! every response is checked, the target's own stdout equals an untraced run of the same
//! requests, spans were produced while attached, and the target is alive and serving afterwards.
//! Runs as root (real uprobes).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{free_port, require_root, Toolchain, Variant};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const MIN_PER_THREAD: usize = 100;
const ATTACH_CYCLES: usize = 4;

/// The i-th request of client thread t, and the response the service must give.
fn request(t: usize, i: usize) -> (String, u16, String) {
    match i % 5 {
        0 | 3 => {
            let id = t * 100_000 + i;
            (
                format!("/users/{id}"),
                200,
                format!("A user {id} via [200 B user {id}]\n"),
            )
        }
        1 => (
            "/fanout".into(),
            200,
            "A fanout [200 B user 1] [200 B user 2]\n".into(),
        ),
        2 => ("/fail".into(), 500, "A failed on purpose\n".into()),
        _ => ("/notfound".into(), 404, "A has nothing here\n".into()),
    }
}

/// Runs the client threads: each sends its sequence until `stop` (and at least `min` requests),
/// or exactly `exact[t]` requests; every response checked. Returns the count per thread.
fn load(port: u16, min: usize, exact: Option<Vec<usize>>, stop: Arc<AtomicBool>) -> Vec<usize> {
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let stop = stop.clone();
            let exact = exact.as_ref().map(|e| e[t]);
            std::thread::spawn(move || {
                let mut i = 0;
                loop {
                    match exact {
                        Some(n) if i >= n => break,
                        None if i >= min && stop.load(Ordering::SeqCst) => break,
                        _ => {}
                    }
                    let (path, status, body) = request(t, i);
                    let got = http(port, "GET", &path, &[]);
                    assert_eq!(got, (status, body), "thread {t} request {i} {path}");
                    i += 1;
                    // Steady load rather than a flood: keeps the replay short on 2 cores.
                    std::thread::sleep(Duration::from_millis(3));
                }
                i
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn attach_detach_under_load_changes_nothing() {
    require_root();
    let dir = scratch("safety");
    let bin = httpsvc(Toolchain::Go126, Variant::default());
    let pb = free_port();
    let mut b = plain(&bin, &svc_args(pb, "B", None), "httpsvc B");
    wait_listening(pb, &mut b);

    // Traced run: load while attach/detach cycles run.
    let pa = free_port();
    let mut a = plain(&bin, &svc_args(pa, "A", Some(pb)), "httpsvc A (traced)");
    wait_listening(pa, &mut a);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = {
        let stop = stop.clone();
        std::thread::spawn(move || load(pa, MIN_PER_THREAD, None, stop))
    };
    let mut span_counts = Vec::new();
    for cycle in 0..ATTACH_CYCLES {
        let out = dir.join(format!("spans-{cycle}.jsonl"));
        let mut cmd = Command::new(GOTAP);
        cmd.args([
            "attach",
            "--no-console",
            "--output-file",
            out.to_str().unwrap(),
            "--pid",
            &a.pid().to_string(),
        ]);
        let mut g = Proc::spawn(cmd, "gotap attach");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !g.stderr.text().contains("gotap: tracing ") {
            assert!(g.alive(), "gotap attach exited: {}", g.stderr.text());
            assert!(
                Instant::now() < deadline,
                "gotap never attached: {}",
                g.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(400));
        let f = g.interrupt();
        assert_eq!(f.code, Some(0), "cycle {cycle}: {f:?}");
        assert!(f.stderr.contains("detaching from pid"), "{}", f.stderr);
        assert!(
            f.stderr.lines().last().unwrap().contains("spans exported"),
            "{}",
            f.stderr
        );
        let spans = parse_otlp_json_lines(&std::fs::read_to_string(&out).unwrap_or_default());
        // Whatever was exported is well-formed: A's server and client spans only.
        for s in &spans {
            assert!(s.kind == 2 || s.kind == 3, "{s:?}");
            assert_eq!(s.trace_id.len(), 32, "{s:?}");
        }
        span_counts.push(spans.len());
        assert!(
            a.alive(),
            "target died in cycle {cycle}: {}",
            a.stderr.text()
        );
    }
    stop.store(true, Ordering::SeqCst);
    let counts = clients.join().expect("clients");
    assert!(
        span_counts.iter().all(|&n| n > 0),
        "every attach window exported spans: {span_counts:?}"
    );
    // Detached for good: still serving.
    assert_eq!(
        http(pa, "GET", "/users/7", &[]),
        (200, "A user 7 via [200 B user 7]\n".into())
    );
    assert!(a.alive());
    let traced = a.interrupt();

    // Untraced run of exactly the same requests.
    let pa2 = free_port();
    let mut a2 = plain(&bin, &svc_args(pa2, "A", Some(pb)), "httpsvc A (untraced)");
    wait_listening(pa2, &mut a2);
    load(
        pa2,
        0,
        Some(counts.clone()),
        Arc::new(AtomicBool::new(true)),
    );
    assert_eq!(
        http(pa2, "GET", "/users/7", &[]),
        (200, "A user 7 via [200 B user 7]\n".into())
    );
    let untraced = a2.interrupt();

    let total: usize = counts.iter().sum();
    let (t, u) = (sorted_lines(&traced.stdout), sorted_lines(&untraced.stdout));
    assert_eq!(t.len(), total + 1, "one stdout line per request");
    assert!(
        t == u,
        "traced stdout differs from untraced ({} vs {} lines)",
        t.len(),
        u.len()
    );
    eprintln!("safety: {total} requests, spans per attach window {span_counts:?}");
}
