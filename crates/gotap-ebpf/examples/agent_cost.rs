//! gotap's own CPU per span, as `gotap run` spends it: an [`Agent`] whose spans go through a
//! [`Pipeline`] to OTLP/gRPC, or OTLP/HTTP with `http` (the test Collector, scripts/collector.sh, file exporter to
//! /dev/null), on a real load. Prints, per span, the CPU time and heap allocations of the agent's
//! ring-buffer reader thread (event → span → export queue) and of the export thread (batching,
//! protobuf, gRPC). Run as root:
//!
//!   cargo run --release -p gotap-ebpf --example agent_cost [-- sites|functions] [http] [SECONDS] [--rate N] [--interval MS]
//!
//! `sites` (default): examples/sitebench annotated with gotap's probe sites (one probe-site event
//! per span, alternately a server and a client span, ~70k spans/s; `--rate N` paces them at N
//! spans/s instead, the cost at a fixed load, where caches are colder and wake-ups count). `functions`: go/services/httpsvc
//! traced through function probes under `wrk -t1 -c10` on `GET /users/42` (one server span per
//! request). CPU is the thread's `sum_exec_runtime` (/proc/self/task/TID/schedstat, ns), read while
//! both threads are still running after the load stopped and the last batch went out; allocations
//! are counted per thread by this example's global allocator. `go` from PATH or $GO.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gotap_binary::usdt::{self, SiteDef};
use gotap_ebpf::{Agent, AgentOptions};
use gotap_export::{
    Batch, BatchConfig, ExportError, Exporter, GrpcExporter, HttpExporter, OtlpConfig, Pipeline,
    PipelineSink, Protocol,
};
use gotap_spans::sink::{SpanSink, StatusRef, ValueRef};
use gotap_spans::SpanFrame;
use gotap_spans::{Span, SpanKind};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a plain thread-local (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// A thread seen from inside: its id and its allocation count so far.
#[derive(Default)]
struct Seen {
    tid: AtomicU64,
    allocs: AtomicU64,
}

impl Seen {
    fn record(&self) {
        if self.tid.load(Ordering::Relaxed) == 0 {
            // SAFETY: gettid has no preconditions.
            self.tid
                .store(unsafe { libc::gettid() } as u64, Ordering::Relaxed);
        }
        self.allocs.store(ALLOCS.with(Cell::get), Ordering::Relaxed);
    }
    /// (CPU ns, allocations) of the thread so far.
    fn now(&self) -> (u64, u64) {
        let tid = self.tid.load(Ordering::Relaxed);
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap_or_default();
        let ns = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (ns, self.allocs.load(Ordering::Relaxed))
    }
}

/// Second exporter on the pipeline: notes the export thread's id and allocations.
struct Probe(Arc<Seen>);

impl Exporter for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn export(&mut self, _: &Batch, _: Duration) -> Result<u64, ExportError> {
        self.0.record();
        Ok(0)
    }
    // Reads no span: gotap run's OTLP-only pipeline encodes spans as they are sent.
    fn needs_spans(&self) -> bool {
        false
    }
}

/// gotap run's sink, noting the reader thread's id and allocations after each drain.
struct Noting {
    inner: PipelineSink,
    seen: Arc<Seen>,
}

