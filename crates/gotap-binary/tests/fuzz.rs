//! Fuzzing the binary parsers with proptest (stable Rust; cargo-fuzz needs nightly): real Go
//! binaries, mutated where the parsers look — the pclntab header and function table, the buildinfo
//! blob and the module-info text inside it, the ELF headers, DWARF (`.debug_info`, uncompressed in
//! one base so that mutations reach the DWARF reader and not only zlib), SDT notes (an annotated
//! usdtsites base) — by bit flips, overwritten ranges and truncations. Whatever the bytes,
//! `GoBinary::from_bytes` and everything above it (functions, RET sites, buildinfo, instrumentation
//! detection, struct offsets, USDT notes) must return within a bounded time, never panic; errors
//! must be one line.
//!
//! Two parts: `mutated_go_binaries_never_panic` (proptest, random; module-info mutations aim at the
//! quoting and separator bytes, where a damaged byte once panicked `unquote`) and
//! `deterministic_mutations_never_panic` (a fixed corpus of a few thousand single mutations over
//! every region of every base, the same on each run).
//!
//! `cargo test` runs 256 random cases; `PROPTEST_CASES=100000 cargo test -p gotap-binary --release
//! --test fuzz` runs longer. With `GOTAP_FUZZ_SAVE=1`, each case whose error message has a shape not
//! seen before is written to `fuzz/corpus/` (a few lines: base binary + mutations, never the
//! binary itself); `corpus_replays` runs every corpus file on each `cargo test`.
use gotap_binary::{instrumentations, offsets, usdt, GoBinary};
use gotap_testkit::{build_with, Toolchain, Variant, ALL_TOOLCHAINS};
use proptest::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What one case may take: a parser that loops on a damaged length, or walks a damaged count of
/// records one by one, is a bug too. Generous (debug builds are slow, tests share the machine).
const CASE_LIMIT: Duration = Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 10 });

/// Where in the file a mutation's offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// The pclntab header (magic, nfunc, table offsets).
    Pclntab,
    /// The functab: (entry, `_func` offset) pairs.
    Functab,
    /// The `\xff Go buildinf:` blob (header, then the version and modinfo strings).
    Buildinfo,
    /// ELF header and program headers.
    Elf,
    /// Section header table.
    Shdrs,
    /// The module-info text inside the buildinfo blob (`path\t…\nbuild\t-ldflags="-s -w"\n…`).
    Modinfo,
    /// `.debug_info` (the file's end when there is none).
    Dwarf,
    /// `.note.stapsdt` (the file's end when there is none).
    Sdt,
}

const NREGIONS: usize = 8;
const REGIONS: [Region; NREGIONS] = [
    Region::Pclntab,
    Region::Functab,
    Region::Buildinfo,
    Region::Elf,
    Region::Shdrs,
    Region::Modinfo,
    Region::Dwarf,
    Region::Sdt,
];

