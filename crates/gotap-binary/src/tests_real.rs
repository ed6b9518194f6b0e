//! Checks against real Go builds made on the fly with each toolchain ($GO119, $GO126, $GO127), with
//! the Go tools as oracles: `go tool nm` (functions), `go version -m` (buildinfo), `go tool
//! objdump` (RET sites). Also: damaged and foreign inputs must give errors, never panics.
use crate::binary::Layout;
use crate::{instrumentations, pclntab, Error, GoBinary};
use gotap_testkit::{Toolchain, Variant, ALL_TOOLCHAINS};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

const MAIN_GO: &str = r#"package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
)

var version = "dev"

//go:noinline
func F(x int) int {
	if x > 3 {
		return x * 2
	}
	return x + 1
}

func main() {
	fmt.Println(F(len(os.Args)), version)
	if len(os.Args) > 5 {
		http.ListenAndServe(":0", nil)
		http.Get("http://x")
		db, _ := sql.Open("x", "y")
		db.QueryContext(context.Background(), "q")
	}
}
"#;

/// Builds the test program once per (toolchain, variant, flags, env) per test process.
fn build(tc: Toolchain, variant: Variant, flags: &[&str], env: &[(&str, &str)]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let key = format!("{}-{}-{flags:?}-{env:?}", tc.label(), variant.label());
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let dir = gotap_testkit::bin_dir().join("gotap-binary-unit");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.go"), MAIN_GO).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/unit\n\ngo 1.19\n").unwrap();
    let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let out = dir.join(format!("prog-{}-{}-{hash:x}", tc.label(), variant.label()));
    let mut cmd = tc.command();
    cmd.current_dir(&src)
        .arg("build")
        .arg("-o")
        .arg(&out)
        .env("CGO_ENABLED", "0");
    if variant.pie {
        cmd.arg("-buildmode=pie");
    }
    if variant.stripped {
        cmd.arg("-ldflags=-s -w");
    }
    cmd.args(flags).arg(".");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let res = cmd.output().expect("run go build");
    assert!(
        res.status.success(),
        "go build ({key}) failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    built.insert(key, out.clone());
    out
}

fn plain() -> Variant {
    Variant {
        stripped: false,
        pie: false,
    }
}

