//! The arena: realistic Go services (go/arena: gateway → orders over HTTP + SQLite, → catalog over
//! gRPC) run under each instrumentation strategy, interleaved in one run, each exporting to a real
//! OpenTelemetry Collector, and compared as ratios to the uninstrumented baseline of the same run.
//!
//! This crate is the runner as a library (`gotap bench` is a thin CLI over [`run`]); it is not a
//! general load-testing tool. Figures: saturation throughput (closed loop), latency at a fixed rate
//! (open loop, no coordinated omission), CPU per request of the services and of the collector, peak
//! RSS, allocations per request (runtime/metrics), and spans expected vs received.
pub mod charts;
pub mod loadgen;
pub mod orchestrion;
pub mod peers;
pub mod procfs;
pub mod report;
pub mod stack;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use stack::{Proc, Variant};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An instrumentation strategy the arena compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The services as built by `go build`, no telemetry.
    Baseline,
    /// Hand-written OTel Go SDK instrumentation (otelhttp, otelgrpc, otelsql), `-tags manual`.
    Manual,
    /// gotap's eBPF agent attached to the plain binaries.
    GotapRun,
    /// The services built by `gotap build` (OTel SDK woven in at compile time, net/http hooked).
    GotapBuild,
    /// `gotap build --probes` binaries (nop5 USDT probe sites, no SDK) traced by `gotap run`
    /// through those sites: one probe hit per buffer of spans (batch sites).
    GotapProbes,
    /// DataDog Orchestrion (peer): `orchestrion go build` with dd-trace-go, exporting OTLP.
    Orchestrion,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::Baseline,
        Strategy::Manual,
        Strategy::GotapRun,
        Strategy::GotapBuild,
        Strategy::GotapProbes,
        Strategy::Orchestrion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Baseline => "baseline",
            Strategy::Manual => "manual OTel SDK",
            Strategy::GotapRun => "gotap run (eBPF)",
            Strategy::GotapBuild => "gotap build (compile-time)",
            Strategy::GotapProbes => "gotap build --probes + gotap run",
            Strategy::Orchestrion => "Orchestrion (peer, compile-time)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Strategy::Baseline => "baseline",
            Strategy::Manual => "manual",
            Strategy::GotapRun => "gotap-run",
            Strategy::GotapBuild => "gotap-build",
            Strategy::GotapProbes => "gotap-probes",
            Strategy::Orchestrion => "orchestrion",
        }
    }

    /// What the report must say about the strategy's coverage of the arena's hops.
    pub fn coverage_note(self) -> Option<&'static str> {
        match self {
            Strategy::GotapBuild => Some(
                "its expected spans come from the hooks found in each binary (the `gotap…` functions its built-in rules add to net/http, \
                 google.golang.org/grpc and database/sql): a library without rules, or left unwoven, gives no expected span and shows as \
                 lower coverage. Every service is built with `gotap build`, so catalog's debug listener is woven too (no workload span).",
            ),
            Strategy::GotapProbes => Some(
                "its expected spans come from the probe sites each binary carries (the USDT notes `gotap build --probes` writes: \
                 http_server, http_client, sql_query, grpc_server, grpc_client), counted only for the hops the service has; a library \
                 without sites shows as lower coverage, a site `gotap run` does not trace shows as missing spans. The same `gotap run` \
                 as the eBPF row, attached to the sites instead of function entries and returns.",
            ),
            Strategy::Orchestrion => Some(
                "dd-trace-go's database/sql integration traces every statement, inside a request or not, and every connection the pool opens \
                 (`Connect` spans: a few per run, which is why received can exceed expected); spans that started before the services were \
                 listening (orders seeds its database: 10 000 INSERT spans) are not counted, for any strategy. Its spans reach the collector \
                 through dd-trace-go's OTLP export (`OTEL_TRACES_EXPORTER=otlp`, http/protobuf).",
            ),
            _ => None,
        }
    }

    /// The binaries the strategy runs.
    pub fn variant(self) -> Variant {
        match self {
            Strategy::Manual => Variant::Manual,
            Strategy::GotapBuild => Variant::Gotap,
            Strategy::GotapProbes => Variant::GotapProbes,
            Strategy::Orchestrion => Variant::Orchestrion,
            Strategy::Baseline | Strategy::GotapRun => Variant::Plain,
        }
    }

    /// Runs the services under `gotap run` (an agent process of its own, figures of its own).
    pub fn has_agent(self) -> bool {
        matches!(self, Strategy::GotapRun | Strategy::GotapProbes)
    }
}

/// Spans one gateway request yields when every hop is traced (the manual SDK reference): gateway
/// server + HTTP client + gRPC client, orders server + one SQL statement, catalog server.
pub const REFERENCE_SPANS_PER_REQUEST: u64 = 6;

/// Per service: (instrumentation, spans per gateway request) when fully traced.
const HOPS: [(&str, &[(&str, u64)]); 3] = [
    (
        "gateway",
        &[("http server", 1), ("http client", 1), ("grpc client", 1)],
    ),
    ("orders", &[("http server", 1), ("sql", 1)]),
    ("catalog", &[("grpc server", 1)]),
];

/// The same for the legacy services (go/arena/legacy, all HTTP, no database): gateway calls orders
/// and catalog over HTTP.
const LEGACY_HOPS: [(&str, &[(&str, u64)]); 3] = [
    ("gateway", &[("http server", 1), ("http client", 2)]),
    ("orders", &[("http server", 1)]),
    ("catalog", &[("http server", 1)]),
];

fn hops(service: &str, legacy: bool) -> &'static [(&'static str, u64)] {
    let table: &[(&str, &[(&str, u64)])] = if legacy { &LEGACY_HOPS } else { &HOPS };
    table
        .iter()
        .find(|(s, _)| *s == service)
        .map_or(&[], |(_, h)| h)
}

