//! Oracles: what the Go toolchain itself says about a binary (`go version -m`, `go tool nm`,
//! `go tool objdump`, `go tool buildid`), parsed into plain values the `gotap inspect --json`
//! output is compared with.
#![allow(dead_code)] // each test binary uses a subset

use gotap_testkit::Toolchain;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// One `dep`/`mod` line, with the `=>` line that may follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModLine {
    pub path: String,
    pub version: String,
    pub sum: Option<String>,
    pub replace: Option<Box<ModLine>>,
}

/// `go version -m BIN`, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VersionM {
    pub go_version: String,
    pub path: String,
    pub main: Option<ModLine>,
    pub deps: Vec<ModLine>,
    /// `build` lines in order (key, value), split at the first `=` as Go does.
    pub settings: Vec<(String, String)>,
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
    String::from_utf8(out.stdout).expect("toolchain output is UTF-8")
}

pub fn go_version_m(tc: Toolchain, bin: &Path) -> VersionM {
    parse_version_m(&run(tc.command().arg("version").arg("-m").arg(bin)))
}

/// Parses `go version -m` output: `BIN: goX`, then tab-indented lines `path`, `mod`, `dep`, `=>`,
/// `build` whose fields are tab-separated (a `=>` line ends with a tab and a newline, which is why
/// blank-looking lines appear in the output).
pub fn parse_version_m(text: &str) -> VersionM {
    let mut lines = text.lines();
    let first = lines.next().expect("go version -m prints a first line");
    let mut v = VersionM {
        go_version: first
            .rsplit_once(": ")
            .expect("BIN: goX")
            .1
            .trim()
            .to_string(),
        ..Default::default()
    };
    let modline = |f: &[&str]| ModLine {
        path: f[1].to_string(),
        version: f.get(2).copied().unwrap_or("").to_string(),
        sum: f.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string()),
        replace: None,
    };
    for line in lines {
        let Some(rest) = line.strip_prefix('\t') else {
            continue;
        };
        if rest.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = rest.split('\t').collect();
        match f[0] {
            "path" => v.path = f[1].to_string(),
            "mod" => v.main = Some(modline(&f)),
            "dep" => v.deps.push(modline(&f)),
            "=>" => {
                let target = v
                    .deps
                    .last_mut()
                    .or(v.main.as_mut())
                    .expect("=> follows a module line");
                target.replace = Some(Box::new(modline(&f)));
            }
            "build" => {
                // Go quotes (strconv.Quote) a key or value holding spaces, `=`, quotes or
                // non-printing characters: `-ldflags="-s -w"`. The JSON carries them unquoted.
                let kv = f[1..].join("\t");
                let (key, rest) = if kv.starts_with('"') {
                    let (k, rest) = go_unquote(&kv).expect("quoted build key");
                    (k, rest.strip_prefix('=').unwrap_or(rest))
                } else {
                    let (k, rest) = kv.split_once('=').unwrap_or((&kv, ""));
                    (k.to_string(), rest)
                };
                let value = if rest.starts_with('"') {
                    go_unquote(rest).expect("quoted build value").0
                } else {
                    rest.to_string()
                };
                v.settings.push((key, value));
            }
            other => panic!("unexpected go version -m line {other:?}: {line:?}"),
        }
    }
    v
}

