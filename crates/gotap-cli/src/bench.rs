//! `gotap bench`: the arena. Builds the arena's Go services, runs them under each strategy
//! (baseline, manual OTel SDK, gotap run, gotap build, gotap build --probes + gotap run, Orchestrion)
//! interleaved, exports to a real collector, and writes a
//! markdown report, raw JSON and PNG charts. The runner itself is the gotap-bench crate.
use anyhow::{bail, Context};
use gotap_bench::{Event, Options, Strategy};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Short run (one round, a few seconds per phase, no peer installs, no extra toolchains):
    /// about 2 minutes on 2 cores with all six strategies once the services are built, under a
    /// minute with two or three (--strategies).
    #[arg(long)]
    quick: bool,
    /// Where the report (report.md), raw results (results.json), charts and logs go.
    #[arg(long, value_name = "DIR", default_value = "target/arena/report")]
    out: PathBuf,
    /// Strategies to compare (comma-separated): baseline, manual, gotap-run, gotap-build,
    /// gotap-probes (`gotap build --probes` binaries traced by `gotap run`), orchestrion.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,manual,gotap-run,gotap-build,gotap-probes,orchestrion"
    )]
    strategies: Vec<String>,
    /// Rounds; each runs every strategy once (default 3, 1 with --quick).
    #[arg(long)]
    rounds: Option<u32>,
    /// Fixed request rate for the latency phase (default: half the slowest strategy's saturation throughput in round 1).
    #[arg(long, value_name = "REQ_PER_SEC")]
    rate: Option<f64>,
    /// Connections of the closed-loop saturation phase.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of the saturation phase (default 10, 3 with --quick).
    #[arg(long, value_name = "SECS")]
    saturation_secs: Option<f64>,
    /// Seconds of the fixed-rate phase (default 20, 5 with --quick).
    #[arg(long, value_name = "SECS")]
    fixed_secs: Option<f64>,
    /// Seconds of warm-up before each measured phase (default 2, 0.5 with --quick).
    #[arg(long, value_name = "SECS")]
    warmup_secs: Option<f64>,
    /// Do not try `go install` of the peers (cached results are still reported).
    #[arg(long)]
    no_peer_install: bool,
    /// Keep each run's spans (runs/*/spans.jsonl, tens of MB each) after counting them.
    #[arg(long)]
    keep_spans: bool,
    /// Skip the robustness matrix (each strategy × toolchain × stripped; on by default without
    /// --quick).
    #[arg(long, conflicts_with = "matrix")]
    no_matrix: bool,
    /// Run the robustness matrix (with the other toolchains) even with --quick.
    #[arg(long)]
    matrix: bool,
    /// Other toolchains of the robustness matrix (comma-separated; default: both).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "go1.19,go1.27"
    )]
    toolchains: Vec<String>,
    /// Measure the build cost of each building strategy (clean build in an empty GOCACHE, cached
    /// rebuild, binary size); on by default without --quick, several minutes on 2 cores.
    #[arg(long, conflicts_with = "no_build_cost")]
    build_cost: bool,
    /// Skip the build cost measurement.
    #[arg(long)]
    no_build_cost: bool,
    /// Skip the PNG charts.
    #[arg(long)]
    no_charts: bool,
    /// Back the orders service with a throwaway PostgreSQL (scripts/postgres.sh; installs Debian's
    /// postgresql if missing) instead of its embedded SQLite.
    #[arg(long, conflicts_with = "orders_db")]
    postgres: bool,
    /// `-db` value for the orders service (e.g. postgres://user@host:port/db).
    #[arg(long, value_name = "DSN")]
    orders_db: Option<String>,
    /// gotap's source tree (holds go/arena and scripts/); found from the current directory by
    /// default.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

fn find_repo(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| {
            d.join("go/arena/gateway/go.mod").is_file() && d.join("scripts/collector.sh").is_file()
        })
        .map(Path::to_path_buf)
}

fn strategy(s: &str) -> anyhow::Result<Strategy> {
    Strategy::ALL
        .into_iter()
        .find(|x| x.key() == s.trim())
        .with_context(|| {
            let known: Vec<&str> = Strategy::ALL.iter().map(|x| x.key()).collect();
            format!("unknown strategy `{s}` (known: {})", known.join(", "))
        })
}