/// What `gotap run` says it instruments, from its `gotap: tracing PATH (pid N, goX): A, B; N probes`
/// line.
fn gotap_instrumentations(log: &str) -> Vec<String> {
    log.lines()
        .find(|l| l.starts_with("gotap: tracing "))
        .and_then(|l| l.split_once("): "))
        .map(|(_, rest)| {
            rest.split(';')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// gotap's own count at exit, from its `gotap: N spans exported (…), D dropped, H probe hits (X per
/// span)` line (or `H probe hits: C on calls, G at goroutine starts (X per span)`): (spans
/// exported, probe hits).
fn gotap_summary(log: &str) -> Option<(u64, u64)> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with("gotap: ") && l.contains(" spans exported ("))?;
    let spans = line
        .strip_prefix("gotap: ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let (before, _) = line.split_once(" probe hits")?;
    let hits = before.rsplit(' ').next()?.parse().ok()?;
    Some((spans, hits))
}

/// Spans per gateway request a service should yield given the instrumentations a strategy claims
/// for it (`net/http server`, `google.golang.org/grpc client`, `database/sql`…).
fn spans_claimed(service: &str, legacy: bool, claimed: &[String]) -> u64 {
    let norm: Vec<String> = claimed
        .iter()
        .map(|c| {
            c.to_lowercase()
                .replace("net/http", "http")
                .replace("google.golang.org/grpc", "grpc")
                .replace("database/sql", "sql")
        })
        .collect();
    hops(service, legacy)
        .iter()
        .filter(|(hop, _)| {
            let words: Vec<&str> = hop.split(' ').collect();
            norm.iter().any(|c| words.iter().all(|w| c.contains(w)))
        })
        .map(|(_, n)| n)
        .sum()
}

/// One arena service as started by a strategy.
struct Svc {
    proc: Proc,
    /// Port of its /debug/runtime endpoint.
    dbg: u16,
    /// The Go process itself (under `gotap run`, the child of `proc`).
    target_pid: u32,
    /// The strategy's agent process, if it has one.
    agent_pid: Option<u32>,
    instrumentations: Vec<String>,
    claimed_per_request: u64,
    /// `gotap run`'s warnings at attach (a probe site it does not trace…).
    agent_warnings: Vec<String>,
}

/// Progress reported while the arena runs (the CLI draws it).
pub enum Event<'a> {
    /// Total number of steps the run will report.
    Plan(u64),
    /// One step started.
    Step(&'a str),
    /// A note for the user (a strategy skipped and why, …).
    Note(&'a str),
}

pub struct Options {
    /// Repository root (holds go/arena and scripts/).
    pub repo_root: PathBuf,
    /// Report, JSON, charts and per-run logs go here.
    pub out_dir: PathBuf,
    /// Cache for built services and peer installs.
    pub work_dir: PathBuf,
    /// The Go toolchain the services are built with for the runs.
    pub go: PathBuf,
    /// Other toolchains to try building the services with (robustness matrix): (label, go).
    pub other_toolchains: Vec<(String, PathBuf)>,
    pub collector: PathBuf,
    /// The `gotap` executable (for the `gotap run` strategy).
    pub gotap_exe: Option<PathBuf>,
    pub strategies: Vec<Strategy>,
    pub rounds: u32,
    pub warmup: Duration,
    pub saturation: Duration,
    pub fixed: Duration,
    pub connections: usize,
    /// Fixed rate for the latency phase; None: [`DEFAULT_RATE_FRACTION`] of the slowest strategy's
    /// saturation in round 1.
    pub rate: Option<f64>,
    /// Try `go install` of peers not cached yet.
    pub install_peers: bool,
    pub peer_timeout: Duration,
    pub charts: bool,
    /// `-db` of the orders service (None: its embedded SQLite in a temp file).
    pub orders_db: Option<String>,
    /// Keep each run's spans.jsonl (tens of MB per run) after counting.
    pub keep_spans: bool,
    /// Robustness matrix: each instrumented strategy against the services built by every
    /// toolchain that can, stripped and not.
    pub matrix: bool,
    /// Build cost per strategy that builds: clean build (empty GOCACHE) and cached rebuild of each
    /// service, binary size (minutes on 2 cores: every clean build compiles the standard library).
    pub build_cost: bool,
}

/// One strategy in one round.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub round: u32,
    pub strategy: Strategy,
    pub saturation_rps: f64,
    pub saturation_errors: u64,
    pub rate: f64,
    pub fixed_sent: u64,
    pub fixed_ok: u64,
    pub fixed_errors: u64,
    pub fixed_achieved_rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// CPU of the three services during the fixed-rate phase, per request.
    pub target_cpu_us_per_req: f64,
    /// CPU of the collector during the same phase, per request.
    pub collector_cpu_us_per_req: f64,
    /// CPU of the strategy's own agent process (eBPF strategies), per request.
    pub agent_cpu_us_per_req: Option<f64>,
    pub target_peak_rss_kib: u64,
    pub collector_peak_rss_kib: u64,
    pub agent_peak_rss_kib: Option<u64>,
    pub alloc_bytes_per_req: f64,
    pub alloc_objects_per_req: f64,
    pub requests_ok: u64,
    /// What the strategy says it instruments, per service.
    pub instrumentations: BTreeMap<String, Vec<String>>,
    /// `gotap run` strategies: the agent's warnings at attach, per service (only services with any).
    pub agent_warnings: BTreeMap<String, Vec<String>>,
    /// Successful requests × [`REFERENCE_SPANS_PER_REQUEST`]: full coverage.
    pub spans_reference: u64,
    /// Successful requests × the spans the strategy's claimed instrumentations should produce.
    pub spans_expected: u64,
    pub spans_received: u64,
    pub spans_by_service: BTreeMap<String, u64>,
    /// Processes that had to be killed instead of exiting on SIGTERM.
    pub unclean_stops: Vec<String>,
    /// `gotap run` strategies: spans gotap says it exported and probe hits it counted, summed over
    /// the services and both passes (from each agent's summary line at exit).
    pub agent_spans_exported: Option<u64>,
    pub probe_hits: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategyResult {
    pub strategy: Strategy,
    pub name: String,
    /// None when it ran; otherwise why it has no figures.
    pub unavailable: Option<String>,
    pub runs: Vec<RunResult>,
    pub summary: Option<Summary>,
    /// (percentile, latency µs) over all rounds' fixed-rate phases, for the charts.
    pub latency_curve: Vec<(f64, u64)>,
}

/// Medians over rounds (latency percentiles from all rounds' samples merged).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub saturation_rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub target_cpu_us_per_req: f64,
    pub collector_cpu_us_per_req: f64,
    pub agent_cpu_us_per_req: Option<f64>,
    pub target_peak_rss_kib: u64,
    pub collector_peak_rss_kib: u64,
    pub agent_peak_rss_kib: Option<u64>,
    pub alloc_bytes_per_req: f64,
    pub alloc_objects_per_req: f64,
    pub spans_reference: u64,
    pub spans_expected: u64,
    pub spans_received: u64,
    pub errors: u64,
    /// `gotap run` strategies: probe hits ÷ spans gotap exported, over all rounds (function
    /// probes: ~3; probe sites: 1).
    pub probe_hits_per_span: Option<f64>,
}

impl RobustRow {
    pub fn strategy_name(&self) -> &'static str {
        self.strategy.name()
    }
}

/// The friction axis: what the arena had to do to get each strategy's telemetry.
#[derive(Debug, Clone, Serialize)]
pub struct FrictionRow {
    pub strategy: Strategy,
    pub rebuild: String,
    pub restart: String,
    pub privileges: String,
    pub code_changes: String,
    pub how_run: String,
}

fn friction(opts: &Options, s: Strategy) -> FrictionRow {
    let arena = opts.repo_root.join("go/arena");
    let lines = |p: &Path| {
        std::fs::read_to_string(p).map_or(0, |t| {
            t.lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
                .count()
        })
    };
    match s {
        Strategy::Baseline => FrictionRow {
            strategy: s,
            rebuild: "–".into(),
            restart: "–".into(),
            privileges: "none".into(),
            code_changes: "none".into(),
            how_run: "`go build`; run the binary".into(),
        },
        Strategy::Manual => {
            let gomod = std::fs::read_to_string(arena.join("shared/go.mod")).unwrap_or_default();
            let deps =
                gomod.lines().filter(|l| !l.contains("// indirect") && (l.contains("opentelemetry") || l.contains("otelsql"))).count();
            FrictionRow {
                strategy: s,
                rebuild: "yes (`-tags manual`)".into(),
                restart: "yes".into(),
                privileges: "none".into(),
                code_changes: format!(
                    "{} lines of SDK setup and wrappers (go/arena/shared/telemetry/manual.go), a call per server, client and DB handle in each service, {deps} direct OTel modules in go.mod",
                    lines(&arena.join("shared/telemetry/manual.go"))
                ),
                how_run: "`ARENA_OTLP_ENDPOINT=host:port ./service`".into(),
            }
        }
        Strategy::GotapRun => FrictionRow {
            strategy: s,
            rebuild: "no (the plain binaries)".into(),
            restart: "yes, under `gotap run` (`gotap attach --pid` avoids it; not measured here)".into(),
            privileges: "root (CAP_BPF + CAP_PERFMON); kernel with uprobes and BTF".into(),
            code_changes: "none".into(),
            how_run: "`gotap run --service-name NAME --otlp-protocol grpc --otlp-endpoint http://host:port -- ./service ARGS`".into(),
        },
        Strategy::GotapProbes => FrictionRow {
            strategy: s,
            rebuild: "yes (`gotap build --probes` instead of `go build`; go.mod, sources and module graph untouched)".into(),
            restart: "yes, under `gotap run` (`gotap attach --pid` traces a running --probes build; not measured here)".into(),
            privileges: "root (CAP_BPF + CAP_PERFMON) to trace; none to run untraced (the sites then cost one load and a branch)".into(),
            code_changes: "none".into(),
            how_run: "`gotap run --service-name NAME --otlp-protocol grpc --otlp-endpoint http://host:port -- ./service ARGS` (as the eBPF row)".into(),
        },
        Strategy::GotapBuild => FrictionRow {
            strategy: s,
            rebuild: "yes (`gotap build` instead of `go build`; go.mod and sources untouched)".into(),
            restart: "yes".into(),
            privileges: "none".into(),
            code_changes: "none".into(),
            how_run: "`OTEL_EXPORTER_OTLP_ENDPOINT=http://host:port OTEL_SERVICE_NAME=NAME ./service` (the woven runtime flushes its batch when main returns)".into(),
        },
        Strategy::Orchestrion => FrictionRow {
            strategy: s,
            rebuild: "yes (`orchestrion go build`)".into(),
            restart: "yes".into(),
            privileges: "none".into(),
            code_changes: format!(
                "`orchestrion.tool.go` added and go.mod/go.sum edited per service (`orchestrion pin` needs dd-trace-go/orchestrion/all/v2, which the module proxy refuses here, so the arena writes the file with {} integrations and runs `go get` of {} modules)",
                orchestrion::INSTRUMENTS.len() - 2,
                orchestrion::MODULES.len()
            ),
            how_run: format!(
                "`{} ./service` (copies of the services built in target/arena)",
                orchestrion::env("NAME", 4318).iter().map(|(k, v)| format!("{k}={}", v.replace("4318", "port"))).collect::<Vec<_>>().join(" ")
            ),
        },
    }
}

/// One cell of the robustness matrix.
#[derive(Debug, Clone, Serialize)]
pub struct RobustRow {
    pub strategy: Strategy,
    pub toolchain: String,
    pub stripped: bool,
    pub works: bool,
    /// Why not, or what was checked.
    pub detail: String,
    pub requests_ok: u64,
    pub spans_expected: u64,
    pub spans_received: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildRow {
    pub toolchain: String,
    pub service: String,
    pub variant: String,
    pub ok: bool,
    pub detail: String,
    pub secs: f64,
    pub size_bytes: Option<u64>,
}

/// Build cost of one service under one strategy's build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildCost {
    pub strategy: Strategy,
    pub service: String,
    /// None when it builds; otherwise why not.
    pub failed: Option<String>,
    /// With an empty GOCACHE (modules already downloaded): the standard library and every
    /// dependency compiled.
    pub clean_secs: f64,
    /// The same build again with that cache: what an unchanged rebuild costs.
    pub cached_secs: f64,
    pub size_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub started_unix: u64,
    pub machine: Machine,
    pub go_version: String,
    pub rounds: u32,
    pub warmup_s: f64,
    pub saturation_s: f64,
    pub fixed_s: f64,
    pub connections: usize,
    pub rate: f64,
    pub strategies: Vec<StrategyResult>,
    pub builds: Vec<BuildRow>,
    pub build_cost: Vec<BuildCost>,
    pub robustness: Vec<RobustRow>,
    pub friction: Vec<FrictionRow>,
    pub peers: Vec<peers::Peer>,
    pub charts: Vec<String>,
    pub charts_note: Option<String>,
    /// "sqlite" or "postgres".
    pub database: String,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    /// 1-minute load average when the run started: other work on the machine skews every figure.
    pub load_avg_start: f64,
    pub kernel: String,
    pub cpu_model: String,
}

fn machine() -> Machine {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let load_avg_start = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_avg_start,
        kernel,
        cpu_model,
    }
}

