//! USDT (SystemTap SDT) notes: writing them into a linked Go executable, and reading any
//! executable's notes back.
//!
//! The format is the one `sys/sdt.h` emits and every USDT consumer reads (`readelf -n`, bpftrace,
//! bcc, libbpf, perf, SystemTap): a non-allocated `.note.stapsdt` section of notes with owner
//! `stapsdt`, type 3, whose descriptor is `pc, base, semaphore` (address-sized) followed by
//! `provider\0name\0args\0`; plus a one-byte allocated `.stapsdt.base` section. Consumers add
//! `addr(.stapsdt.base) − note.base` to `pc` and `semaphore` (a prelink-era correction), so the
//! writer makes the two equal and the reader applies the rule for notes written by others.
//!
//! Why post-link: Go's linker cannot emit these notes, and the site addresses are only known once
//! the program is linked. [`annotate`] finds each site by Go function name through pclntab (so
//! stripped and PIE binaries work), finds the semaphore by its marker bytes in initialised data,
//! and rewrites the ELF with `object`'s ELF builder: every allocated byte (code, data, program
//! headers) keeps its offset and address, only the non-allocated sections and the section header
//! table are laid out again. The program therefore runs exactly as before.
use crate::{Error, GoBinary};
use object::build::elf::{Builder, SectionData};
use object::elf;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Note owner name of SystemTap SDT notes.
const STAPSDT_OWNER: &[u8] = b"stapsdt";
/// Note type of SDT v3 notes (the only version in use).
const NT_STAPSDT: u32 = 3;
const NOTE_SECTION: &str = ".note.stapsdt";
const BASE_SECTION: &str = ".stapsdt.base";
const PROBES_SECTION: &str = ".probes";

/// Provider of gotap's probe sites.
pub const GOTAP_PROVIDER: &str = "gotap";
/// USDT argument spec shared by gotap's sites (docs/probes.md, "The contract"): nine stack slots
/// of an ABI0 assembly function, read at its first instruction.
pub const GOTAP_ARGS: &str =
    "8@8(%rsp) 8@16(%rsp) 8@24(%rsp) 8@32(%rsp) -8@40(%rsp) -8@48(%rsp) 8@56(%rsp) 8@64(%rsp) 8@72(%rsp)";
/// The bytes that follow a semaphore's 2-byte counter when its package has no marker of its own
/// ("gotap-semaphor"): net/http's `gotapProbeSemaphore`, and the programs that declare their own
/// sites (tests and examples).
pub const GOTAP_SEMAPHORE_MARKER: &[u8] = b"gotap-semaphor";
/// The prefix of a batch site's semaphore marker (go/probes/shared/gotap_batch.go): then the
/// package's number as a little-endian u16.
pub const GOTAP_BATCH_MARKER_PREFIX: &[u8] = b"gotap-batch-";
/// The marker of a batch buffer's reference (go/probes/shared/gotap_batch.go, gotapBatchRef):
/// these 15 bytes and the package's number, then the buffer's address (8 bytes).
pub const GOTAP_BATCH_REF_MARKER: &[u8] = b"gotap-batchref-";

/// The batch buffers a `--probes` binary has: (package number, link-time address of the
/// reference's buffer pointer), one per woven package. gotap's exit probe reads the buffers
/// through these when the process exits with spans still buffered.
pub fn batch_buffer_refs(bin: &GoBinary) -> Vec<(u8, u64)> {
    let data = bin.data();
    bin.find_in_data(GOTAP_BATCH_REF_MARKER)
        .into_iter()
        .filter_map(|addr| {
            let at = usize::try_from(bin.vaddr_to_offset(addr)?).ok()?;
            let pkg = *data.get(at + GOTAP_BATCH_REF_MARKER.len())?;
            Some((pkg, addr.checked_add(16)?))
        })
        .collect()
}
/// USDT argument spec of a batch site: the address and length of the buffered events, in the
/// registers the site's prologue loads (docs/probes.md, "Batched sites").
pub const GOTAP_BATCH_ARGS: &str = "8@%rsi 8@%rdx";
/// A library's per-span probe site (instrumentations/<lib>/sites.rs): its USDT note, the BPF
/// program gotap attaches to it, and what `gotap probes bpftrace` prints for it.
#[derive(Debug, Clone, Copy)]
pub struct LibSite {
    pub def: SiteDef<'static>,
    /// The BPF program reading the site (`site_<name>`, instrumentations/<lib>/bpf).
    pub program: &'static str,
    /// The instrumentation `gotap run` names for it (as `gotap inspect` does).
    pub instrumentation: &'static str,
    /// The bytes after the 2-byte counter of the package's semaphore (its probes/ fragment): one
    /// semaphore per woven package, shared by its sites.
    pub semaphore: &'static [u8],
    pub bpftrace: BpftraceRow,
}

