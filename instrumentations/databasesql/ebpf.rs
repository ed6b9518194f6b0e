//! database/sql for `gotap run` / `gotap attach`: where the probes of bpf/databasesql.bpf.h go in
//! one binary, and what they read there (README.md of this folder).
//!
//! Every statement database/sql hands to a driver passes through one of five functions, in every
//! supported Go version: `(*DB).queryDC`, `execDC` and `prepareDC` serve the DB's, a Tx's and a
//! Conn's Query, Exec and Prepare; `(*Stmt).QueryContext` and `ExecContext` run prepared
//! statements. Each gets an entry probe on its stack check's Jcc and an exit probe on the first
//! branch, call or return after each call of it (of the call of the driver, for Stmt), all
//! instructions the kernel emulates except RETs: two hits per span.
use gotap_binary::offsets::{self as off, FieldRef};
use gotap_binary::{Function, GoBinary};
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, OpAccess, Register,
};

use crate::library::{LibPlan, Library};
use crate::plan::{fast_entry, ProbeSite};
use crate::EbpfError;

pub static LIBRARY: Library = Library::new(
    "database/sql",
    &[
        "sql_query_entry",
        "sql_exec_entry",
        "sql_prepare_entry",
        "sql_stmt_entry",
        "sql_exit_rax",
        "sql_exit_rbx",
        "sql_exit_rcx",
        "sql_exit_rdx",
        "sql_exit_rdi",
        "sql_exit_rsi",
        "sql_exit_r8",
        "sql_exit_r9",
        "sql_exit_r10",
        "sql_exit_r11",
    ],
    plan,
);

/// `lib_cfg` slots (the `SQL_*` defines of bpf/databasesql.bpf.h).
mod slot {
    pub const G_GOID: usize = 0;
    pub const DC_CI: usize = 1;
    pub const STMT_QUERY: usize = 2;
    pub const STMT_DB: usize = 3;
    pub const NDRIVERS: usize = 4;
    pub const DEFAULT: usize = 5;
    pub const HASH0: usize = 8;
    pub const LEN0: usize = 14;
    pub const NAME0: usize = 20;
    pub const DRIVERS_MAX: usize = 6;
    pub const NAME_SLOTS: usize = 6;
}
const DRIVER_CAP: usize = slot::NAME_SLOTS * 8;

const QUERY_DC: &str = "database/sql.(*DB).queryDC";
const EXEC_DC: &str = "database/sql.(*DB).execDC";
const PREPARE_DC: &str = "database/sql.(*DB).prepareDC";
const STMT_QUERY: &str = "database/sql.(*Stmt).QueryContext";
const STMT_EXEC: &str = "database/sql.(*Stmt).ExecContext";
const ROWSI: &str = "database/sql.rowsiFromStatement";
const RESULT: &str = "database/sql.resultFromStatement";

/// Unexported wrappers that return what the probed function returned, called only directly by
/// database/sql's own code: where such a wrapper's call ends in its epilogue, the exit probe can
/// move on to its callers (a RET is single-stepped; the instructions after a call are emulated).
const PASS_THROUGH: &[&str] = &[
    "database/sql.(*DB).query",
    "database/sql.(*DB).exec",
    "database/sql.(*DB).prepare",
];

struct Probed {
    /// The function whose entry is probed.
    function: &'static str,
    entry: &'static str,
    /// The function after whose calls the exit goes, and the callers searched for them.
    exit_of: &'static str,
    callers: &'static str,
    /// The register holding the returned error's itab there.
    err: Register,
    /// Where the error's itab is at `function`'s own RETs, the fallback.
    ret_err: Register,
}

const PROBED: &[Probed] = &[
    Probed {
        function: QUERY_DC,
        entry: "sql_query_entry",
        exit_of: QUERY_DC,
        callers: "database/sql.",
        err: Register::RBX,
        ret_err: Register::RBX,
    },
    Probed {
        function: EXEC_DC,
        entry: "sql_exec_entry",
        exit_of: EXEC_DC,
        callers: "database/sql.",
        err: Register::RCX,
        ret_err: Register::RCX,
    },
    Probed {
        function: PREPARE_DC,
        entry: "sql_prepare_entry",
        exit_of: PREPARE_DC,
        callers: "database/sql.",
        err: Register::RBX,
        ret_err: Register::RBX,
    },
    // The Stmt methods call the driver through these, in themselves (Go < 1.20) or in their
    // retry closure (`….func1`); queryDC and execDC call them too, which is why the callers are
    // only the Stmt method's own code.
    Probed {
        function: STMT_QUERY,
        entry: "sql_stmt_entry",
        exit_of: ROWSI,
        callers: STMT_QUERY,
        err: Register::RCX,
        ret_err: Register::RBX,
    },
    Probed {
        function: STMT_EXEC,
        entry: "sql_stmt_entry",
        exit_of: RESULT,
        callers: STMT_EXEC,
        err: Register::RCX,
        ret_err: Register::RCX,
    },
];