fn go_version(go: &Path) -> String {
    Command::new(go)
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Why a strategy cannot run in this build, if it cannot.
fn unavailable(s: Strategy, opts: &Options) -> Option<String> {
    match s {
        Strategy::Baseline | Strategy::Manual => None,
        Strategy::GotapRun | Strategy::GotapProbes => {
            let Some(exe) = &opts.gotap_exe else {
                return Some("no gotap executable was given to the arena".into());
            };
            let help = |sub: &str| Command::new(exe).args([sub, "--help"]).output().ok().filter(|o| o.status.success());
            if help("run").is_none() {
                return Some("this gotap build has no `run` subcommand".into());
            }
            if s == Strategy::GotapProbes && !help("build").is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("--probes")) {
                return Some("this gotap build has no `build --probes`".into());
            }
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Some("`gotap run` loads eBPF programs and needs root (or CAP_BPF + CAP_PERFMON)".into());
            }
            None
        }
        Strategy::GotapBuild => {
            let Some(exe) = &opts.gotap_exe else {
                return Some("no gotap executable was given to the arena".into());
            };
            let has_build = Command::new(exe).args(["build", "--help"]).output().map(|o| o.status.success()).unwrap_or(false);
            (!has_build).then(|| "this gotap build has no `build` subcommand".into())
        }
        Strategy::Orchestrion => (!orchestrion_exe(opts).is_file()).then(|| {
            "orchestrion is not installed: a full run (without --quick or --no-peer-install) installs it with `go install` from the module proxy".into()
        }),
    }
}

/// Where the peers' `go install` puts orchestrion.
fn orchestrion_exe(opts: &Options) -> PathBuf {
    opts.work_dir.join("peers").join("bin").join("orchestrion")
}

/// The binaries of one toolchain × stripped build, by (service, variant label).
#[derive(Clone, Default)]
struct Bins {
    by: BTreeMap<(&'static str, &'static str), PathBuf>,
    /// The legacy services (go/arena/legacy), built where the real ones cannot be.
    legacy: bool,
}

