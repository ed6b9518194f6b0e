//! The [`GoBinary`] handle: one mapped file, parsed once.
use crate::buildinfo::{self, BuildInfo};
use crate::{disasm, pclntab, Error};
use memmap2::Mmap;
use object::elf;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, FileKind};
use serde::Serialize;
use std::ops::Deref;
use std::path::{Path, PathBuf};

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
    /// File offset of the entry: what a uprobe is attached at (0 if the entry is not file-backed,
    /// which only a damaged binary has).
    pub offset: u64,
    /// Size in bytes (to the next function's entry / end of text).
    pub size: u64,
}

/// A `ret` instruction inside a function: where a "return" uprobe goes (Go moves goroutine
/// stacks, so uretprobes are unsafe; see golang/go#22008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReturnSite {
    /// Virtual address of the `ret`.
    pub address: u64,
    /// File offset of the `ret` (uprobe attach offset).
    pub offset: u64,
}

/// The file's bytes: mapped from disk, or owned (tests, fuzzing).
enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A loadable segment (PT_LOAD).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub flags: u32,
}

impl Segment {
    pub fn writable(&self) -> bool {
        self.flags & elf::PF_W.0 != 0
    }
    pub fn executable(&self) -> bool {
        self.flags & elf::PF_X.0 != 0
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub name: String,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub nobits: bool,
}

/// Symbols looked up once in `.symtab` (absent when stripped).
#[derive(Debug, Clone, Default)]
pub(crate) struct Symbols {
    pub present: bool,
    pub runtime_text: Option<u64>,
    pub firstmoduledata: Option<u64>,
}

/// What analysis needs from the ELF headers, copied out of `object` so that nothing borrows
/// across the struct.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub big_endian: bool,
    /// 4 or 8 (ELF class).
    pub ptr_size: u8,
    pub machine: u16,
    pub dyn_type: bool,
    pub interp: bool,
    /// PT_LOAD segments, sorted by vaddr.
    pub segments: Vec<Segment>,
    /// (file offset, size) of PT_NOTE segments.
    pub note_segments: Vec<(u64, u64)>,
    pub sections: Vec<Section>,
    pub symbols: Symbols,
}

impl Layout {
    pub(crate) fn parse(data: &[u8]) -> Result<Layout, String> {
        match FileKind::parse(data) {
            Ok(FileKind::Elf32) => Self::parse_elf::<elf::FileHeader32<Endianness>>(data),
            Ok(FileKind::Elf64) => Self::parse_elf::<elf::FileHeader64<Endianness>>(data),
            _ => Err(String::new()),
        }
    }