impl Region {
    fn name(self) -> &'static str {
        match self {
            Region::Pclntab => "pclntab",
            Region::Functab => "functab",
            Region::Buildinfo => "buildinfo",
            Region::Elf => "elf",
            Region::Shdrs => "shdrs",
            Region::Modinfo => "modinfo",
            Region::Dwarf => "dwarf",
            Region::Sdt => "sdt",
        }
    }
    fn parse(s: &str) -> Option<Region> {
        REGIONS.into_iter().find(|r| r.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mutation {
    Flip {
        region: Region,
        at: usize,
        bit: u8,
    },
    Write {
        region: Region,
        at: usize,
        bytes: Vec<u8>,
    },
    Truncate {
        region: Region,
        at: usize,
    },
}

/// One base binary and where its regions start.
struct Base {
    label: String,
    bytes: Vec<u8>,
    starts: [usize; NREGIONS],
    /// Offsets (from the module-info start) of its quoting bytes (`"`, `` ` ``, `\`).
    quotes: Vec<usize>,
    /// Offsets of its separators (`\t`, `\n`, `=`) and quoting bytes.
    structural: Vec<usize>,
}

impl Base {
    fn new(label: String, bytes: Vec<u8>) -> Base {
        let starts = region_starts(&bytes);
        let (quotes, structural) = modinfo_hot_bytes(&bytes, starts[Region::Modinfo as usize]);
        Base {
            label,
            bytes,
            starts,
            quotes,
            structural,
        }
    }
}

/// Bases: cmd/hello from every toolchain, unstripped non-PIE and stripped PIE, without VCS stamps
/// so the bytes (and so corpus offsets) do not depend on the repository's state; then cmd/hello
/// with uncompressed DWARF, and cmd/usdtsites annotated with SDT notes (Go 1.26).
fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let mut out = Vec::new();
        for tc in ALL_TOOLCHAINS {
            for v in [
                Variant {
                    stripped: false,
                    pie: false,
                },
                Variant {
                    stripped: true,
                    pie: true,
                },
            ] {
                let path = build_with(
                    "testapps",
                    "./cmd/hello",
                    tc,
                    v,
                    &["-buildvcs=false", "-trimpath"],
                    &[],
                );
                let bytes = std::fs::read(&path).unwrap();
                out.push(Base::new(format!("{} {}", tc.label(), v.label()), bytes));
            }
        }
        // -trimpath builds leave -ldflags out of buildinfo, and the bases above have no other
        // quoted setting: these two carry `-ldflags="-s -w"` (their bytes include this
        // checkout's paths, which only moves data the mutations do not aim at).
        for tc in [Toolchain::Go119, Toolchain::Go126] {
            let v = Variant {
                stripped: true,
                pie: false,
            };
            let path = build_with("testapps", "./cmd/hello", tc, v, &["-buildvcs=false"], &[]);
            out.push(Base::new(
                format!("{} stripped-ldflags", tc.label()),
                std::fs::read(&path).unwrap(),
            ));
        }
        let raw = build_with(
            "testapps",
            "./cmd/hello",
            Toolchain::Go126,
            Variant::default(),
            &[
                "-buildvcs=false",
                "-trimpath",
                "-ldflags=-compressdwarf=false",
            ],
            &[],
        );
        out.push(Base::new(
            "go1.26 raw-dwarf".into(),
            std::fs::read(&raw).unwrap(),
        ));
        out.push(Base::new("go1.26 usdt".into(), annotated_usdtsites()));
        out
    })
}

/// cmd/usdtsites with its two sites noted (a private copy: annotation rewrites the file).
fn annotated_usdtsites() -> Vec<u8> {
    let src = build_with(
        "testapps",
        "./cmd/usdtsites",
        Toolchain::Go126,
        Variant::default(),
        &["-buildvcs=false", "-trimpath"],
        &[],
    );
    let dst = std::env::temp_dir().join(format!("gotap-fuzz-usdt-{}", std::process::id()));
    gotap_testkit::install_exe(&src, &dst);
    let site = |name, function| usdt::SiteDef {
        provider: "gotap",
        name,
        function,
        args: usdt::GOTAP_ARGS,
    };
    let sites = [
        site("http_server", "main.gotapProbeHTTPServer"),
        site("http_client", "main.gotapProbeHTTPClient"),
    ];
    usdt::annotate(&dst, &sites, Some(usdt::GOTAP_SEMAPHORE_MARKER)).unwrap();
    let bytes = std::fs::read(&dst).unwrap();
    std::fs::remove_file(&dst).unwrap();
    assert!(!usdt::read_probes(&bytes).unwrap().is_empty());
    bytes
}

fn base(label: &str) -> &'static Base {
    bases()
        .iter()
        .find(|b| b.label == label)
        .unwrap_or_else(|| panic!("no base binary {label:?}"))
}

fn le(b: &[u8], off: usize, n: usize) -> usize {
    b[off..off + n]
        .iter()
        .rev()
        .fold(0usize, |acc, &x| acc << 8 | x as usize)
}

fn region_starts(b: &[u8]) -> [usize; NREGIONS] {
    // pclntab: magic (0xfffffff0/1), pad, quantum 1, ptrsize 8.
    let pcln = (0..b.len() - 8)
        .find(|&i| matches!(b[i], 0xf0 | 0xf1) && b[i + 1..i + 8] == [0xff, 0xff, 0xff, 0, 0, 1, 8])
        .expect("pclntab magic");
    // go1.18+ header: 8 bytes, then nfunc, nfiles, textStart, funcnameOffset, cuOffset,
    // filetabOffset, pctabOffset, pclnOffset (8 bytes each); the functab is at pclnOffset.
    let functab = pcln + le(b, pcln + 8 + 7 * 8, 8);
    let bi = b
        .windows(14)
        .position(|w| w == b"\xff Go buildinf:")
        .expect("buildinfo magic");
    let shoff = le(b, 0x28, 8);
    // Go ≥ 1.18 (all bases): the version and the module info follow the 32-byte header, each
    // with a uvarint length.
    let uvarint = |mut at: usize| {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let x = b[at];
            at += 1;
            v |= usize::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return (v, at);
            }
            shift += 7;
        }
    };
    let (vlen, after) = uvarint(bi + 32);
    let (_, modinfo) = uvarint(after + vlen);
    let section = |name: &str| {
        use object::{Object, ObjectSection};
        object::File::parse(b)
            .ok()
            .and_then(|f| f.section_by_name(name)?.file_range())
            .map_or(b.len(), |(off, _)| off as usize)
    };
    [
        pcln,
        functab,
        bi,
        0,
        shoff,
        modinfo,
        section(".debug_info"),
        section(".note.stapsdt"),
    ]
}

