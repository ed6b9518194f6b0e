//! The Go function table (pclntab): every function's name, entry and size, read without symbols.
//!
//! Layouts: Go 1.16–1.17 (magic `0xfffffffa`, absolute entries), 1.18–1.19 (`0xfffffff0`) and
//! 1.20+ (`0xfffffff1`), where entries are offsets from the start of text. The header's text-start
//! field is zero in Go ≥ 1.26 binaries (the runtime relocates it), so the text start comes from
//! the runtime's own `moduledata` (what `runtime.findfunc` uses), the `runtime.text` symbol when
//! present, and only then from the header or the `.text` section.
use crate::binary::{read_uint, Function, Layout};

/// pclntab layout generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Go 1.16–1.17.
    Go116,
    /// Go 1.18–1.19.
    Go118,
    /// Go 1.20 and later.
    Go120,
}

const MAGIC_GO12: u32 = 0xffff_fffb;
const MAGIC_GO116: u32 = 0xffff_fffa;
const MAGIC_GO118: u32 = 0xffff_fff0;
const MAGIC_GO120: u32 = 0xffff_fff1;

/// Names longer than this are treated as corruption (real ones are < 4 KiB).
const MAX_NAME: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) enum PclnError {
    /// A pclntab from an unsupported Go version (reason).
    Unsupported(String),
    Corrupt(String),
}

/// A located, header-checked pclntab.
#[derive(Debug, Clone)]
pub(crate) struct Table<'a> {
    /// Virtual address of the header.
    pub vaddr: u64,
    /// From the header to the end of its section (or segment).
    pub data: &'a [u8],
    pub version: Version,
    pub ptr_size: u8,
    pub big_endian: bool,
    pub nfunc: usize,
    /// Header's text start (1.18+; zero in Go ≥ 1.26).
    pub header_text: u64,
    pub funcname_off: usize,
    /// Start of the functab, which is also the base of `_func` offsets (`pclntable`).
    pub functab_off: usize,
}

impl Table<'_> {
    fn field_size(&self) -> usize {
        match self.version {
            Version::Go116 => usize::from(self.ptr_size),
            _ => 4,
        }
    }

    fn uint(&self, off: usize, size: usize) -> Result<u64, PclnError> {
        read_uint(self.data, off, size as u8, self.big_endian)
            .ok_or_else(|| PclnError::Corrupt(format!("pclntab read at {off:#x} out of bounds")))
    }

    /// (entry field, `_func` offset) of functab slot `i` (slot `nfunc` is the end of text).
    fn slot(&self, i: usize) -> Result<(u64, u64), PclnError> {
        let f = self.field_size();
        let off = i
            .checked_mul(2 * f)
            .and_then(|o| o.checked_add(self.functab_off))
            .ok_or_else(|| PclnError::Corrupt("pclntab functab overflows".into()))?;
        let entry = self.uint(off, f)?;
        let funcoff = if i < self.nfunc {
            let at = off
                .checked_add(f)
                .ok_or_else(|| PclnError::Corrupt("pclntab functab overflows".into()))?;
            self.uint(at, f)?
        } else {
            0
        };
        Ok((entry, funcoff))
    }

    /// The name of the `_func` at `funcoff` (relative to the functab base).
    fn name(&self, funcoff: u64) -> Result<String, PclnError> {
        let corrupt = || PclnError::Corrupt(format!("bad function record at pclntab+{funcoff:#x}"));
        let func = usize::try_from(funcoff)
            .ok()
            .and_then(|o| o.checked_add(self.functab_off))
            .ok_or_else(corrupt)?;
        // _func starts with the entry (uintptr in 1.16, uint32 offset since 1.18), then nameOff int32.
        let name_off =
            self.uint(func.checked_add(self.field_size()).ok_or_else(corrupt)?, 4)? as u32 as i32;
        let start = usize::try_from(i64::from(name_off))
            .ok()
            .and_then(|n| n.checked_add(self.funcname_off))
            .ok_or_else(corrupt)?;
        let tail = self.data.get(start..).ok_or_else(corrupt)?;
        let tail = &tail[..tail.len().min(MAX_NAME)];
        let len = tail.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
        let name = String::from_utf8_lossy(&tail[..len]);
        // Generated closures keep `·` in pclntab (`type:.eq.runtime.untracedG·7`) where the symbol
        // table, and so every symbol-based tool, writes `.`.
        Ok(if name.contains('·') {
            name.replace('·', ".")
        } else {
            name.into_owned()
        })
    }
}

