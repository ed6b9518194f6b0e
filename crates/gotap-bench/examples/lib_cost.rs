//! BPF time per span, per library, under `gotap run` on an unmodified Go binary.
//!
//! Runs crates/gotap-cli/tests/go/grpchttp (built with plain `go build`) under the release
//! `gotap run --no-console`, exporting OTLP/gRPC to a real Collector, drives a fixed number of
//! requests over keep-alive connections, and reads the kernel's BPF statistics (`run_time_ns`,
//! `run_cnt`, enabled for the duration with `BPF_ENABLE_STATS`, the same switch as
//! `sysctl kernel.bpf_stats_enabled=1`) of every program that this gotap process holds, before and
//! after each measured window. Each program is attributed to its library by the libraries'
//! program lists (`gotap_ebpf::libs::LIBRARIES`, the source of the BPF names; full names from
//! `bpftool prog show`, which reads them from BTF, as the kernel keeps 15 characters) and to a
//! span kind within it by its name. Spans per kind come from the request count (grpchttp's call
//! graph below), cross-checked with gotap's closing summary.
//!
//! A round is one fresh `gotap run` of grpchttp (rounds run one after another; every ratio is
//! taken inside one round, from the same windows):
//!   warm-up   both paths, to open every connection (HTTP keep-alive, the gRPC channel, the
//!             SQLite pool) and start their goroutines outside the measured windows;
//!   then `--chunks` slices of each path, alternated (q, fail, q, fail…), one window each:
//!   q         N × GET /q in all: /q's server span, gRPC client, gRPC server, SELECT, HTTP
//!             client, /leaf's server span;
//!   fail      M × GET /fail in all: server span (502), gRPC client, gRPC server (NOT_FOUND), a
//!             failing statement.
//!
//!   lib_cost --gotap target/release/gotap --bin grpchttp --otlp http://127.0.0.1:4317 \
//!            [--rounds 3] [--requests 3000] [--fail 1000] [--warmup 300] [--connections 2] \
//!            [--chunks 5] [--json results.jsonl]
//!
//! Root required (uprobes, BPF statistics). `run_time_ns` is the programs' own run time: the
//! uprobe trap around each hit (docs/ebpf.md, "Where exactly") is not in it.
use anyhow::{bail, ensure, Context, Result};
use gotap_bench::procfs;
use gotap_testkit::free_port;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a BPF program's time is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    HttpServer,
    HttpClient,
    GrpcServer,
    GrpcClient,
    Sql,
    /// The goroutine-start hook (`newproc_*`): paid per `go` statement, not per span.
    Goroutines,
    /// A program of a library that names neither side: shown, never folded into a kind.
    Unassigned,
    /// Anything else gotap holds (process-exit tracepoint, probe-site programs): not per span.
    Other,
}

impl Kind {
    const SPANS: [Kind; 5] = [
        Kind::HttpServer,
        Kind::HttpClient,
        Kind::GrpcServer,
        Kind::GrpcClient,
        Kind::Sql,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::HttpServer => "net/http server",
            Kind::HttpClient => "net/http client",
            Kind::GrpcServer => "grpc server",
            Kind::GrpcClient => "grpc client",
            Kind::Sql => "database/sql",
            Kind::Goroutines => "goroutine hook (per `go`)",
            Kind::Unassigned => "unassigned",
            Kind::Other => "other",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::HttpServer => "http_server",
            Kind::HttpClient => "http_client",
            Kind::GrpcServer => "grpc_server",
            Kind::GrpcClient => "grpc_client",
            Kind::Sql => "sql",
            Kind::Goroutines => "goroutines",
            Kind::Unassigned => "unassigned",
            Kind::Other => "other",
        }
    }
}

/// The kernel's name for a program: its function name cut to BPF_OBJ_NAME_LEN - 1.
fn kernel_name(name: &str) -> &str {
    &name[..name.len().min(15)]
}