/// (quoting bytes, all structural bytes) of the module info at `start`, as offsets from it.
fn modinfo_hot_bytes(b: &[u8], start: usize) -> (Vec<usize>, Vec<usize>) {
    // The text runs to the 16-byte end sentinel, which follows the last '\n'.
    let text = &b[start..(start + 64 * 1024).min(b.len())];
    let end = text
        .windows(2)
        .position(|w| w == b"\n\xf9" || w == b"\n\x00")
        .map_or(text.len(), |i| i + 1);
    let pick =
        |set: &[u8]| -> Vec<usize> { (0..end).filter(|&i| set.contains(&text[i])).collect() };
    (pick(b"\"`\\"), pick(b"\"`\\\t\n="))
}

fn apply(base: &Base, muts: &[Mutation]) -> Vec<u8> {
    let mut b = base.bytes.clone();
    for m in muts {
        match m {
            Mutation::Flip { region, at, bit } => {
                let i = base.starts[*region as usize] + at;
                if i < b.len() {
                    b[i] ^= 1 << (bit % 8);
                }
            }
            Mutation::Write { region, at, bytes } => {
                let i = base.starts[*region as usize] + at;
                for (k, &x) in bytes.iter().enumerate() {
                    if let Some(slot) = b.get_mut(i + k) {
                        *slot = x;
                    }
                }
            }
            Mutation::Truncate { region, at } => {
                let i = base.starts[*region as usize] + at;
                b.truncate(i);
            }
        }
    }
    b
}

/// How much of the analysis a case runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Everything a caller may do (the random cases).
    Full,
    /// Parsing, buildinfo, notes, `main.*` RET sites; struct offsets only when `dwarf` (the
    /// deterministic corpus: thousands of cases within a debug-build test budget).
    Light { dwarf: bool },
}

/// Everything a caller may do with a binary. Returns the error message, if any.
fn exercise(bytes: Vec<u8>) -> Option<String> {
    exercise_at(bytes, Depth::Full)
}

fn one_line(e: &str) {
    assert!(!e.contains('\n'), "multi-line error: {e:?}");
    assert!(!e.is_empty(), "empty error message");
}

fn exercise_at(bytes: Vec<u8>, depth: Depth) -> Option<String> {
    // The USDT note reader takes any ELF, Go or not.
    match usdt::read_probes(&bytes) {
        Err(e) => one_line(&e.to_string()),
        Ok(probes) => {
            for p in probes {
                let _ = serde_json::to_string(&p).unwrap();
            }
        }
    }
    let bin = match GoBinary::from_bytes("fuzzed", bytes) {
        Ok(b) => b,
        Err(e) => return Some(e.to_string()),
    };
    let _ = bin.build_info().to_string();
    let _ = serde_json::to_string(bin.build_info()).unwrap();
    let _ = serde_json::to_string(bin.elf()).unwrap();
    let (_, _) = (bin.goos(), bin.goarch());
    let _ = usdt::batch_buffer_refs(&bin);
    if let Depth::Light { dwarf } = depth {
        for f in bin
            .functions()
            .iter()
            .filter(|f| f.name.starts_with("main."))
        {
            if let Err(e) = bin.return_sites(f) {
                one_line(&e.to_string());
            }
        }
        if dwarf {
            for o in offsets::resolve(&bin, offsets::REQUIRED) {
                if let Some(e) = o.error {
                    one_line(&e);
                }
            }
        }
        return None;
    }
    // Disassembling every function is slow in debug builds: there, every 32nd function plus the
    // last one (the release long run does them all).
    let stride = if cfg!(debug_assertions) { 32 } else { 1 };
    let funcs = bin.functions();
    let sample = funcs
        .iter()
        .step_by(stride)
        .chain(funcs.last())
        .chain(funcs.iter().filter(|f| f.name.starts_with("main.")));
    for f in sample {
        if let Err(e) = bin.return_sites(f) {
            assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
        }
    }
    for pattern in ["main.greet", "main.*", "runtime.[", "*"] {
        if let Err(e) = bin.find_functions(pattern) {
            assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
        }
    }
    let _ = instrumentations::detect(&bin);
    for o in offsets::resolve(&bin, offsets::REQUIRED) {
        if let Some(e) = o.error {
            assert!(!e.contains('\n'), "multi-line error: {e}");
        }
    }
    None
}