/// Parses and sanity-checks a pclntab header at the start of `data`.
fn parse_header(data: &[u8], vaddr: u64, big_endian: bool) -> Result<Table<'_>, PclnError> {
    let bad = |why: &str| PclnError::Corrupt(format!("bad pclntab header: {why}"));
    let magic = read_uint(data, 0, 4, big_endian).ok_or_else(|| bad("truncated"))? as u32;
    let version = match magic {
        MAGIC_GO116 => Version::Go116,
        MAGIC_GO118 => Version::Go118,
        MAGIC_GO120 => Version::Go120,
        MAGIC_GO12 => {
            return Err(PclnError::Unsupported(
                "pclntab layout of Go 1.2–1.15; gotap supports go1.16 and later".into(),
            ))
        }
        m => {
            return Err(PclnError::Unsupported(format!(
                "unknown pclntab magic {m:#x}"
            )))
        }
    };
    let (pad1, pad2, quantum, ptr_size) = match data.get(4..8) {
        Some(&[a, b, c, d]) => (a, b, c, d),
        _ => return Err(bad("truncated")),
    };
    if pad1 != 0 || pad2 != 0 || !matches!(quantum, 1 | 2 | 4) || !matches!(ptr_size, 4 | 8) {
        return Err(bad("bad padding, quantum or pointer size"));
    }
    let word = |i: usize| -> Result<u64, PclnError> {
        read_uint(data, 8 + i * usize::from(ptr_size), ptr_size, big_endian)
            .ok_or_else(|| bad("truncated"))
    };
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| bad("offset too large"));
    let (nfunc, header_text, funcname_off, functab_off) = match version {
        Version::Go116 => (word(0)?, 0, word(2)?, word(6)?),
        _ => (word(0)?, word(2)?, word(3)?, word(7)?),
    };
    let table = Table {
        vaddr,
        data,
        version,
        ptr_size,
        big_endian,
        nfunc: to_usize(nfunc)?,
        header_text,
        funcname_off: to_usize(funcname_off)?,
        functab_off: to_usize(functab_off)?,
    };
    let functab_len = table
        .nfunc
        .checked_mul(2)
        .and_then(|n| n.checked_add(1))
        .and_then(|n| n.checked_mul(table.field_size()))
        .and_then(|n| n.checked_add(table.functab_off));
    if table.nfunc == 0
        || functab_len.is_none_or(|end| end > data.len())
        || table.funcname_off >= data.len()
    {
        return Err(bad("function table out of bounds"));
    }
    Ok(table)
}

/// Finds the pclntab: the `.gopclntab` section, else a scan of the non-executable segments for a
/// header that parses and whose first function has a name (stripped section headers, or PIE
/// layouts that fold it into another section).
pub(crate) fn locate<'a>(data: &'a [u8], layout: &Layout) -> Result<Option<Table<'a>>, PclnError> {
    if let Some(sec) = layout.section(".gopclntab") {
        if let Some(d) = layout.section_data(data, sec) {
            return parse_header(d, sec.addr, layout.big_endian).map(Some);
        }
    }
    let magics: [u32; 4] = [MAGIC_GO116, MAGIC_GO118, MAGIC_GO120, MAGIC_GO12];
    let mut unsupported = None;
    for seg in layout.segments.iter().filter(|s| !s.executable()) {
        let bytes = layout.segment_data(data, seg);
        let mut off = 0usize;
        while off + 16 <= bytes.len() {
            let word = read_uint(bytes, off, 4, layout.big_endian).unwrap_or(0) as u32;
            if magics.contains(&word) && bytes[off + 4] == 0 && bytes[off + 5] == 0 {
                let vaddr = seg.vaddr.saturating_add(off as u64);
                match parse_header(&bytes[off..], vaddr, layout.big_endian) {
                    Ok(t)
                        if t.slot(0)
                            .and_then(|(_, f)| t.name(f))
                            .is_ok_and(|n| !n.is_empty()) =>
                    {
                        return Ok(Some(t));
                    }
                    Err(PclnError::Unsupported(why))
                        if matches!(bytes.get(off + 7), Some(4 | 8)) =>
                    {
                        unsupported.get_or_insert(why);
                    }
                    _ => {}
                }
            }
            off += 4;
        }
    }
    match unsupported {
        Some(why) => Err(PclnError::Unsupported(why)),
        None => Ok(None),
    }
}