/// Runs the whole arena and writes report.md, results.json and the charts into `opts.out_dir`.
pub fn run(opts: &Options, progress: &dyn Fn(Event)) -> Result<Results> {
    let started = Instant::now();
    let machine = machine();
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    anyhow::ensure!(opts.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(opts.connections > 0, "--connections must be at least 1");
    let arena = opts.repo_root.join("go/arena");
    anyhow::ensure!(
        arena.join("gateway/go.mod").is_file(),
        "{} does not hold the arena services",
        arena.display()
    );
    anyhow::ensure!(
        opts.collector.is_file(),
        "the collector binary {} does not exist (scripts/collector.sh builds it)",
        opts.collector.display()
    );

    // Peers first: a peer that installs can then run as a strategy.
    progress(Event::Step("peers: go install from the module proxy"));
    let peers = peers::check(
        &opts.go,
        &opts.work_dir.join("peers"),
        opts.install_peers,
        opts.peer_timeout,
    );

    let mut strategies: Vec<StrategyResult> = opts
        .strategies
        .iter()
        .map(|&s| StrategyResult {
            strategy: s,
            name: s.name().into(),
            unavailable: unavailable(s, opts),
            runs: vec![],
            summary: None,
            latency_curve: vec![],
        })
        .collect();
    for s in &strategies {
        if let Some(why) = &s.unavailable {
            progress(Event::Note(&format!("{}: not run — {why}", s.name)));
        }
    }
    let mut runnable: Vec<Strategy> = strategies
        .iter()
        .filter(|s| s.unavailable.is_none())
        .map(|s| s.strategy)
        .collect();
    if !runnable.contains(&Strategy::Baseline) {
        bail!("the baseline strategy must run: every figure is a ratio to it");
    }
    let mut variants = vec![Variant::Plain, Variant::Manual];
    for s in [
        Strategy::GotapBuild,
        Strategy::GotapProbes,
        Strategy::Orchestrion,
    ] {
        if runnable.contains(&s) {
            variants.push(s.variant());
        }
    }
    let builds_per_tc = stack::SERVICES.len() as u64 * variants.len() as u64;
    progress(Event::Plan(
        builds_per_tc * (1 + opts.other_toolchains.len() as u64) * if opts.matrix { 2 } else { 1 }
            + 1
            + 2 * opts.rounds as u64 * runnable.len() as u64
            + if opts.matrix {
                2 * (1 + opts.other_toolchains.len() as u64) * (runnable.len() as u64 - 1)
            } else {
                0
            }
            + if opts.build_cost {
                stack::SERVICES.len() as u64
                    * runnable
                        .iter()
                        .filter(|&&s| s != Strategy::GotapRun)
                        .count() as u64
            } else {
                0
            }
            + 1,
    ));

    // Build: the run toolchain first (must work), then the others for the robustness matrix.
    let go_ver = go_version(&opts.go);
    let mut builds = vec![];
    // (toolchain label, stripped) → binaries; the first toolchain unstripped is what the rounds run.
    let mut all_bins: BTreeMap<(String, bool), Bins> = BTreeMap::new();
    let mut toolchains = vec![(go_ver.clone(), opts.go.clone())];
    toolchains.extend(
        opts.other_toolchains
            .iter()
            .map(|(l, g)| (l.clone(), g.clone())),
    );
    let orch = orchestrion_exe(opts);
    let strip_modes: &[bool] = if opts.matrix {
        &[false, true]
    } else {
        &[false]
    };
    for (ti, (label, go)) in toolchains.iter().enumerate() {
        for &stripped in strip_modes {
            let out = opts.work_dir.join("bin").join(if stripped {
                format!("{label}-stripped")
            } else {
                label.clone()
            });
            let mut tc_bins = Bins::default();
            for service in stack::SERVICES {
                for &variant in &variants {
                    let what = format!(
                        "{service} ({}{})",
                        variant.label(),
                        if stripped { ", stripped" } else { "" }
                    );
                    progress(Event::Step(&format!("build {what} with {label}")));
                    let t = Instant::now();
                    let r = stack::build_service(&stack::BuildSpec {
                        arena_dir: &arena,
                        go,
                        gotap: opts.gotap_exe.as_deref(),
                        orchestrion: Some(&orch),
                        service,
                        variant,
                        stripped,
                        out: &out,
                        gocache: None,
                        legacy: false,
                    });
                    builds.push(BuildRow {
                        toolchain: label.clone(),
                        service: service.into(),
                        variant: format!(
                            "{}{}",
                            variant.label(),
                            if stripped { " stripped" } else { "" }
                        ),
                        ok: r.is_ok(),
                        detail: r.as_ref().err().cloned().unwrap_or_default(),
                        secs: t.elapsed().as_secs_f64(),
                        size_bytes: r
                            .as_ref()
                            .ok()
                            .and_then(|p| std::fs::metadata(p).ok())
                            .map(|m| m.len()),
                    });
                    match r {
                        Ok(p) => {
                            tc_bins.by.insert((service, variant.label()), p);
                        }
                        // A strategy's own build failing is a finding about that strategy, not a reason
                        // to stop the run.
                        Err(e)
                            if ti == 0
                                && !stripped
                                && matches!(
                                    variant,
                                    Variant::Gotap | Variant::GotapProbes | Variant::Orchestrion
                                ) =>
                        {
                            let s = Strategy::ALL
                                .into_iter()
                                .find(|s| s.variant() == variant)
                                .expect("a strategy per variant");
                            let why = format!("its build of {service} fails with {label}: {e}");
                            progress(Event::Note(&format!("{}: not run — {why}", s.name())));
                            if let Some(x) = strategies.iter_mut().find(|x| x.strategy == s) {
                                x.unavailable.get_or_insert(why);
                            }
                            runnable.retain(|&x| x != s);
                        }
                        Err(e) if ti == 0 && !stripped => {
                            bail!("cannot build the arena's {what} with {label}: {e}")
                        }
                        Err(_) => {}
                    }
                }
            }
            // A toolchain that cannot build the real services (Go 1.19: no 1.22 ServeMux patterns,
            // grpc, SQLite driver or OTel SDK for it) gets the legacy HTTP-only services instead, so
            // the strategies are still tested against its binaries.
            if ti > 0
                && stack::SERVICES
                    .iter()
                    .any(|svc| !tc_bins.by.contains_key(&(*svc, "plain")))
            {
                tc_bins = Bins {
                    legacy: true,
                    ..Bins::default()
                };
                for service in stack::SERVICES {
                    for &variant in variants.iter().filter(|&&v| v != Variant::Manual) {
                        let what = format!(
                            "{service} ({} legacy{})",
                            variant.label(),
                            if stripped { ", stripped" } else { "" }
                        );
                        progress(Event::Step(&format!("build {what} with {label}")));
                        let t = Instant::now();
                        let r = stack::build_service(&stack::BuildSpec {
                            arena_dir: &arena,
                            go,
                            gotap: opts.gotap_exe.as_deref(),
                            orchestrion: Some(&orch),
                            service,
                            variant,
                            stripped,
                            out: &out,
                            gocache: None,
                            legacy: true,
                        });
                        builds.push(BuildRow {
                            toolchain: label.clone(),
                            service: format!("{service} (legacy)"),
                            variant: format!(
                                "{}{}",
                                variant.label(),
                                if stripped { " stripped" } else { "" }
                            ),
                            ok: r.is_ok(),
                            detail: r.as_ref().err().cloned().unwrap_or_default(),
                            secs: t.elapsed().as_secs_f64(),
                            size_bytes: r
                                .as_ref()
                                .ok()
                                .and_then(|p| std::fs::metadata(p).ok())
                                .map(|m| m.len()),
                        });
                        if let Ok(p) = r {
                            tc_bins.by.insert((service, variant.label()), p);
                        }
                    }
                }
            }
            all_bins.insert((label.clone(), stripped), tc_bins);
        }
    }
    let bins = all_bins[&(go_ver.clone(), false)].clone();

    let mut build_cost = vec![];
    if opts.build_cost {
        for &s in runnable.iter().filter(|&&s| s != Strategy::GotapRun) {
            for service in stack::SERVICES {
                progress(Event::Step(&format!(
                    "build cost: {service} ({}), clean and cached",
                    s.name()
                )));
                build_cost.push(measure_build_cost(opts, &arena, s, service));
            }
        }
    }

    // Interleaved: every round runs every strategy once, so drift (thermal, noisy neighbours) hits
    // all of them alike.
    let mut rate = opts.rate;
    let mut hists: BTreeMap<&'static str, Histogram<u64>> = BTreeMap::new();
    for round in 1..=opts.rounds {
        let mut sats = vec![];
        for &s in &runnable {
            progress(Event::Step(&format!(
                "round {round}/{}: {} saturation",
                opts.rounds,
                s.name()
            )));
            sats.push(
                saturation_pass(opts, s, round, &bins)
                    .with_context(|| format!("round {round}, {} saturation", s.name()))?,
            );
        }
        // Decided once, from round 1, and held for every strategy and round: a fraction of the
        // slowest strategy's saturation, so every strategy runs below its own saturation and the
        // latency shows overhead rather than a queue that grows without bound.
        let rate = *rate.get_or_insert_with(|| {
            let slowest = sats.iter().map(|p| p.rps).fold(f64::INFINITY, f64::min);
            ((slowest * DEFAULT_RATE_FRACTION / 10.0).round() * 10.0).max(20.0)
        });
        for (&s, sat) in runnable.iter().zip(sats) {
            progress(Event::Step(&format!(
                "round {round}/{}: {} at {rate:.0} req/s",
                opts.rounds,
                s.name()
            )));
            let (r, h) = fixed_pass(opts, s, round, &bins, rate, sat)
                .with_context(|| format!("round {round}, {} fixed rate", s.name()))?;
            hists
                .entry(s.key())
                .or_insert_with(|| Histogram::new_from(&h))
                .add(&h)
                .ok();
            strategies
                .iter_mut()
                .find(|x| x.strategy == s)
                .expect("strategy listed")
                .runs
                .push(r);
        }
    }
    for s in strategies.iter_mut().filter(|s| !s.runs.is_empty()) {
        let h = &hists[s.strategy.key()];
        s.summary = Some(summarize(&s.runs, h));
        s.latency_curve = [
            0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
        ]
        .iter()
        .map(|&p| (p, h.value_at_percentile(p)))
        .collect();
    }

    let mut robustness = vec![];
    if opts.matrix {
        for ((label, stripped), tc_bins) in &all_bins {
            for &s in runnable.iter().filter(|&&s| s != Strategy::Baseline) {
                let what = format!(
                    "{} on {label}{}",
                    s.name(),
                    if *stripped { " stripped" } else { "" }
                );
                progress(Event::Step(&format!("robustness: {what}")));
                let variant = s.variant().label();
                let row = |works, detail: String, ok, exp, recv| RobustRow {
                    strategy: s,
                    toolchain: label.clone(),
                    stripped: *stripped,
                    works,
                    detail,
                    requests_ok: ok,
                    spans_expected: exp,
                    spans_received: recv,
                };
                let on = if tc_bins.legacy {
                    " (legacy HTTP-only services)"
                } else {
                    ""
                };
                if let Some(svc) = stack::SERVICES
                    .iter()
                    .find(|svc| !tc_bins.by.contains_key(&(**svc, variant)))
                {
                    let why = if tc_bins.legacy && s == Strategy::Manual {
                        "no variant: the manual instrumentation needs the OTel Go SDK, which this toolchain cannot build (see Builds)".to_owned()
                    } else {
                        let failed = builds.iter().find(|b| {
                            b.toolchain == *label
                                && b.service.starts_with(*svc)
                                && b.service.ends_with(if tc_bins.legacy {
                                    "(legacy)"
                                } else {
                                    svc
                                })
                                && b.variant
                                    == format!(
                                        "{variant}{}",
                                        if *stripped { " stripped" } else { "" }
                                    )
                                && !b.ok
                        });
                        match failed {
                            Some(b) => format!("{svc}{on} does not build: {}", b.detail),
                            None => {
                                format!("{svc}{on} does not build with this toolchain (see Builds)")
                            }
                        }
                    };
                    robustness.push(row(false, why, 0, 0, 0));
                    continue;
                }
                let dir = opts.out_dir.join("runs").join(format!(
                    "robustness-{}-{label}{}",
                    s.key(),
                    if *stripped { "-stripped" } else { "" }
                ));
                robustness.push(match check_delivery(opts, s, tc_bins, &dir) {
                    Ok((ok, exp, recv, warnings)) => {
                        // More than expected is not a loss (Orchestrion also traces pool connects);
                        // the detail shows it.
                        let works = ok > 0 && exp > 0 && recv >= exp;
                        let detail = if works && recv == exp {
                            format!("{recv} of {exp} spans{on}")
                        } else if works {
                            format!("{recv} spans for {exp} expected{on}")
                        } else if exp == 0 {
                            format!("instruments nothing in these binaries{on}")
                        } else if warnings.is_empty() {
                            format!("{recv} of {exp} spans arrived{on}")
                        } else {
                            format!(
                                "{recv} of {exp} spans arrived{on}; gotap run: {}",
                                warnings.join("; ")
                            )
                        };
                        row(works, detail, ok, exp, recv)
                    }
                    Err(e) => row(false, format!("{e:#}"), 0, 0, 0),
                });
            }
        }
    }

    // A peer that runs as a strategy says so (or why it did not) instead of its install note.
    let mut peers = peers;
    for p in peers
        .iter_mut()
        .filter(|p| p.name == "DataDog Orchestrion" && p.status == "installed")
    {
        p.detail = match strategies
            .iter()
            .find(|x| x.strategy == Strategy::Orchestrion)
        {
            Some(x) if x.summary.is_some() => format!(
                "runs against the arena services: see the \"{}\" rows",
                x.name
            ),
            Some(x) => format!(
                "not run: {}",
                x.unavailable.as_deref().unwrap_or("no figures")
            ),
            None => "not run: not among --strategies".into(),
        };
    }

    let mut results = Results {
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine,
        go_version: go_ver,
        rounds: opts.rounds,
        warmup_s: opts.warmup.as_secs_f64(),
        saturation_s: opts.saturation.as_secs_f64(),
        fixed_s: opts.fixed.as_secs_f64(),
        connections: opts.connections,
        rate: rate.unwrap_or(0.0),
        strategies,
        builds,
        build_cost,
        robustness,
        friction: runnable.iter().map(|&s| friction(opts, s)).collect(),
        peers,
        charts: vec![],
        charts_note: None,
        database: if opts
            .orders_db
            .as_deref()
            .is_some_and(|d| d.starts_with("postgres"))
        {
            "postgres".into()
        } else {
            "sqlite".into()
        },
        elapsed_s: 0.0,
    };
    progress(Event::Step("report"));
    if opts.charts {
        match charts::draw(&results, &opts.out_dir) {
            Ok(files) => results.charts = files,
            Err(e) => results.charts_note = Some(format!("no charts: {e:#}")),
        }
    } else {
        results.charts_note = Some("charts were not requested (--no-charts)".into());
    }
    results.elapsed_s = started.elapsed().as_secs_f64();
    std::fs::write(
        opts.out_dir.join("results.json"),
        serde_json::to_vec_pretty(&results)?,
    )?;
    std::fs::write(opts.out_dir.join("report.md"), report::markdown(&results))?;
    Ok(results)
}

/// Clean build in an empty GOCACHE of its own, then the same build again with it.
fn measure_build_cost(opts: &Options, arena: &Path, s: Strategy, service: &str) -> BuildCost {
    let cache = opts
        .work_dir
        .join("gocache-cost")
        .join(format!("{}-{service}", s.key()));
    let out = opts.work_dir.join("bin-cost");
    let _ = std::fs::remove_dir_all(&cache);
    let orch = orchestrion_exe(opts);
    let spec = stack::BuildSpec {
        arena_dir: arena,
        go: &opts.go,
        gotap: opts.gotap_exe.as_deref(),
        orchestrion: Some(&orch),
        service,
        variant: s.variant(),
        stripped: false,
        out: &out,
        gocache: Some(&cache),
        legacy: false,
    };
    let mut cost = BuildCost {
        strategy: s,
        service: service.into(),
        failed: None,
        clean_secs: 0.0,
        cached_secs: 0.0,
        size_bytes: None,
    };
    // Source preparation (Orchestrion's copy + `go get`, the `pin` step) is a one-time setup, not
    // part of a build.
    let dir = match stack::source_dir(&spec) {
        Ok(d) => d,
        Err(e) => {
            cost.failed = Some(e);
            return cost;
        }
    };
    let timed = || {
        let t = Instant::now();
        stack::build_in(&spec, &dir).map(|bin| (t.elapsed().as_secs_f64(), bin))
    };
    match timed().and_then(|(clean, _)| timed().map(|(cached, bin)| (clean, cached, bin))) {
        Ok((clean, cached, bin)) => {
            cost.clean_secs = clean;
            cost.cached_secs = cached;
            cost.size_bytes = std::fs::metadata(bin).ok().map(|m| m.len());
        }
        Err(e) => cost.failed = Some(e),
    }
    // A clean cache per build is hundreds of MB; only the timings matter.
    let _ = std::fs::remove_dir_all(&cache);
    cost
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn summarize(runs: &[RunResult], h: &Histogram<u64>) -> Summary {
    let m = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
    Summary {
        saturation_rps: m(&|r| r.saturation_rps),
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        target_cpu_us_per_req: m(&|r| r.target_cpu_us_per_req),
        collector_cpu_us_per_req: m(&|r| r.collector_cpu_us_per_req),
        agent_cpu_us_per_req: runs
            .iter()
            .all(|r| r.agent_cpu_us_per_req.is_some())
            .then(|| m(&|r| r.agent_cpu_us_per_req.unwrap_or(0.0))),
        target_peak_rss_kib: m(&|r| r.target_peak_rss_kib as f64) as u64,
        collector_peak_rss_kib: m(&|r| r.collector_peak_rss_kib as f64) as u64,
        agent_peak_rss_kib: runs
            .iter()
            .all(|r| r.agent_peak_rss_kib.is_some())
            .then(|| m(&|r| r.agent_peak_rss_kib.unwrap_or(0) as f64) as u64),
        spans_reference: runs.iter().map(|r| r.spans_reference).sum(),
        alloc_bytes_per_req: m(&|r| r.alloc_bytes_per_req),
        alloc_objects_per_req: m(&|r| r.alloc_objects_per_req),
        spans_expected: runs.iter().map(|r| r.spans_expected).sum(),
        spans_received: runs.iter().map(|r| r.spans_received).sum(),
        errors: runs
            .iter()
            .map(|r| r.saturation_errors + r.fixed_errors)
            .sum(),
        probe_hits_per_span: runs
            .iter()
            .map(|r| r.probe_hits.zip(r.agent_spans_exported))
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
            .map(|v| {
                let (h, n) = v.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                h as f64 / n.max(1) as f64
            }),
    }
}

const ORDER_IDS: u64 = 10_000;

/// Default fixed rate as a fraction of the slowest strategy's saturation throughput in round 1.
pub const DEFAULT_RATE_FRACTION: f64 = 0.5;

/// A started stack: collector + the three services under one strategy.
struct Stack {
    collector: Proc,
    svcs: Vec<Svc>,
    gw_port: u16,
    spans_file: PathBuf,
    /// When every service listened: spans that started earlier are start-up work, not workload.
    ready_unix_nanos: u64,
    /// Logs of this stack's processes.
    dir: PathBuf,
}

fn start_stack(opts: &Options, s: Strategy, bins: &Bins, dir: &Path) -> Result<Stack> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let spans_file = dir.join("spans.jsonl");
    let variant = s.variant().label();
    let port = stack::free_port;
    let (otlp, otlp_http) = (port()?, port()?);
    std::fs::write(
        dir.join("collector.yaml"),
        stack::collector_config(otlp, otlp_http, &spans_file),
    )?;
    let mut cmd = Command::new(&opts.collector);
    cmd.arg("--config").arg(dir.join("collector.yaml"));
    let mut collector = Proc::spawn("collector", cmd, dir)?;
    stack::wait_ready(&mut collector, otlp, None, Duration::from_secs(30))?;
    let endpoint = format!("127.0.0.1:{otlp}");
    let mut svcs: Vec<Svc> = vec![];
    let (cat_port, ord_port, gw_port) = (port()?, port()?, port()?);
    for (service, args) in [
        ("catalog", vec![format!("-addr=127.0.0.1:{cat_port}")]),
        ("orders", {
            let mut a = vec![format!("-addr=127.0.0.1:{ord_port}")];
            a.extend(opts.orders_db.iter().map(|db| format!("-db={db}")));
            a
        }),
        (
            "gateway",
            vec![
                format!("-addr=127.0.0.1:{gw_port}"),
                format!("-orders=http://127.0.0.1:{ord_port}"),
                format!("-catalog=127.0.0.1:{cat_port}"),
            ],
        ),
    ] {
        let dbg = port()?;
        let bin = &bins.by[&(service, variant)];
        let mut cmd = match (s.has_agent(), &opts.gotap_exe) {
            (true, Some(gotap)) => {
                let mut c = Command::new(gotap);
                c.args([
                    "run",
                    "--service-name",
                    service,
                    "--no-console",
                    "--otlp-protocol",
                    "grpc",
                    "--otlp-endpoint",
                ])
                .arg(format!("http://{endpoint}"))
                .arg("--")
                .arg(bin);
                c
            }
            _ => Command::new(bin),
        };
        cmd.args(&args)
            .arg(format!("-debug-addr=127.0.0.1:{dbg}"))
            .env("ARENA_OTLP_ENDPOINT", &endpoint);
        if s == Strategy::GotapBuild {
            cmd.env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{otlp_http}"),
            )
            .env("OTEL_SERVICE_NAME", service);
        }
        if s == Strategy::Orchestrion {
            cmd.envs(orchestrion::env(service, otlp_http));
        }
        let mut p = Proc::spawn(service, cmd, dir)?;
        // Ready = listening: each binds only once its setup (schema, seed, clients) is done. No
        // probe request, which would add spans the span check does not expect.
        let ready_port = match service {
            "catalog" => cat_port,
            "orders" => ord_port,
            _ => gw_port,
        };
        stack::wait_ready(&mut p, ready_port, None, Duration::from_secs(60))?;
        let (target_pid, agent_pid, instrumentations) = match s {
            Strategy::GotapRun => {
                let child = procfs::only_child(p.pid()).with_context(|| {
                    format!("cannot find the {service} process under gotap run")
                })?;
                let log =
                    std::fs::read_to_string(dir.join(format!("{service}.log"))).unwrap_or_default();
                (child, Some(p.pid()), gotap_instrumentations(&log))
            }
            // Expected from the sites the binary carries, not from what gotap run says it traces:
            // a site the agent skips must show as missing spans, not as a smaller expectation.
            Strategy::GotapProbes => {
                let child = procfs::only_child(p.pid()).with_context(|| {
                    format!("cannot find the {service} process under gotap run")
                })?;
                (
                    child,
                    Some(p.pid()),
                    stack::probe_site_instrumentations(bin).map_err(anyhow::Error::msg)?,
                )
            }
            Strategy::Manual => (
                p.pid(),
                None,
                hops(service, bins.legacy)
                    .iter()
                    .map(|(h, _)| h.to_string())
                    .collect(),
            ),
            Strategy::GotapBuild => (p.pid(), None, stack::woven_instrumentations(bin)),
            Strategy::Orchestrion => (
                p.pid(),
                None,
                orchestrion::INSTRUMENTS
                    .iter()
                    .map(|x| x.to_string())
                    .collect(),
            ),
            Strategy::Baseline => (p.pid(), None, vec![]),
        };
        let claimed_per_request = spans_claimed(service, bins.legacy, &instrumentations);
        // gotap prints its warnings right after the tracing line, before the target's output.
        let agent_warnings = if agent_pid.is_some() {
            let log =
                std::fs::read_to_string(dir.join(format!("{service}.log"))).unwrap_or_default();
            log.lines()
                .filter_map(|l| l.strip_prefix("gotap: warning: "))
                .map(str::to_owned)
                .collect()
        } else {
            vec![]
        };
        svcs.push(Svc {
            proc: p,
            dbg,
            target_pid,
            agent_pid,
            instrumentations,
            claimed_per_request,
            agent_warnings,
        });
    }

    let ready_unix_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(Stack {
        collector,
        svcs,
        gw_port,
        spans_file,
        ready_unix_nanos,
        dir: dir.to_path_buf(),
    })
}

