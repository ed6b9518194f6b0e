//! The arena's system under test: the collector plus gateway → (orders over HTTP, catalog over
//! gRPC), each a child process on loopback ports, with logs kept for the report.
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SERVICES: [&str; 3] = ["catalog", "orders", "gateway"];

/// How a service binary is built: plain, with the hand-written OTel SDK instrumentation, or woven
/// by `gotap build` (the compile-time strategy: OTel SDK linked, net/http hooked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    Manual,
    Gotap,
    /// `gotap build --probes`: nop5 USDT probe sites woven into net/http, database/sql and grpc,
    /// traced by `gotap run` (docs/probes.md).
    GotapProbes,
    /// `orchestrion go build` of a copy with the dd-trace-go integrations (crate::orchestrion).
    Orchestrion,
}

impl Variant {
    pub fn label(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Manual => "manual",
            Variant::Gotap => "gotap",
            Variant::GotapProbes => "gotap-probes",
            Variant::Orchestrion => "orchestrion",
        }
    }
}

/// How to run the build of one service.
pub struct BuildSpec<'a> {
    pub arena_dir: &'a Path,
    pub go: &'a Path,
    /// The `gotap` executable, needed for [`Variant::Gotap`] (`gotap build` wraps `go build`).
    pub gotap: Option<&'a Path>,
    /// The `orchestrion` executable, needed for [`Variant::Orchestrion`].
    pub orchestrion: Option<&'a Path>,
    pub service: &'a str,
    pub variant: Variant,
    /// Links with `-ldflags=-s -w` (no symbol table, no DWARF), as many release builds do.
    pub stripped: bool,
    pub out: &'a Path,
    /// A build cache of its own (clean/cached build timings); None: the user's default cache.
    pub gocache: Option<&'a Path>,
    /// Build the legacy HTTP-only service (go/arena/legacy, Go 1.19-buildable) instead.
    pub legacy: bool,
}

/// Binary path of a service build.
pub fn bin_path(
    out: &Path,
    service: &str,
    variant: Variant,
    stripped: bool,
    legacy: bool,
) -> PathBuf {
    out.join(format!(
        "{service}{}-{}{}",
        if legacy { "-legacy" } else { "" },
        variant.label(),
        if stripped { "-stripped" } else { "" }
    ))
}

/// `go build` (or `gotap build`, `orchestrion go build`) of one arena service. Returns the binary,
/// or the first error lines.
pub fn build_service(b: &BuildSpec) -> Result<PathBuf, String> {
    let dir = source_dir(b)?;
    build_in(b, &dir)
}

/// Where the service is built from: go/arena itself, or for Orchestrion a prepared copy.
pub fn source_dir(b: &BuildSpec) -> Result<PathBuf, String> {
    match (b.variant, b.legacy) {
        (Variant::Orchestrion, false) => {
            let work = b.out.join("orchestrion-src").join(b.service);
            crate::orchestrion::prepare(b.arena_dir, &work, b.go, b.service)
        }
        (Variant::Orchestrion, true) => {
            let work = b.out.join("orchestrion-src-legacy");
            crate::orchestrion::prepare_legacy(b.arena_dir, &work, b.go, b.service)
        }
        (_, true) => Ok(b.arena_dir.join("legacy").join(b.service)),
        (_, false) => Ok(b.arena_dir.join(b.service)),
    }
}

/// The build itself, in `dir` (from [`source_dir`]).
pub fn build_in(b: &BuildSpec, dir: &Path) -> Result<PathBuf, String> {
    let bin = bin_path(b.out, b.service, b.variant, b.stripped, b.legacy);
    std::fs::create_dir_all(b.out)
        .map_err(|e| format!("cannot create {}: {e}", b.out.display()))?;
    let mut cmd = match b.variant {
        Variant::Orchestrion => {
            let o = b.orchestrion.ok_or("orchestrion is not installed")?;
            let mut c = Command::new(o);
            c.env("PATH", crate::orchestrion::path_with(b.go))
                .args(["go", "build"]);
            c
        }
        Variant::Gotap | Variant::GotapProbes => {
            let gotap = b
                .gotap
                .ok_or("no gotap executable to run `gotap build` with")?;
            let mut c = Command::new(gotap);
            c.env("GOTAP_GO", b.go).arg("build");
            if b.variant == Variant::GotapProbes {
                c.arg("--probes");
            }
            c
        }
        _ => {
            let mut c = Command::new(b.go);
            c.arg("build");
            c
        }
    };
    cmd.current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw");
    if let Some(c) = b.gocache {
        cmd.env("GOCACHE", c);
    }
    if b.variant == Variant::Manual {
        cmd.args(["-tags", "manual"]);
    }
    if b.stripped {
        cmd.arg("-ldflags=-s -w");
    }
    cmd.arg("-o").arg(&bin).arg(".");
    let what = match b.variant {
        Variant::Gotap | Variant::GotapProbes => "gotap",
        Variant::Orchestrion => "orchestrion go",
        _ => "go",
    };
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if o.status.success() {
        Ok(bin)
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        // The first two meaningful lines: Go's complaint and what it is about (go.mod version,
        // first compiler error…).
        let lines: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with('#')
                    && !l.starts_with("go: downloading")
                    && !l.starts_with("gotap: warning")
            })
            .take(2)
            .collect();
        let msg = if lines.is_empty() {
            format!("{what} build failed without output")
        } else {
            lines.join(" ")
        };
        Err(msg.chars().take(240).collect())
    }
}