/// Index (in pointer-size words) of `moduledata.text`: pcHeader, six slices (funcnametab, cutab,
/// filetab, pctab, pclntable, ftab), findfunctab, minpc, maxpc, then text. Same from 1.16 to 1.27.
const MODULEDATA_TEXT_WORD: usize = 1 + 6 * 3 + 3;

/// Virtual address of `runtime.firstmoduledata`-like structure pointing at this pclntab.
pub(crate) fn find_moduledata(data: &[u8], layout: &Layout, t: &Table) -> Option<u64> {
    let ps = usize::from(t.ptr_size);
    let want_names = t.vaddr.checked_add(t.funcname_off as u64)?;
    let matches = |b: &[u8], off: usize| {
        layout.uint(b, off, t.ptr_size) == Some(t.vaddr)
            && layout.uint(b, off + ps, t.ptr_size) == Some(want_names)
    };
    if let Some(md) = layout.symbols.firstmoduledata {
        if let Some(b) = layout.read_vaddr(data, md, 2 * ps as u64) {
            if matches(b, 0) {
                return Some(md);
            }
        }
    }
    // moduledata is writable data (.noptrdata); scan pointer-aligned words for the pcHeader
    // pointer followed by the funcnametab pointer.
    for seg in layout.segments.iter().filter(|s| s.writable()) {
        let bytes = layout.segment_data(data, seg);
        let mut off = 0usize;
        while off + 2 * ps <= bytes.len() {
            if matches(bytes, off) {
                return seg.vaddr.checked_add(off as u64);
            }
            off += ps;
        }
    }
    None
}

/// `moduledata.text` of the moduledata that points at this pclntab.
pub(crate) fn moduledata_text(data: &[u8], layout: &Layout, t: &Table) -> Option<u64> {
    let ps = usize::from(t.ptr_size);
    let md = find_moduledata(data, layout, t)?;
    let at = md.checked_add((MODULEDATA_TEXT_WORD * ps) as u64)?;
    let text = layout.uint(layout.read_vaddr(data, at, ps as u64)?, 0, t.ptr_size)?;
    (text != 0).then_some(text)
}

/// Start of text for 1.18+ entry offsets: moduledata (what the runtime itself uses), checked
/// against the `runtime.text` symbol when there is one, then the header, then `.text`.
fn text_start(data: &[u8], layout: &Layout, t: &Table) -> Result<u64, PclnError> {
    match (
        moduledata_text(data, layout, t),
        layout.symbols.runtime_text,
    ) {
        // Disagreement means a damaged or unusual moduledata: the symbol is authoritative.
        (_, Some(sym)) => return Ok(sym),
        (Some(text), None) => return Ok(text),
        (None, None) => {}
    }
    if t.header_text != 0 {
        return Ok(t.header_text);
    }
    if let Some(sec) = layout.section(".text") {
        return Ok(sec.addr);
    }
    Err(PclnError::Corrupt(
        "cannot determine the start of text (no moduledata, symbols or .text)".into(),
    ))
}

/// `abi.FuncFlagAsm` (same bit since Go 1.17).
const FUNC_FLAG_ASM: u8 = 1 << 2;

impl Table<'_> {
    /// The `_func.flag` byte (0 when unreadable; Go 1.16 has padding there, also 0).
    fn flag(&self, funcoff: u64) -> u8 {
        let flag_at = match self.version {
            Version::Go116 => usize::from(self.ptr_size) + 8 * 4 + 1,
            Version::Go118 => 9 * 4 + 1,
            Version::Go120 => 10 * 4 + 1,
        };
        usize::try_from(funcoff)
            .ok()
            .and_then(|o| o.checked_add(self.functab_off)?.checked_add(flag_at))
            .and_then(|o| self.data.get(o).copied())
            .unwrap_or(0)
    }
}

