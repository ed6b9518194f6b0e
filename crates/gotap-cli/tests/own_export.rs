//! gotap's own export traffic is never traced (issue #22): `gotap run` on the real OpenTelemetry
//! Collector (a Go program: net/http and gRPC servers) exporting to that very Collector, over
//! OTLP/HTTP and OTLP/gRPC. Without the filter (gotap-export `own.rs`) every export is a server
//! span of the Collector, exported in the next batch, for ever. A second service, httpsvc under
//! its own `gotap run`, sends its spans to the same Collector. Asserted from what the Collector
//! wrote: httpsvc's spans arrive, no Collector span has the traced gotap's own export connection
//! as its peer, and the Collector's spans stop growing once httpsvc is quiet (the loop would add
//! one per export). Real processes, real uprobes (root).
mod ebpf_support;

use ebpf_support::*;
use gotap_testkit::{free_port, repo_root, require_root, Toolchain, Variant};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn collector_bin() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/collector.sh"))
        .output()
        .expect("scripts/collector.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Local ports of `pid`'s TCP connections to 127.0.0.1:`port` (/proc/PID/fd and /proc/net/tcp).
fn ports_to(pid: u32, port: u16) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let t = std::fs::read_link(e.path()).ok()?;
                    let t = t.to_str()?;
                    Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port_of = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
            if f.len() > 9 && port_of(f[2]) == Some(port) && inodes.contains(f[9]) {
                if let Some(p) = port_of(f[1]) {
                    out.insert(p);
                }
            }
        }
    }
    out
}

/// Server spans of the Collector's own service, and their peer ports.
fn collector_spans(spans: &[FlatSpan]) -> Vec<(String, Option<i64>)> {
    spans
        .iter()
        .filter(|s| s.service == "col" && s.kind == 2)
        .map(|s| {
            let port = s.int("client.port").or_else(|| s.int("network.peer.port"));
            (s.name.clone(), port)
        })
        .collect()
}

fn spans_in(file: &Path) -> Vec<FlatSpan> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    parse_otlp_json_lines(complete)
}

fn own_export_not_traced(protocol: &str) {
    require_root();
    let dir = scratch(&format!("own-export-{}", protocol.replace('/', "-")));
    let (grpc, http_port) = (free_port(), free_port());
    let file = dir.join("collector-out.jsonl");
    let cfg = Command::new(repo_root().join("scripts/collector.sh"))
        .args([
            "config",
            &grpc.to_string(),
            &http_port.to_string(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(cfg.status.success());
    let cfg_path = dir.join("collector.yaml");
    std::fs::write(&cfg_path, &cfg.stdout).unwrap();
    let (endpoint, export_port) = match protocol {
        "grpc" => (format!("http://127.0.0.1:{grpc}"), grpc),
        _ => (format!("http://127.0.0.1:{http_port}"), http_port),
    };
    let flags = |service: &str| {
        vec![
            "--no-console".to_string(),
            "--otlp-endpoint".into(),
            endpoint.clone(),
            "--otlp-protocol".into(),
            protocol.into(),
            "--service-name".into(),
            service.into(),
        ]
    };

    // The Collector, traced by a gotap that exports to it.
    let mut col = gotap_run(
        &flags("col"),
        &collector_bin(),
        &[format!("--config={}", cfg_path.display())],
        "gotap run otelcol",
    );
    wait_listening(grpc, &mut col);
    wait_listening(http_port, &mut col);
    // A failed assertion kills the gotaps (Proc's drop), which leaves their programs running.
    let _col_child = Reap(col.pid_of_child());
    assert!(
        col.stderr.text().contains("net/http server"),
        "{}",
        col.stderr.text()
    );

    // A second service sending a few requests' spans to the same Collector.
    let bin = httpsvc(Toolchain::Go126, Variant::default());
    let port = free_port();
    let mut svc = gotap_run(
        &flags("svc"),
        &bin,
        &svc_args(port, "S", None),
        "gotap run httpsvc",
    );
    wait_listening(port, &mut svc);
    let _svc_child = Reap(svc.pid_of_child());
    for i in 0..5 {
        assert_eq!(http(port, "GET", &format!("/users/{i}"), &[]).0, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let users = |spans: &[FlatSpan]| {
        spans
            .iter()
            .filter(|s| s.service == "svc" && s.name == "GET /users/{id}")
            .count()
    };
    while users(&spans_in(&file)) < 5 {
        assert!(
            Instant::now() < deadline,
            "httpsvc's spans never arrived:\n{}\ncol: {}",
            dump(&spans_in(&file)),
            col.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The traced gotap's own connection(s) to the Collector, once it has exported the server
    // span of httpsvc's export; sampled through the quiet window below (a union).
    let mut own = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while own.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the Collector's gotap never exported"
        );
        own = ports_to(col.pid(), export_port);
        std::thread::sleep(Duration::from_millis(50));
    }
    let svc_ports = ports_to(svc.pid(), export_port);

    // Quiet: httpsvc gets no request. A loop would add a span per export (every 200 ms).
    std::thread::sleep(Duration::from_secs(2));
    let before = collector_spans(&spans_in(&file)).len();
    let quiet = Instant::now() + Duration::from_secs(4);
    while Instant::now() < quiet {
        own.extend(ports_to(col.pid(), export_port));
        std::thread::sleep(Duration::from_millis(200));
    }
    let spans = spans_in(&file);
    let col_spans = collector_spans(&spans);
    assert_eq!(
        col_spans.len(),
        before,
        "the Collector's spans grow with nothing sent to it: {col_spans:?}"
    );
    for (name, peer) in &col_spans {
        let peer = peer.unwrap_or_else(|| panic!("{name}: no peer port"));
        assert!(
            !own.contains(&(peer as u16)),
            "{name} from gotap's own export connection {peer} (own {own:?}):\n{}",
            dump(&spans)
        );
        // What the Collector does trace is the other gotap's exports: one per batch it sent.
        assert!(
            svc_ports.contains(&(peer as u16)),
            "{name} from {peer}: {svc_ports:?}"
        );
    }
    assert_eq!(users(&spans), 5, "{}", dump(&spans));

    let s = svc.interrupt();
    assert!(s.stderr.contains(" 5 spans exported ("), "{s:?}");
    std::thread::sleep(Duration::from_secs(1));
    let c = col.interrupt();
    eprintln!(
        "{protocol}: collector spans {}, own ports {own:?}, svc ports {svc_ports:?}\n{}",
        col_spans.len(),
        c.stderr.lines().last().unwrap_or("")
    );
}

/// Kills a traced program left running by a failed assertion (after a clean stop, its pid is
/// gone; pids are not reused within a test's seconds).
struct Reap(u32);
impl Drop for Reap {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn own_export_over_http_is_not_traced() {
    own_export_not_traced("http/protobuf");
}

#[test]
fn own_export_over_grpc_is_not_traced() {
    own_export_not_traced("grpc");
}