/// What `gotap build` wove into a binary, read from the binary itself: the built-in rules add
/// helper functions named `gotap…` to each library package they weave (hook setters, status and
/// metadata helpers), and function names stay in the function table even of a stripped binary.
/// Rules weave a package as a whole, so a library with such a function has its server and client
/// join points woven.
pub fn woven_instrumentations(bin: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(bin) else {
        return vec![];
    };
    let finder = |p: &str| memmem_find(&bytes, p.as_bytes());
    WOVEN_MARKERS
        .iter()
        .filter(|(prefix, _)| finder(prefix))
        .flat_map(|(_, what)| what.iter().map(|w| w.to_string()))
        .collect()
}

/// The instrumentations whose probe sites a `gotap build --probes` binary carries, read from its
/// USDT notes (what `gotap run` attaches to): a package left unwoven, or whose sites the linker
/// dropped, has no note and so no expected span. Errors are one sentence.
pub fn probe_site_instrumentations(bin: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(bin).map_err(|e| format!("cannot read {}: {e}", bin.display()))?;
    let probes =
        gotap_binary::usdt::read_probes(&bytes).map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut out: Vec<String> = vec![];
    for p in probes
        .iter()
        .filter(|p| p.provider == gotap_binary::usdt::GOTAP_PROVIDER)
    {
        let what = match p.name.as_str() {
            "http_server" => "net/http server",
            "http_client" => "net/http client",
            "sql_query" => "database/sql",
            "grpc_server" => "google.golang.org/grpc server",
            "grpc_client" => "google.golang.org/grpc client",
            // A site this arena does not know: not counted, so it cannot inflate expectations.
            _ => continue,
        };
        if !out.iter().any(|x| x == what) {
            out.push(what.to_owned());
        }
    }
    Ok(out)
}

/// (function-name prefix the rules add, instrumentations it stands for).
const WOVEN_MARKERS: [(&str, &[&str]); 3] = [
    ("net/http.gotap", &["net/http server", "net/http client"]),
    (
        "google.golang.org/grpc.gotap",
        &[
            "google.golang.org/grpc server",
            "google.golang.org/grpc client",
        ],
    ),
    ("database/sql.gotap", &["database/sql"]),
];

fn memmem_find(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    hay.iter()
        .enumerate()
        .filter(|&(_, &b)| b == first)
        .any(|(i, _)| hay[i..].starts_with(needle))
}

