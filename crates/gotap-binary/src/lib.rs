//! Go binary analysis: everything gotap knows about an unmodified Go executable, read from the
//! file alone (no process, no Go toolchain).
//!
//! [`GoBinary::open`] maps the file once and answers everything above it ("resolve once, attach
//! many"): ELF facts, the Go buildinfo blob (version, modules, settings), the pclntab function table
//! (works on stripped binaries, Go 1.16–1.27 layouts), RET sites by disassembly, and the struct field
//! offsets instrumentation needs (DWARF first, else the versioned table shipped in `offsets/`).
//!
//! Not in scope: attaching probes, processes, spans. Errors are sentences a user can act on.

mod binary;
pub mod buildinfo;
pub mod disasm;
pub mod dwarf;
mod error;
pub mod instrumentations;
pub mod offsets;
pub mod pclntab;

pub use binary::{Arch, ElfFacts, Function, GoBinary, ReturnSite};
pub use buildinfo::{BuildInfo, Module};
pub use error::Error;
pub use offsets::{FieldOffset, FieldRef, OffsetSource};