/// The exit program that reads the error's itab from `reg` (one per argument register: the
/// callers may have moved it).
const EXIT_PROGRAMS: &[(Register, &str)] = &[
    (Register::RAX, "sql_exit_rax"),
    (Register::RBX, "sql_exit_rbx"),
    (Register::RCX, "sql_exit_rcx"),
    (Register::RDX, "sql_exit_rdx"),
    (Register::RDI, "sql_exit_rdi"),
    (Register::RSI, "sql_exit_rsi"),
    (Register::R8, "sql_exit_r8"),
    (Register::R9, "sql_exit_r9"),
    (Register::R10, "sql_exit_r10"),
    (Register::R11, "sql_exit_r11"),
];

fn program_for(reg: Register) -> Option<&'static str> {
    EXIT_PROGRAMS
        .iter()
        .find(|(r, _)| *r == reg)
        .map(|(_, p)| *p)
}

fn plan(bin: &GoBinary, out: &mut LibPlan) -> Result<(), EbpfError> {
    let Some(_) = bin.function(QUERY_DC) else {
        return Ok(()); // database/sql is not linked in
    };
    let version = bin.go_version();
    let mut fields: Vec<FieldRef> = vec![off::G_GOID];
    fields.extend_from_slice(off::SQL_FIELDS);
    let resolved = off::resolve(bin, &fields);
    let mut cfg_off = Vec::new();
    for f in &fields {
        match off::offset_of(&resolved, *f) {
            Ok(o) => cfg_off.push(o),
            Err(e) => {
                out.warnings.push(format!(
                    "database/sql is not traced: the offset of {f} in {version} is unknown ({e})"
                ));
                return Ok(());
            }
        }
    }
    out.cfg[slot::G_GOID] = cfg_off[0];
    out.cfg[slot::DC_CI] = cfg_off[1];
    out.cfg[slot::STMT_QUERY] = cfg_off[2];
    out.cfg[slot::STMT_DB] = cfg_off[3];

    let drivers = driver_types(bin);
    let n = drivers.len().min(slot::DRIVERS_MAX);
    out.cfg[slot::NDRIVERS] = n as u64;
    let mut names: Vec<String> = drivers[..n].iter().map(|(_, p)| p.clone()).collect();
    for (i, (hash, _)) in drivers[..n].iter().enumerate() {
        out.cfg[slot::HASH0 + i] = *hash as u64;
    }
    // A conn of a type not listed (a stripped binary has no itab symbols) is the one driver the
    // binary links, if it links one.
    let mut default = None;
    let distinct = |ps: &[String]| {
        let mut v: Vec<&str> = ps.iter().map(|p| gotap_spans::db::system_name(p)).collect();
        v.dedup();
        v.len()
    };
    if n == 1 || (n > 1 && distinct(&names) == 1) {
        default = Some(0);
    } else if n == 0 {
        let modules = driver_modules(bin);
        match modules.as_slice() {
            [one] => {
                names.push(one.clone());
                default = Some(0);
            }
            [] => out.warnings.push(
                "database/sql: no known driver found in the binary: spans get db.system.name other_sql"
                    .into(),
            ),
            many => out.warnings.push(format!(
                "database/sql: the binary has no symbols and links several drivers ({}): spans get db.system.name other_sql",
                many.join(", ")
            )),
        }
    }
    if drivers.len() > slot::DRIVERS_MAX {
        out.warnings.push(format!(
            "database/sql: {} driver connection types, only the first {} are told apart",
            drivers.len(),
            slot::DRIVERS_MAX
        ));
    }
    for (i, name) in names.iter().enumerate().take(slot::DRIVERS_MAX) {
        let b = &name.as_bytes()[..name.len().min(DRIVER_CAP)];
        out.cfg[slot::LEN0 + i] = b.len() as u64;
        let mut buf = [0u8; DRIVER_CAP];
        buf[..b.len()].copy_from_slice(b);
        for j in 0..slot::NAME_SLOTS {
            out.cfg[slot::NAME0 + i * slot::NAME_SLOTS + j] =
                u64::from_le_bytes(buf[j * 8..j * 8 + 8].try_into().unwrap());
        }
    }
    out.cfg[slot::DEFAULT] = default.map_or(u64::MAX, |d| d as u64);

    let mut sites = Vec::new();
    for p in PROBED {
        let Some(f) = bin.function(p.function) else {
            out.warnings.push(format!(
                "database/sql: {} not found in this {version} binary: not traced",
                p.function
            ));
            continue;
        };
        let exits = match bin.function(p.exit_of) {
            Some(t) => exit_sites(bin, t, p.callers, p.err, 0),
            None => None,
        };
        let exits: Vec<ProbeSite> = match exits {
            Some(sites) => sites
                .into_iter()
                .map(|(offset, program)| ProbeSite {
                    program,
                    function: p.function,
                    offset,
                })
                .collect(),
            // The function's own RETs: single-stepped, but right whatever its callers do.
            None => bin
                .return_sites(f)?
                .into_iter()
                .map(|r| ProbeSite {
                    program: program_for(p.ret_err).expect("an argument register"),
                    function: p.function,
                    offset: r.offset,
                })
                .collect(),
        };
        if exits.is_empty() {
            out.warnings.push(format!(
                "database/sql: no exit site for {} in this {version} binary: not traced",
                p.function
            ));
            continue;
        }
        sites.push(ProbeSite {
            program: p.entry,
            function: p.function,
            offset: fast_entry(bin, f),
        });
        sites.extend(exits);
    }
    if !sites.is_empty() {
        out.sites = sites;
        out.instrumentations.push("database/sql");
    }
    Ok(())
}