/// Decodes the Go double-quoted string literal at the start of `s`; returns it and what follows.
pub fn go_unquote(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    let body = &s[1..];
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                let hex = |chars: &mut std::str::CharIndices, n: usize| -> Option<u32> {
                    let h: String = (0..n)
                        .map(|_| chars.next().map(|(_, c)| c))
                        .collect::<Option<_>>()?;
                    u32::from_str_radix(&h, 16).ok()
                };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' | '"' | '\'' => out.push(e),
                    'x' => out.push(char::from_u32(hex(&mut chars, 2)?)?),
                    'u' => out.push(char::from_u32(hex(&mut chars, 4)?)?),
                    'U' => out.push(char::from_u32(hex(&mut chars, 8)?)?),
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Text symbols (`T`/`t`) from `go tool nm`: (name, address), in nm's order. Names are not
/// unique (generic shapes can print alike).
pub fn go_nm_text(tc: Toolchain, bin: &Path) -> Vec<(String, u64)> {
    let out = run(tc.command().args(["tool", "nm"]).arg(bin));
    let mut syms = Vec::new();
    for line in out.lines() {
        // "  47e0a0 T main.greet" — names may contain spaces (e.g. `go:buildid`-like oddities), so
        // split off only the first two fields.
        let line = line.trim_start();
        let mut it = line.splitn(3, ' ');
        let (Some(addr), Some(kind), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if kind == "T" || kind == "t" {
            let addr =
                u64::from_str_radix(addr, 16).unwrap_or_else(|_| panic!("nm address in {line:?}"));
            syms.push((name.to_string(), addr));
        }
    }
    syms
}

/// One instruction `go tool objdump` prints.
#[derive(Debug, Clone)]
pub struct Insn {
    pub address: u64,
    pub bytes: Vec<u8>,
    pub asm: String,
}

/// `go tool objdump -s '^(n1|n2)$' BIN`: function name → its instructions.
pub fn go_objdump(tc: Toolchain, bin: &Path, names: &[&str]) -> BTreeMap<String, Vec<Insn>> {
    // `(\.abi0)?`: gotap may name an ABI0 function without the suffix the linker gave it.
    let re = format!(
        "^({})(\\.abi0)?$",
        names
            .iter()
            .map(|n| regex_escape(n))
            .collect::<Vec<_>>()
            .join("|")
    );
    let out = run(tc.command().args(["tool", "objdump", "-s", &re]).arg(bin));
    parse_objdump(&out)
}

/// Parses objdump's `TEXT name(SB) file` headers and `  file:line\t0xADDR\t\tHEX\t\tASM` lines.
pub fn parse_objdump(text: &str) -> BTreeMap<String, Vec<Insn>> {
    let mut funcs: BTreeMap<String, Vec<Insn>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("TEXT ") {
            let name = rest.split("(SB)").next().unwrap().to_string();
            funcs.entry(name.clone()).or_default();
            cur = Some(name);
            continue;
        }
        let f: Vec<&str> = line
            .split('\t')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if f.len() < 3 || !f[1].starts_with("0x") {
            continue;
        }
        let name = cur.as_ref().expect("instruction before a TEXT line");
        let address = u64::from_str_radix(&f[1][2..], 16).unwrap();
        let bytes = (0..f[2].len() / 2)
            .map(|i| u8::from_str_radix(&f[2][2 * i..2 * i + 2], 16).unwrap())
            .collect();
        funcs.get_mut(name).unwrap().push(Insn {
            address,
            bytes,
            asm: f.get(3).copied().unwrap_or("").to_string(),
        });
    }
    funcs
}

/// The Go build ID (`go tool buildid BIN`).
pub fn go_buildid(tc: Toolchain, bin: &Path) -> String {
    run(tc.command().args(["tool", "buildid"]).arg(bin))
        .trim()
        .to_string()
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Runs `gotap ARGS`; returns (exit code, stdout, stderr).
pub fn gotap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gotap"))
        .args(args)
        .output()
        .expect("run gotap");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `gotap inspect --json ARGS`, which must succeed; the parsed document.
pub fn inspect_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = gotap(&all);
    assert_eq!(code, 0, "gotap {all:?} failed: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("gotap {all:?} printed invalid JSON ({e}): {stdout}"))
}

/// Asserts the failure contract: exit 2, nothing on stdout, exactly one stderr line `gotap: …`.
/// Returns that line.
pub fn assert_user_error(args: &[&str]) -> String {
    let (code, stdout, stderr) = gotap(args);
    assert_eq!(
        code, 2,
        "gotap {args:?}: want exit 2, got {code}; stderr: {stderr}"
    );
    assert!(
        stdout.is_empty(),
        "gotap {args:?}: stdout should be empty on error: {stdout}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "gotap {args:?}: want one stderr line, got {stderr:?}"
    );
    assert!(
        lines[0].starts_with("gotap: "),
        "gotap {args:?}: stderr line should start `gotap: `: {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked"),
        "gotap {args:?} panicked: {stderr}"
    );
    lines[0].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_m_with_replacements() {
        let text = "/tmp/t: go1.26.8\n\tpath\texample.com/x/cmd/deps\n\tmod\texample.com/x\t(devel)\t\n\
                    \tdep\texample.com/g\tv0.0.0\n\t=>\t./greeting\t(devel)\t\n\t\n\
                    \tdep\tgolang.org/x/text\tv0.14.0\n\t=>\tgolang.org/x/text\tv0.13.0\th1:abc=\n\t\n\
                    \tbuild\t-ldflags=\"-s -w\"\n\tbuild\tCGO_ENABLED=0\n";
        let v = parse_version_m(text);
        assert_eq!(v.go_version, "go1.26.8");
        assert_eq!(v.path, "example.com/x/cmd/deps");
        assert_eq!(v.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(v.main.as_ref().unwrap().sum, None);
        assert_eq!(v.deps.len(), 2);
        let r = v.deps[0].replace.as_ref().unwrap();
        assert_eq!(
            (r.path.as_str(), r.version.as_str(), r.sum.as_deref()),
            ("./greeting", "(devel)", None)
        );
        assert_eq!(
            v.deps[1].replace.as_ref().unwrap().sum.as_deref(),
            Some("h1:abc=")
        );
        assert_eq!(
            v.settings,
            vec![
                ("-ldflags".into(), "-s -w".into()),
                ("CGO_ENABLED".into(), "0".into())
            ]
        );
        assert_eq!(
            go_unquote(r#""a\"b\tc\u00e9" rest"#),
            Some(("a\"b\tc\u{e9}".to_string(), " rest"))
        );
    }

    #[test]
    fn parses_objdump() {
        let text = "TEXT main.(*g).Greet(SB) /x/main.go\n  main.go:23\t\t0xc24c0\t\t\t493b6610\t\tCMPQ SP, 0x10(R14)\t\t\t\n\
                    \x20 main.go:25\t\t0xc258d\t\t\tc3\t\t\tRET\t\t\t\t\t\n";
        let f = parse_objdump(text);
        let insns = &f["main.(*g).Greet"];
        assert_eq!(insns.len(), 2);
        assert_eq!(insns[1].address, 0xc258d);
        assert_eq!(insns[1].bytes, vec![0xc3]);
        assert_eq!(insns[1].asm, "RET");
        assert_eq!(insns[0].bytes, vec![0x49, 0x3b, 0x66, 0x10]);
    }
}