/// A site's block in `gotap probes bpftrace`: the line it prints before the ids. `$a6`/`$a7` are
/// the contract's seventh and eighth arguments and `$r` the span record (docs/probes.md); arg0/1
/// and arg2/3 are Go strings, arg4 a status or code, arg5 the duration (ns).
#[derive(Debug, Clone, Copy)]
pub struct BpftraceRow {
    pub format: &'static str,
    pub args: &'static str,
}

/// A package's batch site (docs/probes.md, "Batched sites"): it replaces the per-span sites whose
/// names start with `prefix` when it is used.
#[derive(Debug, Clone, Copy)]
pub struct BatchSite {
    pub def: SiteDef<'static>,
    pub prefix: &'static str,
    /// The package's number, in its semaphore marker and its buffer's reference.
    pub package: u8,
}

impl BatchSite {
    /// Its semaphore's marker: [`GOTAP_BATCH_MARKER_PREFIX`] and the package number (u16 LE).
    pub fn semaphore(&self) -> [u8; 14] {
        let mut m = [0u8; 14];
        m[..12].copy_from_slice(GOTAP_BATCH_MARKER_PREFIX);
        m[12] = self.package;
        m
    }
}

/// The libraries' probe sites: each folder of instrumentations/registry.txt with a `sites.rs` is
/// a module here (crates/gotap-binary/build.rs), and `TABLE` lists (folder, sites, batch site).
pub mod libs {
    include!(concat!(env!("OUT_DIR"), "/site_libs.rs"));
}

/// Every library's per-span sites, in the registry's order.
pub fn lib_sites() -> impl Iterator<Item = &'static LibSite> {
    libs::TABLE.iter().flat_map(|(_, sites, _)| sites.iter())
}

/// Every library's batch site.
pub fn batch_sites() -> impl Iterator<Item = &'static BatchSite> {
    libs::TABLE.iter().filter_map(|(_, _, b)| b.as_ref())
}

/// gotap's sites as woven by `gotap build --probes`: every library's per-span sites (same argument
/// spec, the package's semaphore), then each package's batch site (its own semaphore). A binary
/// has those of the packages it links; the others are skipped.
pub static GOTAP_SITES: std::sync::LazyLock<Vec<SiteDef<'static>>> =
    std::sync::LazyLock::new(|| {
        lib_sites()
            .map(|s| s.def)
            .chain(batch_sites().map(|b| b.def))
            .collect()
    });

/// The 5-byte NOP a gotap site's probe sits on (the kernel optimises uprobes on it).
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// The prologue of a site with the event ABI (docs/probes.md, "The site event"): `MOVQ
/// event_base+72(FP), SI; MOVQ event_len+80(FP), DX`, then the nop5. The woven code passes the
/// span's whole event, built in Go, as the site's tenth argument (a Go string), and the prologue
/// puts it in registers, so the BPF program reads it in one access without reading the stack.
/// Sites built before it start with the nop5 and are read through their arguments and record.
pub const SITE_EVENT_PROLOGUE: [u8; 10] = [
    0x48, 0x8b, 0x74, 0x24, 0x50, // mov 0x50(%rsp),%rsi
    0x48, 0x8b, 0x54, 0x24, 0x58, // mov 0x58(%rsp),%rdx
];

/// The prologue of a batch site (go/probes/shared/gotap_batch_amd64.s): `MOVQ
/// events_base+0(FP), SI; MOVQ events_len+8(FP), DX`, then the nop5.
pub const SITE_BATCH_PROLOGUE: [u8; 10] = [
    0x48, 0x8b, 0x74, 0x24, 0x08, // mov 0x8(%rsp),%rsi
    0x48, 0x8b, 0x54, 0x24, 0x10, // mov 0x10(%rsp),%rdx
];

/// Where a site function's nop5 is, from the function's first bytes: at its entry (argument ABI),
/// or after [`SITE_EVENT_PROLOGUE`] (event ABI) or [`SITE_BATCH_PROLOGUE`] (batch site). `None`:
/// not a gotap probe site.
pub fn site_nop_offset(code: &[u8]) -> Option<usize> {
    if code.starts_with(&NOP5) {
        return Some(0);
    }
    [SITE_EVENT_PROLOGUE, SITE_BATCH_PROLOGUE]
        .iter()
        .find_map(|p| {
            let n = p.len();
            (code.starts_with(p) && code.get(n..n + 5) == Some(&NOP5[..])).then_some(n)
        })
}

/// Whether the probe at file offset `offset` of `data` sits on a site with the event ABI: its nop5
/// follows [`SITE_EVENT_PROLOGUE`].
pub fn site_has_event_abi(data: &[u8], offset: u64) -> bool {
    let n = SITE_EVENT_PROLOGUE.len() as u64;
    offset >= n
        && usize::try_from(offset - n)
            .ok()
            .and_then(|o| data.get(o..o.checked_add(n as usize)?))
            == Some(&SITE_EVENT_PROLOGUE[..])
}

