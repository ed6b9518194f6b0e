//! Struct field offsets against real Go builds made with each toolchain ($GO119, $GO126, $GO127
//! from scripts/env.sh): the DWARF reader, the checked-in table, the generator, and an independent
//! oracle (reflect offsets printed by a running Go program, runtime.g from the compiler's
//! go_asm.h).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gotap_binary::dwarf::struct_offsets;
use gotap_binary::offsets::{self, GoVersion, Table, ALL, REQUIRED};
use gotap_binary::{Error, FieldRef, GoBinary, OffsetSource};

struct Toolchain {
    var: &'static str,
    go: PathBuf,
    /// `go env GOVERSION`, e.g. `go1.26.8`.
    version: String,
    /// go/offsetgen built with this toolchain, unstripped and with `-ldflags=-s -w`.
    unstripped: PathBuf,
    stripped: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("gotap-offsets")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, panicking with its stderr if it fails; returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A `go` command with scripts/env.sh's environment (GOTOOLCHAIN=local, GOFLAGS).
fn go(tc: &Toolchain) -> Command {
    let mut c = Command::new(&tc.go);
    c.env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .env("CGO_ENABLED", "0");
    c
}

/// The three toolchains, each with its two offsetgen builds; built once per test binary.
fn toolchains() -> &'static [Toolchain] {
    static TOOLCHAINS: OnceLock<Vec<Toolchain>> = OnceLock::new();
    TOOLCHAINS.get_or_init(|| {
        let env = run(Command::new("bash").current_dir(workspace()).args([
            "-c",
            "source scripts/env.sh && echo \"$GO119\" && echo \"$GO126\" && echo \"$GO127\"",
        ]));
        let paths: Vec<&str> = env.lines().collect();
        ["GO119", "GO126", "GO127"]
            .into_iter()
            .zip(paths)
            .map(|(var, path)| {
                let go_path = PathBuf::from(path);
                assert!(
                    go_path.is_file(),
                    "${var} ({path}) is missing: run scripts/toolchains.sh"
                );
                let mut tc = Toolchain {
                    var,
                    go: go_path,
                    version: String::new(),
                    unstripped: PathBuf::new(),
                    stripped: PathBuf::new(),
                };
                tc.version = run(go(&tc).args(["env", "GOVERSION"])).trim().to_string();
                let dir = scratch(var);
                tc.unstripped = dir.join("offsetgen");
                tc.stripped = dir.join("offsetgen-stripped");
                let src = workspace().join("go/offsetgen");
                run(go(&tc)
                    .current_dir(&src)
                    .args(["build", "-o"])
                    .arg(&tc.unstripped));
                run(go(&tc)
                    .current_dir(&src)
                    .args(["build", "-ldflags=-s -w", "-o"])
                    .arg(&tc.stripped));
                tc
            })
            .collect()
    })
}

fn minor(tc: &Toolchain) -> u32 {
    GoVersion::parse(&tc.version).unwrap().minor
}

fn table_row(version: &str) -> &'static offsets::TableRow {
    let label = GoVersion::parse(version).unwrap().minor_label();
    let table = Table::builtin().unwrap();
    table
        .rows
        .iter()
        .find(|r| r.go == label)
        .unwrap_or_else(|| panic!("no table row {label}"))
}

fn table_value(row: &offsets::TableRow, f: FieldRef) -> Option<u64> {
    *row.offsets
        .get(f.strukt)
        .and_then(|s| s.get(f.field))
        .unwrap_or_else(|| panic!("{f} not in row {}", row.go))
}

#[test]
fn dwarf_offsets_equal_the_table_row_of_each_toolchain() {
    for tc in toolchains() {
        let bytes = std::fs::read(&tc.unstripped).unwrap();
        let found = struct_offsets(&bytes, ALL).unwrap();
        let row = table_row(&tc.version);
        assert_eq!(
            row.measured_with, tc.version,
            "table row {} measured with another patch release",
            row.go
        );
        for f in ALL {
            let dwarf = found
                .get(f)
                .unwrap_or_else(|| panic!("{}: {} not in DWARF", tc.var, f.strukt));
            assert_eq!(*dwarf, table_value(row, *f), "{}: {f}", tc.version);
        }
        // Request.Pattern exists from go1.23 on: absent in 1.19, present in the others.
        assert_eq!(
            found[&offsets::REQUEST_PATTERN].is_some(),
            minor(tc) >= 23,
            "{}",
            tc.version
        );
    }
}