impl SpanSink for Noting {
    fn begin(&mut self, f: &SpanFrame, scope: &'static str) {
        self.inner.begin(f, scope)
    }
    fn attr(&mut self, key: &'static str, value: ValueRef<'_>) {
        self.inner.attr(key, value)
    }
    fn end(&mut self, name: &[&str], kind: SpanKind, status: StatusRef<'_>) {
        self.inner.end(name, kind, status)
    }
    fn span(&mut self, span: Span) {
        self.inner.span(span)
    }
    fn idle(&mut self) {
        self.inner.idle();
        self.seen.record();
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let rate: Option<u64> = args.iter().position(|a| a == "--rate").map(|i| {
        let v = args.get(i + 1).and_then(|v| v.parse().ok());
        args.drain(i..(i + 2).min(args.len()));
        v.expect("--rate takes a number of spans per second")
    });
    let interval: Option<u64> = args.iter().position(|a| a == "--interval").map(|i| {
        let v = args.get(i + 1).and_then(|v| v.parse().ok());
        args.drain(i..(i + 2).min(args.len()));
        v.expect("--interval takes milliseconds")
    });
    let functions = args.iter().any(|a| a == "functions");
    let over_http = args.iter().any(|a| a == "http");
    let seconds: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(6);
    let go = std::env::var("GO").unwrap_or_else(|_| "go".into());
    let root = gotap_testkit::repo_root();
    let tmp = std::env::temp_dir();

    // The Collector.
    let script = root.join("scripts/collector.sh");
    let collector_bin = String::from_utf8(
        Command::new(&script)
            .output()
            .expect("run scripts/collector.sh")
            .stdout,
    )
    .unwrap();
    let grpc = gotap_testkit::free_port();
    let http = gotap_testkit::free_port();
    let cfg = tmp.join(format!("agent-cost-{}.yaml", std::process::id()));
    let yaml = Command::new(&script)
        .args(["config", &grpc.to_string(), &http.to_string(), "/dev/null"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(&cfg, yaml).unwrap();
    let mut collector = Command::new(collector_bin.trim())
        .arg(format!("--config={}", cfg.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the collector did not listen on {grpc}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // gotap run's wiring: agent → SpanSender → Pipeline → OTLP/gRPC (default batch settings).
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
    let otlp = OtlpConfig {
        protocol: if over_http {
            Protocol::HttpProtobuf
        } else {
            Protocol::Grpc
        },
        endpoint: if over_http {
            format!("http://127.0.0.1:{http}/v1/traces")
        } else {
            format!("http://127.0.0.1:{grpc}")
        },
        headers: vec![],
        timeout: Duration::from_secs(10),
    };
    let export_seen = Arc::new(Seen::default());
    let otlp_exporter: Box<dyn Exporter> = if over_http {
        Box::new(HttpExporter::new(rt.clone(), &otlp).unwrap())
    } else {
        Box::new(GrpcExporter::new(rt.clone(), &otlp).unwrap())
    };
    let exporter_name = otlp_exporter.name().to_owned();
    let exporters: Vec<Box<dyn Exporter>> =
        vec![otlp_exporter, Box::new(Probe(export_seen.clone()))];
    let pipeline = Pipeline::start_with(BatchConfig::default(), exporters, Some(rt));
    let reader_seen = Arc::new(Seen::default());
    let sink = Noting {
        inner: pipeline.sender().sink(),
        seen: reader_seen.clone(),
    };
    let mut opts = AgentOptions::default();
    if let Some(ms) = interval {
        opts.poll_interval = Duration::from_millis(ms);
    }
    let mut agent = Agent::load_into(opts, sink).unwrap_or_else(|e| panic!("{e}"));

    let bin = tmp.join(format!("gotap-agent-cost-{}", std::process::id()));
    let mut child = if functions {
        let ok = Command::new(&go)
            .current_dir(root.join("go/services"))
            .args(["build", "-o"])
            .arg(&bin)
            .arg("./httpsvc")
            .env("CGO_ENABLED", "0")
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "go build of httpsvc failed");
        let port = gotap_testkit::free_port();
        let child = Command::new(&bin)
            .args(["-listen", &format!("127.0.0.1:{port}"), "-name", "bench"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "httpsvc did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let t = agent
            .trace_process(child.id(), Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        println!("attached: {} probes on {}", t.probes, t.tracing);
        let wrk = Command::new("wrk")
            .args([
                "-t1",
                "-c10",
                &format!("-d{seconds}s"),
                &format!("http://127.0.0.1:{port}/users/42"),
            ])
            .stdout(Stdio::null())
            .status();
        assert!(
            wrk.is_ok_and(|s| s.success()),
            "wrk failed (is it installed?)"
        );
        child
    } else {
        let src = root.join("crates/gotap-ebpf/examples/sitebench");
        let ok = Command::new(&go)
            .current_dir(&src)
            .args(["build", "-o"])
            .arg(&bin)
            .env("GOTOOLCHAIN", "local")
            .status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "go build of {} failed",
            src.display()
        );
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
        usdt::annotate(&bin, &sites, Some(usdt::GOTAP_SEMAPHORE_MARKER))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new(&bin)
            .args(["-seconds", &(seconds + 1).to_string()])
            .args(rate.map(|r| format!("-rate={r}")))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        assert_eq!(lines.next().as_deref(), Some("sitebench ready"));
        let t = agent
            .trace_process(child.id(), Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        println!("attached: {} probes on {}", t.probes, t.tracing);
        for _ in lines {}
        child
    };
    let _ = child.kill();
    let _ = child.wait();
    // Let the reader drain the ring and the pipeline send its last batch (200 ms schedule delay).
    std::thread::sleep(Duration::from_millis(800));
    let stats = agent.stats();
    let (reader_ns, reader_allocs) = reader_seen.now();
    let (export_ns, export_allocs) = export_seen.now();
    let _ = agent.shutdown();
    let export = pipeline.shutdown();
    let _ = collector.kill();
    let _ = collector.wait();
    let _ = std::fs::remove_file(&bin);
    let _ = std::fs::remove_file(&cfg);

    let grpc_stats = export.exporter(&exporter_name).expect("the OTLP exporter");
    let n = stats.spans.max(1) as f64;
    println!(
        "{}: {} spans ({} exported, {} dropped at the queue, {} ring-buffer drops)",
        if functions { "functions" } else { "sites" },
        stats.spans,
        grpc_stats.exported,
        export.dropped_queue_full,
        stats.ringbuf_drops
    );
    println!(
        "reader thread  {:>6.3} µs/span  {:>5.2} allocs/span",
        reader_ns as f64 / 1e3 / n,
        reader_allocs as f64 / n
    );
    // The export thread's work is per span it sent (at saturation the queue drops some).
    let e = grpc_stats.exported.max(1) as f64;
    println!(
        "export thread  {:>6.3} µs/span  {:>5.2} allocs/span",
        export_ns as f64 / 1e3 / e,
        export_allocs as f64 / e
    );
    println!(
        "both           {:>6.3} µs/span",
        reader_ns as f64 / 1e3 / n + export_ns as f64 / 1e3 / e
    );
}