/// Library and side of a program, from the libraries' own program lists. The side is read from
/// the name (`server_*` / `client_*` in net/http; `grpc_server_*`, `grpc_headers` — the server's
/// HEADERS frame — and `grpc_client_*` in grpc).
fn classify(kname: &str) -> (Kind, &'static str) {
    for (_, lib) in gotap_ebpf::libs::LIBRARIES {
        if !lib
            .programs
            .iter()
            .any(|p| *p == kname || kernel_name(p) == kname)
        {
            continue;
        }
        let server = kname.contains("server") || kname.contains("srv") || kname == "grpc_headers";
        let client = kname.contains("client") || kname.contains("cli");
        let kind = match lib.name {
            "net/http" if server => Kind::HttpServer,
            "net/http" if client => Kind::HttpClient,
            "google.golang.org/grpc" if server && !client => Kind::GrpcServer,
            "google.golang.org/grpc" if client && !server => Kind::GrpcClient,
            "database/sql" => Kind::Sql,
            _ => Kind::Unassigned,
        };
        return (kind, lib.name);
    }
    if kname.starts_with("newproc") {
        (Kind::Goroutines, "runtime")
    } else {
        (Kind::Other, "gotap")
    }
}

/// Spans of each kind one request of `path` makes (grpchttp's main.go).
fn spans_per_request(path: &str, kind: Kind) -> u64 {
    match (path, kind) {
        ("/q", Kind::HttpServer) => 2, // /q and /leaf
        ("/q", Kind::HttpClient | Kind::GrpcServer | Kind::GrpcClient | Kind::Sql) => 1,
        ("/fail", Kind::GrpcServer | Kind::GrpcClient | Kind::Sql | Kind::HttpServer) => 1,
        _ => 0,
    }
}

#[derive(Debug, Clone)]
struct ProgStat {
    name: String,
    run_ns: u64,
    cnt: u64,
}

/// Ids of the BPF programs a process holds: its program fds and its links' programs
/// (/proc/PID/fdinfo: `prog_id:`).
fn prog_ids(pid: u32) -> Result<BTreeSet<u32>> {
    let mut ids = BTreeSet::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .with_context(|| format!("process {pid} is gone"))?
    {
        let text = std::fs::read_to_string(e?.path()).unwrap_or_default();
        for l in text.lines() {
            if let Some(v) = l.strip_prefix("prog_id:") {
                ids.extend(v.trim().parse::<u32>().ok());
            }
        }
    }
    Ok(ids)
}

/// Full program names by id. The kernel keeps 15 characters (`grpc_server_start` and
/// `grpc_server_status` are both `grpc_server_sta` there); bpftool reads the whole name from the
/// program's BTF. Without bpftool, the kernel's names.
fn full_names(ids: &BTreeSet<u32>) -> BTreeMap<u32, String> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output();
    let list: Vec<serde_json::Value> = match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or_default(),
        _ => {
            eprintln!("lib_cost: no bpftool; program names are the kernel's (15 characters)");
            vec![]
        }
    };
    list.iter()
        .filter_map(|p| Some((p["id"].as_u64()? as u32, p["name"].as_str()?.to_string())))
        .filter(|(id, _)| ids.contains(id))
        .collect()
}

fn snapshot(ids: &BTreeSet<u32>, names: &BTreeMap<u32, String>) -> Result<BTreeMap<u32, ProgStat>> {
    let mut out = BTreeMap::new();
    for info in aya::programs::loaded_programs() {
        let info = info.context("listing the loaded BPF programs")?;
        if ids.contains(&info.id()) {
            let kname = info.name_as_str().unwrap_or("?");
            let name = names
                .get(&info.id())
                .filter(|n| kernel_name(n) == kname)
                .map_or(kname, |n| n.as_str());
            out.insert(
                info.id(),
                ProgStat {
                    name: name.to_string(),
                    run_ns: info.run_time().as_nanos() as u64,
                    cnt: info.run_count(),
                },
            );
        }
    }
    ensure!(
        out.len() == ids.len(),
        "{} of gotap's {} BPF programs are gone",
        ids.len() - out.len(),
        ids.len()
    );
    Ok(out)
}

/// Per program name: (Δrun_time_ns, Δrun_cnt) between two snapshots (`round` checks the names
/// are unique once cut to 15 characters).
fn delta(a: &BTreeMap<u32, ProgStat>, b: &BTreeMap<u32, ProgStat>) -> BTreeMap<String, (u64, u64)> {
    b.iter()
        .map(|(id, s)| {
            let (n0, c0) = a.get(id).map_or((0, 0), |p| (p.run_ns, p.cnt));
            (s.name.clone(), (s.run_ns - n0, s.cnt - c0))
        })
        .collect()
}

