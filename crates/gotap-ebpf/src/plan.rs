//! From a Go binary to what gets attached: every library's probe sites (instrumentations/<name>/
//! ebpf.rs plans its own), the goroutine-start hook they share, and the runtime offsets (one
//! [`ProcCfg`]) every program reads with.
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

use gotap_binary::offsets::{self as off, FieldOffset, FieldRef};
use gotap_binary::GoBinary;

use crate::abi::{ProcCfg, CFG_GOROUTINES, OFF_ABSENT};
use crate::EbpfError;

pub const NEWPROC1: &str = "runtime.newproc1";
/// The closure `runtime.newproc` runs on the system stack: `newg := newproc1(…); runqput(pp, newg, true)`.
pub const NEWPROC_FUNC1: &str = "runtime.newproc.func1";
pub const RUNQPUT: &str = "runtime.runqput";

/// One uprobe: a BPF program at a file offset.
#[derive(Debug, Clone)]
pub struct ProbeSite {
    pub program: &'static str,
    pub function: &'static str,
    pub offset: u64,
}

#[derive(Debug)]
pub struct Plan {
    pub path: PathBuf,
    pub go_version: String,
    pub build_id: Option<String>,
    pub cfg: ProcCfg,
    pub sites: Vec<ProbeSite>,
    pub instrumentations: Vec<&'static str>,
    pub warnings: Vec<String>,
    /// Per-library configurations (library id, `lib_cfgs` value) of the libraries in
    /// instrumentations/ that planned probes.
    pub libs: Vec<(u32, [u64; crate::library::LIB_CFG_SLOTS])>,
}

/// The runtime fields of [`ProcCfg`].
const RUNTIME_FIELDS: &[FieldRef] = &[off::G_GOID, off::G_M, off::M_CURG];

#[cfg(test)]
pub fn analyse(path: &Path) -> Result<(GoBinary, Plan), EbpfError> {
    let bin = GoBinary::open(path)?;
    let plan = plan(&bin)?;
    Ok((bin, plan))
}

/// `field`'s offset in `resolved` (from [`off::resolve`] on `bin`), or the error naming the
/// binary's Go version and the field.
pub fn offset(bin: &GoBinary, resolved: &[FieldOffset], field: FieldRef) -> Result<u64, EbpfError> {
    off::offset_of(resolved, field).map_err(|e| match e {
        gotap_binary::Error::OffsetUnavailable(field, why) => EbpfError::OffsetUnavailable {
            path: bin.path().to_path_buf(),
            version: bin.go_version().to_string(),
            field,
            why,
        },
        other => EbpfError::Binary(other),
    })
}

/// An entry probe of `function` (`f`): on the stack check's Jcc where there is one ([`fast_entry`]).
pub fn entry_site(
    bin: &GoBinary,
    program: &'static str,
    function: &'static str,
    f: &gotap_binary::Function,
) -> ProbeSite {
    ProbeSite {
        program,
        function,
        offset: fast_entry(bin, f),
    }
}

/// A return probe of `function` (`f`) on each of its RETs (single-stepped: the last resort).
pub fn return_sites(
    bin: &GoBinary,
    program: &'static str,
    function: &'static str,
    f: &gotap_binary::Function,
) -> Result<Vec<ProbeSite>, EbpfError> {
    Ok(bin
        .return_sites(f)?
        .into_iter()
        .map(|r| ProbeSite {
            program,
            function,
            offset: r.offset,
        })
        .collect())
}

