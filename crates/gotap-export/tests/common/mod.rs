//! Shared by the integration tests: a real OpenTelemetry Collector (go/collector, built by
//! scripts/collector.sh) and a set of realistic spans.
#![allow(dead_code)]

use gotap_spans::nethttp::{client_span, server_span, ClientRequest, ServerRequest};
use gotap_spans::SpanFrame;
use gotap_spans::{Resource, Span, SpanKind, Status, Value};
use serde_json::Value as J;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A scratch directory unique to this test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gotap-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Path of the collector binary; builds it once per test process through scripts/collector.sh.
pub fn collector_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = gotap_testkit::repo_root().join("scripts/collector.sh");
        let out = Command::new(&script).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "building the test OpenTelemetry Collector failed (scripts/collector.sh); its output:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(p.is_file(), "scripts/collector.sh printed {}, which is not a file", p.display());
        p
    })
    .clone()
}

/// A running collector: OTLP gRPC + HTTP on loopback, traces to a JSON lines file.
pub struct Collector {
    child: Child,
    pub grpc_port: u16,
    pub http_port: u16,
    pub out: PathBuf,
    log: PathBuf,
}

impl Collector {
    pub fn start(dir: &Path) -> Collector {
        Self::start_on(dir, gotap_testkit::free_port(), gotap_testkit::free_port())
    }