fn go_tool(tc: Toolchain, args: &[&str]) -> String {
    let out = tc.command().args(args).output().expect("run go tool");
    assert!(
        out.status.success(),
        "go {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Names as the linker's symbol table spells what pclntab spells differently: `.abi0` suffixes
/// (cmd/link mangleABIName, decided from symbols pclntab does not keep), `·` for `.`, and (before
/// Go 1.21) generic instantiations shortened to `[...]` in pclntab.
fn normalize(name: &str) -> String {
    let name = name.strip_suffix(".abi0").unwrap_or(name).replace('·', ".");
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[...]");
                }
                depth += 1;
            }
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

const EXTERNAL: &[&str] = &["-ldflags=-linkmode=external"];
const EXTERNAL_STRIPPED: &[&str] = &["-ldflags=-linkmode=external -s -w"];
const CGO: &[(&str, &str)] = &[("CGO_ENABLED", "1")];

/// (variant, go build flags, env, flags of the unstripped twin whose symbols are the oracle).
type Build = (
    Variant,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

/// Internal linking in every variant, plus cgo with the external linker.
fn builds() -> Vec<Build> {
    let mut b: Vec<Build> = Variant::ALL
        .iter()
        .map(|&v| (v, &[][..], &[][..], &[][..]))
        .collect();
    b.push((plain(), EXTERNAL, CGO, EXTERNAL));
    b.push((
        Variant {
            stripped: false,
            pie: true,
        },
        EXTERNAL_STRIPPED,
        CGO,
        EXTERNAL,
    ));
    b
}

#[test]
fn every_text_symbol_of_go_tool_nm_is_a_function_at_the_same_address() {
    for tc in ALL_TOOLCHAINS {
        for (variant, flags, env, twin_flags) in builds() {
            let stripped = variant.stripped || flags == EXTERNAL_STRIPPED;
            let path = build(tc, variant, flags, env);
            // Stripped builds have no symbols: their unstripped twin (identical text) is the oracle.
            let reference = build(
                tc,
                Variant {
                    stripped: false,
                    pie: variant.pie,
                },
                twin_flags,
                env,
            );
            let bin = GoBinary::open(&path).unwrap();
            let what = format!("{} {} {flags:?}", tc.label(), variant.label());
            assert_eq!(bin.elf().stripped, stripped, "{what}");
            assert_eq!(bin.elf().pie, variant.pie, "{what}");
            assert_eq!(bin.elf().dwarf, !stripped, "{what}");
            assert_eq!(bin.elf().cgo, !env.is_empty(), "{what}");
            assert!(
                bin.go_version().starts_with(tc.label()),
                "{what}: {}",
                bin.go_version()
            );
            let fns = bin.functions();
            assert!(
                fns.windows(2).all(|w| w[0].entry <= w[1].entry),
                "{what}: not sorted"
            );
            let have: HashSet<(String, u64)> =
                fns.iter().map(|f| (normalize(&f.name), f.entry)).collect();
            let exact: HashSet<(&str, u64)> =
                fns.iter().map(|f| (f.name.as_str(), f.entry)).collect();
            let nm = go_tool(tc, &["tool", "nm", reference.to_str().unwrap()]);
            let nm_names: HashSet<&str> = nm
                .lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .collect();
            let mut checked = 0;
            let mut missing = Vec::new();
            for line in nm.lines() {
                let mut parts = line.split_whitespace();
                let (Some(addr), Some(kind)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let name = parts.collect::<Vec<_>>().join(" ");
                // Not Go functions: section markers of internally linked C objects, the text
                // bounds, and C functions from cgo (no package qualifier, or gcc clones such as
                // `x_cgo_munmap.cold`).
                let c_clone = [".cold", ".part.", ".isra.", ".constprop."]
                    .iter()
                    .any(|s| name.contains(s));
                let go_function = name.contains('.')
                    && !c_clone
                    && !name.contains("(.text")
                    && name != "runtime.text"
                    && name != "runtime.etext";
                if !matches!(kind, "T" | "t") || !go_function {
                    continue;
                }
                checked += 1;
                let addr = u64::from_str_radix(addr, 16).unwrap();
                if !have.contains(&(normalize(&name), addr)) {
                    missing.push(format!("{addr:#x} {name}"));
                }
                // When both a function and its ABI wrapper are in the binary, the ABI0 one must
                // be told apart exactly as the linker does.
                let pair = name
                    .strip_suffix(".abi0")
                    .is_some_and(|base| nm_names.contains(base));
                if pair && !exact.contains(&(name.as_str(), addr)) {
                    missing.push(format!("{addr:#x} {name} (exact)"));
                }
            }
            assert!(checked > 1000, "{what}: only {checked} symbols");
            assert!(
                missing.is_empty(),
                "{what}: {} of {checked} missing, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            // File offsets address the same bytes as the virtual addresses.
            let f = bin.function("main.F").expect("main.F");
            let at_offset = &bin.data()[f.offset as usize..][..f.size as usize];
            assert_eq!(Some(at_offset), bin.read_vaddr(f.entry, f.size), "{what}");
            assert_eq!(bin.vaddr_to_offset(f.entry), Some(f.offset));
        }
    }
}

#[test]
fn text_start_comes_from_moduledata_and_equals_runtime_text() {
    for tc in ALL_TOOLCHAINS {
        // With external linking C code comes first in .text: only moduledata knows where Go's
        // starts (checked on the stripped external build too).
        for (variant, flags, env, twin_flags) in builds() {
            let path = build(tc, variant, flags, env);
            let data = std::fs::read(&path).unwrap();
            let layout = Layout::parse(&data).unwrap();
            let table = pclntab::locate(&data, &layout)
                .ok()
                .flatten()
                .expect("pclntab");
            let from_moduledata = pclntab::moduledata_text(&data, &layout, &table);
            let twin = std::fs::read(build(
                tc,
                Variant {
                    stripped: false,
                    pie: variant.pie,
                },
                twin_flags,
                env,
            ))
            .unwrap();
            let symbol = Layout::parse(&twin).unwrap().symbols.runtime_text;
            assert!(symbol.is_some(), "no runtime.text symbol");
            assert_eq!(
                from_moduledata,
                symbol,
                "{} {} {flags:?}",
                tc.label(),
                variant.label()
            );
        }
    }
}

#[test]
fn pclntab_is_found_without_section_headers() {
    // Drop the section header table (e_shoff/e_shnum = 0): pclntab and buildinfo must be found
    // by scanning, as in binaries whose section headers were stripped by other tools.
    for tc in [Toolchain::Go119, Toolchain::Go126, Toolchain::Go127] {
        let path = build(
            tc,
            Variant {
                stripped: true,
                pie: true,
            },
            &[],
            &[],
        );
        let want = GoBinary::open(&path).unwrap();
        let mut data = std::fs::read(&path).unwrap();
        data[0x28..0x30].fill(0); // e_shoff
        data[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
        let got = GoBinary::from_bytes("no-sections", data).unwrap();
        assert_eq!(got.go_version(), want.go_version());
        assert_eq!(
            got.functions().len(),
            want.functions().len(),
            "{}",
            tc.label()
        );
        let f = got.function("main.F").unwrap();
        assert_eq!(f.entry, want.function("main.F").unwrap().entry);
        // The Go note is in a PT_NOTE segment; the GNU one is not (Go's linker) and is found by
        // its header. Go 1.19's linker writes no GNU build ID.
        assert_eq!(got.elf().go_build_id, want.elf().go_build_id);
        assert!(want.elf().go_build_id.is_some());
        assert_eq!(got.elf().build_id, want.elf().build_id);
        assert_eq!(want.elf().build_id.is_some(), tc != Toolchain::Go119);
    }
}

#[test]
fn build_info_prints_exactly_like_go_version_m() {
    for tc in ALL_TOOLCHAINS {
        for variant in [
            plain(),
            Variant {
                stripped: true,
                pie: true,
            },
        ] {
            let flags = ["-tags=x,y", "-ldflags=-X \"main.version=a b\""];
            let path = build(
                tc,
                variant,
                if variant.stripped { &[] } else { &flags },
                &[],
            );
            let bin = GoBinary::open(&path).unwrap();
            let mut ours = format!("{}: {}\n", path.display(), bin.go_version());
            for line in bin.build_info().to_string().lines() {
                ours += &format!("\t{line}\n");
            }
            assert_eq!(
                ours,
                go_tool(tc, &["version", "-m", path.to_str().unwrap()]),
                "{}",
                tc.label()
            );
            assert_eq!(bin.goarch(), "amd64");
            assert_eq!(bin.goos(), "linux");
            assert_eq!(bin.build_info().path, "example.com/unit");
            assert!(!bin.elf().cgo, "built with CGO_ENABLED=0");
            assert!(bin
                .elf()
                .go_build_id
                .as_deref()
                .is_some_and(|id| id.contains('/')));
        }
    }
}

/// RET addresses of `name` per `go tool objdump`.
fn objdump_rets(tc: Toolchain, path: &str, name: &str) -> Vec<u64> {
    let mut re = String::from("^");
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    go_tool(tc, &["tool", "objdump", "-s", &re, path])
        .lines()
        .filter_map(|l| {
            // "  main.go:12\t\t0x65b629\t\tc3\t\t\tRET\t\t\t"
            let cols: Vec<&str> = l
                .split('\t')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let insn = *cols.get(3)?;
            (insn == "RET" || insn.starts_with("RET "))
                .then(|| u64::from_str_radix(cols[1].trim_start_matches("0x"), 16).ok())?
        })
        .collect()
}

#[test]
fn ret_sites_match_go_tool_objdump() {
    for tc in ALL_TOOLCHAINS {
        let path = build(
            tc,
            Variant {
                stripped: false,
                pie: true,
            },
            &[],
            &[],
        );
        let bin = GoBinary::open(&path).unwrap();
        for name in [
            "main.F",
            "main.main",
            "net/http.serverHandler.ServeHTTP",
            "runtime.mallocgc",
            "fmt.(*pp).printArg",
        ] {
            let f = bin
                .function(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            let sites = bin.return_sites(f).unwrap();
            let want = objdump_rets(tc, path.to_str().unwrap(), name);
            assert!(!want.is_empty(), "{name}: objdump shows no RET");
            assert_eq!(
                sites.iter().map(|s| s.address).collect::<Vec<_>>(),
                want,
                "{} {name}",
                tc.label()
            );
            for s in &sites {
                assert_eq!(
                    bin.data().get(s.offset as usize),
                    Some(&0xc3),
                    "{name}: RET opcode at file offset"
                );
            }
        }
        // main.F returns on two paths.
        assert_eq!(
            bin.return_sites(bin.function("main.F").unwrap())
                .unwrap()
                .len(),
            2
        );
    }
}

#[test]
fn function_lookup_exact_glob_and_errors() {
    let bin = GoBinary::open(build(Toolchain::Go126, plain(), &[], &[])).unwrap();
    let names = |p: &str| {
        bin.find_functions(p)
            .unwrap()
            .into_iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("main.F"), ["main.F"]);
    let mains = names("main.*");
    assert!(
        mains.contains(&"main.F") && mains.contains(&"main.main"),
        "{mains:?}"
    );
    assert!(mains.iter().all(|n| n.starts_with("main.")));
    // `*` crosses `/` and `.` in package paths.
    assert!(names("net/*.serverHandler.ServeHTTP").contains(&"net/http.serverHandler.ServeHTTP"));
    assert!(matches!(
        bin.find_functions("main.Nope"),
        Err(Error::NoSuchFunction(_))
    ));
    assert!(matches!(
        bin.find_functions("main.[z"),
        Err(Error::BadPattern { .. })
    ));
}

#[test]
fn instrumentations_follow_linked_functions_and_modules() {
    let bin = GoBinary::open(build(Toolchain::Go126, plain(), &[], &[])).unwrap();
    let got: HashMap<&str, bool> = instrumentations::detect(&bin)
        .into_iter()
        .map(|i| (i.name, i.applies))
        .collect();
    assert!(got["net/http server"]);
    assert!(got["net/http client"]);
    assert!(got["database/sql"]);
    assert!(!got["grpc server"]);
    assert!(!got["grpc client"]);
}

#[test]
fn arm64_binaries_parse_but_ret_sites_are_refused() {
    let path = build(Toolchain::Go126, plain(), &[], &[("GOARCH", "arm64")]);
    let bin = GoBinary::open(&path).unwrap();
    assert_eq!(bin.goarch(), "arm64");
    assert_eq!(bin.elf().arch, crate::Arch::Arm64);
    let f = bin.function("main.F").unwrap();
    let err = bin.return_sites(f).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: arm64 RET-site analysis is not supported yet (gotap supports x86-64)",
            path.display()
        )
    );
}

/// A damaged `e_machine` is reported as what it is, not as an unsupported `GOARCH=amd64`.
#[test]
fn corrupt_e_machine_is_named() {
    let path = build(Toolchain::Go126, plain(), &[], &[]);
    let mut bytes = std::fs::read(&path).unwrap();
    // e_machine: the u16 at 0x12 of the ELF header.
    bytes[0x12..0x14].copy_from_slice(&0x1234u16.to_le_bytes());
    let bin = GoBinary::from_bytes("BIN", bytes.clone()).unwrap();
    let f = bin.function("main.F").unwrap();
    let err = bin.return_sites(f).unwrap_err().to_string();
    assert_eq!(
        err,
        "BIN: corrupt Go binary: ELF e_machine is 0x1234, not x86-64 (EM_X86_64), while \
         buildinfo says GOARCH=amd64: corrupt or another architecture"
    );
    // A real architecture's number that disagrees with GOARCH is damage too.
    bytes[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
    let bin = GoBinary::from_bytes("BIN", bytes).unwrap();
    let err = bin.return_sites(f).unwrap_err().to_string();
    assert!(
        err.contains("ELF e_machine is 0xb7 (arm64), not x86-64 (EM_X86_64), while buildinfo says GOARCH=amd64"),
        "{err}"
    );
}

#[test]
fn foreign_and_old_binaries_are_clear_errors() {
    // This test executable is an ELF but not Go.
    let me = std::env::current_exe().unwrap();
    let err = GoBinary::open(&me).unwrap_err();
    assert!(matches!(err, Error::NotGo(_)), "{err}");
    assert!(matches!(
        GoBinary::open("/nonexistent/x"),
        Err(Error::Io { .. })
    ));
    // A pclntab with the Go 1.2–1.15 magic.
    let path = build(
        Toolchain::Go126,
        Variant {
            stripped: true,
            pie: false,
        },
        &[],
        &[],
    );
    let mut data = std::fs::read(&path).unwrap();
    let layout = Layout::parse(&data).unwrap();
    let sec = layout.section(".gopclntab").unwrap().offset as usize;
    data[sec..sec + 4].copy_from_slice(&0xffff_fffbu32.to_le_bytes());
    let err = GoBinary::from_bytes("old", data).unwrap_err();
    assert!(matches!(err, Error::UnsupportedGoVersion { .. }), "{err}");
    assert!(err.to_string().contains("go1.16"), "{err}");
}

/// A small deterministic PRNG (xorshift64*): reproducible damage without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Uses everything a caller would use; errors are fine, panics are not.
fn exercise(data: Vec<u8>) {
    if let Ok(bin) = GoBinary::from_bytes("damaged", data) {
        let _ = instrumentations::detect(&bin);
        let _ = bin.find_functions("main.*");
        for f in bin.functions().iter().take(50) {
            let _ = bin.return_sites(f);
        }
        let _ = bin.build_info().to_string();
    }
}

#[test]
fn truncated_and_damaged_binaries_never_panic() {
    let path = build(
        Toolchain::Go126,
        Variant {
            stripped: true,
            pie: true,
        },
        &[],
        &[],
    );
    let clean = std::fs::read(&path).unwrap();
    let layout = Layout::parse(&clean).unwrap();
    for cut in [
        0,
        4,
        63,
        64,
        200,
        4096,
        clean.len() / 3,
        clean.len() / 2,
        clean.len() - 1,
    ] {
        exercise(clean[..cut].to_vec());
    }
    // Damage where the parsers look: ELF and program headers, pclntab header and functab,
    // buildinfo, the moduledata words; plus anywhere.
    let pcln = layout.section(".gopclntab").unwrap();
    let binfo = layout.section(".go.buildinfo").unwrap();
    let table = pclntab::locate(&clean, &layout).unwrap().unwrap();
    let hot: Vec<(usize, usize)> = vec![
        (0, 0x40 + 56 * 12),
        (pcln.offset as usize, 96),
        (pcln.offset as usize + table.functab_off, 4096),
        (pcln.offset as usize + table.funcname_off, 256),
        (binfo.offset as usize, 64),
        (0, clean.len()),
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut data = clean.clone();
    for _ in 0..150 {
        data.copy_from_slice(&clean);
        for _ in 0..1 + rng.below(6) {
            let (start, len) = hot[rng.below(hot.len())];
            let i = (start + rng.below(len)).min(data.len() - 1);
            data[i] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => data[i] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        exercise(data.clone());
    }
}
