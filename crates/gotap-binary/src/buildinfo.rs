//! The Go buildinfo blob (`\xff Go buildinf:`): Go version, main module, dependencies, settings —
//! the facts `go version -m` prints.
//!
//! Mirrors Go's `debug/buildinfo` (finding and framing the blob) and `runtime/debug.ParseBuildInfo`
//! (the text format, including its quoting rules), so results equal `go version -m`.
use crate::binary::{read_uint, Layout};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildInfo {
    /// e.g. `go1.26.8`.
    pub go_version: String,
    /// The main package path (`path` line of `go version -m`).
    pub path: String,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines in order: (`-ldflags`, `-s -w`), (`CGO_ENABLED`, `1`), (`vcs.revision`, …).
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// The dependency (or main module) with this module path, after no replacement.
    pub fn module(&self, path: &str) -> Option<&Module> {
        self.main
            .iter()
            .chain(self.deps.iter())
            .find(|m| m.path == path)
    }

    /// The value of a `build` setting.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for BuildInfo {
    /// Go's `debug.BuildInfo.String()` without the `go` line: exactly the lines `go version -m`
    /// prints (there each is indented by a tab).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.path.is_empty() {
            writeln!(f, "path\t{}", self.path)?;
        }
        fn module(f: &mut std::fmt::Formatter<'_>, word: &str, m: &Module) -> std::fmt::Result {
            write!(f, "{word}\t{}\t{}", m.path, m.version)?;
            match &m.replace {
                None => write!(f, "\t{}", m.sum.as_deref().unwrap_or(""))?,
                Some(r) => {
                    writeln!(f)?;
                    module(f, "=>", r)?;
                }
            }
            writeln!(f)
        }
        if let Some(m) = &self.main {
            module(f, "mod", m)?;
        }
        for d in &self.deps {
            module(f, "dep", d)?;
        }
        for (k, v) in &self.settings {
            let k = if needs_quoting(k, true) {
                go_quote(k)
            } else {
                k.clone()
            };
            let v = if needs_quoting(v, false) {
                go_quote(v)
            } else {
                v.clone()
            };
            writeln!(f, "build\t{k}={v}")?;
        }
        Ok(())
    }
}

/// strconv.Quote for valid UTF-8 (our strings are): escapes quotes, backslashes and control
/// characters, keeps printable Unicode.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() && (c as u32) < 0x10000 => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The blob is 16-byte aligned (cmd/link), which is also what makes the scan cheap.
const ALIGN: usize = 16;
const FLAGS_ENDIAN_BIG: u8 = 0x1;
const FLAGS_VERSION_INLINE: u8 = 0x2;

/// Finds and decodes the buildinfo blob. `Ok(None)`: there is none (not Go, or Go < 1.13).
/// `Err`: it is there but malformed (one-line reason).
pub(crate) fn find(data: &[u8], layout: &Layout) -> Result<Option<BuildInfo>, String> {
    let blob = match layout
        .section(".go.buildinfo")
        .and_then(|s| layout.section_data(data, s))
    {
        Some(d) if d.starts_with(MAGIC) => Some(d),
        _ => scan(data),
    };
    let Some(blob) = blob else { return Ok(None) };
    decode(blob, data, layout).map(Some)
}

/// Without section headers: the magic at a 16-aligned file offset (segments are page-congruent,
/// so file alignment equals address alignment).
fn scan(data: &[u8]) -> Option<&[u8]> {
    let mut off = 0usize;
    while let Some(window) = data.get(off..) {
        if window.len() < 32 {
            return None;
        }
        if window.starts_with(MAGIC) {
            return Some(window);
        }
        off += ALIGN;
    }
    None
}

