//! What `gotap run` and `gotap attach` share: the export flags (→ gotap_export::ExportConfig), the
//! tracing session (one eBPF agent feeding one export pipeline, and its closing summary), and the
//! signal / process-exit plumbing both commands wait on.
use anyhow::{bail, Context};
use gotap_ebpf::{Agent, AgentOptions, AgentStats, TracingPath};
use gotap_export::{ExportConfig, ExportStats, Overrides, Pipeline, Protocol};
use gotap_spans::Resource;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Export flags; each overrides the matching OTEL_* environment variable.
#[derive(clap::Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// service.name of the traced process (default: OTEL_SERVICE_NAME, else the executable's name).
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
    /// Print one line per span on stdout (the default when no OTLP endpoint or output file is set).
    #[arg(long, overrides_with = "no_console")]
    pub console: bool,
    /// Do not print spans on stdout.
    #[arg(long, overrides_with = "console")]
    pub no_console: bool,
    /// OTLP endpoint, e.g. http://localhost:4317 (like OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: grpc or http/protobuf (like OTEL_EXPORTER_OTLP_PROTOCOL; default http/protobuf).
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_protocol)]
    pub otlp_protocol: Option<Protocol>,
    /// Also write spans to this file as OTLP/JSON lines (the Collector file exporter's format).
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// Record url.query on server spans (off by default: query strings may carry secrets).
    #[arg(long)]
    pub capture_query: bool,
    /// On a `gotap build --probes` binary, attach to the per-span probe sites instead of the
    /// batch sites (one probe hit per span and no buffering in the target, at a higher cost).
    #[arg(long)]
    pub no_batch: bool,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    Protocol::parse(s).map_err(|e| e.to_string())
}

impl TelemetryArgs {
    pub fn export_config(&self) -> anyhow::Result<ExportConfig> {
        let overrides = Overrides {
            otlp_endpoint: self.otlp_endpoint.clone(),
            otlp_protocol: self.otlp_protocol,
            console: if self.console {
                Some(true)
            } else if self.no_console {
                Some(false)
            } else {
                None
            },
            json_file: self.output_file.clone(),
            service_name: self.service_name.clone(),
            ..Default::default()
        };
        Ok(ExportConfig::from_env(&overrides)?)
    }
}

