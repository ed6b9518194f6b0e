use std::path::PathBuf;

/// Every way analysis can fail. `Display` is one line meant for the user (the CLI prints it as is).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // `err`, not `source`: thiserror would make a `source` field the cause too, and `{e:#}` would
    // print the OS message twice.
    #[error("cannot read {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{0}: not an ELF file")]
    NotElf(PathBuf),
    #[error("{0}: not a Go binary (no Go buildinfo or pclntab found)")]
    NotGo(PathBuf),
    #[error("{path}: corrupt Go binary: {what}")]
    Corrupt { path: PathBuf, what: String },
    /// `what` names the analysis that needs another architecture, e.g. "RET-site analysis".
    #[error("{path}: {arch} {what} is not supported yet (gotap supports x86-64)")]
    UnsupportedArch {
        path: PathBuf,
        arch: String,
        what: &'static str,
    },
    #[error("{path}: unsupported Go version {version} ({why})")]
    UnsupportedGoVersion {
        path: PathBuf,
        version: String,
        why: String,
    },
    #[error("no function matches {0}")]
    NoSuchFunction(String),
    #[error("offset of {0} not available: {1}")]
    OffsetUnavailable(String, String),
    /// The DWARF sections exist but cannot be read (struct offsets then come from the table).
    #[error("cannot read the binary's DWARF: {0}")]
    Dwarf(String),
    /// A `--func` pattern that is not a valid glob.
    #[error("invalid function pattern {pattern}: {why}")]
    BadPattern { pattern: String, why: String },
}