/// What stopping a stack found.
struct Stopped {
    /// Processes that had to be killed.
    unclean: Vec<String>,
    collector_rss_kib: u64,
    /// Spans the collector received, by service.
    by_service: BTreeMap<String, u64>,
    /// `gotap run` strategies: (spans exported, probe hits) summed over the agents' summary lines;
    /// None without agents or when one said nothing (killed).
    agent: Option<(u64, u64)>,
}

/// Stops services then collector (each flushes on SIGTERM).
fn stop_stack(opts: &Options, st: &mut Stack) -> Result<Stopped> {
    // Gateway first so nothing in flight loses its downstream.
    let mut unclean = vec![];
    for x in st.svcs.iter_mut().rev() {
        if !x.proc.stop(Duration::from_secs(20)) {
            unclean.push(x.proc.name.clone());
        }
    }
    let collector_rss = procfs::rss_kib(st.collector.pid()).map_or(0, |r| r.1);
    if !st.collector.stop(Duration::from_secs(20)) {
        unclean.push("collector".into());
    }
    let by_service = stack::count_spans(&st.spans_file, st.ready_unix_nanos)?;
    if !opts.keep_spans {
        let _ = std::fs::remove_file(&st.spans_file);
    }
    let agents: Vec<&Svc> = st.svcs.iter().filter(|x| x.agent_pid.is_some()).collect();
    let agent = (!agents.is_empty())
        .then(|| {
            agents.iter().try_fold((0, 0), |acc, x| {
                let log =
                    std::fs::read_to_string(st.dir.join(format!("{}.log", x.proc.name))).ok()?;
                gotap_summary(&log).map(|(n, h)| (acc.0 + n, acc.1 + h))
            })
        })
        .flatten();
    Ok(Stopped {
        unclean,
        collector_rss_kib: collector_rss,
        by_service,
        agent,
    })
}

