//! CPU cost of the export thread per span, per exporter: N realistic HTTP server/client spans
//! (built with gotap-spans, one shared resource, like the eBPF agent's) pushed through [`Pipeline`]
//! to OTLP/gRPC and OTLP/HTTP (the real test Collector, scripts/collector.sh, file exporter to
//! /dev/null) and to the OTLP/JSON lines file exporter (/dev/null).
//!
//!   cargo run --release -p gotap-export --example export_cost [-- SPANS [grpc|http|file]...]
//!
//! The export thread's CPU is CLOCK_THREAD_CPUTIME_ID read on that thread (by a probe exporter's
//! shutdown hook, the last thing the thread does); spans/s is wall time from the first send to the
//! end of shutdown. The producer only moves pre-built spans into the queue; with OTLP exporters
//! only, it also encodes each span as it sends it (that part is not the export thread's: the eBPF
//! agent's example, gotap-ebpf's agent_cost, counts it in the reader thread).
use gotap_export::{
    Batch, BatchConfig, ExportError, Exporter, GrpcExporter, HttpExporter, JsonFileExporter,
    OtlpConfig, Pipeline, Protocol,
};
use gotap_spans::nethttp::{client_span, server_span, ClientRequest, ServerRequest};
use gotap_spans::SpanFrame;
use gotap_spans::{Resource, Span};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Records the export thread's CPU time when the pipeline shuts it down.
struct Probe(Arc<Mutex<u64>>);

impl Exporter for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn export(&mut self, _: &Batch, _: Duration) -> Result<u64, ExportError> {
        Ok(0)
    }
    fn shutdown(&mut self) {
        *self.0.lock().unwrap() = thread_cpu_ns();
    }
    // Reads no span: gotap run's OTLP-only pipeline encodes spans as they are sent.
    fn needs_spans(&self) -> bool {
        false
    }
}

fn spans(n: usize) -> Vec<Span> {
    let mut r = Resource::default();
    for (k, v) in [
        ("service.name", "gateway"),
        ("telemetry.sdk.name", "gotap"),
        ("telemetry.sdk.language", "go"),
        ("telemetry.sdk.version", "0.1.0"),
        ("process.runtime.name", "go"),
        ("process.runtime.version", "go1.26.8"),
        ("host.name", "bench-vm"),
        ("process.executable.path", "/srv/gateway"),
    ] {
        r.set(k, v);
    }
    r.set("process.pid", 4242i64);
    let res = Arc::new(r);
    let t0 = 1_763_900_000_000_000_000u64;
    (0..n)
        .map(|i| {
            let id = (i as u64 + 1).to_le_bytes();
            let mut trace = [0u8; 16];
            trace[..8].copy_from_slice(&id);
            trace[8..].copy_from_slice(&(!(i as u64)).to_le_bytes());
            let frame = SpanFrame {
                trace_id: trace,
                span_id: id,
                parent_span_id: (i % 2 == 1).then(|| (i as u64).to_le_bytes()),
                start_unix_nano: t0 + i as u64 * 20_000,
                end_unix_nano: t0 + i as u64 * 20_000 + 143_000,
                resource: res.clone(),
            };
            if i % 2 == 0 {
                let req = ServerRequest {
                    method: "GET".into(),
                    path: format!("/users/{}", i % 1000),
                    query: None,
                    pattern: Some("GET /users/{id}".into()),
                    host: Some("127.0.0.1:8080".into()),
                    client_address: Some("127.0.0.1".into()),
                    client_port: Some(40000 + (i % 20000) as u16),
                    user_agent: Some("Go-http-client/1.1".into()),
                    protocol: Some("HTTP/1.1".into()),
                    status_code: Some(200),
                    tls: false,
                };
                server_span(&req, frame, false)
            } else {
                let req = ClientRequest {
                    method: "GET".into(),
                    url: format!("http://orders:8081/orders?user={}", i % 1000),
                    status_code: Some(200),
                    error: None,
                };
                client_span(&req, frame)
            }
        })
        .collect()
}

fn run(
    name: &str,
    exporter: Box<dyn Exporter>,
    rt: Option<Arc<tokio::runtime::Runtime>>,
    input: &[Span],
) {
    let cpu = Arc::new(Mutex::new(0));
    let batch = BatchConfig {
        max_queue_size: input.len() + 1,
        max_buffered_spans: input.len() + 1,
        ..Default::default()
    };
    let pipeline = Pipeline::start_with(batch, vec![exporter, Box::new(Probe(cpu.clone()))], rt);
    let tx = pipeline.sender();
    let spans = input.to_vec();
    let start = Instant::now();
    for s in spans {
        assert!(tx.send(s), "queue full");
    }
    let stats = pipeline.shutdown();
    let wall = start.elapsed();
    let e = &stats.exporters[0];
    assert_eq!(
        (e.exported, e.dropped_export_failed),
        (input.len() as u64, 0),
        "{name}: {stats:?}"
    );
    let cpu_ns = *cpu.lock().unwrap();
    println!(
        "{name:<10} {:>7} spans  export thread {:>6.2} µs/span  {:>9.0} spans/s",
        input.len(),
        cpu_ns as f64 / 1e3 / input.len() as f64,
        input.len() as f64 / wall.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let mut which: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if which.is_empty() {
        which = vec!["grpc", "http", "file"];
    }
    let input = spans(n);

    let collector = which.iter().any(|w| *w != "file").then(|| {
        let script = gotap_testkit::repo_root().join("scripts/collector.sh");
        let bin = String::from_utf8(
            Command::new(&script)
                .output()
                .expect("run scripts/collector.sh")
                .stdout,
        )
        .unwrap();
        let (grpc, http) = (gotap_testkit::free_port(), gotap_testkit::free_port());
        let cfg = std::env::temp_dir().join(format!("export-cost-{}.yaml", std::process::id()));
        let yaml = Command::new(&script)
            .args(["config", &grpc.to_string(), &http.to_string(), "/dev/null"])
            .output()
            .unwrap()
            .stdout;
        std::fs::write(&cfg, yaml).unwrap();
        let child = Command::new(bin.trim())
            .arg(format!("--config={}", cfg.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for port in [grpc, http] {
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "collector did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        (child, grpc, http)
    });

    for w in which {
        let rt = || {
            Arc::new(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap(),
            )
        };
        match w {
            "grpc" | "http" => {
                let (_, grpc, http) = collector.as_ref().unwrap();
                let rt = rt();
                let (protocol, endpoint) = if w == "grpc" {
                    (Protocol::Grpc, format!("http://127.0.0.1:{grpc}"))
                } else {
                    (
                        Protocol::HttpProtobuf,
                        format!("http://127.0.0.1:{http}/v1/traces"),
                    )
                };
                let cfg = OtlpConfig {
                    protocol,
                    endpoint,
                    headers: vec![],
                    timeout: Duration::from_secs(10),
                };
                let exporter: Box<dyn Exporter> = if w == "grpc" {
                    Box::new(GrpcExporter::new(rt.clone(), &cfg).unwrap())
                } else {
                    Box::new(HttpExporter::new(rt.clone(), &cfg).unwrap())
                };
                run(&format!("otlp-{w}"), exporter, Some(rt), &input);
            }
            "file" => run(
                "file",
                Box::new(JsonFileExporter::create("/dev/null".as_ref()).unwrap()),
                None,
                &input,
            ),
            other => panic!("unknown exporter {other:?}: grpc, http or file"),
        }
    }
    if let Some((mut child, _, _)) = collector {
        let _ = child.kill();
        let _ = child.wait();
    }
}