/// An eBPF error as one sentence: its Display already says everything (wrapping it with its
/// source would repeat the message in `{:#}`).
pub fn ebpf_err(e: gotap_ebpf::EbpfError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The line that says what is traced (and, for a binary with probe sites, through which path
/// its hits go), and the plan's warnings (stderr, before the target's output).
pub fn announce(exe: &Path, pid: u32, info: &gotap_ebpf::TracedProcess) {
    eprintln!("{}", tracing_line(exe, pid, info));
    for w in &info.warnings {
        eprintln!("gotap: warning: {w}");
    }
}

/// `gotap: tracing PATH (pid N, goX): net/http server, net/http client; 2 probes on probe sites
/// (nop5, kernel-optimised)`, `… on batched probe sites (…)`; function probes keep the plain
/// `; N probes`.
fn tracing_line(exe: &Path, pid: u32, info: &gotap_ebpf::TracedProcess) -> String {
    let via = match info.tracing {
        TracingPath::FunctionProbes => String::new(),
        sites if info.batched => format!(" on batched {sites}"),
        sites => format!(" on {sites}"),
    };
    format!(
        "gotap: tracing {} (pid {pid}, {}): {}; {} probes{via}",
        exe.display(),
        info.go_version,
        info.instrumentations.join(", "),
        info.probes
    )
}

/// One eBPF agent whose spans go to one export pipeline.
pub struct Session {
    pub agent: Agent,
    pipeline: Pipeline,
    pub config: ExportConfig,
}

impl Session {
    /// Checks privileges and kernel features, starts the exporters, loads the BPF programs.
    pub fn start(args: &TelemetryArgs) -> anyhow::Result<Session> {
        let config = args.export_config()?;
        // Before anything else: "run as root" beats any other complaint.
        gotap_ebpf::check_environment().map_err(ebpf_err)?;
        let pipeline = Pipeline::start(&config)?;
        let opts = AgentOptions {
            capture_query: args.capture_query,
            batch_sites: !args.no_batch,
            // gotap exits right after its shutdown: a detach is not held up by the kernel's
            // per-probe teardown (docs/run.md, "Detaching").
            detach_in_background: true,
            ..Default::default()
        };
        let agent = Agent::load_into(opts, pipeline.sender().sink()).map_err(ebpf_err)?;
        Ok(Session {
            agent,
            pipeline,
            config,
        })
    }

    pub fn resource(&self, pid: u32, exe: &Path) -> Resource {
        // The Go version is filled in by the agent once it has analysed the binary. The path is
        // absolute, as semconv's process.executable.path is (`gotap run ./server`).
        let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
        self.config.resource_for_process(pid, &exe, "", None)
    }

    /// Detaches everything, delivers what is left in the ring buffer, flushes the exporters and
    /// prints the one-line summary on stderr.
    pub fn finish(self) {
        let agent_stats = self.agent.shutdown();
        let export_stats = self.pipeline.shutdown();
        eprintln!("{}", summary(&agent_stats, &export_stats));
    }
}

/// Probe hits per span as the summary shows them: one decimal, three below one (batch sites
/// make a few hundredths).
fn per_span(v: f64) -> String {
    if v > 0.0 && v < 0.95 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

/// `gotap: 12 spans exported (otlp-grpc 12), 0 dropped, 36 probe hits: net/http 20, database/sql
/// 8, goroutine starts 8 (3.0 per span)`: the hits by library, then the goroutine-start hook's
/// and the batch sites' (each named only when it was hit).
pub fn summary(a: &AgentStats, e: &ExportStats) -> String {
    // A span counts as exported when every destination took it.
    let exported = e.exporters.iter().map(|x| x.exported).min().unwrap_or(0);
    let per: Vec<String> = e
        .exporters
        .iter()
        .map(|x| format!("{} {}", x.name, x.exported))
        .collect();
    let dropped = a.ringbuf_drops
        + e.dropped_queue_full
        + e.exporters
            .iter()
            .map(|x| x.dropped_export_failed)
            .max()
            .unwrap_or(0);
    // Where the hits went: the goroutine-start hook is paid per goroutine, not per span, and can
    // be most of the hits of a quiet service; a batch site's hit carries many spans.
    let mut by: Vec<String> = a
        .library_hits
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    for (what, n) in [
        ("batch sites", a.batch_hits),
        ("goroutine starts", a.goroutine_hits),
    ] {
        if n > 0 {
            by.push(format!("{what} {n}"));
        }
    }
    let mut line = format!(
        "gotap: {} spans exported ({}), {} dropped, {} probe hits{}{} ({} per span)",
        exported,
        if per.is_empty() {
            "no exporter".to_string()
        } else {
            per.join(", ")
        },
        dropped,
        a.probe_hits,
        if by.is_empty() { "" } else { ": " },
        by.join(", "),
        per_span(a.hits_per_span())
    );
    // Losses that are not drops: said only when they happened, so a clean run stays one short line.
    if a.ret_without_entry > 0 {
        line += &format!(
            ", {} returns without a seen start (requests in flight at attach, or evicted)",
            a.ret_without_entry
        );
    }
    if a.text_truncated > 0 {
        // The cut text is a library's (a query text): TEXT_CAP of bpf/types.h, for any kind.
        line += &format!(", {} span texts cut at 4096 bytes", a.text_truncated);
    }
    // header_window_truncated is not printed: it cannot tell a header cut off from one never sent.
    line
}

/// SIGINT, SIGTERM, SIGHUP and SIGCHLD, blocked in every thread (call before starting any thread)
/// and read from a signalfd, so the main loop handles them synchronously.
pub struct Signals {
    fd: OwnedFd,
}

pub const WATCHED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD];

/// A signal that arrived: number and whether it came from the kernel (terminal Ctrl-C, child
/// exit) rather than from a `kill` by some process.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub signo: i32,
    pub from_kernel: bool,
}

impl Signals {
    pub fn block() -> anyhow::Result<Signals> {
        // SAFETY: plain libc calls on a sigset we own; signalfd returns a new fd we take over.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in WATCHED {
                libc::sigaddset(&mut set, s);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                bail!("cannot block signals: {}", std::io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                bail!(
                    "cannot create a signalfd: {}",
                    std::io::Error::last_os_error()
                );
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Signals that arrived so far (non-blocking).
    pub fn drain(&self) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            // SAFETY: reading one signalfd_siginfo into a zeroed struct of the right size.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    &mut info as *mut _ as *mut libc::c_void,
                    size,
                )
            };
            if n != size as isize {
                return out;
            }
            out.push(Received {
                signo: info.ssi_signo as i32,
                from_kernel: info.ssi_code == libc::SI_KERNEL,
            });
        }
    }
}