/// A short functional run: does the strategy deliver its spans with these binaries?
/// Returns (successful requests, spans expected, spans received, the agent's warnings).
fn check_delivery(
    opts: &Options,
    s: Strategy,
    bins: &Bins,
    dir: &Path,
) -> Result<(u64, u64, u64, Vec<String>)> {
    let mut st = start_stack(opts, s, bins, dir)?;
    let gw_port = st.gw_port;
    let target: loadgen::Target = Arc::new(move |i| {
        format!(
            "http://127.0.0.1:{gw_port}/orders/{}/details",
            1 + i % ORDER_IDS
        )
        .parse()
        .expect("valid URI")
    });
    let load = loadgen::closed_loop(target, 2, Duration::from_secs(1))?;
    for x in st.svcs.iter_mut() {
        x.proc.check_alive()?;
    }
    let per_request: u64 = st.svcs.iter().map(|x| x.claimed_per_request).sum();
    let mut warnings: Vec<String> = st
        .svcs
        .iter()
        .flat_map(|x| x.agent_warnings.iter().cloned())
        .collect();
    warnings.sort();
    warnings.dedup();
    let stopped = stop_stack(opts, &mut st)?;
    Ok((
        load.ok,
        load.ok * per_request,
        stopped.by_service.values().sum(),
        warnings,
    ))
}

