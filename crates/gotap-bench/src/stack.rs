//! The arena's system under test: the collector plus gateway → (orders over HTTP, catalog over
//! gRPC), each a child process on loopback ports, with logs kept for the report.
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SERVICES: [&str; 3] = ["catalog", "orders", "gateway"];

/// How a service binary is built: plain or with the hand-written OTel SDK instrumentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    Manual,
}

impl Variant {
    pub fn label(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Manual => "manual",
        }
    }
}

/// `go build` of one arena service. Returns the binary, or the compiler's first error line.
/// `stripped` links with `-ldflags=-s -w` (no symbol table, no DWARF), as many release builds do.
pub fn build_service(arena_dir: &Path, go: &Path, service: &str, variant: Variant, stripped: bool, out: &Path) -> Result<PathBuf, String> {
    let bin = out.join(format!("{service}-{}{}", variant.label(), if stripped { "-stripped" } else { "" }));
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut cmd = Command::new(go);
    cmd.current_dir(arena_dir.join(service)).env("GOTOOLCHAIN", "local").env("GOFLAGS", "-modcacherw").arg("build");
    if variant == Variant::Manual {
        cmd.args(["-tags", "manual"]);
    }
    if stripped {
        cmd.arg("-ldflags=-s -w");
    }
    cmd.arg("-o").arg(&bin).arg(".");
    let o = cmd.output().map_err(|e| format!("cannot run {}: {e}", go.display()))?;
    if o.status.success() {
        Ok(bin)
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        // The first two meaningful lines: Go's complaint and what it is about (go.mod version,
        // first compiler error…).
        let lines: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("go: downloading"))
            .take(2)
            .collect();
        let msg = if lines.is_empty() { "go build failed without output".to_owned() } else { lines.join(" ") };
        Err(msg.chars().take(240).collect())
    }
}

/// A free loopback port (bound then released: the child binds it right after).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process stopped with SIGTERM (graceful: the SDK flushes its spans) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Proc> {
        let path = log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&path)?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = cmd.spawn().with_context(|| format!("cannot start {name}"))?;
        Ok(Proc { name: name.to_owned(), child, log: path })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the exit status and the last line of its log if the process already died.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(empty log)");
            bail!("{} exited early ({st}): {}", self.name, last.trim());
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`. Returns false if it had to be killed.
    pub fn stop(&mut self, grace: Duration) -> bool {
        if self.child.try_wait().ok().flatten().is_some() {
            return true;
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < grace {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Waits until `port` accepts connections (and, with `path`, answers it with 200).
pub fn wait_ready(proc: &mut Proc, port: u16, path: Option<&str>, timeout: Duration) -> Result<()> {
    let t = Instant::now();
    loop {
        proc.check_alive()?;
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            match path {
                None => return Ok(()),
                Some(p) => {
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    write!(s, "GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
                    let mut buf = String::new();
                    let _ = s.read_to_string(&mut buf);
                    if buf.starts_with("HTTP/1.1 200") {
                        return Ok(());
                    }
                }
            }
        }
        if t.elapsed() > timeout {
            bail!("{} did not become ready on port {port} within {timeout:?}", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// runtime/metrics counters from a service's /debug/runtime endpoint.
pub fn runtime_counters(port: u16) -> Result<BTreeMap<String, u64>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /debug/runtime HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).context("malformed /debug/runtime answer")?;
    Ok(serde_json::from_str(body.trim())?)
}

/// Collector config: OTLP gRPC + HTTP receivers, file exporter (JSON lines).
pub fn collector_config(grpc: u16, http: u16, file: &Path) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{grpc}\n      http:\n        endpoint: 127.0.0.1:{http}\n\
         exporters:\n  file:\n    path: {}\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n",
        file.display()
    )
}

/// The arena's own measurement endpoint: a strategy that traces every handler of the binary
/// (eBPF) sees the arena reading it; those spans are not part of the workload.
const DEBUG_PATH: &str = "/debug/runtime";

fn is_debug_span(span: &serde_json::Value) -> bool {
    span["name"].as_str().is_some_and(|n| n.ends_with(DEBUG_PATH))
        || span["attributes"].as_array().into_iter().flatten().any(|a| a["key"] == "url.path" && a["value"]["stringValue"] == DEBUG_PATH)
}

/// Spans in a file exporter's output, by `service.name` (spans of the arena's /debug/runtime
/// reads left out).
pub fn count_spans(file: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("malformed line in {}", file.display()))?;
        for rs in v["resourceSpans"].as_array().into_iter().flatten() {
            let svc = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or("unknown")
                .to_owned();
            let n = rs["scopeSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|ss| ss["spans"].as_array().into_iter().flatten())
                .filter(|s| !is_debug_span(s))
                .count();
            *out.entry(svc).or_insert(0) += n as u64;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_spans_per_service_in_otlp_json_lines() {
        let dir = std::env::temp_dir().join(format!("gotap-bench-spans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("spans.jsonl");
        let line = |svc: &str, n: usize| {
            let spans: Vec<_> = (0..n).map(|i| serde_json::json!({"name": format!("s{i}")})).collect();
            serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                "scopeSpans": [{"spans": spans}]}]})
            .to_string()
        };
        let debug = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeSpans": [{"spans": [{"name": "GET /debug/runtime"}, {"name": "GET", "attributes": [{"key": "url.path", "value": {"stringValue": "/debug/runtime"}}]}]}]}]});
        std::fs::write(&f, format!("{}\n{}\n{}\n{debug}\n", line("gateway", 3), line("orders", 2), line("gateway", 1))).unwrap();
        let c = count_spans(&f).unwrap();
        assert_eq!(c.get("gateway"), Some(&4));
        assert_eq!(c.get("orders"), Some(&2));
        assert!(count_spans(&dir.join("absent")).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