/// Waits until `signals` or one of `pidfds` is readable, or `timeout` passes.
pub fn wait(signals: &Signals, pidfds: &[&OwnedFd], timeout: Duration) {
    let mut fds = vec![libc::pollfd {
        fd: signals.fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    for p in pidfds {
        fds.push(libc::pollfd {
            fd: p.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    // SAFETY: fds is a valid array of pollfd for the duration of the call.
    unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout.as_millis() as i32,
        )
    };
}

/// A pidfd for `pid`: readable once the process has exited (zombies included).
pub fn pidfd_open(pid: u32) -> anyhow::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            bail!("process {pid} does not exist");
        }
        return Err(e).with_context(|| format!("cannot watch process {pid}"));
    }
    // SAFETY: fd is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `pidfd`'s process has exited.
pub fn exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: valid pollfd array, zero timeout.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) > 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use gotap_export::ExporterStats;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        t: TelemetryArgs,
    }

    fn parse(args: &[&str]) -> TelemetryArgs {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .t
    }

    #[test]
    fn summary_counts_what_every_destination_took() {
        let a = AgentStats {
            spans: 4,
            probe_hits: 18,
            ringbuf_drops: 1,
            ..Default::default()
        };
        let e = ExportStats {
            dropped_queue_full: 2,
            exporters: vec![
                ExporterStats {
                    name: "console".into(),
                    exported: 4,
                    ..Default::default()
                },
                ExporterStats {
                    name: "otlp-grpc".into(),
                    exported: 3,
                    dropped_export_failed: 1,
                    pending: 0,
                },
            ],
        };
        assert_eq!(summary(&a, &e), "gotap: 3 spans exported (console 4, otlp-grpc 3), 4 dropped, 18 probe hits (4.5 per span)");
        assert_eq!(
            summary(&AgentStats::default(), &ExportStats::default()),
            "gotap: 0 spans exported (no exporter), 0 dropped, 0 probe hits (0.0 per span)"
        );
        let by_kind = AgentStats {
            spans: 12,
            probe_hits: 36,
            goroutine_hits: 8,
            library_hits: vec![("net/http", 20), ("database/sql", 8)],
            ..Default::default()
        };
        assert!(
            summary(&by_kind, &ExportStats::default()).ends_with(
                " 36 probe hits: net/http 20, database/sql 8, goroutine starts 8 (3.0 per span)"
            ),
            "{}",
            summary(&by_kind, &ExportStats::default())
        );
        let batched = AgentStats {
            spans: 100,
            probe_hits: 5,
            batch_hits: 4,
            goroutine_hits: 1,
            ..Default::default()
        };
        assert!(
            summary(&batched, &ExportStats::default())
                .ends_with(" 5 probe hits: batch sites 4, goroutine starts 1 (0.050 per span)"),
            "{}",
            summary(&batched, &ExportStats::default())
        );
        assert_eq!(per_span(0.0125), "0.013");
        assert_eq!(per_span(1.0), "1.0");
        let lossy = AgentStats {
            ret_without_entry: 2,
            ..Default::default()
        };
        assert!(summary(&lossy, &ExportStats::default()).ends_with(
            ", 2 returns without a seen start (requests in flight at attach, or evicted)"
        ));
        let cut = AgentStats {
            text_truncated: 3,
            ..Default::default()
        };
        assert!(
            summary(&cut, &ExportStats::default()).ends_with(", 3 span texts cut at 4096 bytes")
        );
    }

    #[test]
    fn tracing_line_names_the_path() {
        let mut info = gotap_ebpf::TracedProcess {
            pid: 7,
            path: "/x/svc".into(),
            go_version: "go1.26.8".into(),
            build_id: None,
            instrumentations: vec!["net/http server", "net/http client"],
            probes: 5,
            tracing: TracingPath::FunctionProbes,
            batched: false,
            exit_probe: false,
            warnings: vec![],
        };
        let exe = Path::new("/x/svc");
        assert_eq!(
            tracing_line(exe, 7, &info),
            "gotap: tracing /x/svc (pid 7, go1.26.8): net/http server, net/http client; 5 probes"
        );
        info.probes = 2;
        info.tracing = TracingPath::ProbeSites {
            nop5: true,
            kernel_optimises: true,
        };
        assert_eq!(
            tracing_line(exe, 7, &info),
            "gotap: tracing /x/svc (pid 7, go1.26.8): net/http server, net/http client; 2 probes on probe sites (nop5, kernel-optimised)"
        );
        info.tracing = TracingPath::ProbeSites {
            nop5: true,
            kernel_optimises: false,
        };
        assert!(tracing_line(exe, 7, &info).ends_with(
            "; 2 probes on probe sites (int3: this kernel does not optimise nop5 uprobes)"
        ));
        info.batched = true;
        assert!(tracing_line(exe, 7, &info).ends_with(
            "; 2 probes on batched probe sites (int3: this kernel does not optimise nop5 uprobes)"
        ));
    }

    #[test]
    fn flags_override_and_console_toggles() {
        let t = parse(&[
            "--otlp-endpoint",
            "127.0.0.1:4317",
            "--otlp-protocol",
            "grpc",
            "--service-name",
            "x",
        ]);
        let c = t.export_config().unwrap();
        let otlp = c.otlp.unwrap();
        assert_eq!(
            (otlp.protocol, otlp.endpoint.as_str()),
            (Protocol::Grpc, "http://127.0.0.1:4317")
        );
        assert_eq!(c.service_name.as_deref(), Some("x"));
        // The last of --console / --no-console wins.
        assert!(
            parse(&["--no-console", "--console"])
                .export_config()
                .unwrap()
                .console
        );
        assert!(
            !parse(&["--console", "--no-console"])
                .export_config()
                .unwrap()
                .console
        );
        assert!(T::try_parse_from(["t", "--otlp-protocol", "http/json"]).is_err());
    }
}
