//! Fuzzing the binary parsers with proptest (stable Rust; cargo-fuzz needs nightly): real Go
//! binaries, mutated where the parsers look — the pclntab header and function table, the buildinfo
//! blob, the ELF headers — by bit flips, overwritten ranges and truncations. Whatever the bytes,
//! `GoBinary::from_bytes` and everything above it (functions, RET sites, buildinfo, instrumentation
//! detection, struct offsets) must return, never panic; errors must be one line.
//!
//! `cargo test` runs 256 cases; `PROPTEST_CASES=100000 cargo test -p gotap-binary --release --test
//! fuzz` runs longer. With `GOTAP_FUZZ_SAVE=1`, each case whose error message has a shape not
//! seen before is written to `fuzz/corpus/` (a few lines: base binary + mutations, never the
//! binary itself); `corpus_replays` runs every corpus file on each `cargo test`.
use gotap_binary::{instrumentations, offsets, GoBinary};
use gotap_testkit::{build_with, Variant, ALL_TOOLCHAINS};
use proptest::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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
}

const REGIONS: [Region; 5] = [
    Region::Pclntab,
    Region::Functab,
    Region::Buildinfo,
    Region::Elf,
    Region::Shdrs,
];

impl Region {
    fn name(self) -> &'static str {
        match self {
            Region::Pclntab => "pclntab",
            Region::Functab => "functab",
            Region::Buildinfo => "buildinfo",
            Region::Elf => "elf",
            Region::Shdrs => "shdrs",
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
    starts: [usize; 5],
}

/// Bases: cmd/hello from every toolchain, unstripped non-PIE and stripped PIE, without VCS stamps
/// so the bytes (and so corpus offsets) do not depend on the repository's state.
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
                let starts = region_starts(&bytes);
                out.push(Base {
                    label: format!("{} {}", tc.label(), v.label()),
                    bytes,
                    starts,
                });
            }
        }
        out
    })
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

fn region_starts(b: &[u8]) -> [usize; 5] {
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
    [pcln, functab, bi, 0, shoff]
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

/// Everything a caller may do with a binary. Returns the error message, if any.
fn exercise(bytes: Vec<u8>) -> Option<String> {
    // The USDT note reader takes any ELF, Go or not (its own fuzz on annotated bases: tests/usdt.rs).
    if let Err(e) = gotap_binary::usdt::read_probes(&bytes) {
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
    let bin = match GoBinary::from_bytes("fuzzed", bytes) {
        Ok(b) => b,
        Err(e) => return Some(e.to_string()),
    };
    let _ = bin.build_info().to_string();
    let _ = serde_json::to_string(bin.elf()).unwrap();
    let (_, _) = (bin.goos(), bin.goarch());
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
    let err = exercise(apply(base, muts));
    if let Some(e) = &err {
        assert!(!e.contains('\n'), "multi-line error: {e:?}");
        assert!(!e.is_empty());
    }
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
    fn mutated_go_binaries_never_panic(which in 0usize..6, muts in prop::collection::vec(mutation(), 1..6)) {
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
        assert!(bin.function("main.greet").is_some(), "{}", b.label);
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
