//! Shared by the integration tests: the Go test program (tests/go), agents collecting spans,
//! raw HTTP requests.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gotap_ebpf::{Agent, AgentOptions};
use gotap_spans::{Resource, Span, Value};
use gotap_testkit::{Toolchain, Variant};

pub const PIN_DIR: &str = "/sys/fs/bpf/gotap-test";

/// tests/go built with `tc`.
pub fn app(tc: Toolchain, variant: Variant) -> PathBuf {
    gotap_testkit::build("../crates/gotap-ebpf/tests/go", ".", tc, variant)
}

/// A running test server; killed on drop.
pub struct App {
    pub child: Child,
    pub port: u16,
}

impl App {
    pub fn start(bin: &Path) -> App {
        Self::start_with(bin, &[])
    }
    /// With extra arguments (`tls`).
    pub fn start_with(bin: &Path, args: &[&str]) -> App {
        let port = gotap_testkit::free_port();
        let mut child = Command::new(bin)
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start test app");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "test app did not start");
        App { child, port }
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spans collected by an agent.
#[derive(Clone, Default)]
pub struct Sink(pub Arc<Mutex<Vec<Span>>>);

impl Sink {
    /// Waits until `n` spans match `pred` (5 s at most) and returns all spans seen.
    pub fn wait_for(&self, n: usize, pred: impl Fn(&Span) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let spans = self.0.lock().unwrap().clone();
            if spans.iter().filter(|s| pred(s)).count() >= n || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn agent(capture_query: bool) -> (Agent, Sink) {
    gotap_testkit::require_root();
    let sink = Sink::default();
    let s = sink.0.clone();
    let opts = AgentOptions {
        capture_query,
        link_map_pin_dir: PIN_DIR.into(),
        ..Default::default()
    };
    let agent = Agent::load(opts, move |span| s.lock().unwrap().push(span))
        .unwrap_or_else(|e| panic!("{e}"));
    (agent, sink)
}

pub fn resource(name: &str) -> Resource {
    let mut r = Resource::default();
    r.set("service.name", name);
    r
}

/// Sends one HTTP/1.1 request with extra header lines; returns the status code.
pub fn request(port: u16, target: &str, headers: &[(&str, &str)]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {resp}"))
}

pub fn str_attr<'a>(s: &'a Span, k: &str) -> Option<&'a str> {
    match s.attr(k) {
        Some(Value::Str(v)) => Some(v.as_ref()),
        _ => None,
    }
}

pub fn int_attr(s: &Span, k: &str) -> Option<i64> {
    match s.attr(k) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}