#[test]
fn unstripped_binary_resolves_every_field_from_dwarf() {
    for tc in toolchains() {
        let bin = GoBinary::open(&tc.unstripped).unwrap();
        assert!(
            bin.elf().dwarf,
            "{}: unstripped build without DWARF?",
            tc.version
        );
        for r in offsets::resolve(&bin, ALL) {
            assert_eq!(r.source, Some(OffsetSource::Dwarf), "{}: {r:?}", tc.version);
            if r.field == "Pattern" && minor(tc) < 23 {
                assert!(r.absent && r.offset.is_none(), "{r:?}");
                assert_eq!(
                    r.error.as_deref(),
                    Some(format!("absent in this Go version ({})", tc.version).as_str())
                );
            } else {
                assert!(
                    r.offset.is_some() && !r.absent && r.error.is_none(),
                    "{}: {r:?}",
                    tc.version
                );
            }
        }
        assert_eq!(offsets::resolve_one(&bin, offsets::G_GOID).unwrap(), 152);
    }
}

#[test]
fn stripped_binary_resolves_every_required_field_from_the_table() {
    for tc in toolchains() {
        let bin = GoBinary::open(&tc.stripped).unwrap();
        assert!(
            !bin.elf().dwarf,
            "{}: -ldflags=-s -w build still has DWARF",
            tc.version
        );
        assert_eq!(bin.go_version(), tc.version);
        let row = table_row(&tc.version);
        let resolved = offsets::resolve(&bin, REQUIRED);
        assert_eq!(resolved.len(), REQUIRED.len());
        for (f, r) in REQUIRED.iter().zip(&resolved) {
            assert_eq!(
                r.source,
                Some(OffsetSource::Table {
                    entry: row.go.clone()
                }),
                "{}: {r:?}",
                tc.version
            );
            assert_eq!(r.offset, table_value(row, *f), "{}: {f}", tc.version);
            let absent = *f == offsets::REQUEST_PATTERN && minor(tc) < 23;
            assert_eq!(r.absent, absent, "{}: {r:?}", tc.version);
            assert_eq!(r.error.is_some(), absent, "{}: {r:?}", tc.version);
        }
        match offsets::resolve_one(&bin, offsets::REQUEST_PATTERN) {
            Ok(off) => assert!(minor(tc) >= 23 && off > 0),
            Err(Error::OffsetUnavailable(name, why)) => {
                assert!(minor(tc) < 23);
                assert_eq!(name, "net/http.Request.Pattern");
                assert_eq!(why, format!("absent in this Go version ({})", tc.version));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// The oracle: a Go program that serves one request (to get hold of net/http's unexported
/// `response` type), walks the types reachable from a few roots with reflect, and prints
/// `<pkgpath>.<Type> <field> <offset>` for every named struct's fields.
const ORACLE: &str = r#"package main

import (
	"bufio"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
)

// oracleDriver has no OpenConnector, so sql.Open keeps its DSN in a database/sql.dsnConnector.
type oracleDriver struct{}

func (oracleDriver) Open(string) (driver.Conn, error) { return nil, errors.New("not a driver") }

func main() {
	sql.Register("oracle", oracleDriver{})
	db, err := sql.Open("oracle", "dsn")
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	got := make(chan reflect.Type, 1)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- reflect.TypeOf(w) }))
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	roots := []reflect.Type{<-got, reflect.TypeOf(http.Request{}), reflect.TypeOf(http.Response{}),
		reflect.TypeOf(url.URL{}), reflect.TypeOf(http.Server{}), reflect.TypeOf(http.Transport{}),
		reflect.TypeOf(bufio.Reader{}), reflect.TypeOf(net.TCPConn{}), reflect.TypeOf(net.TCPAddr{}),
		reflect.TypeOf(db).Elem(), reflect.TypeOf((*sql.Stmt)(nil)).Elem(),
		reflect.ValueOf(db).Elem().FieldByName("connector").Elem().Type()}
	seen := map[reflect.Type]bool{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Ptr, reflect.Slice, reflect.Array, reflect.Chan:
			visit(t.Elem())
		case reflect.Map:
			visit(t.Key())
			visit(t.Elem())
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				if t.Name() != "" {
					fmt.Printf("%s.%s %s %d\n", t.PkgPath(), t.Name(), f.Name, f.Offset)
				}
				visit(f.Type)
			}
		}
	}
	for _, r := range roots {
		visit(r)
	}
}
"#;