fn gateway_target(gw_port: u16) -> loadgen::Target {
    Arc::new(move |i| {
        format!(
            "http://127.0.0.1:{gw_port}/orders/{}/details",
            1 + i % ORDER_IDS
        )
        .parse()
        .expect("valid URI")
    })
}

/// What a saturation pass measured.
struct SatPass {
    rps: f64,
    errors: u64,
    requests_ok: u64,
    spans_expected: u64,
    by_service: BTreeMap<String, u64>,
    unclean: Vec<String>,
    agent: Option<(u64, u64)>,
}

/// Saturation pass of one strategy: fresh stack, warm-up, closed loop, stop, count spans.
fn saturation_pass(opts: &Options, s: Strategy, round: u32, bins: &Bins) -> Result<SatPass> {
    let dir = opts
        .out_dir
        .join("runs")
        .join(format!("{round}-{}-saturation", s.key()));
    let mut st = start_stack(opts, s, bins, &dir)?;
    let target = gateway_target(st.gw_port);
    let warm = loadgen::closed_loop(target.clone(), opts.connections.min(8), opts.warmup)?;
    let sat = loadgen::closed_loop(target, opts.connections, opts.saturation)?;
    for x in st.svcs.iter_mut() {
        x.proc.check_alive()?;
    }
    let per_request: u64 = st.svcs.iter().map(|x| x.claimed_per_request).sum();
    let stopped = stop_stack(opts, &mut st)?;
    let requests_ok = warm.ok + sat.ok;
    Ok(SatPass {
        rps: sat.ok_per_sec(),
        errors: sat.errors,
        requests_ok,
        spans_expected: requests_ok * per_request,
        by_service: stopped.by_service,
        unclean: stopped.unclean,
        agent: stopped.agent,
    })
}