pub fn plan(bin: &GoBinary) -> Result<Plan, EbpfError> {
    let path = bin.path().to_path_buf();
    let version = bin.go_version().to_string();
    if bin.goarch() != "amd64" {
        return Err(EbpfError::UnsupportedGoVersion {
            path,
            version,
            why: format!(
                "GOARCH={} is not supported yet (gotap's probes read amd64 registers)",
                bin.goarch()
            ),
        });
    }
    // Register ABI (args in registers, g in R14) exists since Go 1.17.
    match off::GoVersion::parse(&version) {
        Some(v) if v.minor >= 17 => {}
        _ => {
            return Err(EbpfError::UnsupportedGoVersion {
                path,
                version,
                why: "gotap's probes need the register ABI of Go 1.17 or later".into(),
            })
        }
    }
    // The libraries of instrumentations/ plan themselves, in registry order.
    let mut libs = Vec::new();
    let mut sites = Vec::new();
    let mut instrumentations = Vec::new();
    let mut warnings = Vec::new();
    let runtime = off::resolve(bin, RUNTIME_FIELDS);
    let mut resolved = runtime.clone();
    let (mut wanted, mut filled) = (false, false);
    for (id, lib) in crate::libs::LIBRARIES {
        let mut lp = crate::library::LibPlan::default();
        (lib.plan)(bin, &mut lp)?;
        warnings.extend(lp.warnings);
        if !lp.sites.is_empty() {
            sites.extend(lp.sites);
            instrumentations.extend(lp.instrumentations);
            libs.push((*id, lp.cfg));
            resolved.extend(lp.offsets);
            wanted |= lp.wants_goroutines;
            filled |= lp.fills_goroutines;
        }
    }
    let goroutines = wanted && filled;
    if sites.is_empty() {
        return Err(EbpfError::NothingToInstrument { path });
    }
    let need = |f: FieldRef| offset(bin, &runtime, f);
    let mut cfg = ProcCfg {
        g_goid: need(off::G_GOID).unwrap_or(OFF_ABSENT),
        g_m: OFF_ABSENT,
        m_curg: OFF_ABSENT,
        ..Default::default()
    };
    // Goroutine propagation (g.m and m.curg): a probe hit at every goroutine start, worth it only
    // when a client or SQL span can be started in a goroutine a handler created. A server-only
    // binary pays none, and neither does one with no traced server (a batch job, a CLI): nothing
    // would ever fill the goroutine's context.
    if goroutines {
        match (need(off::G_M), need(off::M_CURG), bin.function(NEWPROC1)) {
            (Ok(g_m), Ok(m_curg), Some(f)) => {
                cfg.g_m = g_m;
                cfg.m_curg = m_curg;
                cfg.flags |= CFG_GOROUTINES;
                // `runqput(pp, newg, …)` right after newproc1 in newproc's closure: one emulated
                // CALL instead of single-stepped RETs.
                match bin
                    .function(NEWPROC_FUNC1)
                    .and_then(|c| call_site(bin, c, RUNQPUT))
                {
                    Some(offset) => sites.push(ProbeSite {
                        program: "newproc_runqput",
                        function: NEWPROC_FUNC1,
                        offset,
                    }),
                    None => sites.extend(return_sites(bin, "newproc1_ret", NEWPROC1, f)?),
                }
            }
            (Err(e), _, _) | (_, Err(e), _) => warnings.push(format!(
                "spans started in goroutines a handler creates are not parented ({e})"
            )),
            (_, _, None) => warnings.push(format!(
                "{NEWPROC1} not found: spans started in goroutines are not parented"
            )),
        }
    }
    // One warning for the binary, naming the fields in a stable order whichever library read them.
    resolved.sort_by(|a, b| (&a.strukt, &a.field).cmp(&(&b.strukt, &b.field)));
    resolved.dedup_by(|a, b| a.strukt == b.strukt && a.field == b.field);
    warnings.extend(unverified_warning(&resolved));

    Ok(Plan {
        path,
        go_version: version,
        build_id: bin
            .elf()
            .go_build_id
            .clone()
            .or_else(|| bin.elf().build_id.clone()),
        cfg,
        sites,
        instrumentations,
        warnings,
        libs,
    })
}