    fn parse_elf<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<Layout, String> {
        let file = ElfFile::<Elf>::parse(data).map_err(|e| format!("bad ELF headers ({e})"))?;
        let endian = file.endian();
        let hdr = file.elf_header();
        let mut segments = Vec::new();
        let mut note_segments = Vec::new();
        let mut interp = false;
        for ph in file.elf_program_headers() {
            let offset: u64 = ph.p_offset(endian).into();
            let filesz: u64 = ph.p_filesz(endian).into();
            match ph.p_type(endian) {
                elf::PT_LOAD => segments.push(Segment {
                    vaddr: ph.p_vaddr(endian).into(),
                    offset,
                    filesz,
                    flags: ph.p_flags(endian).0,
                }),
                elf::PT_NOTE => note_segments.push((offset, filesz)),
                elf::PT_INTERP => interp = true,
                _ => {}
            }
        }
        segments.sort_by_key(|s| s.vaddr);
        let table = file.elf_section_table();
        let mut sections = Vec::with_capacity(table.len());
        for sh in table.iter() {
            let name = table.section_name(endian, sh).unwrap_or_default();
            sections.push(Section {
                name: String::from_utf8_lossy(name).into_owned(),
                addr: sh.sh_addr(endian).into(),
                offset: sh.sh_offset(endian).into(),
                size: sh.sh_size(endian).into(),
                nobits: sh.sh_type(endian) == elf::SHT_NOBITS,
            });
        }
        let mut symbols = Symbols::default();
        let symtab = file.elf_symbol_table();
        if !symtab.is_empty() {
            symbols.present = true;
            for sym in symtab.iter() {
                let Ok(name) = symtab.symbol_name(endian, sym) else {
                    continue;
                };
                let slot = match name {
                    b"runtime.text" => &mut symbols.runtime_text,
                    b"runtime.firstmoduledata" => &mut symbols.firstmoduledata,
                    _ => continue,
                };
                *slot = Some(sym.st_value(endian).into());
                if symbols.runtime_text.is_some() && symbols.firstmoduledata.is_some() {
                    break;
                }
            }
        }
        Ok(Layout {
            big_endian: endian == Endianness::Big,
            ptr_size: if hdr.is_type_64() { 8 } else { 4 },
            machine: hdr.e_machine(endian).0,
            dyn_type: hdr.e_type(endian) == elf::ET_DYN,
            interp,
            segments,
            note_segments,
            sections,
            symbols,
        })
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// File bytes of a section (None for NOBITS or out-of-file ranges).
    pub fn section_data<'a>(&self, data: &'a [u8], s: &Section) -> Option<&'a [u8]> {
        if s.nobits {
            return None;
        }
        file_range(data, s.offset, s.size)
    }

    fn segment_of(&self, vaddr: u64) -> Option<&Segment> {
        // Segments are few (< 10): a linear scan beats anything clever.
        self.segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
    }

    pub fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        let s = self.segment_of(vaddr)?;
        s.offset.checked_add(vaddr - s.vaddr)
    }

    /// `len` file-backed bytes at `vaddr`, all inside one segment and inside the file.
    pub fn read_vaddr<'a>(&self, data: &'a [u8], vaddr: u64, len: u64) -> Option<&'a [u8]> {
        let s = self.segment_of(vaddr)?;
        let rel = vaddr - s.vaddr;
        if len > s.filesz - rel {
            return None;
        }
        file_range(data, s.offset.checked_add(rel)?, len)
    }

    /// The file bytes of a segment, clamped to the file.
    pub fn segment_data<'a>(&self, data: &'a [u8], s: &Segment) -> &'a [u8] {
        let start = usize::try_from(s.offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let len = usize::try_from(s.filesz).unwrap_or(usize::MAX);
        &data[start..start.saturating_add(len).min(data.len())]
    }

    pub fn uint(&self, b: &[u8], off: usize, size: u8) -> Option<u64> {
        read_uint(b, off, size, self.big_endian)
    }
}

/// `data[offset..offset+len]`, or None when out of range.
pub(crate) fn file_range(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

/// An unsigned integer of `size` (1, 2, 4 or 8) bytes at `off`.
pub(crate) fn read_uint(b: &[u8], off: usize, size: u8, big_endian: bool) -> Option<u64> {
    let bytes = b.get(off..off.checked_add(usize::from(size))?)?;
    let mut v: u64 = 0;
    if big_endian {
        for &x in bytes {
            v = (v << 8) | u64::from(x);
        }
    } else {
        for &x in bytes.iter().rev() {
            v = (v << 8) | u64::from(x);
        }
    }
    Some(v)
}

/// An opened Go executable. See the crate docs.
pub struct GoBinary {
    path: PathBuf,
    bytes: Bytes,
    layout: Layout,
    elf: ElfFacts,
    build_info: BuildInfo,
    functions: Vec<Function>,
    moduledata: Option<u64>,
    goarch: String,
    goos: String,
}

impl std::fmt::Debug for GoBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoBinary")
            .field("path", &self.path)
            .field("go_version", &self.build_info.go_version)
            .field("functions", &self.functions.len())
            .finish_non_exhaustive()
    }
}

impl GoBinary {
    /// Maps `path` and analyses it: ELF facts, buildinfo, pclntab.
    pub fn open(path: impl AsRef<Path>) -> Result<GoBinary, Error> {
        let path = path.as_ref().to_path_buf();
        let io = |err| Error::Io {
            path: path.clone(),
            err,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        if meta.len() == 0 {
            return Err(Error::NotElf(path));
        }
        // SAFETY: the map is read-only; a concurrent truncation of the file by another process
        // could fault, which is the accepted cost of mmap (analysis reads the file once, early).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::analyse(path, Bytes::Map(map))
    }

    /// Analyses an in-memory image (tests, fuzzing). `path` is only used in messages.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<GoBinary, Error> {
        Self::analyse(path.into(), Bytes::Owned(bytes))
    }

