use std::path::PathBuf;

/// Everything that can go wrong loading gotap's BPF programs or tracing a process. `Display` is
/// one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("gotap's eBPF strategy needs the {0} capability (run as root)")]
    MissingCapability(&'static str),
    #[error("this kernel has no uprobe support (/sys/bus/event_source/devices/uprobe is missing)")]
    NoUprobes,
    #[error("this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing; build it with CONFIG_DEBUG_INFO_BTF=y)")]
    NoBtf,
    #[error("cannot load gotap's BPF programs: {0}")]
    Load(String),
    #[error("cannot use {dir} for the shared link map: {why}")]
    PinDir { dir: PathBuf, why: String },
    /// Transparent: Display and source are the analysis error's own, so a cause chain (`{:#}`)
    /// does not print its message twice.
    #[error(transparent)]
    Binary(#[from] gotap_binary::Error),
    #[error("{path}: nothing to instrument (neither net/http.serverHandler.ServeHTTP nor net/http.(*Transport).roundTrip is linked in)")]
    NothingToInstrument { path: PathBuf },
    #[error("{path}: already instrumented by `gotap build` (its woven runtime exports its own spans): tracing it with uprobes too would record every request twice; run it as it is, or build it with `gotap build --probes` to trace it with `gotap run`")]
    AlreadyWoven { path: PathBuf },
    #[error("{path}: unsupported Go version {version}: {why}")]
    UnsupportedGoVersion {
        path: PathBuf,
        version: String,
        why: String,
    },
    #[error("{path}: offset of {field} not available for {version}: {why}")]
    OffsetUnavailable {
        path: PathBuf,
        version: String,
        field: String,
        why: String,
    },
    #[error("process {pid} does not exist or cannot be inspected ({why})")]
    NoProcess { pid: u32, why: String },
    #[error("process {pid} is already traced by this agent")]
    AlreadyTraced { pid: u32 },
    #[error("process {pid} is already traced by another gotap{}: a second tracer would export each of its spans twice; stop the other one first", by.map(|b| format!(" (pid {b})")).unwrap_or_default())]
    TracedElsewhere { pid: u32, by: Option<u32> },
    #[error("process {pid}: its probe sites are already enabled by another tracer (the semaphore of {site} is {value} before gotap attaches: a gotap in another PID namespace, bpftrace, or a gotap still detaching): a second tracer would see each span twice; stop the other one first")]
    SitesInUse { pid: u32, site: String, value: u16 },
    #[error("cannot claim the process in {dir} (one gotap per process): {why}")]
    Claim { dir: PathBuf, why: String },
    #[error("process {pid} is not traced by this agent")]
    NotTraced { pid: u32 },
    #[error("the executable of process {pid} changed while it was being analysed; try again")]
    BinaryChanged { pid: u32 },
    #[error("{path}: cannot trace its probe sites: {why}")]
    Sites { path: PathBuf, why: String },
    #[error("cannot attach the uprobe for {function} in {path}: {why}")]
    Attach {
        function: String,
        path: PathBuf,
        why: String,
    },
    #[error("cannot update the BPF map {map}: {why}")]
    Map { map: &'static str, why: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn analysis_errors_are_shown_once_in_a_cause_chain() {
        let e = EbpfError::from(gotap_binary::Error::NotGo(PathBuf::from("/bin/sh")));
        assert!(
            e.source().is_none(),
            "the analysis error is not also its own cause"
        );
        let msg = "/bin/sh: not a Go binary (no Go buildinfo or pclntab found)";
        assert_eq!(e.to_string(), msg);
        assert_eq!(format!("{:#}", anyhow::Error::from(e)), msg);
    }
}
