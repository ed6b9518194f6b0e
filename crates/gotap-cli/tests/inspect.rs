//! `gotap inspect` against the Go toolchains' own answers: for every supported Go toolchain and
//! build variant (stripped or not, PIE or not) and every test program in go/testapps, the JSON
//! output must equal what `go version -m`, `go tool nm`, `go tool objdump`, `go tool buildid` and
//! `readelf -n` say about the same file. Then the failure contract on bad inputs, and `--pid`.
mod common;

use common::*;
use gotap_testkit::{build_with, free_port, Toolchain, Variant};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A program in go/testapps and the functions the test asks RET sites for.
struct Prog {
    pkg: &'static str,
    cgo: bool,
    /// `--func` patterns. Exact names, methods with `(*T)`, and globs.
    funcs: &'static [&'static str],
}

const PROGS: &[Prog] = &[
    Prog {
        pkg: "./cmd/hello",
        cgo: false,
        funcs: &["main.greet", "main.(*greeter).Greet", "fmt.Fprint*"],
    },
    Prog {
        pkg: "./cmd/deps",
        cgo: false,
        funcs: &[
            "main.greet",
            "main.(*greeter).Greet",
            "github.com/google/uuid.NewSHA1",
            "example.com/gotap/greeting.Shout",
        ],
    },
    Prog {
        pkg: "./cmd/httpserver",
        cgo: false,
        funcs: &[
            "main.greet",
            "main.(*server).hello",
            "net/http.(*conn).serve",
        ],
    },
    Prog {
        pkg: "./cmd/cgohello",
        cgo: true,
        funcs: &[
            "main.greet",
            "main.(*greeter).Greet",
            "main._Cfunc_add.abi0",
        ],
    },
];

fn build(p: &Prog, tc: Toolchain, v: Variant) -> PathBuf {
    let env: &[(&str, &str)] = if p.cgo { &[("CGO_ENABLED", "1")] } else { &[] };
    build_with("testapps", p.pkg, tc, v, &[], env)
}