/// Fixed-rate pass of one strategy (fresh stack, warm-up, open loop at `rate`, stop, count spans),
/// merged with the same round's saturation pass into one result.
fn fixed_pass(
    opts: &Options,
    s: Strategy,
    round: u32,
    bins: &Bins,
    rate: f64,
    sat: SatPass,
) -> Result<(RunResult, Histogram<u64>)> {
    let dir = opts
        .out_dir
        .join("runs")
        .join(format!("{round}-{}-fixed", s.key()));
    let mut st = start_stack(opts, s, bins, &dir)?;
    let target = gateway_target(st.gw_port);
    let warm = loadgen::closed_loop(target.clone(), opts.connections.min(8), opts.warmup)?;

    let cpu = |pid: u32| procfs::cpu_time(pid).unwrap_or_default();
    let allocs = |ports: &[u16]| -> Result<(u64, u64)> {
        let mut b = 0;
        let mut o = 0;
        for &p in ports {
            let c = stack::runtime_counters(p)?;
            b += c.get("/gc/heap/allocs:bytes").copied().unwrap_or(0);
            o += c.get("/gc/heap/allocs:objects").copied().unwrap_or(0);
        }
        Ok((b, o))
    };
    let dbg_ports: Vec<u16> = st.svcs.iter().map(|x| x.dbg).collect();
    let target_cpu = |svcs: &[Svc]| svcs.iter().map(|x| cpu(x.target_pid)).sum::<Duration>();
    let agent_cpu = |svcs: &[Svc]| {
        svcs.iter()
            .filter_map(|x| x.agent_pid)
            .map(cpu)
            .sum::<Duration>()
    };
    let (t0, a0, c0) = (
        target_cpu(&st.svcs),
        agent_cpu(&st.svcs),
        cpu(st.collector.pid()),
    );
    let (b0, o0) = allocs(&dbg_ports)?;
    let fixed = loadgen::open_loop(target, rate, opts.fixed)?;
    let (b1, o1) = allocs(&dbg_ports)?;
    let (t1, a1, c1) = (
        target_cpu(&st.svcs),
        agent_cpu(&st.svcs),
        cpu(st.collector.pid()),
    );
    let peak = |pid: u32| procfs::rss_kib(pid).map_or(0, |r| r.1);
    let target_rss: u64 = st.svcs.iter().map(|x| peak(x.target_pid)).sum();
    let agent_rss: Option<u64> = s
        .has_agent()
        .then(|| st.svcs.iter().filter_map(|x| x.agent_pid).map(peak).sum());
    for x in st.svcs.iter_mut() {
        x.proc.check_alive()?;
    }

    let Stopped {
        mut unclean,
        collector_rss_kib: collector_rss,
        mut by_service,
        agent,
    } = stop_stack(opts, &mut st)?;
    let agent = agent.zip(sat.agent).map(|(a, b)| (a.0 + b.0, a.1 + b.1));
    let n = fixed.ok.max(1) as f64;
    let fixed_requests = warm.ok + fixed.ok;
    let requests_ok = fixed_requests + sat.requests_ok;
    for (k, v) in sat.by_service {
        *by_service.entry(k).or_insert(0) += v;
    }
    unclean.extend(sat.unclean);
    let h = fixed.latency_us.clone();
    Ok((
        RunResult {
            round,
            strategy: s,
            saturation_rps: sat.rps,
            saturation_errors: sat.errors,
            rate,
            fixed_sent: fixed.sent,
            fixed_ok: fixed.ok,
            fixed_errors: fixed.errors,
            fixed_achieved_rps: fixed.ok_per_sec(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            target_cpu_us_per_req: t1.saturating_sub(t0).as_secs_f64() * 1e6 / n,
            collector_cpu_us_per_req: c1.saturating_sub(c0).as_secs_f64() * 1e6 / n,
            agent_cpu_us_per_req: s
                .has_agent()
                .then(|| a1.saturating_sub(a0).as_secs_f64() * 1e6 / n),
            agent_peak_rss_kib: agent_rss,
            target_peak_rss_kib: target_rss,
            collector_peak_rss_kib: collector_rss,
            alloc_bytes_per_req: b1.saturating_sub(b0) as f64 / n,
            alloc_objects_per_req: o1.saturating_sub(o0) as f64 / n,
            requests_ok,
            spans_reference: requests_ok * REFERENCE_SPANS_PER_REQUEST,
            spans_expected: sat.spans_expected
                + fixed_requests * st.svcs.iter().map(|x| x.claimed_per_request).sum::<u64>(),
            instrumentations: st
                .svcs
                .iter()
                .map(|x| (x.proc.name.clone(), x.instrumentations.clone()))
                .collect(),
            agent_warnings: st
                .svcs
                .iter()
                .filter(|x| !x.agent_warnings.is_empty())
                .map(|x| (x.proc.name.clone(), x.agent_warnings.clone()))
                .collect(),
            spans_received: by_service.values().sum(),
            spans_by_service: by_service,
            unclean_stops: unclean,
            agent_spans_exported: agent.map(|a| a.0),
            probe_hits: agent.map(|a| a.1),
        },
        h,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_instrumentations_map_to_spans_per_service() {
        let log = "gotap: tracing /x/gateway-plain (pid 7, go1.26.8): net/http server, net/http client; 5 probes\n";
        let c = gotap_instrumentations(log);
        assert_eq!(c, vec!["net/http server", "net/http client"]);
        assert_eq!(spans_claimed("gateway", false, &c), 2);
        assert_eq!(spans_claimed("orders", false, &c), 1);
        assert_eq!(spans_claimed("catalog", false, &c), 0);
        // Legacy services: two HTTP calls from the gateway, catalog over HTTP.
        assert_eq!(spans_claimed("gateway", true, &c), 3);
        assert_eq!(spans_claimed("catalog", true, &c), 1);
        let all = [
            "google.golang.org/grpc client",
            "google.golang.org/grpc server",
            "database/sql",
            "net/http server",
            "net/http client",
        ]
        .map(String::from);
        let total: u64 = ["gateway", "orders", "catalog"]
            .iter()
            .map(|s| spans_claimed(s, false, &all))
            .sum();
        assert_eq!(total, REFERENCE_SPANS_PER_REQUEST);
        assert!(gotap_instrumentations("no such line").is_empty());
    }

    #[test]
    fn agent_summary_line_gives_spans_and_hits() {
        let log = "gotap: tracing /x (pid 7, go1.26.8): net/http server; 2 probes on probe sites (nop5, kernel-optimised)\n\
                   2026/11/24 listening\n\
                   gotap: 7254 spans exported (otlp-grpc 7254), 0 dropped, 21891 probe hits (3.0 per span)\n";
        assert_eq!(gotap_summary(log), Some((7254, 21891)));
        let lossy = "gotap: 3 spans exported (console 4, otlp-grpc 3), 4 dropped, 18 probe hits (4.5 per span), 2 returns without a seen start\n";
        assert_eq!(gotap_summary(lossy), Some((3, 18)));
        let by_kind = "gotap: 40 spans exported (otlp-grpc 40), 0 dropped, 180 probe hits: 120 on calls, 60 at goroutine starts (4.5 per span)\n";
        assert_eq!(gotap_summary(by_kind), Some((40, 180)));
        assert_eq!(
            gotap_summary("gotap: tracing /x (pid 7, go1.26.8): net/http server; 2 probes\n"),
            None
        );
    }
}