    fn analyse(path: PathBuf, bytes: Bytes) -> Result<GoBinary, Error> {
        let data: &[u8] = &bytes;
        if !data.starts_with(b"\x7fELF") {
            return Err(Error::NotElf(path));
        }
        let corrupt = |what: String| Error::Corrupt {
            path: path.clone(),
            what,
        };
        let layout = Layout::parse(data).map_err(|e| {
            if e.is_empty() {
                Error::NotElf(path.clone())
            } else {
                corrupt(e)
            }
        })?;
        // A buildinfo error is decided only once we know whether there is a pclntab: a non-Go ELF
        // can contain the magic string by chance (any program that embeds it, gotap included).
        let build_info = buildinfo::find(data, &layout);
        let table = match pclntab::locate(data, &layout) {
            Ok(t) => t,
            Err(pclntab::PclnError::Corrupt(what)) => return Err(corrupt(what)),
            Err(pclntab::PclnError::Unsupported(why)) => {
                return Err(Error::UnsupportedGoVersion {
                    path: path.clone(),
                    version: match &build_info {
                        Ok(Some(b)) => b.go_version.clone(),
                        _ => "before go1.16".into(),
                    },
                    why,
                })
            }
        };
        let (build_info, table) = match (build_info, table) {
            (Ok(None) | Err(_), None) => return Err(Error::NotGo(path)),
            (Err(e), Some(_)) => return Err(corrupt(e)),
            (Ok(None), Some(_)) => {
                return Err(corrupt("pclntab present but no Go buildinfo".into()))
            }
            (Ok(Some(_)), None) => {
                return Err(corrupt("Go buildinfo present but no pclntab".into()))
            }
            (Ok(Some(b)), Some(t)) => (b, t),
        };
        if let Some(minor) = go_minor(&build_info.go_version) {
            if minor < 16 {
                return Err(Error::UnsupportedGoVersion {
                    path: path.clone(),
                    version: build_info.go_version.clone(),
                    why: "gotap supports go1.16 and later".into(),
                });
            }
        }
        let functions = pclntab::functions(data, &layout, &table).map_err(|e| match e {
            pclntab::PclnError::Corrupt(what) => corrupt(what),
            pclntab::PclnError::Unsupported(why) => corrupt(why),
        })?;
        let moduledata = pclntab::find_moduledata(data, &layout, &table);
        let elf = elf_facts(data, &layout, &build_info);
        let setting = |k: &str| {
            build_info
                .settings
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let goarch = setting("GOARCH").unwrap_or_else(|| goarch_of(&layout).to_string());
        let goos = setting("GOOS").unwrap_or_else(|| "linux".to_string());
        Ok(GoBinary {
            path,
            bytes,
            layout,
            elf,
            build_info,
            functions,
            moduledata,
            goarch,
            goos,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn data(&self) -> &[u8] {
        &self.bytes
    }

    pub fn elf(&self) -> &ElfFacts {
        &self.elf
    }

    pub fn build_info(&self) -> &BuildInfo {
        &self.build_info
    }

    /// e.g. `go1.26.8`.
    pub fn go_version(&self) -> &str {
        &self.build_info.go_version
    }

    /// `GOARCH` (buildinfo setting, else from the ELF machine).
    pub fn goarch(&self) -> &str {
        &self.goarch
    }

    /// `GOOS` (buildinfo setting, else `linux`: gotap only reads ELF).
    pub fn goos(&self) -> &str {
        &self.goos
    }

    /// All functions from pclntab, sorted by entry.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The function with exactly this name. `NAME.abi0` (the symbol-table spelling of an
    /// assembly function) also finds the pclntab's `NAME` when only that one exists.
    /// Virtual address of `runtime.firstmoduledata` (the module data whose pclntab this is): its
    /// symbol when it agrees, else found by its first words in writable data (stripped binaries).
    pub fn moduledata(&self) -> Option<u64> {
        self.moduledata
    }

    /// (name, value) of the `.symtab` symbols whose names start with `prefix`; none when the
    /// binary is stripped or its symbol table is damaged.
    pub fn symbols_with_prefix(&self, prefix: &str) -> Vec<(String, u64)> {
        symbols_with_prefix(&self.bytes, prefix.as_bytes())
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        let exact = self.functions.iter().find(|f| f.name == name);
        exact.or_else(|| {
            let base = name.strip_suffix(".abi0")?;
            self.functions.iter().find(|f| f.name == base)
        })
    }

    /// Functions matching `pattern`: an exact name, else a glob (`*?[`) over full names
    /// (`*` crosses `/` and `.`). No match is [`Error::NoSuchFunction`].
    pub fn find_functions(&self, pattern: &str) -> Result<Vec<&Function>, Error> {
        if let Some(f) = self.function(pattern) {
            return Ok(vec![f]);
        }
        if !pattern.contains(['*', '?', '[']) {
            return Err(Error::NoSuchFunction(pattern.to_string()));
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::BadPattern {
                pattern: pattern.to_string(),
                why: e.kind().to_string(),
            })?
            .compile_matcher();
        let found: Vec<&Function> = self
            .functions
            .iter()
            .filter(|f| glob.is_match(&f.name))
            .collect();
        if found.is_empty() {
            return Err(Error::NoSuchFunction(pattern.to_string()));
        }
        Ok(found)
    }

    /// Every `ret` of `f` (x86-64 only).
    pub fn return_sites(&self, f: &Function) -> Result<Vec<ReturnSite>, Error> {
        if self.elf.arch != Arch::Amd64 {
            return Err(self.unsupported_arch("RET-site analysis"));
        }
        let code = self
            .read_vaddr(f.entry, f.size)
            .ok_or_else(|| Error::Corrupt {
                path: self.path.clone(),
                what: format!("code of {:?} is outside the file", f.name),
            })?;
        let mut sites = Vec::new();
        for address in disasm::amd64_ret_sites(code, f.entry) {
            let offset = self
                .vaddr_to_offset(address)
                .ok_or_else(|| Error::Corrupt {
                    path: self.path.clone(),
                    what: format!("RET at {address:#x} in {:?} is outside the file", f.name),
                })?;
            sites.push(ReturnSite { address, offset });
        }
        Ok(sites)
    }

    /// Why x86-64-only analysis `what` cannot run here. Decided from the ELF header's `e_machine`,
    /// not from buildinfo's `GOARCH` (a damaged header leaves `GOARCH=amd64` in place): another Go
    /// architecture is unsupported; a machine Go does not build for, or one that disagrees with
    /// `GOARCH`, is damage.
    pub fn unsupported_arch(&self, what: &'static str) -> Error {
        let machine = self.layout.machine;
        let elf_arch = goarch_of(&self.layout);
        let setting = self.build_info.setting("GOARCH");
        if elf_arch == "unknown" || setting.is_some_and(|g| g != elf_arch) {
            let arch = if elf_arch == "unknown" {
                String::new()
            } else {
                format!(" ({elf_arch})")
            };
            let goarch = match setting {
                Some(g) => format!(", while buildinfo says GOARCH={g}"),
                None => String::new(),
            };
            return Error::Corrupt {
                path: self.path.clone(),
                what: format!(
                    "ELF e_machine is {machine:#x}{arch}, not x86-64 (EM_X86_64){goarch}: \
                     corrupt or another architecture"
                ),
            };
        }
        Error::UnsupportedArch {
            path: self.path.clone(),
            arch: elf_arch.to_string(),
            what,
        }
    }

    /// File offset of a virtual address (inside a loaded, file-backed segment).
    pub fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.layout.vaddr_to_offset(vaddr)
    }

    /// `len` bytes of the file image at `vaddr` (None if not entirely file-backed).
    pub fn read_vaddr(&self, vaddr: u64, len: u64) -> Option<&[u8]> {
        self.layout.read_vaddr(&self.bytes, vaddr, len)
    }

    /// Addresses of the 8-aligned occurrences of `pattern` in initialised data (`.data`,
    /// `.noptrdata`): how gotap finds the variables its woven code marks (a stripped binary has
    /// no symbol for them).
    pub fn find_in_data(&self, pattern: &[u8]) -> Vec<u64> {
        let mut found = Vec::new();
        if pattern.is_empty() {
            return found;
        }
        for s in self.layout.sections.iter() {
            if !matches!(s.name.as_str(), ".data" | ".noptrdata") {
                continue;
            }
            let Some(bytes) = self.layout.section_data(&self.bytes, s) else {
                continue;
            };
            let first = ((8 - s.addr % 8) % 8) as usize;
            for at in (first..bytes.len().saturating_sub(pattern.len() - 1)).step_by(8) {
                if bytes[at..].starts_with(pattern) {
                    // A damaged section address can sit near the top of the address space.
                    if let Some(addr) = s.addr.checked_add(at as u64) {
                        found.push(addr);
                    }
                }
            }
        }
        found
    }

    /// File bytes of a section by name (None if absent or NOBITS). Used by the DWARF reader.
    pub fn section_data(&self, name: &str) -> Option<&[u8]> {
        let s = self.layout.section(name)?;
        self.layout.section_data(&self.bytes, s)
    }

    /// Whether the ELF is big-endian.
    pub fn is_big_endian(&self) -> bool {
        self.layout.big_endian
    }
}

/// `N` of `go1.N…`, if the string looks like a release version.
pub(crate) fn go_minor(v: &str) -> Option<u32> {
    let rest = v.strip_prefix("go1.")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn goarch_of(layout: &Layout) -> &'static str {
    match layout.machine {
        m if m == elf::EM_X86_64.0 => "amd64",
        m if m == elf::EM_AARCH64.0 => "arm64",
        m if m == elf::EM_386.0 => "386",
        m if m == elf::EM_ARM.0 => "arm",
        m if m == elf::EM_RISCV.0 => "riscv64",
        m if m == elf::EM_PPC64.0 && layout.big_endian => "ppc64",
        m if m == elf::EM_PPC64.0 => "ppc64le",
        m if m == elf::EM_S390.0 => "s390x",
        m if m == elf::EM_LOONGARCH.0 => "loong64",
        m if m == elf::EM_MIPS.0 && layout.ptr_size == 8 => "mips64",
        m if m == elf::EM_MIPS.0 => "mips",
        _ => "unknown",
    }
}

fn elf_facts(data: &[u8], layout: &Layout, bi: &BuildInfo) -> ElfFacts {
    let arch = match layout.machine {
        m if m == elf::EM_X86_64.0 => Arch::Amd64,
        m if m == elf::EM_AARCH64.0 => Arch::Arm64,
        _ => Arch::Other,
    };
    let has = |n: &str| layout.section(n).is_some();
    let cgo = match bi.settings.iter().find(|(k, _)| k == "CGO_ENABLED") {
        Some((_, v)) => v == "1",
        None => layout.interp,
    };
    // Notes: from their sections when section headers exist, else from PT_NOTE segments.
    let mut note_blobs: Vec<&[u8]> = Vec::new();
    for name in [".note.gnu.build-id", ".note.go.buildid"] {
        if let Some(d) = layout
            .section(name)
            .and_then(|s| layout.section_data(data, s))
        {
            note_blobs.push(d);
        }
    }
    if note_blobs.is_empty() {
        for &(off, size) in &layout.note_segments {
            if let Some(d) = file_range(data, off, size) {
                note_blobs.push(d);
            }
        }
    }
    let mut build_id = None;
    let mut go_build_id = None;
    for blob in note_blobs {
        for (name, ty, desc) in notes(blob, layout.big_endian) {
            match (name, ty) {
                (b"GNU", 3) if build_id.is_none() => {
                    build_id = Some(desc.iter().map(|b| format!("{b:02x}")).collect());
                }
                (b"Go", 4) if go_build_id.is_none() => {
                    go_build_id = Some(String::from_utf8_lossy(desc).into_owned());
                }
                _ => {}
            }
        }
    }
    if build_id.is_none() {
        build_id = gnu_build_id_by_scan(data, layout.big_endian);
    }
    ElfFacts {
        arch,
        pie: layout.dyn_type,
        stripped: !layout.symbols.present,
        dwarf: has(".debug_info") || has(".zdebug_info"),
        cgo,
        build_id,
        go_build_id,
    }
}

/// Go's own linker puts `.note.gnu.build-id` outside any PT_NOTE segment, so without section
/// headers the note is found by its exact header (namesz 4, type 3, "GNU") near the file start.
fn gnu_build_id_by_scan(data: &[u8], big_endian: bool) -> Option<String> {
    let head = &data[..data.len().min(64 * 1024)];
    (0..head.len().saturating_sub(16))
        .step_by(4)
        .find_map(|off| {
            let (namesz, descsz, ty) = (
                read_uint(head, off, 4, big_endian)?,
                read_uint(head, off + 4, 4, big_endian)?,
                read_uint(head, off + 8, 4, big_endian)?,
            );
            if namesz != 4
                || ty != 3
                || !(8..=64).contains(&descsz)
                || head.get(off + 12..off + 16)? != b"GNU\0"
            {
                return None;
            }
            let desc = head.get(off + 16..off + 16 + descsz as usize)?;
            Some(desc.iter().map(|b| format!("{b:02x}")).collect())
        })
}

/// ELF notes in `blob`: (name without NUL padding, type, desc).
fn notes(blob: &[u8], big_endian: bool) -> Vec<(&[u8], u32, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    while let (Some(namesz), Some(descsz), Some(ty)) = (
        read_uint(blob, pos, 4, big_endian),
        read_uint(blob, pos + 4, 4, big_endian),
        read_uint(blob, pos + 8, 4, big_endian),
    ) {
        let name_start = pos + 12;
        let Some(name_end) = name_start.checked_add(namesz as usize) else {
            break;
        };
        let Some(desc_start) = align4(name_end) else {
            break;
        };
        let Some(desc_end) = desc_start.checked_add(descsz as usize) else {
            break;
        };
        let (Some(name), Some(desc)) = (
            blob.get(name_start..name_end),
            blob.get(desc_start..desc_end),
        ) else {
            break;
        };
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        out.push((name, ty as u32, desc));
        match align4(desc_end) {
            Some(p) if p > pos => pos = p,
            _ => break,
        }
    }
    out
}

fn symbols_with_prefix(data: &[u8], prefix: &[u8]) -> Vec<(String, u64)> {
    fn of<Elf: FileHeader<Endian = Endianness>>(data: &[u8], prefix: &[u8]) -> Vec<(String, u64)> {
        let Ok(file) = ElfFile::<Elf>::parse(data) else {
            return Vec::new();
        };
        let endian = file.endian();
        let symtab = file.elf_symbol_table();
        symtab
            .iter()
            .filter_map(|sym| {
                let name = symtab.symbol_name(endian, sym).ok()?;
                if !name.starts_with(prefix) {
                    return None;
                }
                let name = std::str::from_utf8(name).ok()?;
                Some((name.to_owned(), sym.st_value(endian).into()))
            })
            .collect()
    }
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => of::<elf::FileHeader32<Endianness>>(data, prefix),
        Ok(FileKind::Elf64) => of::<elf::FileHeader64<Endianness>>(data, prefix),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_uint_endianness_and_bounds() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(read_uint(&b, 0, 4, false), Some(0x04030201));
        assert_eq!(read_uint(&b, 0, 4, true), Some(0x01020304));
        assert_eq!(read_uint(&b, 0, 8, false), Some(0x0807060504030201));
        assert_eq!(read_uint(&b, 5, 4, false), None);
        assert_eq!(read_uint(&b, usize::MAX, 4, false), None);
    }

    #[test]
    fn go_minor_parses_release_versions() {
        assert_eq!(go_minor("go1.26.8"), Some(26));
        assert_eq!(go_minor("go1.9"), Some(9));
        assert_eq!(go_minor("go1.22rc1"), Some(22));
        assert_eq!(go_minor("devel +abc"), None);
    }

    #[test]
    fn notes_parse_and_stop_on_garbage() {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(b"Go\0\0");
        n.extend_from_slice(b"abc\0");
        n.extend_from_slice(&[0xff; 12]);
        let got = notes(&n, false);
        assert_eq!(got, vec![(&b"Go"[..], 4, &b"abc"[..])]);
    }

    #[test]
    fn non_elf_and_empty_are_not_elf() {
        assert!(matches!(
            GoBinary::from_bytes("x", b"#!/bin/sh\n".to_vec()),
            Err(Error::NotElf(_))
        ));
        assert!(matches!(
            GoBinary::from_bytes("x", Vec::new()),
            Err(Error::NotElf(_))
        ));
        // Truncated ELF header: ELF magic but unparsable → corrupt, not a panic.
        let r = GoBinary::from_bytes("x", b"\x7fELF\x02\x01\x01".to_vec());
        assert!(
            matches!(r, Err(Error::NotElf(_)) | Err(Error::Corrupt { .. })),
            "{r:?}"
        );
    }
}
