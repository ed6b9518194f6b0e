//! Shared by the eBPF end-to-end tests (e2e_http, safety, run_errors): the sample service built
//! with each toolchain, `gotap run`/`gotap attach` as real processes, the real OpenTelemetry
//! Collector (scripts/collector.sh), a tiny HTTP/1.1 client, and the collector's OTLP/JSON output
//! parsed into flat spans.
#![allow(dead_code)] // each test binary uses a subset

pub mod trees;

use gotap_testkit::{free_port, Toolchain, Variant};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const GOTAP: &str = env!("CARGO_BIN_EXE_gotap");

/// go/services httpsvc built with `tc` / `variant`.
pub fn httpsvc(tc: Toolchain, variant: Variant) -> PathBuf {
    gotap_testkit::build("services", "./httpsvc", tc, variant)
}

/// A fresh scratch directory under target/.
pub fn scratch(name: &str) -> PathBuf {
    let d = gotap_testkit::bin_dir()
        .parent()
        .unwrap()
        .join("gotap-e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Output of a child process collected by background threads (the flag: end of file reached).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<String>>, Arc<std::sync::atomic::AtomicBool>);

impl Captured {
    fn spawn(r: impl Read + Send + 'static) -> Captured {
        let c = Captured::default();
        let c2 = c.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                c2.0.lock().unwrap().push_str(&line);
                line.clear();
            }
            c2.1.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        c
    }
    /// Waits until the pipe's writers are all gone and everything is read (at most `timeout`:
    /// a grandchild may keep the pipe open).
    fn wait_eof(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.1.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    /// The text once it contains `needle`, or whatever arrived within `timeout`: a process may
    /// answer a request before its own log line reaches the pipe.
    pub fn text_containing(&self, needle: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let t = self.text();
            if t.contains(needle) || std::time::Instant::now() >= deadline {
                return t;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A running process with its stdout and stderr being collected.
pub struct Proc {
    pub child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
    pub what: String,
}

/// What a stopped [`Proc`] left.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Proc {
    pub fn spawn(mut cmd: Command, what: &str) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = Captured::spawn(child.stdout.take().unwrap());
        let stderr = Captured::spawn(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
            what: what.to_string(),
        }
    }

    /// [`Proc::spawn`] with a pipe on stdin (see [`Proc::write_stdin`]).
    pub fn spawn_with_stdin(mut cmd: Command, what: &str) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = Captured::spawn(child.stdout.take().unwrap());
        let stderr = Captured::spawn(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
            what: what.to_string(),
        }
    }

    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .expect("spawned with spawn_with_stdin");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit (panics after `timeout`, killing it).
    pub fn wait(mut self, timeout: Duration) -> Finished {
        use std::os::unix::process::ExitStatusExt;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {timeout:?}; stderr:\n{}",
                    self.what,
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The last lines are written just before the exit: let the reader threads reach EOF.
        self.stdout.wait_eof(Duration::from_secs(5));
        self.stderr.wait_eof(Duration::from_secs(5));
        Finished {
            code: status.code(),
            signal: status.signal(),
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
        }
    }

    /// SIGINT, then wait. Generous: removing a uprobe costs 0.1–0.9 s on this nested VM.
    pub fn interrupt(self) -> Finished {
        self.signal(libc::SIGINT);
        self.wait(Duration::from_secs(90))
    }

    /// The pid of the program `gotap run` started (its only child).
    pub fn pid_of_child(&self) -> u32 {
        let pid = self.pid();
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let kids: Vec<u32> = kids
            .split_whitespace()
            .map(|k| k.parse().unwrap())
            .collect();
        assert_eq!(
            kids.len(),
            1,
            "{} should have one child, has {kids:?}",
            self.what
        );
        kids[0]
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (no HTTP request, so no span).
pub fn wait_listening(port: u16, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !gotap_testkit::listening(port) {
        assert!(
            proc.alive(),
            "{} exited before listening on {port}; stderr:\n{}",
            proc.what,
            proc.stderr.text()
        );
        assert!(
            Instant::now() < deadline,
            "{} does not listen on {port}; stderr:\n{}",
            proc.what,
            proc.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// httpsvc arguments.
pub fn svc_args(port: u16, name: &str, downstream: Option<u16>) -> Vec<String> {
    let mut a = vec![
        "-listen".to_string(),
        format!("127.0.0.1:{port}"),
        "-name".into(),
        name.into(),
    ];
    if let Some(d) = downstream {
        a.push("-downstream".into());
        a.push(format!("http://127.0.0.1:{d}"));
    }
    a
}

/// `gotap run FLAGS -- BIN ARGS`, running until [`Proc::interrupt`].
pub fn gotap_run(flags: &[String], bin: &Path, args: &[String], what: &str) -> Proc {
    let mut cmd = Command::new(GOTAP);
    cmd.arg("run").args(flags).arg("--").arg(bin).args(args);
    Proc::spawn(cmd, what)
}

/// The target without gotap.
pub fn plain(bin: &Path, args: &[String], what: &str) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    Proc::spawn(cmd, what)
}

/// One HTTP/1.1 exchange on a new connection: (status, body).
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: gotap-e2e/1.0\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path} on {port}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response from {port}: {text:?}"));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// The real OpenTelemetry Collector: OTLP gRPC + HTTP receivers on free ports, file exporter.
pub struct Collector {
    proc: Proc,
    pub grpc_port: u16,
    pub http_port: u16,
    pub file: PathBuf,
}

impl Collector {
    pub fn start(dir: &Path) -> Collector {
        Self::start_on(dir, free_port(), free_port())
    }

    /// A Collector on the given ports (a test that starts it after its client, e.g. an outage).
    pub fn start_on(dir: &Path, grpc_port: u16, http_port: u16) -> Collector {
        let script = gotap_testkit::repo_root().join("scripts/collector.sh");
        let out = Command::new(&script)
            .output()
            .expect("run scripts/collector.sh");
        assert!(
            out.status.success(),
            "scripts/collector.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let file = dir.join("collector-out.jsonl");
        let cfg = Command::new(&script)
            .args([
                "config",
                &grpc_port.to_string(),
                &http_port.to_string(),
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(cfg.status.success());
        let cfg_path = dir.join("collector.yaml");
        std::fs::write(&cfg_path, &cfg.stdout).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config={}", cfg_path.display()));
        let mut proc = Proc::spawn(cmd, "otel collector");
        wait_listening(grpc_port, &mut proc);
        wait_listening(http_port, &mut proc);
        Collector {
            proc,
            grpc_port,
            http_port,
            file,
        }
    }

    /// Spans in the collector's file so far.
    pub fn spans(&self) -> Vec<FlatSpan> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        // The exporter may be mid-write: only complete lines count.
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        parse_otlp_json_lines(complete)
    }

    /// Waits until `pred` holds for the spans received (panics with them after 60 s).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[FlatSpan]) -> bool) -> Vec<FlatSpan> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let spans = self.spans();
            if pred(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                panic!(
                    "collector never got {what}; it has:\n{}\ncollector stderr:\n{}",
                    dump(&spans),
                    self.proc.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One span as received, with its resource's service.name.
#[derive(Debug, Clone)]
pub struct FlatSpan {
    pub service: String,
    pub resource: BTreeMap<String, Value>,
    pub trace_id: String,
    pub span_id: String,
    pub parent: String,
    pub name: String,
    /// OTLP numbers: 2 server, 3 client.
    pub kind: i64,
    pub attrs: BTreeMap<String, Value>,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status: i64,
}

impl FlatSpan {
    pub fn str(&self, k: &str) -> Option<&str> {
        self.attrs.get(k).and_then(|v| v.as_str())
    }
    pub fn int(&self, k: &str) -> Option<i64> {
        self.attrs.get(k).and_then(|v| v.as_i64())
    }
}

pub fn dump(spans: &[FlatSpan]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "  {} {} kind={} {} trace={} span={} parent={} status={} {:?}",
                s.service,
                s.name,
                s.kind,
                s.str("url.path").or(s.str("url.full")).unwrap_or(""),
                s.trace_id,
                s.span_id,
                s.parent,
                s.status,
                s.attrs
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An OTLP AnyValue as plain JSON (ints arrive as strings in OTLP/JSON).
fn any_value(v: &Value) -> Value {
    if let Some(s) = v.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = v.get("intValue") {
        return match i {
            Value::String(s) => Value::from(s.parse::<i64>().expect("intValue")),
            other => other.clone(),
        };
    }
    if let Some(b) = v.get("boolValue") {
        return b.clone();
    }
    if let Some(d) = v.get("doubleValue") {
        return d.clone();
    }
    v.clone()
}

fn attrs(list: Option<&Value>) -> BTreeMap<String, Value> {
    list.and_then(|l| l.as_array())
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap().to_string(),
                        any_value(&kv["value"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// OTLP/JSON lines (the collector file exporter's and gotap --output-file's format) → spans.
pub fn parse_otlp_json_lines(text: &str) -> Vec<FlatSpan> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad OTLP/JSON line ({e}): {line}"));
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            let resource = attrs(rs["resource"].get("attributes"));
            let service = resource
                .get("service.name")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push(FlatSpan {
                        service: service.clone(),
                        resource: resource.clone(),
                        trace_id: s["traceId"].as_str().unwrap_or("").to_string(),
                        span_id: s["spanId"].as_str().unwrap_or("").to_string(),
                        parent: s["parentSpanId"].as_str().unwrap_or("").to_string(),
                        name: s["name"].as_str().unwrap_or("").to_string(),
                        kind: s["kind"].as_i64().unwrap_or(0),
                        attrs: attrs(s.get("attributes")),
                        status: s["status"]
                            .get("code")
                            .and_then(|c| c.as_i64())
                            .unwrap_or(0),
                    });
                }
            }
        }
    }
    out
}

/// `url.full` of one client call to `?apikey=s3cret&x=1` made by httpsvc `bin` (a plain or a
/// probes build, `-once`) under `gotap run` with `extra` flags, against the same binary untraced.
pub fn once_url_full(bin: &Path, dir: &Path, label: &str, extra: &[&str]) -> (String, String) {
    let file = dir.join(format!("{label}.jsonl"));
    let tport = free_port();
    let mut target = plain(bin, &svc_args(tport, "T", None), "httpsvc (target)");
    wait_listening(tport, &mut target);
    let mut flags = vec![
        "--no-console".to_string(),
        "--output-file".to_string(),
        file.display().to_string(),
    ];
    flags.extend(extra.iter().map(|f| f.to_string()));
    let base = format!("http://127.0.0.1:{tport}/users/7");
    let args = [
        "-name".to_string(),
        "O".to_string(),
        "-once".to_string(),
        format!("{base}?apikey=s3cret&x=1"),
    ];
    let f =
        gotap_run(&flags, bin, &args, &format!("gotap run {label}")).wait(Duration::from_secs(60));
    assert_eq!(f.code, Some(0), "{f:?}");
    let spans = parse_otlp_json_lines(&std::fs::read_to_string(&file).unwrap_or_default());
    assert_eq!(spans.len(), 1, "{label}: {}\n{}", f.stderr, dump(&spans));
    assert_eq!(spans[0].kind, 3, "{}", dump(&spans));
    (
        spans[0].str("url.full").unwrap_or_default().to_string(),
        base,
    )
}