/// One probe to write: which Go function is the site, and how it is named and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteDef<'a> {
    pub provider: &'a str,
    pub name: &'a str,
    /// pclntab name (`net/http.gotapProbeHTTPServer`); the symbol-table spelling `….abi0` works too.
    pub function: &'a str,
    /// Argument spec (`8@8(%rsp) -8@40(%rsp) …`).
    pub args: &'a str,
}

/// Errors of writing or reading USDT notes. `Display` is one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum UsdtError {
    #[error(transparent)]
    Binary(#[from] Error),
    #[error("cannot write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error("{path}: {what}")]
    Annotate { path: PathBuf, what: String },
    /// The ELF or its `.note.stapsdt` section is malformed.
    #[error("corrupt USDT notes: {0}")]
    Corrupt(String),
    #[error("not an ELF file")]
    NotElf,
}

/// Where a USDT argument's value is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ArgLocation {
    /// `%reg`
    Register { reg: String },
    /// `offset(%base)` or `offset(%base,%index,scale)`.
    Memory {
        offset: i64,
        base: String,
        index: Option<String>,
        scale: u8,
    },
    /// `$value`
    Constant { value: i64 },
}

/// One parsed argument of a probe (`-8@40(%rsp)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsdtArg {
    /// Size in bytes (1, 2, 4 or 8).
    pub size: u8,
    pub signed: bool,
    pub location: ArgLocation,
}

/// One `.note.stapsdt` note, with what a tracer needs to attach to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsdtProbe {
    pub provider: String,
    pub name: String,
    /// Virtual address of the probe (after the `.stapsdt.base` correction).
    pub address: u64,
    /// File offset of the probe: the uprobe attach offset.
    pub offset: u64,
    /// Virtual address of the semaphore (a 2-byte counter), if the probe has one.
    pub semaphore: Option<u64>,
    /// File offset of the semaphore: the uprobe `ref_ctr_offset` the kernel increments.
    pub semaphore_offset: Option<u64>,
    /// The argument spec as written in the note.
    pub args_raw: String,
    pub args: Vec<UsdtArg>,
}

/// Adds one USDT note per site to the Go executable at `path`, rewriting it in place (atomically,
/// by rename; permissions kept). `semaphore_marker`: the bytes that follow the semaphore counter
/// in initialised data, which must occur exactly once. Sites whose function is not in the binary
/// are skipped; a site already noted (same provider and name) is not written twice, so annotating
/// an annotated binary changes nothing. Returns the number of the given sites the binary now has.
pub fn annotate(
    path: &Path,
    sites: &[SiteDef],
    semaphore_marker: Option<&[u8]>,
) -> Result<usize, UsdtError> {
    let sites: Vec<(SiteDef, Option<&[u8]>)> =
        sites.iter().map(|s| (*s, semaphore_marker)).collect();
    annotate_each(path, &sites)
}