fn inspect_with_funcs(bin: &Path, p: &Prog) -> Value {
    let mut args: Vec<&str> = Vec::new();
    for f in p.funcs {
        args.push("--func");
        args.push(f);
    }
    let bin = bin.to_str().unwrap();
    args.push(bin);
    inspect_json(&args)
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("want a string, got {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("want an unsigned integer, got {v}"))
}

/// A module object from the JSON (`sum` and `replace` optional).
fn json_mod(v: &Value) -> ModLine {
    ModLine {
        path: s(&v["path"]).to_string(),
        version: s(&v["version"]).to_string(),
        sum: v.get("sum").and_then(Value::as_str).map(str::to_string),
        replace: v
            .get("replace")
            .filter(|r| !r.is_null())
            .map(|r| Box::new(json_mod(r))),
    }
}

/// Go's buildinfo facts: `go version -m` and `go tool buildid` vs the JSON.
fn check_buildinfo(ctx: &str, tc: Toolchain, bin: &Path, j: &Value) {
    let want = go_version_m(tc, bin);
    assert_eq!(s(&j["go_version"]), want.go_version, "{ctx}: go_version");
    assert!(
        want.go_version.starts_with(tc.label()),
        "{ctx}: built with {} but go says {}",
        tc.label(),
        want.go_version
    );
    assert_eq!(
        s(&j["main_path"]),
        want.path,
        "{ctx}: main_path (`path` line)"
    );
    let main = if j["main"].is_null() {
        None
    } else {
        Some(json_mod(&j["main"]))
    };
    assert_eq!(main, want.main, "{ctx}: main module (`mod` line)");
    let deps: Vec<ModLine> = j["deps"].as_array().unwrap().iter().map(json_mod).collect();
    assert_eq!(deps, want.deps, "{ctx}: deps (`dep` and `=>` lines)");
    let settings: Vec<(String, String)> = j["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (s(&kv["key"]).to_string(), s(&kv["value"]).to_string()))
        .collect();
    assert_eq!(
        settings, want.settings,
        "{ctx}: settings (`build` lines, in order)"
    );
    let goos = want
        .settings
        .iter()
        .find(|(k, _)| k == "GOOS")
        .map(|(_, v)| v.as_str());
    let goarch = want
        .settings
        .iter()
        .find(|(k, _)| k == "GOARCH")
        .map(|(_, v)| v.as_str());
    assert_eq!(Some(s(&j["goos"])), goos, "{ctx}: goos");
    assert_eq!(Some(s(&j["goarch"])), goarch, "{ctx}: goarch");
    assert_eq!(
        j["elf"]["go_build_id"].as_str(),
        Some(go_buildid(tc, bin).as_str()),
        "{ctx}: go_build_id"
    );
}

/// ELF facts vs how the file was built, and the GNU build ID vs `readelf -n`.
fn check_elf(ctx: &str, p: &Prog, v: Variant, bin: &Path, j: &Value) {
    let e = &j["elf"];
    assert_eq!(e["arch"], "amd64", "{ctx}: arch");
    assert_eq!(e["pie"], v.pie, "{ctx}: pie");
    assert_eq!(e["stripped"], v.stripped, "{ctx}: stripped");
    assert_eq!(e["dwarf"], !v.stripped, "{ctx}: dwarf");
    assert_eq!(e["cgo"], p.cgo, "{ctx}: cgo");
    let out = Command::new("readelf")
        .arg("-n")
        .arg(bin)
        .output()
        .expect("run readelf");
    let notes = String::from_utf8_lossy(&out.stdout);
    let gnu = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .map(str::to_string);
    assert_eq!(
        e["build_id"].as_str().map(str::to_string),
        gnu,
        "{ctx}: GNU build id (readelf -n)"
    );
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Func {
    name: String,
    entry: u64,
    offset: u64,
    size: u64,
}

fn functions(j: &Value) -> Vec<Func> {
    j["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Func {
            name: s(&f["name"]).into(),
            entry: u(&f["entry"]),
            offset: u(&f["offset"]),
            size: u(&f["size"]),
        })
        .collect()
}

/// The function table vs `go tool nm` (unstripped builds only: nm has nothing on stripped ones).
fn check_functions_vs_nm(ctx: &str, p: &Prog, tc: Toolchain, bin: &Path, j: &Value) {
    let funcs = functions(j);
    assert!(funcs.len() > 1000, "{ctx}: only {} functions", funcs.len());
    assert!(
        funcs.windows(2).all(|w| w[0].entry < w[1].entry),
        "{ctx}: functions not sorted by entry / duplicate entries"
    );
    for w in funcs.windows(2) {
        assert!(
            w[0].size > 0 && w[0].entry + w[0].size <= w[1].entry,
            "{ctx}: {:?} overlaps {:?}",
            w[0],
            w[1]
        );
    }
    // Go's text is one executable segment: the vaddr→file offset delta is the same everywhere.
    let delta = funcs[0].entry - funcs[0].offset;
    assert!(
        funcs.iter().all(|f| f.entry - f.offset == delta),
        "{ctx}: entry-offset delta varies"
    );

    let mut by_name: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for f in &funcs {
        by_name.entry(f.name.as_str()).or_default().push(f.entry);
    }
    // An ABIInternal function and its ABI0 twin (an assembly function and its wrapper, or a Go
    // function and the ABI0 wrapper assembly calls it through) share one pclntab name; the
    // linker's symbol table tells them apart with `.abi0`, and so must gotap, or `--func NAME`
    // is ambiguous. (Other repeated names are legitimate: generic instantiations all print as
    // `F[...]` in pclntab.) Checked last so the other checks still report when this fails.
    let check_dups = |nm_at: &BTreeMap<u64, Vec<&str>>| {
        let twins: Vec<(&str, u64)> = funcs
            .iter()
            .filter(|f| by_name[f.name.as_str()].len() > 1)
            .filter(|f| {
                nm_at
                    .get(&f.entry)
                    .is_some_and(|n| n.contains(&format!("{}.abi0", f.name).as_str()))
            })
            .map(|f| (f.name.as_str(), f.entry))
            .collect();
        assert!(
            twins.is_empty(),
            "{ctx}: {} ABI0 functions carry the same name as their ABIInternal twin (go tool nm calls them NAME.abi0): {:x?}",
            twins.len(),
            &twins[..twins.len().min(10)]
        );
    };
    let nm = go_nm_text(tc, bin);
    let text_end = funcs.last().map(|f| f.entry + f.size).unwrap();
    let at: BTreeMap<u64, &str> = funcs.iter().map(|f| (f.entry, f.name.as_str())).collect();
    // The linker names an ABI0 symbol `NAME.abi0` when an ABIInternal symbol NAME exists in its
    // symbol table — even one dead code removed, which leaves no trace in pclntab. So a stripped
    // binary cannot tell `runtime.abort.abi0` (asm whose wrapper was dropped) from a plain
    // `runtime.abort`: accept the unsuffixed name for an nm `.abi0` symbol. (Pairs that are both
    // in pclntab must be told apart: see check_dups.)
    // pclntab also holds names as the runtime prints them (runtime.FuncForPC, tracebacks), which
    // differ from the symbol table's in two ways: bracketed type arguments are elided to `[...]`
    // (go1.18+: `type..eq.[...]runtime.Frame`, `(*nistCurve[...]).Add`), and closures of
    // generated functions keep `·` where nm shows `.` (go1.26: `type:.eq.runtime.untracedG·7`).
    let same = |nm_name: &str, ours: &str| {
        let ours = ours.replace('·', ".");
        let eq = |n: &str| n == ours || (ours.contains("[...]") && elide_brackets(n) == ours);
        eq(nm_name) || nm_name.strip_suffix(".abi0").is_some_and(eq)
    };
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let markers = ["runtime.text", "runtime.etext", "go:buildid"];
    for (name, addr) in nm.iter().filter(|(n, _)| !markers.contains(&n.as_str())) {
        match at.get(addr) {
            Some(ours) if same(name, ours) => {}
            Some(ours) => wrong.push((name.as_str(), *addr, *ours)),
            None => missing.push((name.as_str(), *addr)),
        }
    }
    assert!(wrong.is_empty(), "{ctx}: {} functions named otherwise than go tool nm says (nm name, address, gotap name): {:x?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    // Symbols nm lists that are not Go functions, so pclntab has no entry for them:
    // - `markers`: `runtime.text`/`runtime.etext` mark the ends of Go's text, `go:buildid` is the
    //   Go build ID string at the start of text;
    // - with cgo (external linking), the C code from gcc (crt files, libc glue, `_cgo_*`,
    //   `crosscall*`, the C function itself): outside [first Go func, last Go func end).
    let first = funcs[0].entry;
    missing.retain(|&(_, addr)| !(p.cgo && (addr < first || addr >= text_end)));
    assert!(
        missing.is_empty(),
        "{ctx}: {} text symbols go tool nm lists but gotap does not: {:#x?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    // And nothing invented: every pclntab function is a symbol nm knows, at the same address.
    let nm_at: BTreeMap<u64, Vec<&str>> = nm.iter().fold(BTreeMap::new(), |mut m, (n, a)| {
        m.entry(*a).or_insert_with(Vec::new).push(n.as_str());
        m
    });
    let extra: Vec<&Func> = funcs
        .iter()
        .filter(|f| {
            !nm_at
                .get(&f.entry)
                .is_some_and(|names| names.iter().any(|n| same(n, &f.name)))
        })
        .collect();
    assert!(
        extra.is_empty(),
        "{ctx}: {} functions gotap lists that go tool nm does not: {:#x?}",
        extra.len(),
        &extra[..extra.len().min(20)]
    );
    check_dups(&nm_at);
}

/// `a.F[x.T[y]].m[2]` → `a.F[...].m[...]`, as the linker writes pclntab names.
fn elide_brackets(name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in name.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[...");
                }
                depth += 1;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(']');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// `probes` (from `--func`) vs `go tool objdump`: entry, every RET, and the file bytes at the
/// reported file offsets (the first instruction at the entry offset, a RET at each RET offset).
fn check_probes_vs_objdump(ctx: &str, p: &Prog, tc: Toolchain, bin: &Path, j: &Value) {
    let probes = j["probes"].as_array().unwrap();
    let names: Vec<&str> = probes.iter().map(|pr| s(&pr["name"])).collect();
    // Each pattern produced exactly the functions nm has under that name / glob.
    let nm = go_nm_text(tc, bin);
    let mut want_names: Vec<&str> = Vec::new();
    for pat in p.funcs {
        match pat.strip_suffix('*') {
            Some(prefix) => want_names.extend(
                nm.iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| n.starts_with(prefix)),
            ),
            None => want_names.push(pat),
        }
    }
    let unsuffixed = |n: &&str| n.strip_suffix(".abi0").unwrap_or(n).to_string();
    assert_eq!(
        names.iter().map(unsuffixed).collect::<BTreeSet<_>>(),
        want_names.iter().map(unsuffixed).collect::<BTreeSet<_>>(),
        "{ctx}: functions matched by --func {:?}",
        p.funcs
    );
    let dump = go_objdump(tc, bin, &names);
    let file = std::fs::read(bin).unwrap();
    for pr in probes {
        let name = s(&pr["name"]);
        let insns = dump
            .get(name)
            .or_else(|| dump.get(&format!("{name}.abi0")))
            .unwrap_or_else(|| panic!("{ctx}: objdump has no {name}"));
        assert_eq!(u(&pr["entry"]), insns[0].address, "{ctx}: {name} entry");
        let off = u(&pr["offset"]) as usize;
        assert_eq!(
            &file[off..off + insns[0].bytes.len()],
            &insns[0].bytes[..],
            "{ctx}: {name}: bytes at entry file offset"
        );
        let want: Vec<u64> = insns
            .iter()
            .filter(|i| i.asm.split_whitespace().next() == Some("RET"))
            .map(|i| i.address)
            .collect();
        assert!(!want.is_empty(), "{ctx}: objdump shows no RET in {name}");
        let rets = pr["returns"].as_array().unwrap();
        let got: Vec<u64> = rets.iter().map(|r| u(&r["address"])).collect();
        assert_eq!(got, want, "{ctx}: RET sites of {name} (objdump)");
        for r in rets {
            let (a, o) = (u(&r["address"]), u(&r["offset"]) as usize);
            assert_eq!(
                file[o], 0xc3,
                "{ctx}: {name}: no RET byte at file offset {o:#x} (address {a:#x})"
            );
            assert_eq!(
                a - u(&pr["entry"]),
                o as u64 - u(&pr["offset"]),
                "{ctx}: {name}: RET offset not consistent with entry"
            );
        }
    }
}

/// Runs one check, recording its failure instead of stopping: one run shows every problem.
fn soft(failures: &mut Vec<String>, f: impl FnOnce()) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
        failures.push(msg.unwrap_or_else(|| "panic".into()));
    }
}

/// Everything for one toolchain: all programs × all variants.
fn check_toolchain(tc: Toolchain) {
    let mut failures = Vec::new();
    let f = &mut failures;
    for p in PROGS {
        for pie in [false, true] {
            let full_v = Variant {
                stripped: false,
                pie,
            };
            let stripped_v = Variant {
                stripped: true,
                pie,
            };
            let full = build(p, tc, full_v);
            let ctx = format!("{} {} {}", tc.label(), p.pkg, full_v.label());
            let jf = inspect_with_funcs(&full, p);
            soft(f, || check_buildinfo(&ctx, tc, &full, &jf));
            soft(f, || check_elf(&ctx, p, full_v, &full, &jf));
            soft(f, || check_functions_vs_nm(&ctx, p, tc, &full, &jf));
            soft(f, || check_probes_vs_objdump(&ctx, p, tc, &full, &jf));

            // Stripped: the toolchain has no symbols to compare with, so compare with the
            // unstripped build of the same program: `-s -w` drops .symtab and DWARF, which sit
            // after the code, so functions keep their addresses and file offsets.
            let stripped = build(p, tc, stripped_v);
            let ctx = format!("{} {} {}", tc.label(), p.pkg, stripped_v.label());
            let js = inspect_with_funcs(&stripped, p);
            soft(f, || check_buildinfo(&ctx, tc, &stripped, &js));
            soft(f, || check_elf(&ctx, p, stripped_v, &stripped, &js));
            soft(f, || {
                let (ff, fs) = (functions(&jf), functions(&js));
                assert_eq!(
                    fs.len(),
                    ff.len(),
                    "{ctx}: function count differs from the unstripped build"
                );
                for (a, b) in ff.iter().zip(&fs) {
                    assert_eq!(a, b, "{ctx}: function differs from the unstripped build");
                }
                assert_eq!(
                    js["probes"], jf["probes"],
                    "{ctx}: --func results differ from the unstripped build"
                );
            });
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed checks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn matches_go1_19() {
    check_toolchain(Toolchain::Go119);
}

#[test]
fn matches_go1_26() {
    check_toolchain(Toolchain::Go126);
}

#[test]
fn matches_go1_27() {
    check_toolchain(Toolchain::Go127);
}

// ---- failure contract: exit 2, one line `gotap: …` ----

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn hello(tc: Toolchain, v: Variant) -> PathBuf {
    build(&PROGS[0], tc, v)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Start of pclntab: magic (0xfffffff0 go1.18–1.19, 0xfffffff1 go1.20+), two zero pad bytes,
/// instruction quantum 1 and pointer size 8 on amd64.
fn pclntab_start(b: &[u8]) -> usize {
    (0..b.len() - 8)
        .find(|&i| matches!(b[i], 0xf0 | 0xf1) && b[i + 1..i + 8] == [0xff, 0xff, 0xff, 0, 0, 1, 8])
        .expect("pclntab magic")
}

fn write_variant(name: &str, bytes: &[u8]) -> String {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let text = write_variant(
        "notes.txt",
        b"these are not the bytes you are looking for\n",
    );
    let msg = assert_user_error(&["inspect", &text]);
    assert!(msg.contains("not an ELF"), "{msg}");
    assert_user_error(&["inspect", "--json", &text]);

    let msg = assert_user_error(&["inspect", "/bin/ls"]);
    assert!(msg.contains("not a Go binary"), "{msg}");

    let empty = write_variant("empty", b"");
    assert_user_error(&["inspect", &empty]);
    let dir = tmp("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    assert_user_error(&["inspect", dir.to_str().unwrap()]);
    let missing = tmp("does-not-exist");
    let msg = assert_user_error(&["inspect", missing.to_str().unwrap()]);
    assert!(
        msg.contains("does-not-exist"),
        "the message names the path: {msg}"
    );

    for tc in gotap_testkit::ALL_TOOLCHAINS {
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
            let bin = std::fs::read(hello(tc, v)).unwrap();
            let label = format!("{}-{}", tc.label(), v.label());
            // Truncated: ELF header present, everything it points to gone or cut.
            for keep in [64, 4096, 64 * 1024, bin.len() / 2] {
                let p = write_variant(&format!("trunc-{keep}-{label}"), &bin[..keep]);
                assert_user_error(&["inspect", &p]);
            }
            // pclntab header overwritten: magic, then the function count (huge), then the
            // offsets to the tables that follow.
            let pcln = pclntab_start(&bin);
            for (at, bytes) in [
                (0, vec![0x42; 4]),
                (8, vec![0xff; 8]),
                (16, vec![0xff; 8 * 6]),
                (8, vec![0; 8]),
            ] {
                let mut b = bin.clone();
                b[pcln + at..pcln + at + bytes.len()].copy_from_slice(&bytes);
                let p = write_variant(&format!("pcln-{at}-{}-{label}", bytes[0]), &b);
                assert_user_error(&["inspect", &p]);
            }
            // Buildinfo: magic overwritten; version string length turned into a huge varint.
            let bi = find(&bin, b"\xff Go buildinf:").expect("buildinfo magic");
            for (at, bytes) in [(0, vec![0u8; 14]), (32, vec![0xff; 10])] {
                let mut b = bin.clone();
                b[bi + at..bi + at + bytes.len()].copy_from_slice(&bytes);
                let p = write_variant(&format!("bi-{at}-{label}"), &b);
                assert_user_error(&["inspect", &p]);
            }
        }
    }

    let bin = hello(Toolchain::Go126, Variant::default());
    let bin = bin.to_str().unwrap();
    let msg = assert_user_error(&["inspect", "--func", "main.noSuchFunction", bin]);
    assert!(msg.contains("main.noSuchFunction"), "{msg}");
    assert_user_error(&["inspect", "--func", "nosuchpkg.*", bin]);
    assert_user_error(&["inspect", "--func", "main.[", bin]);
}

/// Corrupt input through the CLI: a handful of single-byte and single-field mutations of real
/// binaries. `gotap inspect` exits 2 with one line, or 0 with valid JSON; never a panic (101).
#[test]
fn mutated_binaries_exit_2_or_0_never_101() {
    let stripped = Variant {
        stripped: true,
        pie: false,
    };
    for tc in [Toolchain::Go119, Toolchain::Go126, Toolchain::Go127] {
        let bin = std::fs::read(hello(tc, stripped)).unwrap();
        let label = format!("{}-{}", tc.label(), stripped.label());
        let pcln = pclntab_start(&bin);
        let bi = find(&bin, b"\xff Go buildinf:").expect("buildinfo magic");
        // The copy inside the buildinfo blob (Go 1.19 has another for runtime/debug).
        let ldflags = bi + find(&bin[bi..], b"-ldflags=\"-s -w\"").expect("-ldflags in buildinfo");
        let shoff = u64::from_le_bytes(bin[0x28..0x30].try_into().unwrap()) as usize;
        let cases: [(&str, usize, &[u8]); 7] = [
            // The closing quote of -ldflags="-s -w": this panicked `unquote`.
            (
                "ldflags-quote",
                ldflags + b"-ldflags=\"-s -w".len(),
                &[0xff],
            ),
            ("ldflags-open-quote", ldflags + b"-ldflags=".len(), &[0xc3]),
            ("e-machine", 0x12, &[0x34, 0x12]),
            ("pclntab-nfunc", pcln + 8, &[0xff; 8]),
            ("buildinfo-ptrsize", bi + 14, &[0x03]),
            ("shdr-1-offset", shoff + 64 + 24, &[0xff; 8]),
            ("phoff", 0x20, &[0xff; 8]),
        ];
        for (name, at, bytes) in cases {
            let mut b = bin.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            let p = write_variant(&format!("mut-{name}-{label}"), &b);
            let args = ["inspect", "--json", "--func", "main.greet", "--offsets", &p];
            let (code, stdout, stderr) = gotap(&args);
            let ctx = format!("{label} {name}");
            match code {
                0 => {
                    serde_json::from_str::<Value>(&stdout)
                        .unwrap_or_else(|e| panic!("{ctx}: exit 0 with invalid JSON ({e})"));
                }
                2 => {
                    assert_user_error(&args);
                }
                _ => panic!("{ctx}: exit {code}, stderr: {stderr}"),
            }
            if name == "ldflags-quote" {
                assert_eq!(code, 2, "{ctx}: a damaged quote must be refused");
                assert!(stderr.contains("invalid quoted value"), "{ctx}: {stderr}");
            }
            if name == "e-machine" {
                assert!(
                    stderr.contains("ELF e_machine is 0x1234, not x86-64 (EM_X86_64)"),
                    "{ctx}: {stderr}"
                );
            }
        }
    }
}

#[test]
fn pid_errors_are_one_line() {
    // A pid that does not exist: above any pid_max.
    assert_user_error(&["inspect", "--pid", "2147483646"]);
    let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleep.id().to_string();
    let msg = assert_user_error(&["inspect", "--pid", &pid]);
    sleep.kill().unwrap();
    sleep.wait().unwrap();
    assert!(msg.contains("not a Go binary"), "{msg}");
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pid_gives_the_same_facts_as_the_file() {
    let p = &PROGS[2];
    for (tc, v) in [
        (
            Toolchain::Go126,
            Variant {
                stripped: false,
                pie: true,
            },
        ),
        (
            Toolchain::Go119,
            Variant {
                stripped: true,
                pie: false,
            },
        ),
    ] {
        let bin = build(p, tc, v);
        let port = free_port();
        let child = Killed(
            Command::new(&bin)
                .env("PORT", port.to_string())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gotap_testkit::listening(port) {
            assert!(
                Instant::now() < deadline,
                "httpserver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.0.id().to_string();
        let mut from_pid = inspect_json(&["--pid", &pid, "--func", "main.(*server).hello"]);
        let mut from_file =
            inspect_json(&["--func", "main.(*server).hello", bin.to_str().unwrap()]);
        // The contract leaves `path` open for --pid: the /proc link or the file it points to.
        let path = s(&from_pid["path"]);
        assert!(
            path == format!("/proc/{pid}/exe") || Path::new(path) == bin,
            "--pid path {path}"
        );
        from_pid["path"] = Value::Null;
        from_file["path"] = Value::Null;
        assert_eq!(
            from_pid,
            from_file,
            "{} {}: --pid and file disagree",
            tc.label(),
            v.label()
        );
    }
}

#[test]
fn human_output_matches_go_version_m() {
    // The text output starts with exactly what `go version -m` prints (after the file name).
    let tc = Toolchain::Go126;
    let bin = build(&PROGS[1], tc, Variant::default());
    let (code, out, err) = gotap(&["inspect", bin.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let go = Command::new(tc.go())
        .env("GOTOOLCHAIN", "local")
        .args(["version", "-m"])
        .arg(&bin)
        .output()
        .unwrap();
    let go = String::from_utf8(go.stdout).unwrap();
    assert!(
        out.starts_with(&go),
        "gotap inspect:\n{out}\ngo version -m:\n{go}"
    );
}
