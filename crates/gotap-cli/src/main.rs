//! `gotap`: zero-code OpenTelemetry for Go binaries. Thin CLI over the pipeline crates;
//! each subcommand lives in its own module.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod inspect;

#[derive(Parser)]
#[command(name = "gotap", version, about = "Zero-code OpenTelemetry for Go binaries", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What is in a Go binary: Go version, modules, functions and offsets gotap can probe.
    Inspect(inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
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
