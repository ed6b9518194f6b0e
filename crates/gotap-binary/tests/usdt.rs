//! USDT notes against real Go binaries: go/testapps/cmd/usdtsites (the probe-site contract of
//! docs/probes.md, in package main) built with Go 1.26 and 1.27, stripped or not, PIE or not, is
//! annotated; then `readelf` must show clean sections and the notes at the addresses `go tool nm`
//! gives, [`read_probes`] must give back what was written, and the program must still run.
use gotap_binary::usdt::{
    self, ArgLocation, SiteDef, UsdtError, GOTAP_ARGS, GOTAP_SEMAPHORE_MARKER,
};
use gotap_binary::GoBinary;
use gotap_testkit::{build, Toolchain, Variant};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLCHAINS: [Toolchain; 2] = [Toolchain::Go126, Toolchain::Go127];

/// The contract's sites, as they are named in usdtsites (package main).
const MAIN_SITES: [SiteDef<'static>; 2] = [
    SiteDef {
        provider: "gotap",
        name: "http_server",
        function: "main.gotapProbeHTTPServer",
        args: GOTAP_ARGS,
    },
    SiteDef {
        provider: "gotap",
        name: "http_client",
        function: "main.gotapProbeHTTPClient",
        args: GOTAP_ARGS,
    },
];

