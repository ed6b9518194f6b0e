//! The Go buildinfo blob (`\xff Go buildinf:`): Go version, main module, dependencies, settings —
//! the facts `go version -m` prints.
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildInfo {
    /// e.g. `go1.26.8`.
    pub go_version: String,
    /// The main package path (`path` line of `go version -m`).
    pub path: String,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines in order: (`-ldflags`, `-s -w`), (`CGO_ENABLED`, `1`), (`vcs.revision`, …).
    pub settings: Vec<(String, String)>,
}