/// `go` of a toolchain: the GO119/GO126/GO127 variables of scripts/env.sh, else `go` on PATH.
fn toolchain(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

fn secs(v: Option<f64>, default: f64, quick: f64, is_quick: bool) -> anyhow::Result<Duration> {
    let s = v.unwrap_or(if is_quick { quick } else { default });
    if !(s.is_finite() && s > 0.0) {
        bail!("durations must be positive numbers of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let repo = match &args.repo {
        Some(r) => r.clone(),
        None => find_repo(&cwd)
            .or_else(|| find_repo(Path::new(env!("CARGO_MANIFEST_DIR"))))
            .context(
                "cannot find gotap's source tree (go/arena); run from inside it or pass --repo",
            )?,
    };
    let mut strategies = vec![];
    for s in &args.strategies {
        let s = strategy(s)?;
        if !strategies.contains(&s) {
            strategies.push(s);
        }
    }
    let go = toolchain("GO126").unwrap_or_else(|| PathBuf::from("go"));
    let matrix = (!args.quick || args.matrix) && !args.no_matrix;
    const TOOLCHAINS: [(&str, &str); 2] = [("go1.19", "GO119"), ("go1.27", "GO127")];
    if let Some(t) = args
        .toolchains
        .iter()
        .find(|t| !TOOLCHAINS.iter().any(|(l, _)| l == &t.trim()))
    {
        bail!("unknown toolchain `{t}` (known: go1.19, go1.27)");
    }
    let other_toolchains = if !matrix {
        vec![]
    } else {
        TOOLCHAINS
            .iter()
            .filter(|(l, _)| args.toolchains.iter().any(|t| t.trim() == *l))
            .filter_map(|(l, v)| toolchain(v).map(|p| (l.to_string(), p)))
            .collect()
    };

    eprintln!("gotap bench: building the collector (scripts/collector.sh)…");
    let out = Command::new(repo.join("scripts/collector.sh"))
        .output()
        .context("cannot run scripts/collector.sh")?;
    if !out.status.success() {
        bail!(
            "scripts/collector.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("no output")
        );
    }
    let collector = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    let out_dir = if args.out.is_absolute() {
        args.out.clone()
    } else {
        cwd.join(&args.out)
    };

    // A throwaway cluster for this run, stopped (and deleted) however the run ends.
    let pg = if args.postgres {
        Some(Postgres::start(&repo)?)
    } else {
        None
    };
    let orders_db = args
        .orders_db
        .clone()
        .or_else(|| pg.as_ref().map(|p| p.dsn.clone()));

    let opts = Options {
        repo_root: repo,
        out_dir: out_dir.clone(),
        work_dir: target_dir.join("arena"),
        go,
        other_toolchains,
        collector,
        gotap_exe: std::env::current_exe().ok(),
        strategies,
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 3 }),
        warmup: secs(args.warmup_secs, 2.0, 0.5, args.quick)?,
        saturation: secs(args.saturation_secs, 10.0, 3.0, args.quick)?,
        fixed: secs(args.fixed_secs, 20.0, 5.0, args.quick)?,
        connections: args.connections,
        rate: args.rate,
        install_peers: !args.quick && !args.no_peer_install,
        peer_timeout: Duration::from_secs(600),
        charts: !args.no_charts,
        orders_db,
        keep_spans: args.keep_spans,
        matrix,
        build_cost: (!args.quick || args.build_cost) && !args.no_build_cost,
    };
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let progress = |e: Event| match e {
        Event::Plan(n) => bar.set_length(n),
        Event::Step(s) => {
            if !bar.message().is_empty() {
                bar.inc(1);
            }
            bar.set_message(s.to_owned());
        }
        Event::Note(n) => bar.println(format!("gotap bench: {n}")),
    };
    let results = gotap_bench::run(&opts, &progress);
    bar.finish_and_clear();
    let results = results?;
    println!("{}", gotap_bench::report::markdown(&results));
    eprintln!(
        "gotap bench: report, results.json and charts in {}",
        out_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A cluster started by scripts/postgres.sh, stopped on drop.
struct Postgres {
    script: PathBuf,
    dsn: String,
    dir: String,
}

impl Postgres {
    fn start(repo: &Path) -> anyhow::Result<Postgres> {
        let script = repo.join("scripts/postgres.sh");
        eprintln!("gotap bench: starting a throwaway PostgreSQL (scripts/postgres.sh)…");
        let o = Command::new(&script)
            .arg("start")
            .output()
            .context("cannot run scripts/postgres.sh")?;
        let err = String::from_utf8_lossy(&o.stderr);
        if !o.status.success() {
            bail!(
                "scripts/postgres.sh could not start PostgreSQL: {}",
                err.lines().last().unwrap_or("no output")
            );
        }
        let dir = err
            .split_whitespace()
            .find(|w| w.starts_with("/tmp/gotap-pg."))
            .context("scripts/postgres.sh did not print its data dir")?
            .to_owned();
        Ok(Postgres {
            script,
            dsn: String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            dir,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["stop", &self.dir])
            .output();
    }
}