/// [`annotate`] with a semaphore marker per site (sites of different Go packages have different
/// semaphores). One rewrite for all of them.
pub fn annotate_each(path: &Path, sites: &[(SiteDef, Option<&[u8]>)]) -> Result<usize, UsdtError> {
    let fail = |what: String| UsdtError::Annotate {
        path: path.to_path_buf(),
        what,
    };
    let bin = GoBinary::open(path)?;
    if bin.elf().arch != crate::Arch::Amd64 {
        return Err(bin.unsupported_arch("USDT note writing").into());
    }
    let data = bin.data();
    let existing = read_probes(data).map_err(|e| fail(e.to_string()))?;
    let has = |s: &SiteDef| {
        existing
            .iter()
            .any(|p| p.provider == s.provider && p.name == s.name)
    };

    // Resolve sites first: nothing to do means no rewrite at all.
    let mut found = Vec::new();
    let mut already = 0;
    for (site, marker) in sites {
        if has(site) {
            already += 1;
            continue;
        }
        let func = bin
            .function(site.function)
            .or_else(|| bin.function(&format!("{}.abi0", site.function)));
        let Some(func) = func else { continue };
        let head = bin.read_vaddr(func.entry, SITE_EVENT_PROLOGUE.len() as u64 + 5);
        let Some(at) = head
            .or_else(|| bin.read_vaddr(func.entry, 5))
            .and_then(site_nop_offset)
        else {
            return Err(fail(format!(
                "{} does not start with a 5-byte NOP (or gotap's site prologue and one), so it is not a probe site",
                func.name
            )));
        };
        let pc = func.entry.checked_add(at as u64).ok_or_else(|| {
            fail(format!(
                "{} has an address past the end of memory",
                func.name
            ))
        })?;
        found.push((site, *marker, pc));
    }
    if found.is_empty() {
        return Ok(already);
    }
    let mut builder = Builder::read(data)
        .map_err(|e| fail(format!("cannot read the ELF for rewriting ({e})")))?;
    if builder.endian != Endianness::Little || !builder.is_64 {
        return Err(fail(
            "USDT notes are written for 64-bit little-endian ELF only".into(),
        ));
    }
    // Each marker's semaphore, once.
    let mut semaphores: Vec<(&[u8], u64)> = Vec::new();
    for (_, marker, _) in &found {
        if let Some(m) = *marker {
            if !semaphores.iter().any(|(k, _)| *k == m) {
                semaphores.push((m, find_semaphore(&builder, m).map_err(fail)?));
            }
        }
    }
    let semaphore_of = |marker: Option<&[u8]>| {
        marker
            .and_then(|m| semaphores.iter().find(|(k, _)| *k == m))
            .map_or(0, |(_, a)| *a)
    };
    let note_id = builder
        .sections
        .iter()
        .find(|s| s.name.as_slice() == NOTE_SECTION.as_bytes())
        .map(|s| s.id());
    let base_addr = match builder
        .sections
        .iter()
        .find(|s| s.name.as_slice() == BASE_SECTION.as_bytes())
    {
        Some(s) => s.sh_addr,
        None => {
            let (offset, addr) = base_slot(&builder).ok_or_else(|| {
                fail("no free byte in the first loaded segment for .stapsdt.base".into())
            })?;
            let s = builder.sections.add();
            s.name = BASE_SECTION.into();
            s.sh_type = elf::SHT_PROGBITS;
            s.sh_flags = elf::SHF_ALLOC;
            s.sh_addr = addr;
            s.sh_offset = offset;
            s.sh_size = 1;
            s.sh_addralign = 1;
            s.data = SectionData::Data(vec![0u8].into());
            addr
        }
    };
    // Existing notes (an earlier annotation, or C code's) are kept and ours appended.
    let mut notes = Vec::new();
    if let Some(id) = note_id {
        let s = builder.sections.get_mut(id);
        match &s.data {
            SectionData::Note(d) | SectionData::Data(d) => notes.extend_from_slice(d),
            _ => return Err(fail(format!("{NOTE_SECTION} has an unexpected type"))),
        }
        // Re-added below, after `.probes`.
        s.delete = true;
    }
    for (site, marker, pc) in &found {
        encode_note(&mut notes, *pc, base_addr, semaphore_of(*marker), site);
    }
    // `.probes` is where sys/sdt.h puts semaphores, and bcc (so bpftrace) computes the
    // semaphore's file offset for the kernel (uprobe ref_ctr_offset) only from that section's
    // header: without it bpftrace attaches but never enables the sites. Go cannot place a
    // variable in a section of its own, so `.probes` is a header describing the counter's 2
    // bytes inside .noptrdata. The builder cannot lay out overlapping sections: it writes a
    // placeholder, whose header is then pointed at the counter. bcc 0.26 also looks for
    // `.note.stapsdt` only among the section headers after `.probes`, hence the order. With
    // several semaphores (one per woven package), `.probes` spans them all: bcc only uses its
    // header to turn a semaphore's address into a file offset.
    let mut probes_header = None;
    let widen = |r: Option<(u64, u64)>, lo: u64, hi: u64| {
        Some(r.map_or((lo, hi), |(a, b): (u64, u64)| (a.min(lo), b.max(hi))))
    };
    let mut range = None;
    for (_, a) in &semaphores {
        range = widen(range, *a, a.saturating_add(2));
    }
    if range.is_some() {
        // Ours describes counters inside Go's data sections (an earlier pass: kept in the range);
        // someone else's `.probes` (C code with sys/sdt.h semaphores) is left alone.
        let in_go_data = |addr: u64| {
            builder.sections.iter().any(|s| {
                matches!(s.name.as_slice(), b".noptrdata" | b".data")
                    && addr >= s.sh_addr
                    && addr < s.sh_addr.saturating_add(s.sh_size)
            })
        };
        let existing = builder
            .sections
            .iter()
            .find(|s| s.name.as_slice() == PROBES_SECTION.as_bytes())
            .map(|s| (s.id(), s.sh_addr, s.sh_size, in_go_data(s.sh_addr)));
        if let Some((id, addr, size, true)) = existing {
            builder.sections.get_mut(id).delete = true;
            range = widen(range, addr, addr.saturating_add(size));
        }
        if !matches!(existing, Some((_, _, _, false))) {
            let (lo, hi) = range.expect("set above");
            let offset = file_offset(&builder, lo)
                .ok_or_else(|| fail("the semaphore is not in file-backed data".into()))?;
            if file_offset(&builder, hi - 1) != offset.checked_add(hi - 1 - lo) {
                return Err(fail("the semaphores are not in one loaded segment".into()));
            }
            let s = builder.sections.add();
            s.name = PROBES_SECTION.into();
            s.sh_type = elf::SHT_PROGBITS;
            s.sh_addralign = 1;
            s.data = SectionData::Data(vec![0u8; 2].into());
            probes_header = Some((lo, offset, hi - lo));
        }
    }
    let s = builder.sections.add();
    s.name = NOTE_SECTION.into();
    s.sh_type = elf::SHT_NOTE;
    s.sh_addralign = 4;
    s.data = SectionData::Note(notes.into());
    let mut out = Vec::with_capacity(data.len() + 4096);
    builder
        .write(&mut out)
        .map_err(|e| fail(format!("cannot rewrite the ELF ({e})")))?;
    if let Some((addr, offset, size)) = probes_header {
        point_probes_header(&mut out, addr, offset, size).map_err(fail)?;
    }
    drop(bin);
    write_in_place(path, &out)?;
    Ok(already + found.len())
}

