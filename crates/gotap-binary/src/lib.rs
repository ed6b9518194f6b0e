//! Go binary analysis: everything gotap knows about an unmodified Go executable, read from the
//! file alone (no process, no Go toolchain).
//!
//! [`GoBinary::open`] maps the file once and answers everything above it ("resolve once, attach
//! many"): ELF facts, the Go buildinfo blob (version, modules, settings), the pclntab function table
//! (works on stripped binaries, Go 1.16–1.27 layouts), RET sites by disassembly, and the struct field
//! offsets instrumentation needs (DWARF first, else the versioned table shipped in `offsets/`).
//! [`usdt`] reads any executable's SystemTap SDT notes and writes gotap's into a linked Go
//! executable (the one place this crate modifies a file).
//!
//! Function names are pclntab's, i.e. the runtime's (`runtime.FuncForPC`). The symbol table
//! (`go tool nm`) differs in three ways: it calls an assembly function that has a Go declaration
//! `NAME.abi0` ([`GoBinary::function`] accepts that spelling; when pclntab holds both the function
//! and its wrapper, the assembly one is named `NAME.abi0` here too), it writes `.` for pclntab's
//! `·`, and older Go (1.19 here) shortens generic instantiations to `F[...]` in pclntab. C
//! functions of cgo binaries are not in pclntab and not listed.
//!
//! Not in scope: attaching probes, processes, spans. Errors are sentences a user can act on;
//! no input, however damaged, makes the parsers panic.

mod binary;
pub mod buildinfo;
pub mod disasm;
pub mod dwarf;
mod error;
pub mod instrumentations;
pub mod modoffsets;
pub mod offsets;
pub mod pclntab;
#[cfg(test)]
mod tests_real;
pub mod usdt;

pub use binary::{Arch, ElfFacts, Function, GoBinary, ReturnSite};
pub use buildinfo::{BuildInfo, Module};
pub use error::Error;
pub use offsets::{FieldOffset, FieldRef, OffsetSource};
