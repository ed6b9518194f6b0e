//! The function-probe side of a library folder (instrumentations/<name>/ebpf.rs, see
//! docs/architecture.md): what the generic planner and loader need to know of it, and nothing
//! they would have to know about the library itself.
use gotap_binary::GoBinary;

use crate::abi::OFF_ABSENT;
use crate::plan::ProbeSite;
use crate::EbpfError;

/// `LIB_CFG_SLOTS` of bpf/types.h: the u64s of one library's per-process configuration.
pub const LIB_CFG_SLOTS: usize = 64;

/// One library's function probes. Its BPF programs live in `bpf/<name>.bpf.h` of its folder and
/// are compiled into the one object with every other library's.
pub struct Library {
    /// What `gotap inspect` and the exit summary call it, e.g. "database/sql".
    pub name: &'static str,
    /// Its BPF programs (`SEC("uprobe")` functions), loaded with the object.
    pub programs: &'static [&'static str],
    /// Plans its probes for one binary. Leaves `plan.sites` empty when the binary does not use
    /// the library; fails only when it does and cannot be traced correctly.
    pub plan: fn(&GoBinary, &mut LibPlan) -> Result<(), EbpfError>,
}

/// What a library's planner produces for one binary.
#[derive(Debug, Clone)]
pub struct LibPlan {
    pub sites: Vec<ProbeSite>,
    /// Stored for the process under (process id, library id) in the `lib_cfgs` map; the
    /// library's C reads it with `get_lib_cfg(ctx, LIB_<NAME>)`. Unused slots are `OFF_ABSENT`.
    pub cfg: [u64; LIB_CFG_SLOTS],
    /// Lines for `gotap inspect` / the exit summary, e.g. "database/sql".
    pub instrumentations: Vec<&'static str>,
    pub warnings: Vec<String>,
}

impl Default for LibPlan {
    fn default() -> Self {
        LibPlan {
            sites: Vec::new(),
            cfg: [OFF_ABSENT; LIB_CFG_SLOTS],
            instrumentations: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The `lib_cfgs` map's key (`struct lib_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LibKey {
    pub proc: u32,
    pub lib: u32,
}
// SAFETY: repr(C) plain data, no padding.
unsafe impl aya::Pod for LibKey {}

/// The `lib_cfgs` map's value (`struct lib_cfg`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LibCfg {
    pub v: [u64; LIB_CFG_SLOTS],
}
// SAFETY: repr(C) plain data.
unsafe impl aya::Pod for LibCfg {}