fn check(base: &Base, muts: &[Mutation]) -> Option<String> {
    check_at(base, muts, Depth::Full)
}

fn check_at(base: &Base, muts: &[Mutation], depth: Depth) -> Option<String> {
    let start = Instant::now();
    let err = exercise_at(apply(base, muts), depth);
    if let Some(e) = &err {
        one_line(e);
    }
    let took = start.elapsed();
    assert!(
        took < CASE_LIMIT,
        "{}: {took:?} for one case (limit {CASE_LIMIT:?}): {muts:?}",
        base.label
    );
    err
}

// ---- corpus files: `base LABEL`, then one mutation a line, `#` comments, optional `expect error` ----

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

fn encode(base: &Base, muts: &[Mutation], note: &str) -> String {
    let mut s = format!("# {note}\nbase {}\n", base.label);
    for m in muts {
        match m {
            Mutation::Flip { region, at, bit } => {
                s += &format!("flip {} {at:#x} {bit}\n", region.name())
            }
            Mutation::Write { region, at, bytes } => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                s += &format!("write {} {at:#x} {hex}\n", region.name())
            }
            Mutation::Truncate { region, at } => s += &format!("trunc {} {at:#x}\n", region.name()),
        }
    }
    s
}

/// (base label, mutations, whether an error is required).
fn decode(text: &str) -> (String, Vec<Mutation>, bool) {
    let mut label = None;
    let mut muts = Vec::new();
    let mut expect_error = false;
    let num = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "base" => label = Some(f[1..].join(" ")),
            "expect" if f[1] == "error" => expect_error = true,
            "flip" => muts.push(Mutation::Flip {
                region: Region::parse(f[1]).unwrap(),
                at: num(f[2]),
                bit: f[3].parse().unwrap(),
            }),
            "write" => muts.push(Mutation::Write {
                region: Region::parse(f[1]).unwrap(),
                at: num(f[2]),
                bytes: (0..f[3].len() / 2)
                    .map(|i| u8::from_str_radix(&f[3][2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
            }),
            "trunc" => muts.push(Mutation::Truncate {
                region: Region::parse(f[1]).unwrap(),
                at: num(f[2]),
            }),
            other => panic!("bad corpus line {other:?}"),
        }
    }
    (
        label.expect("corpus file without `base`"),
        muts,
        expect_error,
    )
}

/// With GOTAP_FUZZ_SAVE set: keep a case whose error has a new shape (digits dropped).
fn maybe_save(base: &Base, muts: &[Mutation], err: &Option<String>) {
    if std::env::var_os("GOTAP_FUZZ_SAVE").is_none() {
        return;
    }
    let Some(e) = err else { return };
    // Shape: the message without quoted text and numbers, cut short (garbled names and values
    // would make every case "new").
    let mut shape = String::new();
    let mut quoted = false;
    for c in e.chars() {
        match c {
            '"' => quoted = !quoted,
            _ if quoted || c.is_ascii_hexdigit() => {}
            _ => shape.push(c),
        }
    }
    let shape: String = shape.chars().take(70).collect();
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    if !SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .insert(shape.clone())
    {
        return;
    }
    let text = encode(base, muts, e);
    let name = format!(
        "found-{:016x}.txt",
        text.bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64)
                .wrapping_mul(0x100000001b3))
    );
    std::fs::create_dir_all(corpus_dir()).unwrap();
    std::fs::write(corpus_dir().join(name), text).unwrap();
}

fn region() -> impl Strategy<Value = Region> {
    prop::sample::select(REGIONS.to_vec())
}

/// Offsets concentrate near the region start (headers), with a tail further in.
fn offset() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..128, 2 => 0usize..4096, 1 => 0usize..1 << 20]
}