/// [`annotate`] with gotap's sites ([`GOTAP_SITES`]) and their semaphores. A binary
/// without those sites is left unchanged (returns 0).
pub fn annotate_gotap(path: &Path) -> Result<usize, UsdtError> {
    annotate_gotap_sites(path, &GOTAP_SITES)
}

/// The semaphore marker of a gotap site, by probe name (its library's sites.rs); net/http's for a
/// name no library has.
pub fn gotap_semaphore_marker(site_name: &str) -> Vec<u8> {
    if let Some(s) = lib_sites().find(|s| s.def.name == site_name) {
        return s.semaphore.to_vec();
    }
    if let Some(b) = batch_sites().find(|b| b.def.name == site_name) {
        return b.semaphore().to_vec();
    }
    GOTAP_SEMAPHORE_MARKER.to_vec()
}

/// [`annotate`] for gotap sites, each noted with its package's semaphore
/// ([`gotap_semaphore_marker`]; a package whose sites are absent is never searched for its
/// marker). Returns the number of the given sites the binary now has.
pub fn annotate_gotap_sites(path: &Path, sites: &[SiteDef]) -> Result<usize, UsdtError> {
    let markers: Vec<Vec<u8>> = sites
        .iter()
        .map(|s| gotap_semaphore_marker(s.name))
        .collect();
    let sites: Vec<(SiteDef, Option<&[u8]>)> = sites
        .iter()
        .zip(&markers)
        .map(|(s, m)| (*s, Some(m.as_slice())))
        .collect();
    annotate_each(path, &sites)
}

/// Address of the semaphore: the 2 bytes before the only occurrence of `marker` in `.noptrdata`
/// or `.data`.
fn find_semaphore(b: &Builder, marker: &[u8]) -> Result<u64, String> {
    if marker.is_empty() {
        return Err("empty semaphore marker".into());
    }
    let mut hits = Vec::new();
    for sec in b
        .sections
        .iter()
        .filter(|s| matches!(s.name.as_slice(), b".noptrdata" | b".data"))
    {
        let SectionData::Data(bytes) = &sec.data else {
            continue;
        };
        let bytes: &[u8] = bytes;
        let mut from = 0;
        while let Some(pos) = bytes[from..]
            .windows(marker.len())
            .position(|w| w == marker)
        {
            let at = from + pos;
            if let Some(addr) = (at as u64)
                .checked_sub(2)
                .and_then(|a| sec.sh_addr.checked_add(a))
            {
                hits.push(addr);
            }
            from = at + 1;
        }
    }
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err("semaphore marker not found in initialised data".into()),
        more => Err(format!(
            "semaphore marker found {} times in initialised data (want exactly once)",
            more.len()
        )),
    }
}

/// A free byte for `.stapsdt.base`: just before the first allocated section of the first PT_LOAD
/// (Go leaves most of the header page free), not overlapping headers or any section. Returns
/// (file offset, address).
fn base_slot(b: &Builder) -> Option<(u64, u64)> {
    let seg = b
        .segments
        .iter()
        .filter(|s| s.p_type == elf::PT_LOAD && s.p_filesz > 0)
        .min_by_key(|s| s.p_vaddr)?;
    let seg_end = seg.p_offset.saturating_add(seg.p_filesz);
    let first = b
        .sections
        .iter()
        .filter(|s| {
            s.is_alloc()
                && s.sh_type != elf::SHT_NOBITS
                && s.sh_offset >= seg.p_offset
                && s.sh_offset < seg_end
        })
        .map(|s| s.sh_offset)
        .min()?;
    let headers_end = b.header.e_phoff.saturating_add(b.program_headers_size());
    let offset = first.checked_sub(1)?;
    let used = |o: u64| {
        o < headers_end.max(b.file_header_size())
            || b.sections.iter().any(|s| {
                s.is_alloc()
                    && s.sh_type != elf::SHT_NOBITS
                    && s.sh_offset <= o
                    && o < s.sh_offset.saturating_add(s.sh_size)
            })
    };
    if offset < seg.p_offset || used(offset) {
        return None;
    }
    Some((offset, seg.p_vaddr.checked_add(offset - seg.p_offset)?))
}