/// Where an "entry" uprobe goes. A Go function starts with its stack check
/// (`CMPQ SP, 0x10(R14)` or `LEAQ -n(SP), R12; CMPQ R12, 0x10(R14)`) then `JBE morestack`. The
/// kernel single-steps a probed CMP out of line (measured ~25 µs per hit on the dev VM) but
/// emulates a probed Jcc (~1 µs). Argument registers and R14 are untouched until the Jcc, so the
/// Jcc is an equivalent, cheaper entry. Falls back to the entry for any other prologue.
/// (When the stack must grow, the function restarts: the probe fires again, as at the entry.)
pub fn fast_entry(bin: &GoBinary, f: &gotap_binary::Function) -> u64 {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};
    let Some(code) = bin.read_vaddr(f.entry, f.size.min(32)) else {
        return f.offset;
    };
    let mut decoder = Decoder::with_ip(64, code, f.entry, DecoderOptions::NONE);
    for insn in (&mut decoder).into_iter().take(3) {
        if insn.is_jcc_short_or_near() {
            return f.offset + (insn.ip() - f.entry);
        }
        let harmless = match insn.mnemonic() {
            Mnemonic::Cmp => true,
            Mnemonic::Lea => insn.op0_register() == Register::R12,
            _ => false,
        };
        if !harmless {
            break;
        }
    }
    f.offset
}

/// File offset of the first direct CALL to `target` inside `caller`.
fn call_site(bin: &GoBinary, caller: &gotap_binary::Function, target: &str) -> Option<u64> {
    use iced_x86::{Decoder, DecoderOptions};
    let target = bin.function(target)?.entry;
    let code = bin.read_vaddr(caller.entry, caller.size)?;
    let mut decoder = Decoder::with_ip(64, code, caller.entry, DecoderOptions::NONE);
    let insn = (&mut decoder)
        .into_iter()
        .find(|i| i.is_call_near() && i.near_branch_target() == target)?;
    Some(caller.offset + (insn.ip() - caller.entry))
}