/// Bytes that break quoting, separators or UTF-8 when written over module-info text.
const TEXT_BREAKERS: [u8; 10] = [
    0xff, 0x80, 0xc3, 0x00, b'"', b'`', b'\\', b'\n', b'\t', b'=',
];

/// A write over a quoting or separator byte of this base's module info: where the quoted
/// `build` values are parsed (a byte changed there once panicked `unquote`).
fn modinfo_hot(which: usize) -> BoxedStrategy<Mutation> {
    let b = &bases()[which];
    let positions = if b.quotes.is_empty() {
        b.structural.clone()
    } else {
        b.quotes.clone()
    };
    if positions.is_empty() {
        return mutation().boxed();
    }
    let at = prop_oneof![
        2 => prop::sample::select(positions),
        1 => prop::sample::select(b.structural.clone()),
    ];
    let byte = prop::sample::select(TEXT_BREAKERS.to_vec());
    (at, prop::collection::vec(byte, 1..3))
        .prop_map(|(at, bytes)| Mutation::Write {
            region: Region::Modinfo,
            at,
            bytes,
        })
        .boxed()
}

fn case() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (0..bases().len()).prop_flat_map(|which| {
        let m = prop_oneof![3 => mutation(), 1 => modinfo_hot(which)];
        (Just(which), prop::collection::vec(m, 1..6))
    })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![0x00u8, 0x01, 0x7f, 0x80, 0xff, 0xf1, 0xfa]);
    prop_oneof![
        4 => (region(), offset(), 0u8..8).prop_map(|(region, at, bit)| Mutation::Flip { region, at, bit }),
        4 => (region(), offset(), prop_oneof![
                prop::collection::vec(any::<u8>(), 1..16),
                (interesting, 1usize..16).prop_map(|(b, n)| vec![b; n]),
            ]).prop_map(|(region, at, bytes)| Mutation::Write { region, at, bytes }),
        1 => (region(), offset()).prop_map(|(region, at)| Mutation::Truncate { region, at }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // cases: 256, or PROPTEST_CASES (proptest's default reads it).
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_go_binaries_never_panic((which, muts) in case()) {
        let base = &bases()[which];
        let err = check(base, &muts);
        maybe_save(base, &muts, &err);
    }
}

/// The unmutated bases parse: the mutations above start from valid binaries.
#[test]
fn bases_are_valid() {
    for b in bases() {
        assert_eq!(exercise(b.bytes.clone()), None, "{}", b.label);
        let bin = GoBinary::from_bytes("base", b.bytes.clone()).unwrap();
        let main = if b.label.contains("usdt") {
            "main.gotapProbeHTTPServer"
        } else {
            "main.greet"
        };
        assert!(bin.function(main).is_some(), "{}", b.label);
    }
}

#[test]
fn corpus_replays() {
    let mut n = 0;
    let mut failed = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let (label, muts, expect_error) = decode(&text);
        let base = base(&label);
        assert_eq!(
            decode(&encode(base, &muts, "x")).1,
            muts,
            "{}: encoding round trip",
            path.display()
        );
        match std::panic::catch_unwind(|| check(base, &muts)) {
            Err(_) => failed.push(format!("{} panics", path.display())),
            Ok(None) if expect_error => failed.push(format!(
                "{}: want an error, analysis succeeded",
                path.display()
            )),
            Ok(_) => {}
        }
        n += 1;
    }
    assert!(failed.is_empty(), "corpus failures:\n{}", failed.join("\n"));
    assert!(n >= 10, "corpus has only {n} files");
}

/// The change of issue "Corrupt input": the closing quote of `-ldflags="-s -w"` in a stripped
/// binary's buildinfo turned into 0xff (U+FFFD once read as text) panicked `unquote`.
#[test]
fn damaged_ldflags_quote_is_an_error() {
    let mut tried = 0;
    // Go 1.19 leaves -ldflags out of -trimpath builds.
    for b in bases().iter().filter(|b| b.label.contains("stripped")) {
        let text = &b.bytes[b.starts[Region::Modinfo as usize]..];
        let Some(at) = text
            .windows(b"-ldflags=\"-s -w\"".len())
            .position(|w| w == b"-ldflags=\"-s -w\"")
        else {
            continue;
        };
        tried += 1;
        let at = at + b"-ldflags=\"-s -w".len();
        let muts = [Mutation::Write {
            region: Region::Modinfo,
            at,
            bytes: vec![0xff],
        }];
        let err = check(b, &muts).unwrap_or_else(|| panic!("{}: accepted", b.label));
        assert!(
            err.contains("invalid quoted value in build line"),
            "{}: {err}",
            b.label
        );
    }
    assert!(tried >= 2, "only {tried} bases have -ldflags=\"-s -w\"");
}