/// File offset of `vaddr` in a PT_LOAD segment's file-backed part.
fn file_offset(b: &Builder, vaddr: u64) -> Option<u64> {
    b.segments
        .iter()
        .find(|s| s.p_type == elf::PT_LOAD && vaddr >= s.p_vaddr && vaddr - s.p_vaddr < s.p_filesz)
        .and_then(|s| (vaddr - s.p_vaddr).checked_add(s.p_offset))
}

/// Rewrites the header of the placeholder `.probes` section in the written image `out` to
/// describe the `size` bytes of semaphores at `addr` (file offset `offset`).
fn point_probes_header(out: &mut [u8], addr: u64, offset: u64, size: u64) -> Result<(), String> {
    let file = ElfFile::<elf::FileHeader64<Endianness>>::parse(&*out)
        .map_err(|e| format!("rewritten ELF unreadable ({e})"))?;
    let endian = file.endian();
    let table = file.elf_section_table();
    let index = table
        .iter()
        .position(|sh| {
            table.section_name(endian, sh).ok() == Some(PROBES_SECTION.as_bytes())
                && sh.sh_addr(endian) == 0
        })
        .ok_or("rewritten ELF lost its .probes section")?;
    let hdr = file.elf_header();
    // Elf64_Shdr: sh_name u32, sh_type u32, sh_flags u64 @8, sh_addr @16, sh_offset @24, sh_size @32.
    let at = usize::try_from(hdr.e_shoff(endian))
        .ok()
        .and_then(|o| o.checked_add(index.checked_mul(usize::from(hdr.e_shentsize(endian)))?))
        .filter(|at| at.checked_add(40).is_some_and(|end| end <= out.len()))
        .ok_or("rewritten ELF has its section headers outside the file")?;
    let mut put =
        |field: usize, v: u64| out[at + field..at + field + 8].copy_from_slice(&v.to_le_bytes());
    put(8, elf::SHF_ALLOC.0 | elf::SHF_WRITE.0);
    put(16, addr);
    put(24, offset);
    put(32, size);
    Ok(())
}

fn encode_note(out: &mut Vec<u8>, pc: u64, base: u64, semaphore: u64, site: &SiteDef) {
    let mut desc = Vec::new();
    for v in [pc, base, semaphore] {
        desc.extend_from_slice(&v.to_le_bytes());
    }
    for s in [site.provider, site.name, site.args] {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    let name = b"stapsdt\0";
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&NT_STAPSDT.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&desc);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), UsdtError> {
    let err = |err| UsdtError::Write {
        path: path.to_path_buf(),
        err,
    };
    let perms = std::fs::metadata(path).map_err(err)?.permissions();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.usdt{}", std::process::id()));
    let res = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::set_permissions(&tmp, perms))
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(err)
}

/// Every SDT note of the ELF image `data` (any provider), in file order. No notes: empty list.
pub fn read_probes(data: &[u8]) -> Result<Vec<UsdtProbe>, UsdtError> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => read_elf::<elf::FileHeader64<Endianness>>(data),
        Ok(FileKind::Elf32) => read_elf::<elf::FileHeader32<Endianness>>(data),
        _ => Err(UsdtError::NotElf),
    }
}