    pub fn start_on(dir: &Path, grpc_port: u16, http_port: u16) -> Collector {
        let bin = collector_bin();
        let out = dir.join("collector-out.jsonl");
        let cfg = dir.join("collector.yaml");
        let yaml = Command::new(gotap_testkit::repo_root().join("scripts/collector.sh"))
            .args([
                "config",
                &grpc_port.to_string(),
                &http_port.to_string(),
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(yaml.status.success());
        std::fs::write(&cfg, &yaml.stdout).unwrap();
        let log = dir.join("collector.log");
        let child = Command::new(&bin)
            .arg(format!("--config={}", cfg.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut c = Collector {
            child,
            grpc_port,
            http_port,
            out,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [grpc_port, http_port] {
            while !gotap_testkit::listening(port) {
                if let Ok(Some(st)) = c.child.try_wait() {
                    panic!(
                        "collector exited ({st}) before listening; log:\n{}",
                        c.log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "collector did not listen on {port} within 30 s; log:\n{}",
                    c.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests the collector wrote, once they hold at least `spans` spans (waits up to 15 s:
    /// the file exporter writes asynchronously).
    pub fn requests(&self, spans: usize) -> Vec<J> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let reqs = read_json_lines(&self.out);
            if count_spans(&reqs) >= spans {
                return reqs;
            }
            assert!(
                Instant::now() < deadline,
                "collector wrote {} of {spans} spans within 15 s; log:\n{}",
                count_spans(&reqs),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_json_lines(p: &Path) -> Vec<J> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    // Only complete lines: the writer may be mid-line.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

pub fn all_spans(reqs: &[J]) -> Vec<(J, J)> {
    let mut out = Vec::new();
    for r in reqs {
        for rs in r["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push((rs["resource"].clone(), s.clone()));
                }
            }
        }
    }
    out
}

pub fn count_spans(reqs: &[J]) -> usize {
    all_spans(reqs).len()
}

/// Numbers compared as f64 (Go writes 2.0 as 2, serde_json as 2.0); everything else as is.
pub fn normalize(v: &J) -> J {
    match v {
        J::Number(n) => J::from(n.as_f64().unwrap()),
        J::Array(a) => J::Array(a.iter().map(normalize).collect()),
        J::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

pub fn resource() -> Arc<Resource> {
    let mut r = gotap_export::resource_for_process(
        4242,
        Path::new("/srv/bin/orders"),
        "go1.26.8",
        Some("orders"),
    );
    r.set("deployment.environment.name", "test");
    Arc::new(r)
}

/// A server span with a client child, an internal span with every value type, a root error span.
pub fn sample_spans(resource: &Arc<Resource>, seed: u8) -> Vec<Span> {
    let trace = [
        seed, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47,
        0x36,
    ];
    let t0 = 1_700_000_000_000_000_000u64 + seed as u64 * 1_000_000;
    let frame = |id: u8, parent: Option<u8>, start: u64, end: u64| SpanFrame {
        trace_id: trace,
        span_id: [seed, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent.map(|p| [seed, 0, 0, 0, 0, 0, 0, p]),
        start_unix_nano: start,
        end_unix_nano: end,
        resource: resource.clone(),
    };
    let server = server_span(
        &ServerRequest {
            method: "GET".into(),
            path: "/users/42".into(),
            pattern: Some("GET /users/{id}".into()),
            host: Some("localhost:8080".into()),
            client_address: Some("127.0.0.1".into()),
            client_port: Some(50123),
            user_agent: Some("curl/8".into()),
            protocol: Some("HTTP/1.1".into()),
            status_code: Some(200),
            tls: false,
            ..Default::default()
        },
        frame(1, None, t0, t0 + 1_234_000),
        false,
    );
    let client = client_span(
        &ClientRequest {
            method: "POST".into(),
            url: "http://127.0.0.1:9090/orders".into(),
            status_code: Some(503),
            error: None,
        },
        frame(2, Some(1), t0 + 100_000, t0 + 900_000),
    );
    let internal = Span {
        trace_id: trace,
        span_id: [seed, 0, 0, 0, 0, 0, 0, 3],
        parent_span_id: Some([seed, 0, 0, 0, 0, 0, 0, 1]),
        name: "work".into(),
        kind: SpanKind::Internal,
        start_unix_nano: t0 + 200_000,
        end_unix_nano: t0 + 300_000,
        attributes: vec![
            ("b", Value::Bool(false)),
            ("d", Value::Double(2.0)),
            ("d2", Value::Double(0.25)),
            ("i", Value::Int(-7)),
            ("s", Value::from("")),
        ],
        status: Status::Ok,
        resource: resource.clone(),
        scope: "gotap/test",
    };
    let mut failed = server.clone();
    failed.span_id = [seed, 0, 0, 0, 0, 0, 0, 4];
    failed.trace_id[15] ^= 0xff;
    failed.name = "GET".into();
    failed.status = Status::Error("handler panicked".into());
    vec![server, client, internal, failed]
}

pub fn hex(b: &[u8]) -> String {
    gotap_spans::ids::hex(b)
}

/// Asserts that `reqs` hold exactly `spans` with the right content.
pub fn assert_spans_match(reqs: &[J], spans: &[Span]) {
    let got = all_spans(reqs);
    assert_eq!(got.len(), spans.len(), "span count: {reqs:?}");
    for s in spans {
        let (res, j) = got
            .iter()
            .find(|(_, j)| j["spanId"] == hex(&s.span_id))
            .unwrap_or_else(|| {
                panic!(
                    "span {} ({}) missing from {reqs:?}",
                    hex(&s.span_id),
                    s.name
                )
            });
        assert_eq!(j["traceId"], hex(&s.trace_id));
        match s.parent_span_id {
            Some(p) => assert_eq!(j["parentSpanId"], hex(&p)),
            None => assert!(
                j.get("parentSpanId").is_none(),
                "root span has a parent: {j}"
            ),
        }
        assert_eq!(j["name"], s.name.as_str());
        assert_eq!(
            j["kind"].as_i64().unwrap(),
            gotap_export::otlp::kind_number(s.kind) as i64
        );
        assert_eq!(j["startTimeUnixNano"], s.start_unix_nano.to_string());
        assert_eq!(j["endTimeUnixNano"], s.end_unix_nano.to_string());
        let attrs = j["attributes"].as_array().unwrap();
        assert_eq!(attrs.len(), s.attributes.len(), "{j}");
        for (a, (k, v)) in attrs.iter().zip(&s.attributes) {
            assert_eq!(a["key"], *k);
            assert_eq!(
                normalize(&a["value"]),
                normalize(&value_json(v)),
                "attribute {k}"
            );
        }
        match &s.status {
            Status::Unset => assert_eq!(j["status"], serde_json::json!({})),
            Status::Ok => assert_eq!(j["status"], serde_json::json!({"code": 1})),
            Status::Error(m) if m.is_empty() => {
                assert_eq!(j["status"], serde_json::json!({"code": 2}))
            }
            Status::Error(m) => {
                assert_eq!(j["status"], serde_json::json!({"code": 2, "message": m}))
            }
        }
        let rattrs = res["attributes"].as_array().unwrap();
        assert_eq!(rattrs.len(), s.resource.attributes.len());
        for (a, (k, v)) in rattrs.iter().zip(&s.resource.attributes) {
            assert_eq!(a["key"], k.as_str());
            assert_eq!(
                normalize(&a["value"]),
                normalize(&value_json(v)),
                "resource attribute {k}"
            );
        }
    }
}

fn value_json(v: &Value) -> J {
    match v {
        Value::Str(s) => serde_json::json!({ "stringValue": s }),
        Value::Int(i) => serde_json::json!({ "intValue": i.to_string() }),
        Value::Bool(b) => serde_json::json!({ "boolValue": b }),
        Value::Double(d) => serde_json::json!({ "doubleValue": d }),
    }
}
