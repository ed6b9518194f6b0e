//! `gotap`: zero-code OpenTelemetry for Go binaries. Thin CLI over the pipeline crates;
//! each subcommand lives in its own module.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod attach;
mod bench;
mod build;
mod inspect;
mod logging;
mod probes;
mod run;
mod telemetry;

#[derive(Parser)]
#[command(
    name = "gotap",
    version,
    about = "Zero-code OpenTelemetry for Go binaries",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What is in a Go binary: Go version, modules, functions and offsets gotap can probe.
    Inspect(inspect::Args),
    /// Run a Go program with gotap's eBPF probes attached from its first instruction.
    Run(run::Args),
    /// Trace a running Go process until Ctrl-C (which detaches and leaves it running) or its exit.
    Attach(attach::Args),
    /// `go build` with OpenTelemetry woven in at compile time (user's code and go.mod untouched).
    Build(build::Args),
    /// The arena: realistic Go services under each instrumentation strategy, compared to an
    /// uninstrumented baseline in the same run (report, raw JSON, charts).
    Bench(bench::Args),
    /// The USDT probes of a `gotap build --probes` binary: list them, or write a bpftrace script.
    Probes(probes::Args),
    /// `go test` with OpenTelemetry woven in at compile time.
    Test(build::Args),
    /// Run by the go command for every tool (`go build -toolexec='gotap toolexec'`).
    #[command(hide = true)]
    Toolexec(build::ToolexecArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Attach(args) => attach::run(args),
        Command::Build(args) => build::run("build", args),
        Command::Test(args) => build::run("test", args),
        Command::Toolexec(args) => build::toolexec(args),
        Command::Probes(args) => probes::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, no backtrace: errors are sentences for the user.
            eprintln!("gotap: {e:#}");
            ExitCode::from(2)
        }
    }
}
