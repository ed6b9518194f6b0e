//! The real OpenTelemetry Collector for end-to-end tests: scripts/collector.sh builds it (once,
//! cached) and writes its config; the Collector receives OTLP on two free ports and writes every
//! span it gets to a JSON-lines file, which [`Collector::spans`] reads back as [`Seen`] spans.
use crate::{free_port, repo_root, wait_port, Proc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running Collector, killed on drop. Its directory is left in place so a failed test's spans
/// can be read; a test that passes removes it if it wants to.
pub struct Collector {
    _proc: Proc,
    /// The file exporter's output: one OTLP/JSON `ExportTraceServiceRequest` a line.
    pub file: PathBuf,
    /// OTLP/HTTP port on 127.0.0.1 (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT`).
    pub http_port: u16,
    /// The Collector's own directory (config and spans file); free for the test's other files.
    pub dir: PathBuf,
}

/// Stops the Collector and removes its directory, unless the test is failing (then the config
/// and the spans file stay for a look).
impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self._proc.0.kill();
        let _ = self._proc.0.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Collector {
    /// Starts a Collector in `$TMPDIR/<name>-<pid>` (emptied first) and returns once its OTLP/HTTP
    /// port accepts connections. The name tells the test and case apart, e.g.
    /// `gotap-build-sql-go1.26-sqlite`. Panics when the Collector cannot be built or started.
    pub fn start(name: &str) -> Collector {
        let script = repo_root().join("scripts/collector.sh");
        let built = Command::new(&script).output().unwrap();
        assert!(
            built.status.success(),
            "scripts/collector.sh failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let bin = String::from_utf8(built.stdout).unwrap().trim().to_owned();
        let (grpc, http) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("spans.jsonl");
        let cfg = Command::new(&script)
            .args(["config", &grpc.to_string(), &http.to_string()])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            cfg.status.success(),
            "scripts/collector.sh config failed: {}",
            String::from_utf8_lossy(&cfg.stderr)
        );
        let cfg_path = dir.join("collector.yaml");
        std::fs::write(&cfg_path, cfg.stdout).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config={}", cfg_path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        wait_port(http, "collector");
        Collector {
            _proc: proc,
            file,
            http_port: http,
            dir,
        }
    }

    /// Every span the Collector has written so far.
    pub fn spans(&self) -> Vec<Seen> {
        read_spans(&self.file)
    }

    /// The spans once there are at least `n`, or whatever arrived within 20 s: the caller's
    /// assertions then say what is missing.
    pub fn wait_spans(&self, n: usize) -> Vec<Seen> {
        self.wait_for(Duration::from_secs(20), |spans| spans.len() >= n)
    }

    /// The spans once `enough` holds for them, or whatever arrived within `within`.
    pub fn wait_for(&self, within: Duration, enough: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + within;
        loop {
            let spans = self.spans();
            if enough(&spans) || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A span as the Collector's file exporter wrote it, attribute values flattened to strings
/// (strings as they are, other values as JSON text).
#[derive(Debug, Clone)]
pub struct Seen {
    /// The resource's `service.name`, empty when absent.
    pub service: String,
    pub scope: String,
    pub name: String,
    /// OTLP span kind: 1 internal, 2 server, 3 client.
    pub kind: i64,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent: String,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i64,
    pub status_message: String,
    pub attrs: BTreeMap<String, String>,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
}

/// Reads a file-exporter output file; a missing file or a line that is not (yet) complete JSON
/// counts as no spans.
pub fn read_spans(file: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            let resource = flat_attrs(&rs["resource"]["attributes"]);
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push(Seen {
                        service: resource.get("service.name").cloned().unwrap_or_default(),
                        scope: ss["scope"]["name"].as_str().unwrap_or("").to_owned(),
                        name: s["name"].as_str().unwrap_or("").to_owned(),
                        kind: s["kind"].as_i64().unwrap_or(0),
                        trace_id: s["traceId"].as_str().unwrap_or("").to_owned(),
                        span_id: s["spanId"].as_str().unwrap_or("").to_owned(),
                        parent: s["parentSpanId"].as_str().unwrap_or("").to_owned(),
                        status_code: s["status"]["code"].as_i64().unwrap_or(0),
                        status_message: s["status"]["message"].as_str().unwrap_or("").to_owned(),
                        attrs: flat_attrs(&s["attributes"]),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    out
}

/// OTLP/JSON `[{"key": K, "value": {"<type>Value": V}}]` as K → V.
fn flat_attrs(v: &serde_json::Value) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for a in v.as_array().into_iter().flatten() {
        let val = a["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .unwrap_or_default();
        let s = match val {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        m.insert(a["key"].as_str().unwrap_or("").to_owned(), s);
    }
    m
}
