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

use gotap_spans::databasesql::DbServer;
use gotap_spans::sink::SpanSink;

use crate::abi::{self, SiteEvent};
use crate::library::{DecodeCtx, Decoded, LibPlan, Library};
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
        "sql_exit_rax_rbx",
        "sql_exit_rbx_rcx",
        "sql_exit_rcx_rdi",
        "sql_exit_rdi_rsi",
        "sql_exit_rsi_r8",
        "sql_exit_r8_r9",
        "sql_exit_r9_r10",
        "sql_exit_r10_r11",
        "sql_open_entry",
        "sql_opendb_entry",
    ],
    plan,
)
.with_decode(decode);

/// `lib_cfg` slots (the `SQL_*` defines of bpf/databasesql.bpf.h).
mod slot {
    pub const G_GOID: usize = 0;
    pub const DC_CI: usize = 1;
    pub const STMT_QUERY: usize = 2;
    pub const STMT_DB: usize = 3;
    pub const NDRIVERS: usize = 4;
    pub const DEFAULT: usize = 5;
    pub const DB_CONNECTOR: usize = 6;
    pub const DSN: usize = 7;
    /// File addresses, two u32 halves each (`NONE32` unknown): the entry probes of queryDC
    /// (low) and execDC (high); of prepareDC (low) and `(*dsnConnector).Connect` (high).
    pub const ENTRY_QE: usize = 56;
    pub const ENTRY_PD: usize = 57;
    /// The address of `runtime.firstmoduledata.types`.
    pub const MD_TYPES: usize = 58;
    /// u16s: a runtime type's Str and TFlag, lib/pq Error.Code, pgconn PgError.Code.
    pub const TYPE_OFFS: usize = 59;
    /// u32s: the Error methods of *pq.Error and *pgconn.PgError; *errors.errorString and
    /// *fmt.wrapError; context.deadlineExceededError (low) then u16s errorString.s, wrapError.msg.
    pub const ERR_PG: usize = 60;
    pub const ERR_TEXT: usize = 61;
    pub const ERR_MISC: usize = 62;
    pub const NONE32: u64 = 0xffff_ffff;
    pub const NONE16: u64 = 0xffff;
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
const OPEN: &str = "database/sql.Open";
const OPEN_DB: &str = "database/sql.OpenDB";
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

/// The exit programs that also read the error's data word, from the argument register after
/// the itab's (Go's register ABI puts an interface in two consecutive ones).
const EXIT_PAIR_PROGRAMS: &[(Register, Register, &str)] = &[
    (Register::RAX, Register::RBX, "sql_exit_rax_rbx"),
    (Register::RBX, Register::RCX, "sql_exit_rbx_rcx"),
    (Register::RCX, Register::RDI, "sql_exit_rcx_rdi"),
    (Register::RDI, Register::RSI, "sql_exit_rdi_rsi"),
    (Register::RSI, Register::R8, "sql_exit_rsi_r8"),
    (Register::R8, Register::R9, "sql_exit_r8_r9"),
    (Register::R9, Register::R10, "sql_exit_r9_r10"),
    (Register::R10, Register::R11, "sql_exit_r10_r11"),
];

fn program_for(reg: Register) -> Option<&'static str> {
    EXIT_PROGRAMS
        .iter()
        .find(|(r, _)| *r == reg)
        .map(|(_, p)| *p)
}

/// The register after `reg` in Go's argument order, where an interface's data word follows its
/// itab.
fn data_reg(reg: Register) -> Option<Register> {
    EXIT_PAIR_PROGRAMS
        .iter()
        .find(|(r, _, _)| *r == reg)
        .map(|(_, d, _)| *d)
}