/// `#define g_goid 152`-style lines of the runtime's go_asm.h, as this toolchain's compiler
/// writes it: the layout the runtime's own assembly relies on.
fn runtime_asm_header(tc: &Toolchain) -> HashMap<String, u64> {
    let out = go(tc)
        .args(["build", "-a", "-work", "-o", "/dev/null", "runtime"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let work = stderr
        .lines()
        .find_map(|l| l.strip_prefix("WORK="))
        .expect("go build -work prints WORK=");
    let mut defines = HashMap::new();
    for entry in std::fs::read_dir(work).unwrap() {
        let Ok(text) = std::fs::read_to_string(entry.unwrap().path().join("go_asm.h")) else {
            continue;
        };
        if !text.contains("#define g_goid ") {
            continue;
        }
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("#define"), Some(name), Some(value)) =
                (words.next(), words.next(), words.next())
            {
                if let Ok(v) = value.parse() {
                    defines.insert(name.to_string(), v);
                }
            }
        }
    }
    std::fs::remove_dir_all(work).unwrap();
    defines
}

#[test]
fn reflect_and_the_compiler_agree_with_the_table_and_dwarf() {
    for tc in toolchains() {
        let dir = scratch(&format!("oracle-{}", tc.var));
        std::fs::write(dir.join("main.go"), ORACLE).unwrap();
        std::fs::write(dir.join("go.mod"), "module oracle\n\ngo 1.19\n").unwrap();
        run(go(tc)
            .current_dir(&dir)
            .args(["build", "-o", "oracle", "."]));
        let printed = run(&mut Command::new(dir.join("oracle")));
        let mut oracle: HashMap<(String, String), u64> = HashMap::new();
        for line in printed.lines() {
            let mut words = line.rsplitn(3, ' ');
            let (off, field, strukt) = (
                words.next().unwrap(),
                words.next().unwrap(),
                words.next().unwrap(),
            );
            oracle.insert((strukt.into(), field.into()), off.parse().unwrap());
        }
        let asm = runtime_asm_header(tc);
        let dwarf = struct_offsets(&std::fs::read(dir.join("oracle")).unwrap(), ALL).unwrap();
        let row = table_row(&tc.version);
        let mut checked = 0;
        for f in ALL {
            // Runtime structs: the compiler's own go_asm.h (g_goid, m_curg…) is the oracle.
            let expected = if let Some(short) = f.strukt.strip_prefix("runtime.") {
                Some(asm[&format!("{short}_{}", f.field)])
            } else {
                let key = (f.strukt.to_string(), f.field.to_string());
                assert!(
                    oracle.contains_key(&key) || oracle.keys().any(|(s, _)| s == f.strukt),
                    "{}: the oracle never reaches {} (add a root for it)",
                    tc.version,
                    f.strukt
                );
                oracle.get(&key).copied()
            };
            assert_eq!(
                table_value(row, *f),
                expected,
                "{}: table vs oracle for {f}",
                tc.version
            );
            assert_eq!(
                dwarf[f], expected,
                "{}: DWARF vs oracle for {f}",
                tc.version
            );
            checked += 1;
        }
        assert_eq!(checked, ALL.len());
    }
}

#[test]
fn the_generator_reproduces_the_checked_in_table() {
    toolchains(); // the Go build cache is warm, and every toolchain is known to be there
    let out = scratch("generator").join("stdlib.json");
    let _ = std::fs::remove_file(&out);
    // A plain `cargo test` has built the example already; `--test offsets` has not. Cargo has
    // released its build lock by the time tests run, so building it here does not deadlock.
    let exe = std::env::current_exe().unwrap();
    let generator = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/gen_offsets");
    if !generator.is_file() {
        run(Command::new(env!("CARGO")).args([
            "build",
            "--quiet",
            "-p",
            "gotap-binary",
            "--example",
            "gen_offsets",
        ]));
    }
    run(Command::new(workspace().join("scripts/gen-offsets.sh"))
        .env("GOTAP_OFFSETS_OUT", &out)
        .env("GOTAP_GEN_OFFSETS", &generator));
    let fresh = std::fs::read_to_string(&out).unwrap();
    let checked_in =
        std::fs::read_to_string(workspace().join("crates/gotap-binary/offsets/stdlib.json"))
            .unwrap();
    assert!(
        fresh == checked_in,
        "offsets/stdlib.json is stale: run scripts/gen-offsets.sh\n{fresh}"
    );
}

/// Resolves on a binary without DWARF claiming `version`: exercises the table alone.
fn from_table(version: &str, fields: &[FieldRef]) -> Vec<gotap_binary::FieldOffset> {
    offsets::resolve_elf(&[], false, version, fields)
}