fn read_elf<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<Vec<UsdtProbe>, UsdtError> {
    let corrupt = |what: String| UsdtError::Corrupt(what);
    let file =
        ElfFile::<Elf>::parse(data).map_err(|e| corrupt(format!("bad ELF headers ({e})")))?;
    let endian = file.endian();
    let ptr = if file.elf_header().is_type_64() { 8 } else { 4 };
    let table = file.elf_section_table();
    let named = |want: &str| {
        table
            .iter()
            .find(|sh| table.section_name(endian, sh).ok() == Some(want.as_bytes()))
    };
    let Some(note_sec) = named(NOTE_SECTION) else {
        return Ok(Vec::new());
    };
    let base_addr: Option<u64> = named(BASE_SECTION).map(|sh| sh.sh_addr(endian).into());
    let loads: Vec<(u64, u64, u64)> = file
        .elf_program_headers()
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .map(|ph| {
            (
                ph.p_vaddr(endian).into(),
                ph.p_offset(endian).into(),
                ph.p_filesz(endian).into(),
            )
        })
        .collect();
    let to_offset = |vaddr: u64| {
        loads
            .iter()
            .find(|(va, _, size)| vaddr >= *va && vaddr - va < *size)
            .and_then(|(va, off, _)| (vaddr - va).checked_add(*off))
    };
    let mut notes = note_sec
        .notes(endian, data)
        .map_err(|e| corrupt(format!("{NOTE_SECTION}: {e}")))?
        .ok_or_else(|| corrupt(format!("{NOTE_SECTION} is not a note section")))?;
    let mut probes = Vec::new();
    while let Some(note) = notes
        .next()
        .map_err(|e| corrupt(format!("{NOTE_SECTION}: {e}")))?
    {
        if note.name() != STAPSDT_OWNER || note.n_type(endian).0 != NT_STAPSDT {
            continue;
        }
        let desc = note.desc();
        let word = |i: usize| -> Result<u64, UsdtError> {
            let b = desc
                .get(i * ptr..(i + 1) * ptr)
                .ok_or_else(|| corrupt("note too short for its addresses".into()))?;
            let v = b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
            Ok(if endian == Endianness::Big {
                b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x))
            } else {
                v
            })
        };
        let (pc, base, sema) = (word(0)?, word(1)?, word(2)?);
        let mut strings = desc[3 * ptr..].split(|&b| b == 0);
        let mut text = |what: &str| -> Result<String, UsdtError> {
            let s = strings
                .next()
                .ok_or_else(|| corrupt(format!("note without {what}")))?;
            String::from_utf8(s.to_vec()).map_err(|_| corrupt(format!("note {what} is not UTF-8")))
        };
        let provider = text("provider")?;
        let name = text("name")?;
        let args_raw = text("arguments")?;
        let shift = |addr: u64| match base_addr {
            Some(sec) if base != 0 => addr.wrapping_add(sec).wrapping_sub(base),
            _ => addr,
        };
        let address = shift(pc);
        let offset = to_offset(address).ok_or_else(|| {
            corrupt(format!(
                "probe {provider}:{name} at {address:#x} is outside the loaded segments"
            ))
        })?;
        let (semaphore, semaphore_offset) = if sema == 0 {
            (None, None)
        } else {
            let a = shift(sema);
            let o = to_offset(a).ok_or_else(|| {
                corrupt(format!(
                    "semaphore of {provider}:{name} at {a:#x} is not in file-backed data"
                ))
            })?;
            (Some(a), Some(o))
        };
        let args =
            parse_args(&args_raw).map_err(|e| corrupt(format!("probe {provider}:{name}: {e}")))?;
        probes.push(UsdtProbe {
            provider,
            name,
            address,
            offset,
            semaphore,
            semaphore_offset,
            args_raw,
            args,
        });
    }
    Ok(probes)
}

/// Parses an SDT argument spec: space-separated `[-]SIZE@OPERAND` (AT&T syntax operand).
pub fn parse_args(spec: &str) -> Result<Vec<UsdtArg>, String> {
    spec.split_ascii_whitespace().map(parse_arg).collect()
}