/// The exit program for an error whose itab is in one of `itab` and data word in one of `data`:
/// one reading both when a pair is left, else the itab's alone.
fn exit_program(itab: &[Register], data: &[Register]) -> Option<&'static str> {
    for r in itab {
        if let Some((_, _, p)) = EXIT_PAIR_PROGRAMS
            .iter()
            .find(|(i, d, _)| i == r && data.contains(d))
        {
            return Some(p);
        }
    }
    itab.iter().find_map(|r| program_for(*r))
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
    out.cfg[slot::DB_CONNECTOR] = cfg_off[4];
    out.cfg[slot::DSN] = cfg_off[5];
    error_cfg(bin, out);

    let drivers = driver_types(bin);
    let n = drivers.len().min(slot::DRIVERS_MAX);
    out.cfg[slot::NDRIVERS] = n as u64;
    let mut names: Vec<String> = drivers[..n].iter().map(|d| d.package.clone()).collect();
    for (i, d) in drivers[..n].iter().enumerate() {
        let v = &mut out.cfg[slot::HASH0 + i];
        set_half(v, false, d.hash.unwrap_or(0) as u64);
        set_half(v, true, d.begin.unwrap_or(slot::NONE32));
    }
    // A conn of a type not listed (a stripped binary has no itab symbols) is the one driver the
    // binary links, if it links one.
    let mut default = None;
    let distinct = |ps: &[String]| {
        let mut v: Vec<&str> = ps.iter().map(|p| gotap_spans::databasesql::system_name(p)).collect();
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
                "database/sql: no driver connection type found (no itab symbols, no Begin method of a known driver) and the binary links several drivers ({}): spans get db.system.name other_sql",
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
                    program: exit_program(&[p.ret_err], &[data_reg(p.ret_err).unwrap()])
                        .expect("an argument register"),
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
        let entry = fast_entry(bin, f);
        let vaddr = (f.entry + (entry - f.offset)).min(slot::NONE32);
        match p.function {
            QUERY_DC => set_half(&mut out.cfg[slot::ENTRY_QE], false, vaddr),
            EXEC_DC => set_half(&mut out.cfg[slot::ENTRY_QE], true, vaddr),
            PREPARE_DC => set_half(&mut out.cfg[slot::ENTRY_PD], false, vaddr),
            _ => {}
        }
        sites.push(ProbeSite {
            program: p.entry,
            function: p.function,
            offset: entry,
        });
        sites.extend(exits);
    }
    // sql.Open's DSN, kept under the connector Open hands to OpenDB (which the DB keeps): where
    // server.address, server.port and db.namespace come from. Once per DB, not per span.
    if !sites.is_empty() {
        if let (Some(open), Some(open_db)) = (bin.function(OPEN), bin.function(OPEN_DB)) {
            sites.push(ProbeSite {
                program: "sql_open_entry",
                function: OPEN,
                offset: fast_entry(bin, open),
            });
            sites.push(ProbeSite {
                program: "sql_opendb_entry",
                function: OPEN_DB,
                offset: fast_entry(bin, open_db),
            });
        }
    }
    if !sites.is_empty() {
        out.sites = sites;
        out.instrumentations.push("database/sql");
        // A statement's parent is the goroutine's span (goctx): a query a handler runs in a
        // goroutine it started (`go func() { db.Exec(…) }()`) finds the handler's span only if
        // goroutines inherit their creator's context. That costs a hit per goroutine start, not
        // per statement.
        out.wants_goroutines = true;
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
            // And the data word's, in the register after the itab's at the return.
            let mut dholders: Vec<Register> = data_reg(err).into_iter().collect();
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
                let dheld = copy_from.is_some_and(|(_, src)| dholders.contains(&src));
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
                    dholders.retain(|h| *h != full);
                    if full != Register::RSP && full != Register::RBP {
                        epilogue = false;
                    }
                }
                if let (true, Some((dst, _))) = (held, copy_from) {
                    holders.push(dst);
                }
                if let (true, Some((dst, _))) = (dheld, copy_from) {
                    dholders.push(dst);
                }
            }
            let program = exit_program(&holders, &dholders)?;
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

/// A type implementing `database/sql/driver.Conn` in a known driver's package, as the BPF side
/// tells a connection's driver: by the hash its itab carries, or by the itab's first method
/// (`Begin`, the interface's methods being sorted by name), compared at its file address.
struct DriverType {
    hash: Option<u32>,
    begin: Option<u64>,
    package: String,
}