/// Every function, sorted by entry, with file offsets.
pub(crate) fn functions(
    data: &[u8],
    layout: &Layout,
    t: &Table,
) -> Result<Vec<Function>, PclnError> {
    let base = match t.version {
        Version::Go116 => 0,
        _ => text_start(data, layout, t)?,
    };
    let mut out = Vec::with_capacity(t.nfunc);
    let mut asm = Vec::with_capacity(t.nfunc);
    let (mut entry, mut funcoff) = t.slot(0)?;
    for i in 0..t.nfunc {
        let (next_entry, next_funcoff) = t.slot(i + 1)?;
        let addr = base.saturating_add(entry);
        out.push(Function {
            name: t.name(funcoff)?,
            entry: addr,
            // Never a made-up offset: a uprobe is attached at this file offset.
            offset: layout.vaddr_to_offset(addr).ok_or_else(|| {
                PclnError::Corrupt(format!(
                    "function entry {addr:#x} is outside the file's loaded segments"
                ))
            })?,
            size: next_entry.saturating_sub(entry),
        });
        asm.push(t.flag(funcoff) & FUNC_FLAG_ASM != 0);
        (entry, funcoff) = (next_entry, next_funcoff);
    }
    let amd64 = layout.machine == object::elf::EM_X86_64.0;
    mangle_abi0(&mut out, &asm, |from, target| {
        amd64
            && layout
                .read_vaddr(data, from.entry, from.size)
                .is_some_and(|code| crate::disasm::amd64_branches_to(code, from.entry, target))
    });
    // Already sorted in a well-formed table; a stable sort keeps damaged ones usable.
    if !out.is_sorted_by_key(|f| f.entry) {
        out.sort_by_key(|f| f.entry);
    }
    Ok(out)
}