fn decode(blob: &[u8], data: &[u8], layout: &Layout) -> Result<BuildInfo, String> {
    let hdr = blob.get(..32).ok_or("truncated buildinfo header")?;
    let ptr_size = hdr[14];
    let flags = hdr[15];
    // Every Go version writes the pointer size here; checking it also rejects the magic string
    // found by chance in a non-Go file (e.g. followed by an error message's text).
    if ptr_size != 4 && ptr_size != 8 {
        return Err(format!("bad buildinfo pointer size {ptr_size}"));
    }
    let (version, modinfo) = if flags & FLAGS_VERSION_INLINE != 0 {
        // Go ≥ 1.18: two varint-prefixed strings right after the header.
        let (v, n) = decode_string(blob.get(32..).unwrap_or_default())
            .ok_or("truncated buildinfo version")?;
        let rest = blob.get(32 + n..).unwrap_or_default();
        let (m, _) = decode_string(rest).ok_or("truncated buildinfo module info")?;
        (v.to_vec(), m.to_vec())
    } else {
        // Go < 1.18: pointers to the Go string headers of runtime.buildVersion and
        // runtime.modinfo.
        let big = flags & FLAGS_ENDIAN_BIG != 0;
        let read_string = |at: usize| -> Option<Vec<u8>> {
            let hdr_addr = read_uint(blob, at, ptr_size, big)?;
            let sh = layout.read_vaddr(data, hdr_addr, 2 * u64::from(ptr_size))?;
            let ptr = read_uint(sh, 0, ptr_size, big)?;
            let len = read_uint(sh, usize::from(ptr_size), ptr_size, big)?;
            if len == 0 {
                return Some(Vec::new());
            }
            Some(layout.read_vaddr(data, ptr, len)?.to_vec())
        };
        let v = read_string(16).ok_or("buildinfo version pointer outside the file")?;
        let m = read_string(16 + usize::from(ptr_size)).unwrap_or_default();
        (v, m)
    };
    if version.is_empty() {
        return Err("empty Go version in buildinfo".into());
    }
    // Real versions are short printable ASCII ("go1.26.8", "devel go1.27-abc +X:exp"); anything
    // else is damage, and must not reach one-line error messages.
    if version.len() > 200 || !version.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err("invalid Go version string in buildinfo".into());
    }
    let mut bi = BuildInfo {
        go_version: String::from_utf8_lossy(&version).into_owned(),
        ..Default::default()
    };
    // Strip the 16-byte sentinels (cmd/go's infoStart/infoEnd) exactly as debug/buildinfo does.
    let n = modinfo.len();
    if n >= 33 && modinfo[n - 17] == b'\n' {
        let text = String::from_utf8_lossy(&modinfo[16..n - 16]);
        parse_modinfo(&text, &mut bi)?;
    }
    Ok(bi)
}