/// The driver connection types of the binary: from the ELF symbols
/// `go:itab.<T>,database/sql/driver.Conn` when there are (Go < 1.27 with a symbol table), else
/// from the functions pclntab names (stripped binaries too): each `<pkg>.(*T).Begin` of a known
/// driver's package whose `T` also has `Close` and `Prepare`, driver.Conn's other methods.
fn driver_types(bin: &GoBinary) -> Vec<DriverType> {
    const SUFFIX: &str = ",database/sql/driver.Conn";
    let mut out: Vec<DriverType> = Vec::new();
    // `go.itab.` before Go 1.20.
    let mut symbols = bin.symbols_with_prefix("go:itab.");
    symbols.extend(bin.symbols_with_prefix("go.itab."));
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
        let word = |o: u64| {
            bin.read_vaddr(vaddr.checked_add(o)?, 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        let Some(hash) = word(16).map(|w| w as u32) else {
            continue;
        };
        if !out.iter().any(|d| d.hash == Some(hash)) {
            out.push(DriverType {
                hash: Some(hash),
                begin: word(24).filter(|&a| a != 0 && a < slot::NONE32),
                package: pkg.to_owned(),
            });
        }
    }
    if !out.is_empty() {
        return out;
    }
    for f in bin.functions() {
        let Some(ty) = f.name.strip_suffix(".Begin") else {
            continue;
        };
        // `<pkg>.(*T)` or `<pkg>.T`: the package is what precedes the type's dot.
        let slash = ty.rfind('/').map_or(0, |i| i + 1);
        let Some(dot) = ty[slash..].find('.') else {
            continue;
        };
        let pkg = &ty[..slash + dot];
        if ty[slash + dot + 1..].contains(['.', '[']) || f.entry >= slot::NONE32 {
            continue; // a method of a nested or generic type, or out of the slot's range
        }
        if gotap_spans::databasesql::system_name(pkg) == "other_sql" {
            continue;
        }
        let has = |m: &str| bin.function(&format!("{ty}.{m}")).is_some();
        if has("Close") && has("Prepare") && !out.iter().any(|d| d.begin == Some(f.entry)) {
            out.push(DriverType {
                hash: None,
                begin: Some(f.entry),
                package: pkg.to_owned(),
            });
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
        .filter(|p| gotap_spans::databasesql::system_name(p) != "other_sql")
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Sets the low (`high` false) or high half of a slot of two u32s.
fn set_half(v: &mut u64, high: bool, x: u64) {
    let x = x.min(slot::NONE32);
    *v = if high {
        (*v & slot::NONE32) | (x << 32)
    } else {
        (*v & !slot::NONE32) | x
    };
}

/// Sets the u16 at bits `shift..shift+16`.
fn set_u16(v: &mut u64, shift: u32, x: u64) {
    let x = x.min(slot::NONE16);
    *v = (*v & !(slot::NONE16 << shift)) | (x << shift);
}

/// Runtime and standard-library fields the error's description reads: not in the stdlib table
/// (whose fields its tests check against a reflect oracle that cannot see runtime type
/// descriptors), so DWARF first, else [`RUNTIME_MEASURED`]. Index 1 and 2 are the type's
/// name and flags (`internal/abi.Type` from go1.21, `runtime._type` before).
const MODULEDATA_TYPES: FieldRef = FieldRef::new("runtime.moduledata", "types");
const ABI_TYPE_STR: FieldRef = FieldRef::new("internal/abi.Type", "Str");
const ABI_TYPE_TFLAG: FieldRef = FieldRef::new("internal/abi.Type", "TFlag");
const RUNTIME_TYPE_STR: FieldRef = FieldRef::new("runtime._type", "str");
const RUNTIME_TYPE_TFLAG: FieldRef = FieldRef::new("runtime._type", "tflag");
const ERRORS_ERROR_STRING_S: FieldRef = FieldRef::new("errors.errorString", "s");
const FMT_WRAP_ERROR_MSG: FieldRef = FieldRef::new("fmt.wrapError", "msg");
const RUNTIME_FIELDS: &[FieldRef] = &[
    MODULEDATA_TYPES,
    ABI_TYPE_STR,
    ABI_TYPE_TFLAG,
    ERRORS_ERROR_STRING_S,
    FMT_WRAP_ERROR_MSG,
    RUNTIME_TYPE_STR,
    RUNTIME_TYPE_TFLAG,
];
/// Per Go minor version, measured from the DWARF of the toolchains gotap is tested with (the
/// test `runtime_offsets_match_dwarf` checks each row): moduledata.types, the type's Str and
/// TFlag, errorString.s, wrapError.msg. Another version is unknown: a warning, not a guess.
const RUNTIME_MEASURED: &[(&str, [u64; 5])] = &[
    ("go1.19", [280, 40, 20, 0, 0]),
    ("go1.26", [296, 40, 20, 0, 0]),
    ("go1.27", [296, 40, 20, 0, 0]),
];

const PQ_MODULE: &str = "github.com/lib/pq";
const PQ_ERROR: FieldRef = FieldRef::new("github.com/lib/pq.Error", "Code");
/// `(*pq.Error).Code` in the lib/pq versions whose layout was measured (the DWARF of
/// tests/gosql's build): a version not listed is unknown, its SQLSTATE not read.
const PQ_CODE_MEASURED: &[(&str, u64)] = &[("v1.10.9", 16)];
/// pgx's error types, their module's package and the struct holding `Code` (DWARF only).
const PGX_ERRORS: &[(&str, FieldRef)] = &[
    (
        "github.com/jackc/pgx/v5/pgconn.(*PgError).Error",
        FieldRef::new("github.com/jackc/pgx/v5/pgconn.PgError", "Code"),
    ),
    (
        "github.com/jackc/pgconn.(*PgError).Error",
        FieldRef::new("github.com/jackc/pgconn.PgError", "Code"),
    ),
];

/// The file address of `f`, if the binary has it, as a u32 half (`NONE32` else).
fn fn_addr(bin: &GoBinary, f: &str) -> u64 {
    bin.function(f)
        .map_or(slot::NONE32, |f| f.entry.min(slot::NONE32))
}

/// What the exit needs to describe a failed call's error (bpf/databasesql.bpf.h `sql_err`) and
/// the dsnConnector check. Each part is optional: one that is unknown leaves its attribute out
/// (error.type then falls back as gotap build's does not: `_OTHER`), with a warning when the
/// reason is an unknown layout.
fn error_cfg(bin: &GoBinary, out: &mut LibPlan) {
    let version = bin.go_version();
    out.cfg[slot::ENTRY_QE] = u64::MAX;
    out.cfg[slot::ENTRY_PD] = u64::MAX;
    set_half(
        &mut out.cfg[slot::ENTRY_PD],
        true,
        fn_addr(bin, "database/sql.(*dsnConnector).Connect"),
    );
    let resolved = off::resolve(bin, RUNTIME_FIELDS);
    let minor = off::GoVersion::parse(version).map(|v| v.minor_label());
    let row = RUNTIME_MEASURED
        .iter()
        .find(|(m, _)| Some(*m) == minor.as_deref())
        .map(|(_, r)| *r);
    // DWARF first (the stdlib table has no row for these fields), else the measured row.
    let get = |i: usize| -> Option<u64> {
        let fields: &[FieldRef] = match i {
            1 => &[ABI_TYPE_STR, RUNTIME_TYPE_STR],
            2 => &[ABI_TYPE_TFLAG, RUNTIME_TYPE_TFLAG],
            _ => &RUNTIME_FIELDS[i..i + 1],
        };
        fields
            .iter()
            .find_map(|f| off::offset_of(&resolved, *f).ok())
            .or(row.map(|r| r[i]))
    };
    let mut warn = Vec::new();

    // %T: the type's name, relative to moduledata.types.
    let (str_off, tflag_off) = match get(1).zip(get(2)) {
        Some(a) => a,
        None => {
            warn.push(format!("{ABI_TYPE_STR} ({RUNTIME_TYPE_STR} before go1.21)"));
            (slot::NONE16, slot::NONE16)
        }
    };
    let mut offs = u64::MAX;
    set_u16(&mut offs, 0, str_off);
    set_u16(&mut offs, 16, tflag_off);
    out.cfg[slot::MD_TYPES] = match (bin.moduledata(), get(0)) {
        (Some(md), Some(o)) => md + o,
        (None, _) => crate::abi::OFF_ABSENT,
        (_, None) => {
            warn.push(MODULEDATA_TYPES.to_string());
            crate::abi::OFF_ABSENT
        }
    };

    // SQLSTATE of lib/pq's and pgx's errors.
    out.cfg[slot::ERR_PG] = u64::MAX;
    let pq_fn = fn_addr(bin, "github.com/lib/pq.(*Error).Error");
    if pq_fn != slot::NONE32 {
        let measured = gotap_binary::modoffsets::module_version(bin, PQ_MODULE).and_then(|v| {
            PQ_CODE_MEASURED
                .iter()
                .find(|(m, _)| *m == v)
                .map(|(_, o)| *o)
        });
        match off::resolve_one(bin, PQ_ERROR).ok().or(measured) {
            Some(o) => {
                set_half(&mut out.cfg[slot::ERR_PG], false, pq_fn);
                set_u16(&mut offs, 32, o);
            }
            None => warn.push(format!(
                "{PQ_ERROR} (lib/pq {})",
                gotap_binary::modoffsets::module_version(bin, PQ_MODULE)
                    .unwrap_or_else(|| "of unknown version".into())
            )),
        }
    }
    for (f, code) in PGX_ERRORS {
        let a = fn_addr(bin, f);
        if a == slot::NONE32 {
            continue;
        }
        match off::resolve_one(bin, *code) {
            Ok(o) => {
                set_half(&mut out.cfg[slot::ERR_PG], true, a);
                set_u16(&mut offs, 48, o);
            }
            Err(_) => warn.push(format!("{code} (no DWARF)")),
        }
        break;
    }
    out.cfg[slot::TYPE_OFFS] = offs;

    // The text of errors.New's, fmt.Errorf's (%w) and context.DeadlineExceeded's errors.
    out.cfg[slot::ERR_TEXT] = u64::MAX;
    out.cfg[slot::ERR_MISC] = u64::MAX;
    for (i, (f, field)) in [
        ("errors.(*errorString).Error", ERRORS_ERROR_STRING_S),
        ("fmt.(*wrapError).Error", FMT_WRAP_ERROR_MSG),
    ]
    .into_iter()
    .enumerate()
    {
        let a = fn_addr(bin, f);
        if a == slot::NONE32 {
            continue;
        }
        match get(3 + i) {
            Some(o) => {
                set_half(&mut out.cfg[slot::ERR_TEXT], i == 1, a);
                set_u16(&mut out.cfg[slot::ERR_MISC], 32 + 16 * i as u32, o);
            }
            None => warn.push(field.to_string()),
        }
    }
    set_half(
        &mut out.cfg[slot::ERR_MISC],
        false,
        fn_addr(bin, "context.(*deadlineExceededError).Error"),
    );
    if !warn.is_empty() {
        out.warnings.push(format!(
            "database/sql: failed statements' error.type may be _OTHER: the offset of {} in {version} is unknown",
            warn.join(", ")
        ));
    }
}

/// Kind of the function probes' SQL record (layout/records.json `sql_fp_head`): the head, the
/// DSN area, then an `EV_SITE_SQL` site event.
pub const EV_SQL_FP: u8 = 9;
/// `SQL_DSN_CAP`: the DSN bytes a record carries.
pub const SQL_DSN_CAP: usize = 512;
const FP_HEAD: usize = 8;

/// An `EV_SQL_FP` record: the site event, with the server its DSN names put in the slots a
/// `gotap build --probes` site fills (address, port, namespace), goes through the same decoder.
fn decode(b: &[u8], cx: &mut DecodeCtx<'_>, sink: &mut dyn SpanSink) -> Option<Decoded> {
    if b.first() != Some(&EV_SQL_FP) {
        return None;
    }
    if b.len() < FP_HEAD + SQL_DSN_CAP {
        return Some(Decoded::Undecodable);
    }
    let dsn_len = (u16::from_le_bytes([b[2], b[3]]) as usize).min(SQL_DSN_CAP);
    let dsn_full = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let dsn = &b[FP_HEAD..FP_HEAD + dsn_len];
    let Some(ev) = SiteEvent::parse(&b[FP_HEAD + SQL_DSN_CAP..]) else {
        return Some(Decoded::Undecodable);
    };
    if ev.h.kind != crate::libs::databasesql_decode::EV_SITE_SQL {
        return Some(Decoded::Undecodable);
    }
    let mut h = ev.h;
    if h.rflags & abi::REC_MONO != 0 {
        h.start = (h.start as i128 + cx.mono_to_unix) as i64;
    }
    let Some(resource) = cx.resource(h.proc) else {
        return Some(Decoded::UnknownProcess);
    };
    let server = match std::str::from_utf8(dsn) {
        Ok(d) if !d.is_empty() => parse_dsn(&ev.str(0), d, dsn_full > dsn_len),
        _ => DbServer::default(),
    };
    let port = server.port.map(|p| p.to_string()).unwrap_or_default();
    let address = server.address.unwrap_or_default();
    let namespace = server.namespace.unwrap_or_default();
    let strs: [&[u8]; 8] = [
        ev.bytes(0),
        ev.bytes(1),
        ev.bytes(2),
        ev.bytes(3),
        ev.bytes(4),
        address.as_bytes(),
        port.as_bytes(),
        namespace.as_bytes(),
    ];
    let rec = abi::encode_site_event(&h, &strs);
    let Some(ev) = SiteEvent::parse(&rec) else {
        return Some(Decoded::Undecodable);
    };
    Some(
        if crate::sites::emit(&ev, resource, cx.capture_query, sink) {
            Decoded::Span
        } else {
            Decoded::Undecodable
        },
    )
}

// --- The DSN, parsed as gotap build's instrumentations/databasesql/probes/gotap_dsn.go does
// (gotapParseDSN and its helpers, step for step), so that both strategies give the same
// server.address, server.port and db.namespace. ---

fn has_path_prefix(pkg: &str, prefix: &str) -> bool {
    pkg == prefix
        || (pkg.len() > prefix.len()
            && pkg.starts_with(prefix)
            && pkg.as_bytes()[prefix.len()] == b'/')
}

/// The server `dsn` names in the format of the driver of package `pkg`; `cut`: the DSN was
/// longer than what the record carries, so its last (possibly partial) part is dropped.
pub fn parse_dsn(pkg: &str, dsn: &str, cut: bool) -> DbServer {
    let sqlite = [
        "modernc.org/sqlite",
        "github.com/mattn/go-sqlite3",
        "github.com/glebarez/go-sqlite",
        "github.com/ncruces/go-sqlite3",
    ]
    .iter()
    .any(|p| has_path_prefix(pkg, p));
    let mut dsn = dsn;
    if cut {
        // What follows the last separator may be a partial value: never report it. A SQLite
        // file name is whole only when its parameters begin within what was kept.
        let last = if sqlite {
            dsn.find('?')
        } else {
            dsn.rfind([' ', '&', '?'])
        };
        match last {
            Some(i) => dsn = &dsn[..i],
            None => return DbServer::default(),
        }
    }
    let mut s = Srv::default();
    if sqlite {
        s.namespace = sqlite_file(dsn);
    } else if has_path_prefix(pkg, "github.com/go-sql-driver/mysql") {
        parse_mysql(&mut s, dsn);
    } else if has_path_prefix(pkg, "github.com/lib/pq")
        || has_path_prefix(pkg, "github.com/jackc/pgx")
    {
        if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
            parse_url(&mut s, dsn, true);
        } else {
            parse_postgres_kv(&mut s, dsn);
        }
    } else if dsn.find("://").is_some_and(|i| i > 0) {
        parse_url(&mut s, dsn, false);
    }
    if s.address.is_empty() {
        s.port = 0;
    }
    let some = |v: String| (!v.is_empty()).then_some(v);
    DbServer {
        address: some(s.address),
        port: (s.port > 0).then_some(s.port),
        namespace: some(s.namespace),
    }
}

#[derive(Default)]
struct Srv {
    address: String,
    port: u16,
    namespace: String,
}

fn parse_url(s: &mut Srv, dsn: &str, postgres: bool) {
    let mut rest = &dsn[dsn.find("://").unwrap() + 3..];
    let mut query = "";
    if let Some(i) = rest.find('?') {
        query = &rest[i + 1..];
        rest = &rest[..i];
    }
    let mut path = "";
    if let Some(i) = rest.find('/') {
        path = &rest[i + 1..];
        rest = &rest[..i];
    }
    if let Some(i) = rest.rfind('@') {
        rest = &rest[i + 1..];
    }
    if !rest.contains(',') {
        host_port(s, rest);
    }
    if postgres {
        s.namespace = unescape(path);
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = match kv.find('=') {
                Some(i) => (&kv[..i], unescape(&kv[i + 1..])),
                None => (kv, String::new()),
            };
            postgres_param(s, k, &v);
        }
    }
}

fn host_port(s: &mut Srv, hp: &str) {
    let (mut host, mut port) = (hp, "");
    if hp.starts_with('[') {
        if let Some(i) = hp.find(']').filter(|&i| i > 0) {
            host = &hp[1..i];
            if hp.as_bytes().get(i + 1) == Some(&b':') {
                port = &hp[i + 2..];
            }
        }
    } else if let Some(i) = hp.rfind(':') {
        if !hp[..i].contains(':') {
            host = &hp[..i];
            port = &hp[i + 1..];
        }
    }
    s.address = unescape(host);
    s.port = parse_port(port);
}

fn parse_port(p: &str) -> u16 {
    // strconv.Atoi: an optional sign, then digits.
    let digits = p.strip_prefix('+').unwrap_or(p);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && n < 65536 => n as u16,
        _ => 0,
    }
}

fn postgres_param(s: &mut Srv, k: &str, v: &str) {
    match k {
        "host" => {
            if !v.contains(',') {
                s.address = v.to_owned();
            } else {
                s.address.clear();
                s.port = 0;
            }
        }
        "hostaddr" if s.address.is_empty() && !v.contains(',') => s.address = v.to_owned(),
        "port" => s.port = parse_port(v),
        "dbname" => s.namespace = v.to_owned(),
        _ => {}
    }
}

fn parse_postgres_kv(s: &mut Srv, dsn: &str) {
    let d = dsn.as_bytes();
    let mut i = 0;
    while i < d.len() {
        while i < d.len() && matches!(d[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        let start = i;
        while i < d.len() && d[i] != b'=' && d[i] != b' ' {
            i += 1;
        }
        let key = &d[start..i];
        while i < d.len() && d[i] == b' ' {
            i += 1;
        }
        if i >= d.len() || d[i] != b'=' {
            return;
        }
        i += 1;
        while i < d.len() && d[i] == b' ' {
            i += 1;
        }
        let mut val = Vec::new();
        if i < d.len() && d[i] == b'\'' {
            i += 1;
            while i < d.len() && d[i] != b'\'' {
                if d[i] == b'\\' && i + 1 < d.len() {
                    i += 1;
                }
                val.push(d[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < d.len() && d[i] != b' ' && d[i] != b'\t' {
                if d[i] == b'\\' && i + 1 < d.len() {
                    i += 1;
                }
                val.push(d[i]);
                i += 1;
            }
        }
        postgres_param(
            s,
            &String::from_utf8_lossy(key),
            &String::from_utf8_lossy(&val),
        );
    }
}

fn parse_mysql(s: &mut Srv, dsn: &str) {
    let Some(slash) = dsn.rfind('/') else {
        return;
    };
    let mut name = &dsn[slash + 1..];
    if let Some(i) = name.find('?') {
        name = &name[..i];
    }
    s.namespace = unescape(name);
    let mut net_addr = &dsn[..slash];
    if let Some(i) = net_addr.rfind('@') {
        net_addr = &net_addr[i + 1..];
    }
    let Some(open) = net_addr.find('(') else {
        return;
    };
    if !net_addr.ends_with(')') {
        return;
    }
    let addr = &net_addr[open + 1..net_addr.len() - 1];
    if &net_addr[..open] == "unix" {
        s.address = addr.to_owned();
        return;
    }
    host_port(s, addr);
}

fn sqlite_file(dsn: &str) -> String {
    let uri = dsn.starts_with("file:");
    let mut p = dsn;
    if uri {
        p = &p[5..];
        if let Some(i) = p.find('#') {
            p = &p[..i];
        }
    }
    if let Some(i) = p.find('?') {
        p = &p[..i];
    }
    let owned;
    if uri {
        if let Some(rest) = p.strip_prefix("//") {
            if let Some(i) = rest.find('/') {
                p = &rest[i..];
            }
        }
        owned = unescape(p);
        p = &owned;
    }
    match p.rfind(['/', '\\']) {
        Some(i) => p[i + 1..].to_owned(),
        None => p.to_owned(),
    }
}

/// `%XX` escapes decoded; a malformed one is kept as written (gotapUnescape).
fn unescape(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .filter(|h| !h.starts_with(['+', '-']))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The measured lib/pq layout is what the DWARF of a build with that version says, in every
    /// toolchain (a stripped build uses the table).
    #[test]
    fn pq_code_offset_table_matches_dwarf() {
        for tc in gotap_testkit::ALL_TOOLCHAINS {
            let bin = GoBinary::open(gotap_testkit::build(
                "../crates/gotap-ebpf/tests/gosql",
                "./pq",
                tc,
                gotap_testkit::Variant::default(),
            ))
            .unwrap();
            let v = gotap_binary::modoffsets::module_version(&bin, PQ_MODULE).unwrap();
            let measured = PQ_CODE_MEASURED
                .iter()
                .find(|(m, _)| *m == v)
                .map(|(_, o)| *o);
            assert_eq!(
                measured,
                off::resolve_one(&bin, PQ_ERROR).ok(),
                "{tc:?} {v}"
            );
        }
    }

    /// Each measured row is what the DWARF of its toolchain's build says.
    #[test]
    fn runtime_offsets_match_dwarf() {
        for tc in gotap_testkit::ALL_TOOLCHAINS {
            let bin = GoBinary::open(gotap_testkit::build(
                "../crates/gotap-ebpf/tests/gosql",
                "./sqlite",
                tc,
                gotap_testkit::Variant::default(),
            ))
            .unwrap();
            let resolved = off::resolve(&bin, RUNTIME_FIELDS);
            let dwarf = |fs: &[FieldRef]| {
                fs.iter()
                    .find_map(|f| off::offset_of(&resolved, *f).ok())
                    .unwrap_or_else(|| panic!("{tc:?}: {fs:?} not in the DWARF"))
            };
            let got = [
                dwarf(&[MODULEDATA_TYPES]),
                dwarf(&[ABI_TYPE_STR, RUNTIME_TYPE_STR]),
                dwarf(&[ABI_TYPE_TFLAG, RUNTIME_TYPE_TFLAG]),
                dwarf(&[ERRORS_ERROR_STRING_S]),
                dwarf(&[FMT_WRAP_ERROR_MSG]),
            ];
            let minor = off::GoVersion::parse(bin.go_version())
                .unwrap()
                .minor_label();
            let row = RUNTIME_MEASURED.iter().find(|(m, _)| *m == minor);
            assert_eq!(row.map(|(_, r)| *r), Some(got), "{tc:?} {minor}");
        }
    }

    /// Found without symbols as with them: the moduledata the runtime uses.
    #[test]
    fn moduledata_with_and_without_symbols() {
        for tc in gotap_testkit::ALL_TOOLCHAINS {
            for pie in [false, true] {
                let full = GoBinary::open(gotap_testkit::build(
                    "../crates/gotap-ebpf/tests/gosql",
                    "./sqlite",
                    tc,
                    gotap_testkit::Variant {
                        stripped: false,
                        pie,
                    },
                ))
                .unwrap();
                let sym = full.symbols_with_prefix("runtime.firstmoduledata")
                    .into_iter()
                    .find(|(n, _)| n == "runtime.firstmoduledata")
                    .map(|(_, v)| v);
                assert!(sym.is_some(), "{tc:?} pie {pie}");
                assert_eq!(full.moduledata(), sym, "{tc:?} pie {pie}");
            }
        }
    }

    /// The cases of gotap build's TestGotapParseDSN (probes/gotap_dsn_test.go), which must give
    /// the same server.
    #[test]
    fn dsn_as_gotap_build_parses_it() {
        const PGX: &str = "github.com/jackc/pgx/v5/stdlib";
        const PQ: &str = "github.com/lib/pq";
        const MYSQL: &str = "github.com/go-sql-driver/mysql";
        const SQLITE: &str = "modernc.org/sqlite";
        const MATTN: &str = "github.com/mattn/go-sqlite3";
        for (pkg, dsn, addr, port, ns) in [
            (
                PGX,
                "postgres://app:s3cr%40t@db.example:6543/shop?sslmode=disable",
                "db.example",
                "6543",
                "shop",
            ),
            (
                PGX,
                "postgresql://db.example/shop",
                "db.example",
                "",
                "shop",
            ),
            (
                PGX,
                "postgres://app@[::1]:5433/my%20db",
                "::1",
                "5433",
                "my db",
            ),
            (PGX, "postgres://a:1,b:2/shop", "", "", "shop"),
            (
                PGX,
                "postgres:///shop?host=%2Fvar%2Frun%2Fpostgresql&port=5432",
                "/var/run/postgresql",
                "5432",
                "shop",
            ),
            (PGX, "postgres://app:pw@db/", "db", "", ""),
            (
                PQ,
                "host=db.example port=5432 dbname=shop user=app password='p w\\'d' sslmode=disable",
                "db.example",
                "5432",
                "shop",
            ),
            (
                PQ,
                "user=app dbname = 'my shop' host=10.0.0.7",
                "10.0.0.7",
                "",
                "my shop",
            ),
            (PQ, "host=a,b port=1,2 dbname=shop", "", "", "shop"),
            (PQ, "dbname=shop port=5433", "", "", "shop"),
            (PQ, "garbage", "", "", ""),
            (
                MYSQL,
                "app:p@ss/w@tcp(db.example:3307)/shop?parseTime=true",
                "db.example",
                "3307",
                "shop",
            ),
            (
                MYSQL,
                "app@unix(/run/mysqld/mysqld.sock)/shop",
                "/run/mysqld/mysqld.sock",
                "",
                "shop",
            ),
            (
                MYSQL,
                "app:pw@tcp([2001:db8::1]:3306)/",
                "2001:db8::1",
                "3306",
                "",
            ),
            (MYSQL, "/shop", "", "", "shop"),
            (
                MYSQL,
                "app:pw@tcp(db.example)/shop",
                "db.example",
                "",
                "shop",
            ),
            (MYSQL, "no slash", "", "", ""),
            (SQLITE, "/var/lib/app/app.db", "", "", "app.db"),
            (SQLITE, "data.db", "", "", "data.db"),
            (
                SQLITE,
                "data.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)",
                "",
                "",
                "data.db",
            ),
            (
                MATTN,
                "x.db?_auth&_auth_user=admin&_auth_pass=secret",
                "",
                "",
                "x.db",
            ),
            (
                SQLITE,
                "/tmp/run/x.db?_pragma=foreign_keys(1)&_auth_pass=secret",
                "",
                "",
                "x.db",
            ),
            (
                SQLITE,
                "file:app.db?cache=shared&_pragma=busy_timeout(5000)",
                "",
                "",
                "app.db",
            ),
            (
                SQLITE,
                "file:data.db?_auth_pass=secret#frag",
                "",
                "",
                "data.db",
            ),
            (
                MATTN,
                "file:///var/lib/app/my%20app.db?mode=ro",
                "",
                "",
                "my app.db",
            ),
            (
                MATTN,
                "file://localhost/var/lib/app.db?_key=secret",
                "",
                "",
                "app.db",
            ),
            (SQLITE, ":memory:", "", "", ":memory:"),
            (
                SQLITE,
                ":memory:?_pragma=foreign_keys(1)",
                "",
                "",
                ":memory:",
            ),
            (SQLITE, "file::memory:?cache=shared", "", "", ":memory:"),
            (
                "github.com/ncruces/go-sqlite3/driver",
                r"C:\data\app.db?_pragma=x",
                "",
                "",
                "app.db",
            ),
            (
                PGX,
                "postgres://u:pw@h/db?sslmode=require&password=secret",
                "h",
                "",
                "db",
            ),
            (PQ, "host=h dbname=db password=secret", "h", "", "db"),
            (
                PQ,
                "password=secret host=h dbname=db sslmode=disable",
                "h",
                "",
                "db",
            ),
            (
                MYSQL,
                "user:pw@tcp(h:3306)/db?tls=skip-verify&allowCleartextPasswords=1",
                "h",
                "3306",
                "db",
            ),
            (
                "example.com/other",
                "sqlserver://app:pw@sql.example:1433?database=shop",
                "sql.example",
                "1433",
                "",
            ),
            ("example.com/other", "some opaque string", "", "", ""),
        ] {
            let s = parse_dsn(pkg, dsn, false);
            let got = (
                s.address.unwrap_or_default(),
                s.port.map(|p| p.to_string()).unwrap_or_default(),
                s.namespace.unwrap_or_default(),
            );
            assert_eq!(got, (addr.into(), port.into(), ns.into()), "{pkg} {dsn:?}");
        }
    }

    /// A DSN cut at the record's cap loses its last part rather than report a partial value.
    #[test]
    fn cut_dsn_drops_its_last_part() {
        let s = parse_dsn(
            "github.com/lib/pq",
            "host=db.example port=5432 dbname=sh",
            true,
        );
        assert_eq!(s.address.as_deref(), Some("db.example"));
        assert_eq!(s.port, Some(5432));
        assert_eq!(s.namespace, None);
        let s = parse_dsn("modernc.org/sqlite", "/var/lib/verylongname", true);
        assert_eq!(s.namespace, None);
        let s = parse_dsn("modernc.org/sqlite", "/var/lib/app.db?_pragma=a&_pra", true);
        assert_eq!(s.namespace.as_deref(), Some("app.db"));
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
                // What the DSN and the error's description need is known everywhere.
                for (i, half) in [
                    (slot::ENTRY_QE, 0),
                    (slot::ENTRY_QE, 32),
                    (slot::ENTRY_PD, 0),
                    (slot::ENTRY_PD, 32),
                    (slot::ERR_TEXT, 0),
                    (slot::ERR_TEXT, 32),
                    (slot::ERR_MISC, 0),
                ] {
                    assert_ne!(
                        (lp.cfg[i] >> half) & slot::NONE32,
                        slot::NONE32,
                        "{label}: slot {i}>>{half}"
                    );
                }
                assert_ne!(lp.cfg[slot::MD_TYPES], crate::abi::OFF_ABSENT, "{label}");
                assert_eq!(
                    lp.cfg[slot::TYPE_OFFS] & slot::NONE32,
                    40 | (20 << 16),
                    "{label}"
                );
                assert!(
                    lp.sites.iter().any(|s| s.program == "sql_open_entry"),
                    "{label}"
                );
                assert!(
                    lp.sites.iter().any(|s| s.program == "sql_opendb_entry"),
                    "{label}"
                );
                // The error's data word is read where the exits have it.
                assert!(
                    lp.sites.iter().any(|s| s.program.matches('_').count() == 3),
                    "{label}: {:?}",
                    lp.sites
                );
                assert_eq!(lp.cfg[slot::DEFAULT], 0, "{label}");
                // The driver's conn type: its itab symbol, else (stripped, or Go 1.27, whose
                // linker names no itabs) its Begin method in pclntab. Either way one type.
                assert_eq!(lp.cfg[slot::NDRIVERS], 1, "{label}");
                let v = lp.cfg[slot::HASH0];
                let begin = bin
                    .function("modernc.org/sqlite.(*conn).Begin")
                    .map(|f| f.entry);
                assert_eq!(Some(v >> 32), begin, "{label}");
                assert_eq!(
                    v & slot::NONE32 != 0,
                    !variant.stripped && tc != gotap_testkit::Toolchain::Go127,
                    "{label}: the hash is known from the itab symbol only"
                );
            }
        }
    }
}