/// The exit sites of `target` (file offset, program): for each direct call of it in a function
/// named `callers…`, the first instruction after the call that is a branch, a direct call or a
/// return, and the register that holds the returned error's itab (`err` at the return) there: the
/// straight-line code between may copy it to other registers (`MOVQ BX, AX` to pass it on) and
/// overwrite it, but one copy must be left. A call that ends in the epilogue of a
/// [`PASS_THROUGH`] wrapper moves on to the wrapper's callers. `None` (probe `target`'s RETs
/// instead) when one call has no such site.
fn exit_sites(
    bin: &GoBinary,
    target: &Function,
    callers: &str,
    err: Register,
    depth: u32,
) -> Option<Vec<(u64, &'static str)>> {
    let mut out = Vec::new();
    let mut info = InstructionInfoFactory::new();
    for caller in bin
        .functions()
        .iter()
        .filter(|f| f.name.starts_with(callers))
    {
        let Some(code) = bin.read_vaddr(caller.entry, caller.size) else {
            continue;
        };
        let insns: Vec<Instruction> =
            Decoder::with_ip(64, code, caller.entry, DecoderOptions::NONE)
                .into_iter()
                .collect();
        let jump_targets: Vec<u64> = insns
            .iter()
            .filter(|n| n.is_jmp_short_or_near() || n.is_jcc_short_or_near())
            .map(|n| n.near_branch_target())
            .collect();
        for (i, call) in insns.iter().enumerate() {
            if !(call.is_call_near() && call.near_branch_target() == target.entry) {
                continue;
            }
            let rest = &insns[i + 1..];
            let k = rest
                .iter()
                .position(|n| n.flow_control() != FlowControl::Next)?;
            let site = &rest[k];
            if !matches!(
                site.flow_control(),
                FlowControl::UnconditionalBranch
                    | FlowControl::ConditionalBranch
                    | FlowControl::Call
                    | FlowControl::Return
            ) {
                return None;
            }
            if jump_targets
                .iter()
                .any(|&t| (call.next_ip()..=site.ip()).contains(&t))
            {
                return None;
            }
            // Where the itab is: registers holding it, through 64-bit register moves.
            let mut holders = vec![err];
            let mut epilogue = true;
            for n in &rest[..k] {
                let copy_from = (n.mnemonic() == iced_x86::Mnemonic::Mov
                    && n.op_count() == 2
                    && n.op0_kind() == iced_x86::OpKind::Register
                    && n.op1_kind() == iced_x86::OpKind::Register
                    && n.op0_register().size() == 8
                    && n.op1_register().size() == 8)
                    .then(|| (n.op0_register(), n.op1_register()));
                let held = copy_from.is_some_and(|(_, src)| holders.contains(&src));
                for r in info.info(n).used_registers() {
                    let written = matches!(
                        r.access(),
                        OpAccess::Write
                            | OpAccess::CondWrite
                            | OpAccess::ReadWrite
                            | OpAccess::ReadCondWrite
                    );
                    if !written {
                        continue;
                    }
                    let full = r.register().full_register();
                    holders.retain(|h| *h != full);
                    if full != Register::RSP && full != Register::RBP {
                        epilogue = false;
                    }
                }
                if let (true, Some((dst, _))) = (held, copy_from) {
                    holders.push(dst);
                }
            }
            let program = holders.iter().find_map(|r| program_for(*r))?;
            if site.flow_control() == FlowControl::Return
                && epilogue
                && depth < 2
                && PASS_THROUGH.contains(&caller.name.as_str())
            {
                out.extend(exit_sites(bin, caller, "database/sql.", err, depth + 1)?);
                continue;
            }
            out.push((caller.offset + (site.ip() - caller.entry), program));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Driver connection types from the ELF symbols `go:itab.<T>,database/sql/driver.Conn`: each
/// type's hash (the itab's third word, which the BPF side compares) and package path.
fn driver_types(bin: &GoBinary) -> Vec<(u32, String)> {
    const SUFFIX: &str = ",database/sql/driver.Conn";
    let mut out: Vec<(u32, String)> = Vec::new();
    // `go.itab.` before Go 1.20.
    let mut symbols = elf_symbols(bin.data(), "go:itab.");
    symbols.extend(elf_symbols(bin.data(), "go.itab."));
    for (name, vaddr) in symbols {
        let Some(ty) = name.get(8..).and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        let ty = ty.trim_start_matches('*');
        if ty.contains('[') {
            continue; // a generic type's name: no plain package path
        }
        let slash = ty.rfind('/').map_or(0, |i| i + 1);
        let Some(dot) = ty[slash..].find('.') else {
            continue;
        };
        let pkg = &ty[..slash + dot];
        if pkg == "database/sql" {
            continue;
        }
        let Some(hash) = bin
            .read_vaddr(vaddr + 16, 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        else {
            continue;
        };
        if !out.iter().any(|(h, _)| *h == hash) {
            out.push((hash, pkg.to_owned()));
        }
    }
    out
}

/// Modules of the build info that are known database/sql drivers.
fn driver_modules(bin: &GoBinary) -> Vec<String> {
    let mut out: Vec<String> = bin
        .build_info()
        .deps
        .iter()
        .map(|m| m.path.clone())
        .filter(|p| gotap_spans::db::system_name(p) != "other_sql")
        .collect();
    out.sort();
    out.dedup();
    out
}

/// (name, value) of the ELF symbols whose names start with `prefix` (64-bit little-endian ELF,
/// which is all gotap's probes support); none when the binary is stripped.
fn elf_symbols(data: &[u8], prefix: &str) -> Vec<(String, u64)> {
    let u16_at = |o: usize| {
        data.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let mut out = Vec::new();
    if data.get(..5) != Some(b"\x7fELF\x02") {
        return out;
    }
    let (Some(shoff), Some(shentsize), Some(shnum)) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c))
    else {
        return out;
    };
    let sh = |i: usize| shoff as usize + i * shentsize;
    for i in 0..shnum {
        if u32_at(sh(i) + 4) != Some(2) {
            continue; // not SHT_SYMTAB
        }
        let (Some(off), Some(size), Some(link), Some(entsize)) = (
            u64_at(sh(i) + 0x18),
            u64_at(sh(i) + 0x20),
            u32_at(sh(i) + 0x28),
            u64_at(sh(i) + 0x38),
        ) else {
            continue;
        };
        let Some(stroff) = u64_at(sh(link) + 0x18) else {
            continue;
        };
        let entsize = entsize.max(24) as usize;
        for s in (off as usize..(off + size) as usize).step_by(entsize) {
            let (Some(name), Some(value)) = (u32_at(s), u64_at(s + 8)) else {
                break;
            };
            let start = stroff as usize + name;
            let Some(tail) = data.get(start..) else {
                continue;
            };
            if !tail.starts_with(prefix.as_bytes()) {
                continue;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            if let Ok(n) = std::str::from_utf8(&tail[..end]) {
                out.push((n.to_owned(), value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_an_elf_has_no_symbols() {
        assert!(elf_symbols(b"nope", "go:itab.").is_empty());
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use gotap_testkit::{Variant, ALL_TOOLCHAINS};

    /// The instruction a site is on, and the function it is in.
    fn site_insn(bin: &GoBinary, offset: u64) -> (Instruction, String) {
        let f = bin
            .functions()
            .iter()
            .find(|f| offset >= f.offset && offset < f.offset + f.size)
            .unwrap();
        let vaddr = f.entry + (offset - f.offset);
        let insn = Decoder::with_ip(64, bin.read_vaddr(vaddr, 16).unwrap(), vaddr, 0).decode();
        (insn, f.name.clone())
    }

    /// Every supported Go version, stripped and PIE too: entries on the stack check's Jcc, and
    /// exits after the calls on branches and calls (emulated by the kernel), except where the
    /// call is the last thing an exported method does (a RET, single-stepped).
    #[test]
    fn sites_in_every_toolchain() {
        for tc in ALL_TOOLCHAINS {
            for variant in [
                Variant::default(),
                Variant {
                    stripped: true,
                    pie: true,
                },
            ] {
                let label = format!("{} {}", tc.label(), variant.label());
                let path = gotap_testkit::build(
                    "../crates/gotap-ebpf/tests/gosql",
                    "./sqlite",
                    tc,
                    variant,
                );
                let bin = GoBinary::open(&path).unwrap();
                let mut lp = LibPlan::default();
                plan(&bin, &mut lp).unwrap();
                assert!(lp.warnings.is_empty(), "{label}: {:?}", lp.warnings);
                assert_eq!(lp.instrumentations, ["database/sql"], "{label}");
                let mut rets = Vec::new();
                for s in &lp.sites {
                    let (insn, func) = site_insn(&bin, s.offset);
                    if s.program.ends_with("_entry") {
                        assert!(
                            insn.is_jcc_short_or_near(),
                            "{label} {s:?}: {:?}",
                            insn.mnemonic()
                        );
                        continue;
                    }
                    match insn.flow_control() {
                        FlowControl::Return => rets.push(func),
                        FlowControl::ConditionalBranch
                        | FlowControl::UnconditionalBranch
                        | FlowControl::Call => {}
                        other => panic!("{label} {s:?}: {:?} ({other:?})", insn.mnemonic()),
                    }
                }
                eprintln!(
                    "{label}: {} sites, single-stepped exits in {rets:?}",
                    lp.sites.len()
                );
                for f in &rets {
                    // Go 1.19's Stmt.ExecContext calls releaseConn (indirectly) right after the
                    // driver: its own RETs are the exit there.
                    if tc == gotap_testkit::Toolchain::Go119 && f == STMT_EXEC {
                        continue;
                    }
                    assert!(
                        f.starts_with("database/sql.(*Tx).")
                            || f.starts_with("database/sql.(*Conn).")
                            || f.starts_with("database/sql.(*DB).")
                                && f.chars().nth(19).is_some_and(|c| c.is_ascii_uppercase()),
                        "{label}: RET exit in {f}"
                    );
                }
                // The driver: the itab's hash with symbols, the one driver module without (and
                // from Go 1.27, whose linker names no itab symbols).
                let name_len = lp.cfg[slot::LEN0] as usize;
                let mut name = Vec::new();
                for j in 0..slot::NAME_SLOTS {
                    name.extend_from_slice(&lp.cfg[slot::NAME0 + j].to_le_bytes());
                }
                assert_eq!(&name[..name_len], b"modernc.org/sqlite", "{label}");
                assert_eq!(lp.cfg[slot::DEFAULT], 0, "{label}");
                assert_eq!(
                    lp.cfg[slot::NDRIVERS],
                    if variant.stripped || tc == gotap_testkit::Toolchain::Go127 {
                        0
                    } else {
                        1
                    },
                    "{label}"
                );
            }
        }
    }
}
