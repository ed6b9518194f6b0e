//! `gotap attach --pid N [--pid M…]`: traces Go processes that are already running, with one
//! agent (one loaded BPF object, one export pipeline). SIGINT/SIGTERM/SIGHUP detach every probe and
//! leave the processes running; a process that exits is untraced, and when the last one has exited
//! gotap flushes and exits 0.
use crate::telemetry::{self, Session, Signals, TelemetryArgs};
use anyhow::bail;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The process to trace; repeat to trace several with one agent (their calls to each other
    /// are linked into one trace either way).
    #[arg(long = "pid", required = true, value_name = "PID")]
    pids: Vec<u32>,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let signals = Signals::block()?;
    args.telemetry.export_config()?;
    let mut pids = args.pids.clone();
    pids.dedup();
    for &pid in &pids {
        if pid == 0 || !PathBuf::from(format!("/proc/{pid}")).exists() {
            bail!("process {pid} does not exist");
        }
    }
    gotap_ebpf::check_environment().map_err(telemetry::ebpf_err)?;
    let mut watched = Vec::with_capacity(pids.len());
    for &pid in &pids {
        watched.push((pid, telemetry::pidfd_open(pid)?));
    }
    let mut session = Session::start(&args.telemetry)?;
    for &(pid, _) in &watched {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .unwrap_or_else(|_| PathBuf::from(format!("/proc/{pid}/exe")));
        let resource = session.resource(pid, &exe);
        let info = session
            .agent
            .trace_process(pid, resource)
            .map_err(telemetry::ebpf_err)?;
        telemetry::announce(&exe, pid, &info);
    }

    while !watched.is_empty() {
        if signals.drain().iter().any(|s| s.signo != libc::SIGCHLD) {
            let list: Vec<String> = watched.iter().map(|(p, _)| p.to_string()).collect();
            eprintln!("gotap: detaching from pid {}", list.join(", "));
            break;
        }
        watched.retain(|(pid, fd)| {
            if !telemetry::exited(fd) {
                return true;
            }
            eprintln!("gotap: process {pid} exited");
            // Its probes went with it; drop the bookkeeping (the process may be gone already).
            let _ = session.agent.untrace_process(*pid);
            false
        });
        let fds: Vec<&std::os::fd::OwnedFd> = watched.iter().map(|(_, fd)| fd).collect();
        telemetry::wait(&signals, &fds, Duration::from_secs(1));
    }
    session.finish();
    Ok(ExitCode::SUCCESS)
}
