//! The [`GoBinary`] handle: one mapped file, parsed once.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
    Other,
}

/// Facts read from the ELF container itself.
#[derive(Debug, Clone, Serialize)]
pub struct ElfFacts {
    pub arch: Arch,
    /// ET_DYN Go executable (`-buildmode=pie`).
    pub pie: bool,
    /// No `.symtab` (linked with `-s`).
    pub stripped: bool,
    /// Has `.debug_info` (or compressed `.zdebug_info`).
    pub dwarf: bool,
    /// Linked with cgo (buildinfo `CGO_ENABLED=1`, or an interpreter / libc imports).
    pub cgo: bool,
    /// GNU build ID (hex), if present.
    pub build_id: Option<String>,
    /// Go build ID (the `go:buildid` note), if present.
    pub go_build_id: Option<String>,
}

/// One function from pclntab.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub name: String,
    /// Virtual address of the entry (as `go tool nm` prints it).
    pub entry: u64,
    /// File offset of the entry: what a uprobe is attached at.
    pub offset: u64,
    /// Size in bytes (to the next function's entry / end of text).
    pub size: u64,
}

/// An opened Go executable. See the crate docs.
pub struct GoBinary {
    // implementation detail: owned by the binary-analysis work (mmap, parsed sections, caches)
}