/// A uvarint-length-prefixed string; returns it and the bytes consumed.
fn decode_string(b: &[u8]) -> Option<(&[u8], usize)> {
    let mut len: u64 = 0;
    let mut shift = 0u32;
    let mut i = 0usize;
    loop {
        let byte = *b.get(i)?;
        i += 1;
        if shift >= 64 {
            return None;
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let end = i.checked_add(usize::try_from(len).ok()?)?;
    Some((b.get(i..end)?, end))
}

/// `runtime/debug.ParseBuildInfo` minus the `go` line (the version comes from the header).
pub(crate) fn parse_modinfo(text: &str, bi: &mut BuildInfo) -> Result<(), String> {
    // Which module a `=>` line replaces: the main module, a dep, or none (after a replacement).
    enum Last {
        None,
        Main,
        Dep(usize),
    }
    let mut last = Last::None;
    let mut rest = text;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        // Like strings.Cut: a final line without '\n' is ignored.
        let Some((line, tail)) = rest.split_once('\n') else {
            break;
        };
        rest = tail;
        line_no += 1;
        let err = |m: String| format!("module info line {line_no}: {m}");
        if let Some(p) = line.strip_prefix("path\t") {
            bi.path = p.to_string();
        } else if let Some(m) = line.strip_prefix("mod\t") {
            bi.main = Some(module_line(m).map_err(err)?);
            last = Last::Main;
        } else if let Some(m) = line.strip_prefix("dep\t") {
            bi.deps.push(module_line(m).map_err(err)?);
            last = Last::Dep(bi.deps.len() - 1);
        } else if let Some(r) = line.strip_prefix("=>\t") {
            let elem: Vec<&str> = r.split('\t').collect();
            if elem.len() != 3 {
                return Err(err(format!(
                    "expected 3 columns for replacement; got {}",
                    elem.len()
                )));
            }
            let rep = Module {
                path: elem[0].to_string(),
                version: elem[1].to_string(),
                sum: non_empty(elem[2]),
                replace: None,
            };
            let target = match last {
                Last::None => {
                    return Err(err("replacement with no module on previous line".into()))
                }
                Last::Main => bi.main.as_mut(),
                Last::Dep(i) => bi.deps.get_mut(i),
            };
            if let Some(t) = target {
                t.replace = Some(Box::new(rep));
            }
            last = Last::None;
        } else if let Some(kv) = line.strip_prefix("build\t") {
            bi.settings.push(build_line(kv).map_err(err)?);
        }
    }
    Ok(())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn module_line(s: &str) -> Result<Module, String> {
    let elem: Vec<&str> = s.split('\t').collect();
    if elem.len() != 2 && elem.len() != 3 {
        return Err(format!("expected 2 or 3 columns; got {}", elem.len()));
    }
    Ok(Module {
        path: elem[0].to_string(),
        version: elem[1].to_string(),
        sum: elem.get(2).and_then(|s| non_empty(s)),
        replace: None,
    })
}

fn build_line(kv: &str) -> Result<(String, String), String> {
    let key;
    let raw_value;
    match kv.as_bytes().first() {
        None => return Err("build line missing '='".into()),
        Some(b'=') => return Err("build line with missing key".into()),
        Some(b'`' | b'"') => {
            let raw_key = quoted_prefix(kv).ok_or("invalid quoted key in build line")?;
            match kv.as_bytes().get(raw_key.len()) {
                None => return Err("build line missing '=' after quoted key".into()),
                Some(b'=') => {}
                Some(c) => {
                    return Err(format!(
                        "unexpected character after quoted key: {:?}",
                        *c as char
                    ))
                }
            }
            key = unquote(raw_key).ok_or("invalid quoted key in build line")?;
            raw_value = &kv[raw_key.len() + 1..];
        }
        Some(_) => {
            let (k, v) = kv
                .split_once('=')
                .ok_or("build line missing '=' after key")?;
            if needs_quoting(k, true) {
                return Err(format!("unquoted key {:?} must be quoted", short(k)));
            }
            key = k.to_string();
            raw_value = v;
        }
    }
    let value = match raw_value.as_bytes().first() {
        None => String::new(),
        Some(b'`' | b'"') => unquote(raw_value).ok_or("invalid quoted value in build line")?,
        Some(_) => {
            if needs_quoting(raw_value, false) {
                return Err(format!(
                    "unquoted value {:?} must be quoted",
                    short(raw_value)
                ));
            }
            raw_value.to_string()
        }
    };
    Ok((key, value))
}

/// At most 40 characters of `s`, for error messages (damaged values can be kilobytes).
fn short(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// runtime/debug's quoteKey / quoteValue.
fn needs_quoting(s: &str, key: bool) -> bool {
    (key && (s.is_empty() || s.contains('='))) || s.contains([' ', '\t', '\r', '\n', '"', '`'])
}

/// strconv.QuotedPrefix: the quoted string at the start of `s` (syntax only; `unquote` validates).
fn quoted_prefix(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let q = *b.first()?;
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            c if c == q => return Some(&s[..=i]),
            b'\n' if q == b'"' => return None,
            b'\\' if q == b'"' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// strconv.Unquote for `"…"` and `` `…` `` strings (invalid UTF-8 from `\x` escapes is replaced).
fn unquote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    // The closing quote is checked before slicing: `s` comes from damaged bytes through
    // from_utf8_lossy, so its last character can be multi-byte (U+FFFD), and slicing off one byte
    // would split it.
    let q = *b.first()?;
    if b.len() < 2 || b[b.len() - 1] != q {
        return None;
    }
    let inner = s.get(1..s.len() - 1)?;
    if q == b'`' {
        if inner.contains('`') {
            return None;
        }
        return Some(inner.replace('\r', ""));
    }
    if q != b'"' {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    let hex = |digits: &str| {
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                let simple = match e {
                    'a' => Some(7u8),
                    'b' => Some(8),
                    'f' => Some(12),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(11),
                    '\\' => Some(b'\\'),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(v) = simple {
                    out.push(v);
                    continue;
                }
                let start = i + 2;
                let take = |n: usize| inner.get(start..start + n);
                match e {
                    'x' => {
                        out.push(u8::try_from(hex(take(2)?)?).ok()?);
                        chars.nth(1);
                    }
                    '0'..='7' => {
                        let d = inner.get(i + 1..i + 4)?;
                        let v = u32::from_str_radix(d, 8).ok()?;
                        out.push(u8::try_from(v).ok()?);
                        chars.nth(1);
                    }
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let ch = char::from_u32(hex(take(n)?)?)?;
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        chars.nth(n - 1);
                    }
                    _ => return None,
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modules_replacements_and_settings() {
        let text = "path\texample.com/app\n\
                    mod\texample.com/app\t(devel)\t\n\
                    dep\tgoogle.golang.org/grpc\tv1.61.0\th1:abc=\n\
                    dep\tgolang.org/x/net\tv0.1.0\th1:x=\n\
                    =>\t../net\t(devel)\t\n\
                    build\t-ldflags=\"-s -w\"\n\
                    build\tCGO_ENABLED=0\n\
                    build\t\"a b\"=`x y`\n\
                    build\tempty=\n";
        let mut bi = BuildInfo::default();
        parse_modinfo(text, &mut bi).unwrap();
        assert_eq!(bi.path, "example.com/app");
        let main = bi.main.as_ref().unwrap();
        assert_eq!(
            (main.version.as_str(), main.sum.as_deref()),
            ("(devel)", None)
        );
        assert_eq!(bi.deps.len(), 2);
        assert_eq!(bi.deps[0].sum.as_deref(), Some("h1:abc="));
        let rep = bi.deps[1].replace.as_ref().unwrap();
        assert_eq!(
            (rep.path.as_str(), rep.version.as_str(), rep.sum.as_deref()),
            ("../net", "(devel)", None)
        );
        assert_eq!(
            bi.settings,
            vec![
                ("-ldflags".to_string(), "-s -w".to_string()),
                ("CGO_ENABLED".into(), "0".into()),
                ("a b".into(), "x y".into()),
                ("empty".into(), "".into()),
            ]
        );
        assert_eq!(bi.setting("CGO_ENABLED"), Some("0"));
        assert_eq!(
            bi.module("google.golang.org/grpc").unwrap().version,
            "v1.61.0"
        );
    }

    #[test]
    fn rejects_what_parsebuildinfo_rejects() {
        for bad in [
            "=>\tx\tv1\t\n",
            "dep\tonly-one\n",
            "build\tno-equals\n",
            "build\t=v\n",
            "build\tk=has space\n",
            "build\t\"k\"v\n",
            "build\tk=\"unterminated\n",
        ] {
            let mut bi = BuildInfo::default();
            assert!(parse_modinfo(bad, &mut bi).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unquote_matches_strconv() {
        assert_eq!(
            unquote(r#""a\tb\"c\\\x41\101\u00e9""#).as_deref(),
            Some("a\tb\"c\\AAé")
        );
        assert_eq!(unquote("`raw\\n`").as_deref(), Some("raw\\n"));
        assert_eq!(unquote(r#""bad\q""#), None);
        assert_eq!(unquote(r#""\x4""#), None);
        assert_eq!(unquote("\""), None);
        // A damaged closing quote: the last character is multi-byte (what from_utf8_lossy makes
        // of a 0xff byte).
        assert_eq!(unquote("\"-s -w\u{fffd}"), None);
        assert_eq!(unquote("`x\u{e9}"), None);
        assert_eq!(unquote("\"\u{e9}\""), Some("\u{e9}".into()));
        let mut bi = BuildInfo::default();
        assert!(parse_modinfo("build\t-ldflags=\"-s -w\u{fffd}\n", &mut bi).is_err());
        assert_eq!(quoted_prefix(r#""a\"b"=c"#), Some(r#""a\"b""#));
    }

    #[test]
    fn display_is_go_version_m_and_round_trips() {
        let text = "path\tp\nmod\tp\t(devel)\t\ndep\ta\tv1\th1:x\n=>\t../a\t(devel)\t\ndep\tb\tv2\th1:y\nbuild\t-ldflags=\"-s -w\"\nbuild\t\"k=1\"=\"tab\\there\"\n";
        let mut bi = BuildInfo::default();
        parse_modinfo(text, &mut bi).unwrap();
        // Like Go: a replaced module's line has no sum column, and an empty line follows the
        // replacement (BuildInfo.String ends both lines).
        let shown = bi.to_string();
        let want = text.replace(
            "dep\ta\tv1\th1:x\n=>\t../a\t(devel)\t\n",
            "dep\ta\tv1\n=>\t../a\t(devel)\t\n\n",
        );
        assert_eq!(shown, want);
        let mut again = BuildInfo::default();
        parse_modinfo(&shown, &mut again).unwrap();
        assert_eq!(again.settings, bi.settings);
        assert_eq!(go_quote("a\"b\\\u{1}é"), "\"a\\\"b\\\\\\x01é\"");
    }

    /// A Go 1.13–1.17 style blob: pointers to the Go string headers of runtime.buildVersion and
    /// runtime.modinfo, in either byte order, all inside one segment at 0x1000.
    fn pointer_blob(big: bool) -> Vec<u8> {
        let base = 0x1000u64;
        let put = |d: &mut Vec<u8>, at: usize, v: u64| {
            let b = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            d[at..at + 8].copy_from_slice(&b);
        };
        let modinfo =
            b"0123456789abcdefpath\tex.com/old\nmod\tex.com/old\t(devel)\t\n0123456789abcdef";
        let mut d = vec![0u8; 128];
        d[..14].copy_from_slice(MAGIC);
        d[14] = 8;
        d[15] = u8::from(big) * FLAGS_ENDIAN_BIG;
        put(&mut d, 16, base + 64);
        put(&mut d, 24, base + 80);
        put(&mut d, 64, base + 128);
        put(&mut d, 72, 8);
        put(&mut d, 80, base + 136);
        put(&mut d, 88, modinfo.len() as u64);
        d.extend_from_slice(b"go1.17.3");
        d.extend_from_slice(modinfo);
        d
    }

    fn one_segment(data: &[u8]) -> Layout {
        Layout {
            big_endian: false,
            ptr_size: 8,
            machine: 62,
            dyn_type: false,
            interp: false,
            segments: vec![crate::binary::Segment {
                vaddr: 0x1000,
                offset: 0,
                filesz: data.len() as u64,
                flags: 6,
            }],
            note_segments: vec![],
            sections: vec![],
            symbols: Default::default(),
        }
    }

    #[test]
    fn pointer_format_before_go118_in_both_byte_orders() {
        for big in [false, true] {
            let d = pointer_blob(big);
            let bi = find(&d, &one_segment(&d)).unwrap().unwrap();
            assert_eq!(bi.go_version, "go1.17.3");
            assert_eq!(bi.path, "ex.com/old");
            assert_eq!(bi.main.unwrap().version, "(devel)");
        }
        // A version pointer leading outside the file is an error, not a panic.
        let mut d = pointer_blob(false);
        d[16..24].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        assert!(find(&d, &one_segment(&d)).is_err());
    }

    #[test]
    fn inline_format_is_found_by_scanning_at_16_byte_alignment() {
        let mut d = vec![0u8; 48];
        d.extend_from_slice(MAGIC);
        d.extend_from_slice(&[8, FLAGS_VERSION_INLINE]);
        d.resize(48 + 32, 0);
        d.push(8);
        d.extend_from_slice(b"go1.26.8");
        d.push(0);
        d.resize(d.len() + 16, 0);
        let bi = find(&d, &one_segment(&d)).unwrap().unwrap();
        assert_eq!(
            (bi.go_version.as_str(), bi.main.is_none()),
            ("go1.26.8", true)
        );
        // Misaligned copies of the magic are not buildinfo (Go's rule).
        let mut m = vec![0u8; 8];
        m.extend_from_slice(&d[48..]);
        assert!(find(&m, &one_segment(&m)).unwrap().is_none());
    }

    #[test]
    fn varint_strings() {
        assert_eq!(decode_string(b"\x03abcd"), Some((&b"abc"[..], 4)));
        assert_eq!(decode_string(b"\x05abc"), None);
        assert_eq!(
            decode_string(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            None
        );
        assert_eq!(decode_string(b""), None);
    }
}