/// A free loopback port (bound then released: the child binds it right after), below the
/// ephemeral range so that no outgoing connection takes it in between.
pub fn free_port() -> Result<u16> {
    Ok(gotap_testkit::try_free_port()?)
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
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the exit status and the last line of its log if the process already died.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            // The last few lines: under `gotap run` the very last one is gotap's own summary,
            // and the service's reason (a bind error, say) is just above it.
            let mut tail: Vec<&str> = log
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .rev()
                .take(3)
                .collect();
            tail.reverse();
            let tail = if tail.is_empty() {
                "(empty log)".to_owned()
            } else {
                tail.join(" | ")
            };
            bail!("{} exited early ({st}): {tail}", self.name);
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
        // Ready only when the process we started (or its child, under gotap run) listens: a
        // connect alone may reach another server that drew the same free port, or itself.
        let conn = if crate::procfs::listens(proc.pid(), port) {
            TcpStream::connect(("127.0.0.1", port)).ok()
        } else {
            None
        };
        if let Some(mut s) = conn {
            match path {
                None => return Ok(()),
                Some(p) => {
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    write!(
                        s,
                        "GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )?;
                    let mut buf = String::new();
                    let _ = s.read_to_string(&mut buf);
                    if buf.starts_with("HTTP/1.1 200") {
                        return Ok(());
                    }
                }
            }
        }
        if t.elapsed() > timeout {
            bail!(
                "{} did not become ready on port {port} within {timeout:?}",
                proc.name
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// runtime/metrics counters from a service's /debug/runtime endpoint.
pub fn runtime_counters(port: u16) -> Result<BTreeMap<String, u64>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /debug/runtime HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .context("malformed /debug/runtime answer")?;
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
    span["name"]
        .as_str()
        .is_some_and(|n| n.ends_with(DEBUG_PATH))
        || span["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["key"] == "url.path" && a["value"]["stringValue"] == DEBUG_PATH)
}

/// OTLP/JSON carries 64-bit integers as strings.
fn start_nanos(span: &serde_json::Value) -> u64 {
    let v = &span["startTimeUnixNano"];
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or(u64::MAX)
}

/// Spans in a file exporter's output, by `service.name`, leaving out the arena's /debug/runtime
/// reads and spans that started before `since_unix_nanos` (a service's own start-up: orders seeds
/// its database before it listens, and a strategy that traces every SQL statement, in a request
/// or not, would count those).
pub fn count_spans(file: &Path, since_unix_nanos: u64) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("malformed line in {}", file.display()))?;
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
                .filter(|s| !is_debug_span(s) && start_nanos(s) >= since_unix_nanos)
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
    fn woven_libraries_are_read_from_function_names() {
        let dir = std::env::temp_dir().join(format!("gotap-bench-woven-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bin");
        std::fs::write(&f, b"\0runtime.main\0net/http.gotapSetServerStart\0database/sql.gotapSetSQLStart\0google.golang.org/grpc.NewServer\0").unwrap();
        assert_eq!(
            woven_instrumentations(&f),
            ["net/http server", "net/http client", "database/sql"]
        );
        std::fs::write(&f, b"net/http.(*Server).Serve").unwrap();
        assert!(woven_instrumentations(&f).is_empty());
        assert!(woven_instrumentations(&dir.join("absent")).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn probe_sites_are_read_from_usdt_notes_and_bad_files_are_one_sentence() {
        // An ELF without notes (this test executable): no site, so no expected span.
        assert_eq!(
            probe_site_instrumentations(&std::env::current_exe().unwrap()),
            Ok(vec![])
        );
        let dir = std::env::temp_dir().join(format!("gotap-bench-sites-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("not-elf");
        std::fs::write(&f, b"net/http.gotapProbeHTTPServer").unwrap();
        let e = probe_site_instrumentations(&f).unwrap_err();
        assert_eq!(e, format!("{}: not an ELF file", f.display()));
        assert!(probe_site_instrumentations(&dir.join("absent"))
            .unwrap_err()
            .starts_with("cannot read "));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn counts_spans_per_service_in_otlp_json_lines() {
        let dir = std::env::temp_dir().join(format!("gotap-bench-spans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("spans.jsonl");
        let line = |svc: &str, n: usize| {
            let spans: Vec<_> = (0..n)
                .map(|i| serde_json::json!({"name": format!("s{i}"), "startTimeUnixNano": "2000"}))
                .collect();
            serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                "scopeSpans": [{"spans": spans}]}]})
            .to_string()
        };
        let debug = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeSpans": [{"spans": [{"name": "GET /debug/runtime", "startTimeUnixNano": "2000"}, {"name": "GET", "startTimeUnixNano": "2000", "attributes": [{"key": "url.path", "value": {"stringValue": "/debug/runtime"}}]}]}]}]});
        let startup = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeSpans": [{"spans": [{"name": "INSERT", "startTimeUnixNano": "999"}]}]}]});
        std::fs::write(
            &f,
            format!(
                "{}\n{}\n{}\n{debug}\n{startup}\n",
                line("gateway", 3),
                line("orders", 2),
                line("gateway", 1)
            ),
        )
        .unwrap();
        let c = count_spans(&f, 1000).unwrap();
        assert_eq!(c.get("gateway"), Some(&4));
        assert_eq!(c.get("orders"), Some(&2));
        assert_eq!(
            count_spans(&f, 0).unwrap().get("orders"),
            Some(&3),
            "start-up span counted when no cut-off"
        );
        assert!(count_spans(&dir.join("absent"), 0).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