/// A fixed corpus of single mutations derived from every base: each byte of the headers the
/// parsers start from, the pointers and sizes of every section header, each quoting and separator
/// byte of the module info, the first bytes of the functab, of the SDT notes and of `.debug_info`,
/// overwritten with boundary values. The same cases on every run, so a regression names its case.
fn deterministic_cases() -> Vec<(usize, Mutation, Depth)> {
    let mut out = Vec::new();
    let light = Depth::Light { dwarf: false };
    for (which, b) in bases().iter().enumerate() {
        let mut push = |region, at, bytes: Vec<u8>, depth| {
            out.push((which, Mutation::Write { region, at, bytes }, depth));
        };
        // ELF header.
        for at in 0..64 {
            push(Region::Elf, at, vec![0xff], light);
        }
        // Program headers: offset and filesz of each.
        let (phoff, phnum) = (le(&b.bytes, 0x20, 8), le(&b.bytes, 0x38, 2));
        for i in 0..phnum {
            for field in [8, 32] {
                push(Region::Elf, phoff + 56 * i + field, vec![0xff; 8], light);
            }
        }
        // Section headers: sh_offset and sh_size of each, huge or zero.
        let shnum = le(&b.bytes, 0x3c, 2);
        for i in 0..shnum {
            for (field, bytes) in [(24, vec![0xff; 8]), (32, vec![0xff; 8]), (32, vec![0; 8])] {
                push(Region::Shdrs, 64 * i + field, bytes, light);
            }
        }
        // pclntab header, buildinfo header (with the version's varint length at 32).
        for at in (0..72).step_by(2) {
            push(Region::Pclntab, at, vec![0xff], light);
        }
        for at in (8..72).step_by(8) {
            push(Region::Pclntab, at, vec![0x00; 8], light);
        }
        for at in 0..40 {
            push(Region::Buildinfo, at, vec![0xff], light);
        }
        // Module info: each quoting byte with every text breaker; every other separator with
        // the two likeliest to confuse the parser.
        for &at in &b.quotes {
            for v in TEXT_BREAKERS {
                push(Region::Modinfo, at, vec![v], light);
            }
        }
        for &at in b.structural.iter().step_by(2) {
            for v in [0xff, b'"'] {
                push(Region::Modinfo, at, vec![v], light);
            }
        }
        // functab: entries and `_func` offsets of the first functions.
        for at in (0..64).step_by(4) {
            push(Region::Functab, at, vec![0xff; 4], light);
        }
        // SDT notes (the annotated base): every byte of the first note and into the second.
        if b.starts[Region::Sdt as usize] < b.bytes.len() {
            for at in 0..160 {
                push(Region::Sdt, at, vec![0xff], light);
                if at % 4 == 0 {
                    push(Region::Sdt, at, vec![0x00], light);
                }
            }
        }
        // DWARF: the uncompressed base's unit header and first DIEs; the compressed ones'
        // compression header. Struct offsets are resolved (the DWARF walk).
        if b.starts[Region::Dwarf as usize] < b.bytes.len() {
            let n = if b.label.contains("raw-dwarf") {
                96
            } else {
                24
            };
            for at in 0..n {
                push(Region::Dwarf, at, vec![0xff], Depth::Light { dwarf: true });
            }
        }
    }
    out
}

#[test]
fn deterministic_mutations_never_panic() {
    let cases = deterministic_cases();
    assert!(cases.len() >= 2000, "only {} cases", cases.len());
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    let failed = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((which, m, depth)) = cases.get(i) else {
                    break;
                };
                let base = &bases()[*which];
                let muts = std::slice::from_ref(m);
                if let Err(p) = std::panic::catch_unwind(|| check_at(base, muts, *depth)) {
                    let why = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failed
                        .lock()
                        .unwrap()
                        .push(encode(base, muts, &why.replace('\n', " ")));
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    eprintln!("{} cases in {:?}", cases.len(), started.elapsed());
    assert!(
        failed.is_empty(),
        "{} of {} cases failed (each as a corpus file):\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