/// pclntab names a function and its ABI wrapper alike; the linker's symbol table (and so `go tool
/// nm` and uprobe-by-symbol tools) calls the ABI0 one `NAME.abi0` (cmd/link `mangleABIName`). Do
/// the same so names are unique and match the symbols. Assembly is always ABI0, Go code
/// ABIInternal: in a pair, the ABI0 one is the assembly function if there is one, else the wrapper
/// (the one that calls or jumps to the other).
fn mangle_abi0(funcs: &mut [Function], asm: &[bool], branches_to: impl Fn(&Function, u64) -> bool) {
    let mut by_name: Vec<usize> = (0..funcs.len()).collect();
    by_name.sort_unstable_by(|&a, &b| funcs[a].name.cmp(&funcs[b].name));
    let mut rename = Vec::new();
    for (i, pair) in by_name.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        // Only exact pairs: a name that appears 3+ times is something else (Go 1.19's `[...]`).
        let third = |j: Option<usize>| {
            j.and_then(|j| by_name.get(j))
                .is_some_and(|&k| funcs[k].name == funcs[a].name)
        };
        if funcs[a].name != funcs[b].name || third(i.checked_sub(1)) || third(Some(i + 2)) {
            continue;
        }
        let abi0 = match (asm.get(a), asm.get(b)) {
            (Some(true), Some(false)) => a,
            (Some(false), Some(true)) => b,
            (Some(false), Some(false)) if branches_to(&funcs[a], funcs[b].entry) => a,
            (Some(false), Some(false)) if branches_to(&funcs[b], funcs[a].entry) => b,
            _ => continue,
        };
        rename.push(abi0);
    }
    for i in rename {
        funcs[i].name.push_str(".abi0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1.20-layout pclntab with two functions, little-endian, 8-byte pointers.
    fn synthetic() -> Vec<u8> {
        let mut d = vec![0u8; 8 + 8 * 8];
        d[..4].copy_from_slice(&MAGIC_GO120.to_le_bytes());
        d[6] = 1;
        d[7] = 8;
        let names_off = d.len();
        d.extend_from_slice(b"main.a\0main.b\0");
        let functab_off = d.len();
        // functab: (0, f0) (0x20, f1) (0x50 end); _func records right after.
        let f0 = 3 * 8 - 4;
        let recs = [(0u32, f0 as u32), (0x20, f0 as u32 + 8), (0x50, 0)];
        for (e, f) in recs {
            d.extend_from_slice(&e.to_le_bytes());
            d.extend_from_slice(&f.to_le_bytes());
        }
        d.truncate(functab_off + 20);
        for (entry, name) in [(0u32, 0i32), (0x20, 7)] {
            d.extend_from_slice(&entry.to_le_bytes());
            d.extend_from_slice(&name.to_le_bytes());
        }
        let put = |d: &mut Vec<u8>, i: usize, v: u64| {
            d[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut d, 0, 2);
        put(&mut d, 2, 0x401000);
        put(&mut d, 3, names_off as u64);
        put(&mut d, 7, functab_off as u64);
        d
    }

    #[test]
    fn header_and_names() {
        let d = synthetic();
        let t = parse_header(&d, 0x1000, false).unwrap();
        assert_eq!(
            (t.version, t.nfunc, t.header_text),
            (Version::Go120, 2, 0x401000)
        );
        let (e0, f0) = t.slot(0).unwrap();
        let (e1, f1) = t.slot(1).unwrap();
        assert_eq!((e0, t.name(f0).unwrap().as_str()), (0, "main.a"));
        assert_eq!((e1, t.name(f1).unwrap().as_str()), (0x20, "main.b"));
        assert_eq!(t.slot(2).unwrap().0, 0x50);
    }

    /// A Go 1.16-layout pclntab: pointer-size functab entries holding absolute addresses.
    fn synthetic_116() -> Vec<u8> {
        let mut d = vec![0u8; 8 + 7 * 8];
        d[..4].copy_from_slice(&MAGIC_GO116.to_le_bytes());
        d[6] = 1;
        d[7] = 8;
        let names_off = d.len();
        d.extend_from_slice(b"main.a\0main.b\0");
        let functab_off = d.len();
        let func0 = 5 * 8; // after 2 entry/funcoff pairs and the end entry
        for v in [0x401000u64, func0, 0x401040, func0 + 12, 0x401100] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        for (entry, name) in [(0x401000u64, 0i32), (0x401040, 7)] {
            d.extend_from_slice(&entry.to_le_bytes());
            d.extend_from_slice(&name.to_le_bytes());
        }
        let put = |d: &mut Vec<u8>, i: usize, v: u64| {
            d[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut d, 0, 2);
        put(&mut d, 2, names_off as u64);
        put(&mut d, 6, functab_off as u64);
        d
    }

    #[test]
    fn go116_layout_has_absolute_entries() {
        let d = synthetic_116();
        let layout = Layout {
            big_endian: false,
            ptr_size: 8,
            machine: 62,
            dyn_type: false,
            interp: false,
            segments: vec![crate::binary::Segment {
                vaddr: 0x400000,
                offset: 0,
                filesz: 0x2000,
                flags: 5,
            }],
            note_segments: vec![],
            sections: vec![],
            symbols: Default::default(),
        };
        let t = parse_header(&d, 0x800000, false).unwrap();
        assert_eq!(t.version, Version::Go116);
        let fns = functions(&d, &layout, &t).unwrap();
        let got: Vec<(&str, u64, u64, u64)> = fns
            .iter()
            .map(|f| (f.name.as_str(), f.entry, f.offset, f.size))
            .collect();
        assert_eq!(
            got,
            [
                ("main.a", 0x401000, 0x1000, 0x40),
                ("main.b", 0x401040, 0x1040, 0xc0)
            ]
        );
    }

    #[test]
    fn old_and_unknown_magics_are_unsupported() {
        let mut d = synthetic();
        d[..4].copy_from_slice(&MAGIC_GO12.to_le_bytes());
        assert!(matches!(
            parse_header(&d, 0, false),
            Err(PclnError::Unsupported(_))
        ));
        d[..4].copy_from_slice(&0xffff_ff00u32.to_le_bytes());
        assert!(matches!(
            parse_header(&d, 0, false),
            Err(PclnError::Unsupported(_))
        ));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_not_a_panic() {
        let d = synthetic();
        for n in 0..d.len() {
            if let Ok(t) = parse_header(&d[..n], 0, false) {
                for i in 0..=t.nfunc {
                    let _ = t.slot(i).and_then(|(_, f)| t.name(f));
                }
            }
        }
        for i in 0..d.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut m = d.clone();
                m[i] = v;
                if let Ok(t) = parse_header(&m, 0, false) {
                    for s in 0..=t.nfunc {
                        let _ = t.slot(s).and_then(|(_, f)| t.name(f));
                    }
                }
            }
        }
    }
}