/// One HTTP/1.1 keep-alive connection answering GET requests (Content-Length bodies: grpchttp's
/// answers are a few bytes, which net/http sends with a length).
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    fn get(&mut self, path: &str) -> Result<u16> {
        write!(self.w, "GET {path} HTTP/1.1\r\nHost: grpchttp\r\n\r\n")?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut len = None;
        loop {
            line.clear();
            ensure!(
                self.r.read_line(&mut line)? > 0,
                "connection closed in the headers"
            );
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<u64>().ok();
                }
            }
        }
        let len = len.context("an answer without Content-Length")?;
        std::io::copy(&mut (&mut self.r).take(len), &mut std::io::sink())?;
        Ok(status)
    }
}

/// `n` GETs of `path` spread over the connections, each connection sequential; every answer must
/// have status `want`.
fn drive(conns: &mut [Conn], path: &str, n: u64, want: u16) -> Result<()> {
    let k = conns.len() as u64;
    std::thread::scope(|s| {
        let workers: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(i, c)| {
                let share = n / k + u64::from((i as u64) < n % k);
                s.spawn(move || -> Result<()> {
                    for _ in 0..share {
                        let st = c.get(path)?;
                        ensure!(st == want, "GET {path} answered {st}, expected {want}");
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a load worker panicked"))
    })
}

struct Opts {
    gotap: PathBuf,
    bin: PathBuf,
    otlp: String,
    rounds: usize,
    requests: u64,
    fail: u64,
    warmup: u64,
    connections: usize,
    chunks: u64,
    json: Option<PathBuf>,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        gotap: "target/release/gotap".into(),
        bin: PathBuf::new(),
        otlp: String::new(),
        rounds: 3,
        requests: 3000,
        fail: 1000,
        warmup: 300,
        connections: 2,
        chunks: 5,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--gotap" => o.gotap = v()?.into(),
            "--bin" => o.bin = v()?.into(),
            "--otlp" => o.otlp = v()?,
            "--rounds" => o.rounds = v()?.parse()?,
            "--requests" => o.requests = v()?.parse()?,
            "--fail" => o.fail = v()?.parse()?,
            "--warmup" => o.warmup = v()?.parse()?,
            "--connections" => o.connections = v()?.parse()?,
            "--chunks" => o.chunks = v()?.parse()?,
            "--json" => o.json = Some(v()?.into()),
            _ => bail!("unknown argument {a} (see the example's doc comment)"),
        }
    }
    ensure!(
        !o.bin.as_os_str().is_empty() && !o.otlp.is_empty(),
        "--bin and --otlp are required"
    );
    ensure!(
        o.rounds > 0 && o.requests > 0 && o.connections > 0 && o.chunks > 0,
        "rounds, requests, connections and chunks must be positive"
    );
    Ok(o)
}

/// A measured phase: per kind (spans, hits, ns), the requests, and the programs' own deltas.
#[derive(Debug, Clone)]
struct Phase {
    path: &'static str,
    requests: u64,
    by_kind: BTreeMap<Kind, (u64, u64, u64)>,
    programs: BTreeMap<String, (u64, u64)>,
}

impl Phase {
    fn new(path: &'static str, requests: u64, d: BTreeMap<String, (u64, u64)>) -> Phase {
        let mut by_kind: BTreeMap<Kind, (u64, u64, u64)> = BTreeMap::new();
        for k in Kind::SPANS {
            by_kind.insert(k, (spans_per_request(path, k) * requests, 0, 0));
        }
        for (name, (ns, cnt)) in &d {
            let e = by_kind.entry(classify(name).0).or_insert((0, 0, 0));
            e.1 += cnt;
            e.2 += ns;
        }
        Phase {
            path,
            requests,
            by_kind,
            programs: d,
        }
    }

    fn hits_per_span(&self, k: Kind) -> Option<f64> {
        let (spans, hits, _) = self.by_kind.get(&k).copied()?;
        (spans > 0).then(|| hits as f64 / spans as f64)
    }
    fn ns_per_hit(&self, k: Kind) -> Option<f64> {
        let (_, hits, ns) = self.by_kind.get(&k).copied()?;
        (hits > 0).then(|| ns as f64 / hits as f64)
    }
    fn us_per_span(&self, k: Kind) -> Option<f64> {
        let (spans, _, ns) = self.by_kind.get(&k).copied()?;
        (spans > 0).then(|| ns as f64 / spans as f64 / 1e3)
    }
    fn ratio(&self, k: Kind) -> Option<f64> {
        Some(self.us_per_span(k)? / self.us_per_span(Kind::HttpServer)?)
    }
    /// Per request, every program charged to the request (kinds and the goroutine hook, not
    /// "other"): (hits, µs).
    fn per_request(&self) -> (f64, f64) {
        let (h, ns) = self
            .by_kind
            .iter()
            .filter(|(k, _)| **k != Kind::Other)
            .fold((0, 0), |(h, n), (_, v)| (h + v.1, n + v.2));
        let r = self.requests as f64;
        (h as f64 / r, ns as f64 / r / 1e3)
    }
}

struct Round {
    phases: Vec<Phase>,
    summary: String,
    spans_expected: u64,
    spans_exported: u64,
    dropped: u64,
    hits_summary: u64,
    hits_bpf_total: u64,
    names: Vec<String>,
}

fn spawn_gotap(o: &Opts, port: u16, gport: u16, db: &std::path::Path) -> Result<Child> {
    Command::new(&o.gotap)
        .args([
            "run",
            "--no-console",
            "--otlp-protocol",
            "grpc",
            "--otlp-endpoint",
        ])
        .arg(&o.otlp)
        .args(["--service-name", "grpchttp", "--"])
        .arg(&o.bin)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("GRPC_ADDR", format!("127.0.0.1:{gport}"))
        .env("DB", db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", o.gotap.display()))
}

fn round(o: &Opts, n: usize) -> Result<Round> {
    let dir = std::env::temp_dir().join(format!("gotap-lib-cost-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (port, gport) = (free_port(), free_port());
    let mut gotap = spawn_gotap(o, port, gport, &dir.join("app.db"))?;
    let gpid = gotap.id();
    // gotap's stderr, read while it runs so a chatty run cannot block it on a full pipe.
    let mut err = gotap.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let result = (|| -> Result<(Vec<Phase>, u64, Vec<String>)> {
        let t = Instant::now();
        while !(procfs::listens(gpid, port) && procfs::listens(gpid, gport)) {
            if let Some(st) = gotap.try_wait()? {
                bail!("gotap run exited ({st}) before grpchttp listened");
            }
            ensure!(
                t.elapsed() < Duration::from_secs(60),
                "grpchttp never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut conns = (0..o.connections)
            .map(|_| Conn::open(port))
            .collect::<Result<Vec<_>>>()?;
        drive(&mut conns, "/q", o.warmup, 200)?;
        if o.fail > 0 {
            drive(&mut conns, "/fail", o.warmup.min(o.fail), 502)?;
        }
        // Programs are loaded and attached by now; their ids do not change while gotap runs.
        let ids = prog_ids(gpid)?;
        ensure!(!ids.is_empty(), "gotap (pid {gpid}) holds no BPF program");
        let full = full_names(&ids);
        let all: Vec<String> = snapshot(&ids, &full)?
            .into_values()
            .map(|s| s.name)
            .collect();
        let names: BTreeSet<&String> = all.iter().collect();
        ensure!(
            names.len() == all.len(),
            "two of gotap's BPF programs share a kernel name, per-program figures would mix: {all:?}"
        );
        // A request's last probes (the server's return site, its background reader) may run just
        // after the client has its answer.
        let settle = || std::thread::sleep(Duration::from_millis(200));
        settle();
        // The two paths alternate in `chunks` slices, each slice its own window, so load on the
        // machine falls on both alike; a path's figures are the sum of its windows.
        let paths = [("/q", o.requests, 200), ("/fail", o.fail, 502)];
        let mut sums: Vec<BTreeMap<String, (u64, u64)>> = vec![BTreeMap::new(); paths.len()];
        let mut before = snapshot(&ids, &full)?;
        for c in 0..o.chunks {
            for (i, (path, count, want)) in paths.iter().enumerate() {
                let slice = count / o.chunks + u64::from(c < count % o.chunks);
                if slice == 0 {
                    continue;
                }
                drive(&mut conns, path, slice, *want)?;
                settle();
                let after = snapshot(&ids, &full)?;
                for (name, (ns, cnt)) in delta(&before, &after) {
                    let e = sums[i].entry(name).or_insert((0, 0));
                    e.0 += ns;
                    e.1 += cnt;
                }
                before = after;
            }
        }
        let phases = paths
            .iter()
            .zip(sums)
            .filter(|((_, count, _), _)| *count > 0)
            .map(|((path, count, _), d)| Phase::new(path, *count, d))
            .collect();
        let total_hits = before.values().map(|s| s.cnt).sum();
        let names = before.values().map(|s| s.name.clone()).collect();
        Ok((phases, total_hits, names))
    })();
    // Stop the program; gotap exits with it after draining and exporting, printing its summary.
    let child = procfs::only_child(gpid);
    if let Ok(c) = child {
        // SAFETY: kill has no memory preconditions; c is grpchttp, gotap's child.
        unsafe { libc::kill(c as i32, libc::SIGTERM) };
    } else {
        // SAFETY: as above; gotap itself, started by us.
        unsafe { libc::kill(gpid as i32, libc::SIGINT) };
    }
    let _ = gotap.wait();
    let stderr = stderr.join().unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let (phases, hits_bpf_total, names) =
        result.with_context(|| format!("round {n}; gotap's stderr:\n{stderr}"))?;
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("gotap: ") && l.contains("spans exported"))
        .with_context(|| format!("no closing summary from gotap:\n{stderr}"))?
        .to_string();
    let num_before = |what: &str| -> Option<u64> {
        let i = summary.find(what)?;
        summary[..i].split_whitespace().last()?.parse().ok()
    };
    let per_req: u64 = Kind::SPANS
        .iter()
        .map(|k| spans_per_request("/q", *k))
        .sum();
    let per_fail: u64 = Kind::SPANS
        .iter()
        .map(|k| spans_per_request("/fail", *k))
        .sum();
    let fails = if o.fail > 0 {
        o.warmup.min(o.fail) + o.fail
    } else {
        0
    };
    Ok(Round {
        phases,
        spans_expected: (o.warmup + o.requests) * per_req + fails * per_fail,
        spans_exported: num_before(" spans exported").context("summary: spans")?,
        dropped: num_before(" dropped").context("summary: dropped")?,
        hits_summary: num_before(" probe hits").context("summary: probe hits")?,
        hits_bpf_total,
        summary,
        names,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// "median (min–max)" of one figure over the rounds, `-` when no round has it.
fn cell(v: Vec<Option<f64>>, digits: usize) -> String {
    let v: Vec<f64> = v.into_iter().flatten().collect();
    if v.is_empty() {
        return "–".into();
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
    let m = median(v);
    format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
}

fn json_line(n: usize, r: &Round) -> String {
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|p| {
            let kinds: Vec<String> = p
                .by_kind
                .iter()
                .map(|(k, (s, h, ns))| {
                    format!(
                        "\"{}\":{{\"spans\":{s},\"hits\":{h},\"run_ns\":{ns}}}",
                        k.key()
                    )
                })
                .collect();
            let progs: Vec<String> = p
                .programs
                .iter()
                .filter(|(_, (_, c))| *c > 0)
                .map(|(name, (ns, c))| format!("\"{name}\":{{\"hits\":{c},\"run_ns\":{ns}}}"))
                .collect();
            format!(
                "{{\"path\":\"{}\",\"requests\":{},\"kinds\":{{{}}},\"programs\":{{{}}}}}",
                p.path,
                p.requests,
                kinds.join(","),
                progs.join(",")
            )
        })
        .collect();
    format!(
        "{{\"round\":{n},\"spans_expected\":{},\"spans_exported\":{},\"dropped\":{},\"probe_hits_summary\":{},\"bpf_run_cnt_total\":{},\"phases\":[{}]}}",
        r.spans_expected,
        r.spans_exported,
        r.dropped,
        r.hits_summary,
        r.hits_bpf_total,
        phases.join(",")
    )
}

fn main() -> Result<()> {
    let o = opts()?;
    // Statistics are on while this fd is open (a reference of their own: another user's sysctl
    // does not switch them off under us), off again when we exit.
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("BPF_ENABLE_STATS failed (root? kernel ≥ 5.8)")?;
    let mut json = match &o.json {
        Some(p) => Some(std::fs::File::create(p)?),
        None => None,
    };
    let mut rounds = vec![];
    for n in 1..=o.rounds {
        let r = round(&o, n)?;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        eprintln!(
            "round {n}: {} | spans expected {}, exported {} | load average {}",
            r.summary,
            r.spans_expected,
            r.spans_exported,
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let line = json_line(n, &r);
        if let Some(f) = json.as_mut() {
            writeln!(f, "{line}")?;
        }
        rounds.push(r);
    }

    let first = &rounds[0];
    let unassigned: Vec<&String> = first
        .names
        .iter()
        .filter(|n| classify(n).0 == Kind::Unassigned)
        .collect();
    println!(
        "\ngotap's BPF programs: {}",
        first
            .names
            .iter()
            .map(|n| format!("{n} ({})", classify(n).1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !unassigned.is_empty() {
        println!("WARNING: programs not attributed to a span kind: {unassigned:?}");
    }
    for (i, p0) in first.phases.iter().enumerate() {
        let ph = |r: &Round| r.phases[i].clone();
        let all: Vec<Phase> = rounds.iter().map(ph).collect();
        println!(
            "\n{} × GET {} per round, median (min–max) of {} rounds; ratio: µs per span ÷ the net/http server span's, same round\n",
            p0.requests,
            p0.path,
            rounds.len()
        );
        println!("| span kind | spans per round | hits/span | ns/hit | µs/span | ratio to net/http server span |");
        println!("|---|---|---|---|---|---|");
        for k in Kind::SPANS {
            let spans = p0.by_kind[&k].0;
            if spans == 0 {
                continue;
            }
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                k.label(),
                spans,
                cell(all.iter().map(|p| p.hits_per_span(k)).collect(), 2),
                cell(all.iter().map(|p| p.ns_per_hit(k)).collect(), 0),
                cell(all.iter().map(|p| p.us_per_span(k)).collect(), 2),
                cell(all.iter().map(|p| p.ratio(k)).collect(), 2),
            );
        }
        for k in [Kind::Goroutines, Kind::Unassigned, Kind::Other] {
            let per_req = |p: &Phase, f: fn(&(u64, u64, u64)) -> f64| {
                p.by_kind.get(&k).map(|v| f(v) / p.requests as f64)
            };
            if all
                .iter()
                .all(|p| p.by_kind.get(&k).is_none_or(|v| v.1 == 0))
            {
                continue;
            }
            println!(
                "| {} — per request | | {} | {} | {} | |",
                k.label(),
                cell(all.iter().map(|p| per_req(p, |v| v.1 as f64)).collect(), 2),
                cell(all.iter().map(|p| p.ns_per_hit(k)).collect(), 0),
                cell(
                    all.iter()
                        .map(|p| per_req(p, |v| v.2 as f64 / 1e3))
                        .collect(),
                    2
                ),
            );
        }
        println!(
            "| all of gotap's BPF — per request | | {} | | {} | |",
            cell(all.iter().map(|p| Some(p.per_request().0)).collect(), 2),
            cell(all.iter().map(|p| Some(p.per_request().1)).collect(), 2),
        );
        println!("\nper program (hits/request, ns/hit, medians):");
        for name in p0.programs.keys() {
            let of = |p: &Phase| p.programs.get(name).copied().unwrap_or((0, 0));
            let hits: Vec<f64> = all
                .iter()
                .map(|p| of(p).1 as f64 / p.requests as f64)
                .collect();
            if hits.iter().all(|h| *h == 0.0) {
                continue;
            }
            let ns: Vec<f64> = all
                .iter()
                .filter(|p| of(p).1 > 0)
                .map(|p| of(p).0 as f64 / of(p).1 as f64)
                .collect();
            println!(
                "  {name:<20} {:<44} {:>6.2} {:>7.0}",
                format!("{} ({})", classify(name).0.label(), classify(name).1),
                median(hits),
                median(ns)
            );
        }
    }
    println!(
        "\ncross-check, per round: spans expected {:?}, exported {:?}, dropped {:?}; probe hits in gotap's summary {:?}, BPF run_cnt of its programs since load {:?}",
        rounds.iter().map(|r| r.spans_expected).collect::<Vec<_>>(),
        rounds.iter().map(|r| r.spans_exported).collect::<Vec<_>>(),
        rounds.iter().map(|r| r.dropped).collect::<Vec<_>>(),
        rounds.iter().map(|r| r.hits_summary).collect::<Vec<_>>(),
        rounds.iter().map(|r| r.hits_bpf_total).collect::<Vec<_>>(),
    );
    Ok(())
}
