//! `gotap attach --pid N`: traces a Go process that is already running. SIGINT/SIGTERM/SIGHUP
//! detach every probe and leave the process running; when the process exits, gotap flushes and
//! exits 0.
use crate::telemetry::{self, Session, Signals, TelemetryArgs};
use anyhow::bail;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The process to trace.
    #[arg(long)]
    pid: u32,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let signals = Signals::block()?;
    let pid = args.pid;
    args.telemetry.export_config()?;
    if pid == 0 || !PathBuf::from(format!("/proc/{pid}")).exists() {
        bail!("process {pid} does not exist");
    }
    gotap_ebpf::check_environment().map_err(telemetry::ebpf_err)?;
    let pidfd = telemetry::pidfd_open(pid)?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_else(|_| PathBuf::from(format!("/proc/{pid}/exe")));
    let mut session = Session::start(&args.telemetry)?;
    let resource = session.resource(pid, &exe);
    let info = session.agent.trace_process(pid, resource).map_err(telemetry::ebpf_err)?;
    telemetry::announce(&exe, pid, &info);

    loop {
        if signals.drain().iter().any(|s| s.signo != libc::SIGCHLD) {
            eprintln!("gotap: detaching from pid {pid}");
            break;
        }
        if telemetry::exited(&pidfd) {
            eprintln!("gotap: process {pid} exited");
            break;
        }
        telemetry::wait(&signals, Some(&pidfd), Duration::from_secs(1));
    }
    session.finish();
    Ok(ExitCode::SUCCESS)
}