/// A private copy of the usdtsites build (annotation rewrites the file).
fn fresh_copy(tc: Toolchain, v: Variant, tag: &str) -> PathBuf {
    let src = build("testapps", "./cmd/usdtsites", tc, v);
    let dir = std::env::temp_dir().join(format!("gotap-usdt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(format!("usdtsites-{}-{}-{tag}", tc.label(), v.label()));
    gotap_testkit::install_exe(&src, &dst);
    dst
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{cmd:?} warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (provider, name, location, base, semaphore, args) of each `readelf -n` stapsdt note.
fn readelf_notes(bin: &Path) -> Vec<(String, String, u64, u64, u64, String)> {
    let text = run(Command::new("readelf").arg("-nW").arg(bin));
    let mut notes = Vec::new();
    let mut lines = text.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("stapsdt") {
            continue;
        }
        // "stapsdt  0x…  NT_STAPSDT (SystemTap probe descriptors)  Provider: gotap", then one
        // "Key: value" line each for Name, Location, Arguments.
        assert!(
            line.contains("NT_STAPSDT (SystemTap probe descriptors)"),
            "{line}"
        );
        let provider = line
            .split("Provider:")
            .nth(1)
            .unwrap_or_else(|| panic!("no provider in {line:?}"))
            .trim()
            .to_string();
        let mut field = |key: &str| {
            let l = lines
                .next()
                .unwrap_or_else(|| panic!("readelf: no {key} line"));
            l.strip_prefix(key)
                .unwrap_or_else(|| panic!("readelf: want {key} in {l:?}"))
                .trim()
                .to_string()
        };
        let name = field("Name:");
        let loc = field("Location:");
        // "0x…, Base: 0x…, Semaphore: 0x…"
        let parts: Vec<u64> = loc
            .split(',')
            .map(|p| {
                let h = p.rsplit(' ').next().unwrap().trim_start_matches("0x");
                u64::from_str_radix(h, 16).unwrap()
            })
            .collect();
        let args = field("Arguments:");
        notes.push((provider, name, parts[0], parts[1], parts[2], args));
    }
    notes
}

/// `go tool nm`: address of a symbol.
fn nm(tc: Toolchain, bin: &Path, sym: &str) -> u64 {
    let out = run(tc.command().args(["tool", "nm"]).arg(bin));
    let line = out
        .lines()
        .find(|l| l.trim_end().ends_with(&format!(" {sym}")))
        .unwrap_or_else(|| panic!("{sym} not in nm"));
    u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

/// Section name → (address, offset, size) from `readelf -SW` (must print no warning).
fn sections(bin: &Path) -> Vec<(String, String, u64, u64, u64)> {
    let text = run(Command::new("readelf").arg("-SW").arg(bin));
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('[') else {
            continue;
        };
        let Some((idx, rest)) = rest.split_once(']') else {
            continue;
        };
        if idx.trim().parse::<u32>().is_err() {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 6 || f[0] == "NULL" {
            continue;
        }
        let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
        out.push((
            f[0].to_string(),
            f[1].to_string(),
            hex(f[2]),
            hex(f[3]),
            hex(f[4]),
        ));
    }
    out
}

/// With nobody attached, usdtsites prints "usdtsites ready" and then nothing (semaphore 0).
/// Runs a `cp` of `bin` (annotated in this process: see `gotap_testkit::install_exe`).
fn runs_idle(bin: &Path) {
    let run = bin.with_file_name(format!(
        "{}.run",
        bin.file_name().unwrap().to_str().unwrap()
    ));
    gotap_testkit::install_exe(bin, &run);
    let mut child = Command::new(&run)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The ready line first (however long a busy machine takes to start it), then 300 ms of
    // nothing more.
    use std::io::{BufRead, Read};
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    assert_eq!(ready, "usdtsites ready\n", "{}", bin.display());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{} exited early",
        bin.display()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "{}", bin.display());
}

#[test]
fn annotates_every_build_variant() {
    for tc in TOOLCHAINS {
        for v in Variant::ALL {
            let label = format!("{} {}", tc.label(), v.label());
            let bin = fresh_copy(tc, v, "all");
            let before = std::fs::read(&bin).unwrap();
            let plain = GoBinary::from_bytes("before", before.clone()).unwrap();
            assert_eq!(
                usdt::read_probes(&before).unwrap(),
                vec![],
                "{label}: notes before annotation"
            );

            assert_eq!(
                usdt::annotate(&bin, &MAIN_SITES, Some(GOTAP_SEMAPHORE_MARKER)).unwrap(),
                2,
                "{label}"
            );
            let after = std::fs::read(&bin).unwrap();

            // Every allocated byte is where it was: what the program maps is unchanged.
            let secs = sections(&bin);
            for (name, _, addr, off, size) in &secs {
                if *addr == 0
                    || name == ".stapsdt.base"
                    || name == ".tbss"
                    || name == ".bss"
                    || name == ".noptrbss"
                {
                    continue;
                }
                let r = *off as usize..(*off + *size) as usize;
                assert_eq!(
                    before.get(r.clone()),
                    after.get(r),
                    "{label}: {name} moved or changed"
                );
            }
            let base = secs
                .iter()
                .find(|s| s.0 == ".stapsdt.base")
                .unwrap_or_else(|| panic!("{label}: no .stapsdt.base"));
            assert_eq!((base.1.as_str(), base.4), ("PROGBITS", 1), "{label}");
            let note = secs
                .iter()
                .position(|s| s.0 == ".note.stapsdt")
                .unwrap_or_else(|| panic!("{label}: no .note.stapsdt"));
            assert_eq!(
                (secs[note].1.as_str(), secs[note].2),
                ("NOTE", 0),
                "{label}: notes are not loaded"
            );
            // `.probes` describes the semaphore for bcc/bpftrace, and must come before the notes
            // (bcc 0.26 only searches the headers after it).
            let probes = secs
                .iter()
                .position(|s| s.0 == ".probes")
                .unwrap_or_else(|| panic!("{label}: no .probes"));
            assert!(probes < note, "{label}: .probes after .note.stapsdt");

            // Same function table, same file offsets.
            let annotated = GoBinary::open(&bin).unwrap();
            let fns = |b: &GoBinary| {
                b.functions()
                    .iter()
                    .map(|f| (f.name.clone(), f.entry, f.offset))
                    .collect::<Vec<_>>()
            };
            assert_eq!(fns(&plain), fns(&annotated), "{label}: pclntab differs");

            // readelf agrees with the function table (and, unstripped, with the symbol table).
            let server = plain.function("main.gotapProbeHTTPServer").unwrap().clone();
            let client = plain.function("main.gotapProbeHTTPClient").unwrap().clone();
            let notes = readelf_notes(&bin);
            assert_eq!(notes.len(), 2, "{label}: {notes:?}");
            let sema = notes[0].4;
            for ((provider, name, pc, nbase, nsema, args), f) in
                notes.iter().zip([&server, &client])
            {
                assert_eq!(provider, "gotap");
                assert_eq!(*pc, f.entry, "{label}: {name}");
                assert_eq!(
                    *nbase, base.2,
                    "{label}: note base must equal .stapsdt.base"
                );
                assert_eq!(*nsema, sema);
                assert_eq!(args, GOTAP_ARGS);
            }
            assert_eq!(notes[0].1, "http_server");
            assert_eq!(notes[1].1, "http_client");
            let (_, _, paddr, poff, psize) = &secs[probes];
            assert_eq!(
                (*paddr, Some(*poff), *psize),
                (sema, annotated.vaddr_to_offset(sema), 2),
                "{label}: .probes"
            );
            // The marker follows the semaphore.
            assert_eq!(
                annotated.read_vaddr(sema + 2, 14),
                Some(GOTAP_SEMAPHORE_MARKER),
                "{label}"
            );
            assert_eq!(
                annotated.read_vaddr(sema, 2),
                Some(&[0u8, 0][..]),
                "{label}"
            );
            if !v.stripped {
                assert_eq!(
                    server.entry,
                    nm(tc, &bin, "main.gotapProbeHTTPServer.abi0"),
                    "{label}"
                );
                assert_eq!(
                    client.entry,
                    nm(tc, &bin, "main.gotapProbeHTTPClient.abi0"),
                    "{label}"
                );
                assert_eq!(sema, nm(tc, &bin, "main.gotapProbeSemaphore"), "{label}");
            }

            // The reader gives back what was written, with the uprobe offsets.
            let probes = usdt::read_probes(&after).unwrap();
            assert_eq!(probes.len(), 2);
            for (p, f) in probes.iter().zip([&server, &client]) {
                assert_eq!(
                    (p.address, p.offset),
                    (f.entry, f.offset),
                    "{label}: {}",
                    p.name
                );
                assert_eq!(p.semaphore, Some(sema));
                assert_eq!(p.semaphore_offset, annotated.vaddr_to_offset(sema));
                assert_eq!(p.args_raw, GOTAP_ARGS);
                assert_eq!(p.args.len(), 9);
                assert!(
                    matches!(&p.args[8].location, ArgLocation::Memory { offset: 72, base, .. } if base == "rsp")
                );
                assert!(p.args[5].signed && !p.args[8].signed);
            }
            // The NOP is at the probe's file offset.
            let at = probes[0].offset as usize;
            assert_eq!(&after[at..at + 5], &[0x0f, 0x1f, 0x44, 0x00, 0x00]);

            // Idempotent: a second pass finds both notes and leaves the file alone.
            assert_eq!(
                usdt::annotate(&bin, &MAIN_SITES, Some(GOTAP_SEMAPHORE_MARKER)).unwrap(),
                2,
                "{label}"
            );
            assert_eq!(
                std::fs::read(&bin).unwrap(),
                after,
                "{label}: second annotation changed the file"
            );

            // Still the same program; the file is still executable.
            runs_idle(&bin);
            std::fs::remove_file(&bin).unwrap();
        }
    }
}

#[test]
fn annotate_gotap_skips_binaries_without_net_http_sites() {
    // usdtsites has the sites in package main, not net/http: nothing to write, file untouched.
    let bin = fresh_copy(Toolchain::Go126, Variant::default(), "gotap");
    let before = std::fs::read(&bin).unwrap();
    assert_eq!(usdt::annotate_gotap(&bin).unwrap(), 0);
    assert_eq!(std::fs::read(&bin).unwrap(), before);
    std::fs::remove_file(&bin).unwrap();
}

#[test]
fn partial_and_incremental_annotation() {
    let bin = fresh_copy(
        Toolchain::Go127,
        Variant {
            stripped: true,
            pie: true,
        },
        "partial",
    );
    let missing = SiteDef {
        provider: "gotap",
        name: "sql_query",
        function: "main.noSuchSite",
        args: "",
    };
    // One site now (plus one absent function, skipped)…
    assert_eq!(
        usdt::annotate(
            &bin,
            &[MAIN_SITES[1], missing],
            Some(GOTAP_SEMAPHORE_MARKER)
        )
        .unwrap(),
        1
    );
    // …the other later: appended to the existing section, same base.
    assert_eq!(
        usdt::annotate(&bin, &MAIN_SITES, Some(GOTAP_SEMAPHORE_MARKER)).unwrap(),
        2
    );
    let notes = readelf_notes(&bin);
    let names: Vec<&str> = notes.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(names, ["http_client", "http_server"]);
    let secs = sections(&bin);
    let names: Vec<&str> = secs
        .iter()
        .map(|s| s.0.as_str())
        .filter(|n| [".stapsdt.base", ".note.stapsdt", ".probes"].contains(n))
        .collect();
    assert_eq!(names, [".stapsdt.base", ".probes", ".note.stapsdt"]);
    runs_idle(&bin);
    std::fs::remove_file(&bin).unwrap();
}

#[test]
fn annotate_errors_are_sentences() {
    let bin = fresh_copy(Toolchain::Go126, Variant::default(), "errors");
    let before = std::fs::read(&bin).unwrap();
    // A marker that is not there.
    let e = usdt::annotate(&bin, &MAIN_SITES, Some(b"no-such-marker-anywhere")).unwrap_err();
    assert!(e.to_string().contains("semaphore marker not found"), "{e}");
    // A function that is not a probe site (no NOP5 at its entry).
    let not_site = SiteDef {
        provider: "gotap",
        name: "main",
        function: "main.main",
        args: "",
    };
    let e = usdt::annotate(&bin, &[not_site], None).unwrap_err();
    assert!(
        e.to_string()
            .contains("main.main does not start with a 5-byte NOP"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        before,
        "a failed annotation changed the file"
    );
    // Not ELF / not Go.
    let text = bin.with_extension("txt");
    std::fs::write(&text, "hello").unwrap();
    let e = usdt::annotate(&text, &MAIN_SITES, None).unwrap_err();
    assert!(
        matches!(e, UsdtError::Binary(gotap_binary::Error::NotElf(_))),
        "{e}"
    );
    std::fs::remove_file(&text).unwrap();
    std::fs::remove_file(&bin).unwrap();
}

/// Annotated usdtsites images for the reader fuzz, with the file offsets of the notes and of the
/// section header table.
fn fuzz_bases() -> &'static [(Vec<u8>, usize, usize)] {
    static BASES: std::sync::OnceLock<Vec<(Vec<u8>, usize, usize)>> = std::sync::OnceLock::new();
    BASES.get_or_init(|| {
        [
            (Toolchain::Go126, Variant::default()),
            (
                Toolchain::Go127,
                Variant {
                    stripped: true,
                    pie: true,
                },
            ),
        ]
        .into_iter()
        .map(|(tc, v)| {
            let bin = fresh_copy(tc, v, "fuzz");
            usdt::annotate(&bin, &MAIN_SITES, Some(GOTAP_SEMAPHORE_MARKER)).unwrap();
            let bytes = std::fs::read(&bin).unwrap();
            std::fs::remove_file(&bin).unwrap();
            use object::{Object, ObjectSection};
            let file = object::File::parse(&*bytes).unwrap();
            let note = file
                .section_by_name(".note.stapsdt")
                .unwrap()
                .file_range()
                .unwrap()
                .0 as usize;
            let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
            (bytes, note, shoff)
        })
        .collect()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { failure_persistence: None, ..Default::default() })]

    /// Whatever the notes and section headers hold, the reader returns (one-line errors).
    #[test]
    fn read_probes_never_panics(
        which in 0usize..2,
        in_notes in proptest::bool::ANY,
        writes in proptest::collection::vec((0usize..400, proptest::collection::vec(proptest::num::u8::ANY, 1..9)), 1..6),
        cut in proptest::option::of(0usize..400),
    ) {
        let (base, note, shoff) = &fuzz_bases()[which];
        let start = if in_notes { *note } else { *shoff };
        let mut b = base.clone();
        for (at, bytes) in &writes {
            for (k, x) in bytes.iter().enumerate() {
                if let Some(slot) = b.get_mut(start + at + k) {
                    *slot = *x;
                }
            }
        }
        if let Some(c) = cut {
            b.truncate(start + c);
        }
        if let Err(e) = usdt::read_probes(&b) {
            let e = e.to_string();
            proptest::prop_assert!(!e.contains('\n') && !e.is_empty(), "{e:?}");
        }
    }
}