fn parse_arg(arg: &str) -> Result<UsdtArg, String> {
    let bad = || format!("bad argument {arg:?}");
    let (size, signed, operand) = match arg.split_once('@') {
        Some((n, op)) => {
            let v: i32 = n.parse().map_err(|_| bad())?;
            let size = u8::try_from(v.unsigned_abs()).map_err(|_| bad())?;
            if ![1, 2, 4, 8].contains(&size) {
                return Err(format!(
                    "argument {arg:?} has size {size} (want 1, 2, 4 or 8)"
                ));
            }
            (size, v < 0, op)
        }
        // sdt.h always writes the size; without it the value is a full word.
        None => (8, false, arg),
    };
    let reg = |s: &str| -> Result<String, String> {
        let r = s.strip_prefix('%').ok_or_else(bad)?;
        if r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(r.to_string())
    };
    let location = if let Some(v) = operand.strip_prefix('$') {
        ArgLocation::Constant {
            value: parse_int(v).ok_or_else(bad)?,
        }
    } else if operand.starts_with('%') {
        ArgLocation::Register { reg: reg(operand)? }
    } else {
        let (off, rest) = operand.split_once('(').ok_or_else(bad)?;
        let inner = rest.strip_suffix(')').ok_or_else(bad)?;
        let offset = if off.is_empty() {
            0
        } else {
            parse_int(off).ok_or_else(bad)?
        };
        let mut parts = inner.split(',');
        let base = reg(parts.next().ok_or_else(bad)?)?;
        let index = parts.next().map(reg).transpose()?;
        let scale = match parts.next() {
            Some(s) => s
                .parse::<u8>()
                .ok()
                .filter(|s| [1, 2, 4, 8].contains(s))
                .ok_or_else(bad)?,
            None => 1,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        ArgLocation::Memory {
            offset,
            base,
            index,
            scale,
        }
    };
    Ok(UsdtArg {
        size,
        signed,
        location,
    })
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = match digits.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    if neg {
        v.checked_neg()
    } else {
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_gotap_spec() {
        let args = parse_args(GOTAP_ARGS).unwrap();
        assert_eq!(args.len(), 9);
        assert_eq!(
            args[4],
            UsdtArg {
                size: 8,
                signed: true,
                location: ArgLocation::Memory {
                    offset: 40,
                    base: "rsp".into(),
                    index: None,
                    scale: 1
                }
            }
        );
        assert!(!args[0].signed);
        assert_eq!(
            args[8].location,
            ArgLocation::Memory {
                offset: 72,
                base: "rsp".into(),
                index: None,
                scale: 1
            }
        );
    }

    #[test]
    fn finds_the_nop5_of_either_site_abi() {
        let mut event = SITE_EVENT_PROLOGUE.to_vec();
        event.extend_from_slice(&NOP5);
        event.push(0xc3);
        assert_eq!(site_nop_offset(&event), Some(10));
        assert_eq!(site_nop_offset(&[&NOP5[..], &[0xc3]].concat()), Some(0));
        // A prologue without its nop5, a nop5 later in another function, other code: not sites.
        assert_eq!(site_nop_offset(&event[..12]), None);
        assert_eq!(site_nop_offset(&[0x90; 15]), None);
        let mut other = vec![0x48, 0x8b, 0x74, 0x24, 0x48];
        other.extend_from_slice(&event[5..]);
        assert_eq!(site_nop_offset(&other), None);
        // The agent's check at the probe's file offset.
        let mut file = vec![0u8; 32];
        file[16..16 + event.len()].copy_from_slice(&event);
        assert!(site_has_event_abi(&file, 26));
        assert!(!site_has_event_abi(&file, 16));
        assert!(!site_has_event_abi(&file, 5));
        assert!(!site_has_event_abi(&file, u64::MAX));
        // A batch site: its own prologue, not the event ABI.
        let batch = [&SITE_BATCH_PROLOGUE[..], &NOP5[..], &[0xc3]].concat();
        assert_eq!(site_nop_offset(&batch), Some(10));
        file[16..16 + batch.len()].copy_from_slice(&batch);
        assert!(!site_has_event_abi(&file, 26));
    }

    #[test]
    fn parses_other_operand_forms() {
        let a = parse_args("-4@%eax 1@$5 8@-0x10(%rbp) 2@(%rdi,%rcx,4) %rsi").unwrap();
        assert_eq!(
            a[0],
            UsdtArg {
                size: 4,
                signed: true,
                location: ArgLocation::Register { reg: "eax".into() }
            }
        );
        assert_eq!(a[1].location, ArgLocation::Constant { value: 5 });
        assert_eq!(
            a[2].location,
            ArgLocation::Memory {
                offset: -16,
                base: "rbp".into(),
                index: None,
                scale: 1
            }
        );
        assert_eq!(
            a[3].location,
            ArgLocation::Memory {
                offset: 0,
                base: "rdi".into(),
                index: Some("rcx".into()),
                scale: 4
            }
        );
        assert_eq!(
            a[4],
            UsdtArg {
                size: 8,
                signed: false,
                location: ArgLocation::Register { reg: "rsi".into() }
            }
        );
        assert_eq!(parse_args("").unwrap(), vec![]);
    }

    #[test]
    fn rejects_bad_args() {
        for bad in [
            "3@%eax",
            "8@",
            "8@8(%rsp",
            "x@%eax",
            "8@8(rsp)",
            "8@(%rsp,%rax,3)",
            "8@$x",
            "-@%r1",
            "99999999999@%rax",
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn encodes_a_standard_note() {
        let mut out = Vec::new();
        let site = SiteDef {
            provider: "p",
            name: "n",
            function: "f",
            args: "8@%rax",
        };
        encode_note(&mut out, 0x401000, 0x400f00, 0x58f800, &site);
        assert_eq!(&out[0..12], &[8, 0, 0, 0, 24 + 11, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&out[12..20], b"stapsdt\0");
        assert_eq!(
            u64::from_le_bytes(out[20..28].try_into().unwrap()),
            0x401000
        );
        assert_eq!(
            u64::from_le_bytes(out[28..36].try_into().unwrap()),
            0x400f00
        );
        assert_eq!(
            u64::from_le_bytes(out[36..44].try_into().unwrap()),
            0x58f800
        );
        assert_eq!(&out[44..55], b"p\0n\08@%rax\0");
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn non_elf_is_an_error() {
        assert!(matches!(read_probes(b"hello"), Err(UsdtError::NotElf)));
        assert!(matches!(read_probes(b""), Err(UsdtError::NotElf)));
    }
}