/// For every direct call to `target` from a function named `prefix…`: the first instruction after
/// the call that is a branch, a direct call or a return. Everything between is straight-line code
/// (indirect calls return to it), so that instruction runs exactly once per return from `target`,
/// on the same goroutine. Branches and direct calls are emulated by the kernel when probed; a
/// RET is single-stepped (still correct, slower). `None` (use `target`'s own RETs) when a call
/// site leads to anything else, or when there is no call site.
/// A direct branch of the caller landing in [after the call, site] would make the site run without a
/// return from `target`: `None` then too.
pub fn after_calls_to(
    bin: &GoBinary,
    target: &gotap_binary::Function,
    prefix: &str,
) -> Option<Vec<u64>> {
    use iced_x86::{Decoder, DecoderOptions};
    let mut out = Vec::new();
    for caller in bin
        .functions()
        .iter()
        .filter(|f| f.name.starts_with(prefix))
    {
        let Some(code) = bin.read_vaddr(caller.entry, caller.size) else {
            continue;
        };
        let insns: Vec<_> = Decoder::with_ip(64, code, caller.entry, DecoderOptions::NONE)
            .into_iter()
            .collect();
        for ip in after_call_sites(&insns, target.entry)? {
            out.push(caller.offset + (ip - caller.entry));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// [`after_calls_to`] within one decoded function: the addresses of the sites after each direct
/// call to `target`, or `None` if one call site has no usable site.
fn after_call_sites(insns: &[iced_x86::Instruction], target: u64) -> Option<Vec<u64>> {
    use iced_x86::FlowControl;
    // Direct jumps only: an indirect jump (jump table) into the window would go unseen, but Go
    // emits those only for large switches, never around a call's return path.
    let jump_targets: Vec<u64> = insns
        .iter()
        .filter(|n| n.is_jmp_short_or_near() || n.is_jcc_short_or_near())
        .map(|n| n.near_branch_target())
        .collect();
    let mut out = Vec::new();
    for (i, call) in insns.iter().enumerate() {
        if !(call.is_call_near() && call.near_branch_target() == target) {
            continue;
        }
        let site = insns[i + 1..].iter().find(|n| {
            !matches!(
                n.flow_control(),
                FlowControl::Next | FlowControl::IndirectCall
            )
        })?;
        match site.flow_control() {
            FlowControl::UnconditionalBranch
            | FlowControl::ConditionalBranch
            | FlowControl::Call
            | FlowControl::Return => {}
            _ => return None,
        }
        if jump_targets
            .iter()
            .any(|&t| (call.next_ip()..=site.ip()).contains(&t))
        {
            return None;
        }
        out.push(site.ip());
    }
    Some(out)
}

/// A warning naming the fields whose offsets come from a table row inherited from an older Go
/// version (never measured for this one): if those structs changed, reads go wrong silently.
fn unverified_warning(resolved: &[off::FieldOffset]) -> Option<String> {
    let mut fields = Vec::new();
    let mut rows = Vec::new();
    for r in resolved.iter().filter(|r| r.offset.is_some()) {
        if let Some(off::OffsetSource::Table { entry }) = &r.source {
            if entry.contains("unverified") {
                fields.push(format!("{}.{}", r.strukt, r.field));
                if !rows.contains(entry) {
                    rows.push(entry.clone());
                }
            }
        }
    }
    (!fields.is_empty()).then(|| {
        format!(
            "struct offsets of {} come from an unverified offset table row ({}): spans may lack attributes or carry wrong ones; a binary with DWARF avoids this",
            fields.join(", "),
            rows.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(code: &[u8]) -> Vec<iced_x86::Instruction> {
        iced_x86::Decoder::with_ip(64, code, 0x1000, 0)
            .into_iter()
            .collect()
    }

    /// 0x1000 JE rel8; 0x1002 CALL 0x2000; 0x1007 NOP; 0x1008 MOV rax,rbx; 0x100b JMP 0x100d; 0x100d RET.
    #[test]
    fn after_call_site_rejects_a_jump_into_its_window() {
        let code = |je_disp: u8| {
            vec![
                0x74, je_disp, 0xE8, 0xF9, 0x0F, 0x00, 0x00, 0x90, 0x48, 0x89, 0xD8, 0xEB, 0x00,
                0xC3,
            ]
        };
        // JE lands after the site: the JMP at 0x100b runs once per return.
        assert_eq!(
            after_call_sites(&decode(&code(0x0b)), 0x2000),
            Some(vec![0x100b])
        );
        // JE lands inside (0x1008), on the return address (0x1007) or on the site (0x100b).
        for disp in [0x06, 0x05, 0x09] {
            assert_eq!(
                after_call_sites(&decode(&code(disp)), 0x2000),
                None,
                "disp {disp:#x}"
            );
        }
    }

    fn field(strukt: &str, source: Option<off::OffsetSource>) -> off::FieldOffset {
        off::FieldOffset {
            strukt: strukt.into(),
            field: "f".into(),
            offset: Some(8),
            source,
            error: None,
            absent: false,
        }
    }

    #[test]
    fn unverified_offsets_are_warned_about() {
        let table = |e: &str| Some(off::OffsetSource::Table { entry: e.into() });
        let verified = [
            field("a", Some(off::OffsetSource::Dwarf)),
            field("b", table("go1.26")),
        ];
        assert_eq!(unverified_warning(&verified), None);
        let inherited = "go1.27 layout, inherited by go1.28: unverified";
        let mixed = [
            verified[0].clone(),
            field("c", table(inherited)),
            field("d", table(inherited)),
        ];
        let w = unverified_warning(&mixed).unwrap();
        assert!(
            w.contains("c.f, d.f") && w.contains(inherited) && !w.contains("a.f"),
            "{w}"
        );
    }
}