#[test]
fn an_unmeasured_patch_release_uses_its_minor_row() {
    let row = table_row("go1.26");
    for r in from_table("go1.26.0", ALL) {
        assert_eq!(
            r.source,
            Some(OffsetSource::Table {
                entry: "go1.26".into()
            }),
            "{r:?}"
        );
        assert!(r.offset.is_some(), "{r:?}");
    }
    assert_eq!(
        from_table("go1.26rc1", &[offsets::G_GOID])[0].offset,
        table_value(row, offsets::G_GOID)
    );
}

#[test]
fn a_version_above_the_last_row_inherits_it_unverified() {
    let last = Table::builtin().unwrap().rows.last().unwrap();
    let next = GoVersion::parse(&last.go).unwrap().minor + 1;
    let version = format!("go1.{next}.2");
    let entry = format!("{} layout, inherited by go1.{next}: unverified", last.go);
    for (f, r) in ALL.iter().zip(from_table(&version, ALL)) {
        assert_eq!(
            r.source,
            Some(OffsetSource::Table {
                entry: entry.clone()
            }),
            "{r:?}"
        );
        assert_eq!(r.offset, table_value(last, *f), "{f}");
    }
}

#[test]
fn a_version_between_rows_inherits_only_what_did_not_change() {
    let table = Table::builtin().unwrap();
    let (lower, upper) = (&table.rows[0], &table.rows[1]);
    let (lo, hi) = (
        GoVersion::parse(&lower.go).unwrap().minor,
        GoVersion::parse(&upper.go).unwrap().minor,
    );
    assert!(
        hi > lo + 1,
        "no unmeasured minor between {} and {}",
        lower.go,
        upper.go
    );
    let between = format!("go1.{}.1", lo + 1);
    let (mut inherited, mut refused) = (0, 0);
    for (f, r) in ALL.iter().zip(from_table(&between, ALL)) {
        let (a, b) = (table_value(lower, *f), table_value(upper, *f));
        if a == b {
            let entry = format!(
                "{} layout, inherited by go1.{}: unverified",
                lower.go,
                lo + 1
            );
            assert_eq!(r.source, Some(OffsetSource::Table { entry }), "{r:?}");
            assert_eq!(r.offset, a);
            inherited += 1;
        } else {
            assert_eq!(r.offset, None);
            let why = r.error.unwrap();
            assert!(
                why.starts_with("binary has no DWARF and the offsets table does not cover"),
                "{why}"
            );
            assert!(
                why.contains(&format!("{f} changed between {} (", lower.go)),
                "{why}"
            );
            refused += 1;
        }
    }
    // Both behaviours are exercised: goid kept its place, Request.ctx moved (Pattern came in).
    assert!(
        inherited > 0 && refused > 0,
        "inherited {inherited}, refused {refused}"
    );
    assert!(from_table(&between, &[offsets::REQUEST_CTX])[0]
        .offset
        .is_none());
}

#[test]
fn a_version_below_the_first_row_or_unparsable_is_unavailable() {
    let r = &from_table("go1.12.17", &[offsets::G_GOID])[0];
    assert_eq!(r.offset, None);
    assert_eq!(
        r.error.as_deref(),
        Some("binary has no DWARF and the offsets table has no row for go1.12 (lowest is go1.19)")
    );
    let r = &from_table("weird", &[offsets::G_GOID])[0];
    assert_eq!(
        r.error.as_deref(),
        Some("binary has no DWARF and the Go version \"weird\" cannot be parsed")
    );
    let err =
        offsets::offset_of(&from_table("go1.12", &[offsets::G_GOID]), offsets::G_GOID).unwrap_err();
    assert_eq!(
        err.to_string(),
        "offset of runtime.g.goid not available: binary has no DWARF and the offsets table has no row for go1.12 (lowest is go1.19)"
    );
}

#[test]
fn unreadable_dwarf_is_an_error_and_resolution_falls_back_to_the_table() {
    assert!(matches!(
        struct_offsets(b"not an elf file", ALL),
        Err(Error::Dwarf(_))
    ));
    // Damage the compressed .debug_info of a real build: decompression must fail cleanly.
    let tc = &toolchains()[1];
    let mut bytes = std::fs::read(&tc.unstripped).unwrap();
    let (start, len) = {
        use object::{Object, ObjectSection};
        let file = object::File::parse(&*bytes).unwrap();
        let s = file.section_by_name(".debug_info").unwrap();
        let (start, len) = s.file_range().unwrap();
        (start as usize, len as usize)
    };
    for b in &mut bytes[start + 24..start + len / 2] {
        *b = !*b;
    }
    let err = struct_offsets(&bytes, ALL).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the binary's DWARF"),
        "{err}"
    );
    let r = &offsets::resolve_elf(&bytes, true, &tc.version, &[offsets::G_GOID])[0];
    assert_eq!(r.offset, Some(152));
    assert_eq!(
        r.source,
        Some(OffsetSource::Table {
            entry: table_row(&tc.version).go.clone()
        })
    );
}

#[test]
fn every_dwarf_compression_form_reads_the_same() {
    // Go writes SHF_COMPRESSED zlib; older linkers wrote GNU `.zdebug_*`; other tools zstd or
    // nothing. Produce each from one uncompressed build with objcopy.
    let tc = &toolchains()[1];
    let dir = scratch("compression");
    let raw = dir.join("raw");
    run(go(tc)
        .current_dir(workspace().join("go/offsetgen"))
        .args(["build", "-ldflags=-compressdwarf=false", "-o"])
        .arg(&raw));
    let expected = struct_offsets(&std::fs::read(&tc.unstripped).unwrap(), ALL).unwrap();
    assert_eq!(expected.len(), ALL.len());
    for (form, flag) in [
        ("raw", None),
        ("zlib-gnu", Some("zlib-gnu")),
        ("zstd", Some("zstd")),
    ] {
        let path = match flag {
            None => raw.clone(),
            Some(flag) => {
                let out = dir.join(form);
                run(Command::new("objcopy")
                    .arg(format!("--compress-debug-sections={flag}"))
                    .arg(&raw)
                    .arg(&out));
                out
            }
        };
        let bytes = std::fs::read(&path).unwrap();
        let zdebug = bytes.windows(13).any(|w| w == b".zdebug_info\0");
        assert_eq!(
            zdebug,
            form == "zlib-gnu",
            "{form}: objcopy did not produce the expected sections"
        );
        assert_eq!(struct_offsets(&bytes, ALL).unwrap(), expected, "{form}");
        let bin = GoBinary::open(&path).unwrap();
        assert!(bin.elf().dwarf, "{form}: ElfFacts.dwarf is false");
        let r = &offsets::resolve(&bin, &[offsets::REQUEST_CTX])[0];
        assert_eq!(
            (r.offset, r.source.clone()),
            (expected[&offsets::REQUEST_CTX], Some(OffsetSource::Dwarf)),
            "{form}"
        );
    }
}

#[test]
fn a_struct_missing_from_dwarf_comes_from_the_table() {
    // A program that does not link net/http has no net/http types in its DWARF.
    let tc = &toolchains()[1];
    let dir = scratch("no-http");
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nfunc main() { println(1) }\n",
    )
    .unwrap();
    std::fs::write(dir.join("go.mod"), "module nohttp\n\ngo 1.19\n").unwrap();
    run(go(tc).current_dir(&dir).args(["build", "-o", "prog", "."]));
    let bin = GoBinary::open(dir.join("prog")).unwrap();
    let r = offsets::resolve(&bin, &[offsets::G_GOID, offsets::REQUEST_METHOD]);
    assert_eq!(r[0].source, Some(OffsetSource::Dwarf));
    assert_eq!(
        r[1].source,
        Some(OffsetSource::Table {
            entry: table_row(&tc.version).go.clone()
        })
    );
    assert_eq!(r[1].offset, Some(0));
}

#[test]
fn the_registry_and_the_table_cover_the_same_fields() {
    let mut all = ALL.to_vec();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), ALL.len(), "duplicate in offsets::ALL");
    for f in REQUIRED {
        assert!(ALL.contains(f), "{f} is REQUIRED but not in ALL");
    }
    let table = Table::builtin().unwrap();
    assert!(table.rows.len() >= 3);
    for row in &table.rows {
        let mut fields: Vec<(&str, &str)> = row
            .offsets
            .iter()
            .flat_map(|(s, fs)| fs.keys().map(move |f| (s.as_str(), f.as_str())))
            .collect();
        fields.sort();
        let expected: Vec<(&str, &str)> = all.iter().map(|f| (f.strukt, f.field)).collect();
        assert_eq!(fields, expected, "row {}", row.go);
    }
}

#[test]
fn go_versions_parse_the_way_buildinfo_writes_them() {
    let v = |s| GoVersion::parse(s).map(|v| (v.minor, v.patch));
    assert_eq!(v("go1.26.8"), Some((26, 8)));
    assert_eq!(v("go1.19"), Some((19, 0)));
    assert_eq!(v("go1.27rc1"), Some((27, 0)));
    assert_eq!(v("devel go1.27-4b5e1f2 Tue Nov 3"), Some((27, 0)));
    assert_eq!(v("go1.26.8 X:boringcrypto"), Some((26, 8)));
    assert_eq!(v("go2"), None);
    assert_eq!(v(""), None);
}
