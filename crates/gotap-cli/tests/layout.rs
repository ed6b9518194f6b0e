//! Issue #14: each event and record layout is defined once, in crates/gotap-ebpf/layout/records.json,
//! and every hand-kept copy is checked against it here:
//!   - C: crates/gotap-ebpf/bpf/types.h (#defines, structs) and the BPF C (`struct site_args`,
//!     `struct site_record`, the string caps of each kind's `site_put` calls, and those of the
//!     libraries' function probes in instrumentations/*/bpf, which emit site events too);
//!   - Rust: crates/gotap-ebpf/src (abi.rs constants and #[repr(C)] structs, the batch head's byte
//!     ranges, the string slot numbers of instrumentations/<lib>/decode.rs);
//!   - Go: the probe-site fragments, found by walking go/probes and instrumentations/*/probes
//!     (const blocks, caps arrays, the slot order of each kind's strings, the byte offsets
//!     gotapProbeEvent writes, gotapProbeRecord, the site functions' arguments and assembly);
//!   - bpftrace: the script crates/gotap-cli/src/probes.rs prints (its `struct gotap_record`, the
//!     stack offsets it reads) and each library's rows in instrumentations/<lib>/sites.rs (the
//!     argument slots and record fields each uses);
//!   - the USDT argument spec of crates/gotap-binary/src/usdt.rs, and each site's Go function;
//!   - which BPF program emits which kind, and the libraries' site tables naming them
//!     (instrumentations/<lib>/sites.rs: `LibSite` programs, `BatchSite` package numbers);
//!   - the Go programs that declare the sites themselves (go/testapps/cmd/usdtsites,
//!     crates/gotap-ebpf/examples/sitebench): record, arguments, assembly frame.
//!
//! Copies are found by their content (a `struct http_event {`, a `gotapProbeRecord`), not by a fixed
//! path, so files moving into instrumentations/<lib>/ stay checked. Each difference is one line:
//! form (file): record.field: what the definition says, what the copy says. The unit tests at the
//! end run the checker on mutated copies of the real sources: it must fail, naming the form, the
//! record, the field and both values.
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- the definition

#[derive(Deserialize)]
struct Def {
    records: BTreeMap<String, Record>,
    site_kinds: Vec<Kind>,
    record_flags: Flags,
    constants: Vec<Constant>,
    outside: Outside,
}

#[derive(Deserialize)]
struct Record {
    c: Option<String>,
    rust: Option<String>,
    go: Option<String>,
    bpftrace: Option<String>,
    size: Option<u64>,
    fields: Vec<Field>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Field {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    rust: Option<String>,
    go: Option<String>,
    #[serde(default = "yes")]
    c: bool,
}

#[derive(Deserialize)]
struct Kind {
    name: String,
    value: u64,
    usdt: String,
    batch_package: u64,
    go: KindGo,
    slots: Vec<Slot>,
}

#[derive(Deserialize)]
struct KindGo {
    package: String,
    kind: String,
    caps: String,
    site: String,
}

#[derive(Deserialize)]
struct Slot {
    rust: String,
    cap: u64,
    c_cap: String,
    go: String,
}

#[derive(Deserialize)]
struct Flags {
    flags: Vec<Flag>,
    known_overlaps: Vec<Overlap>,
}

#[derive(Deserialize)]
struct Flag {
    name: String,
    bit: u64,
    c: Option<String>,
    rust: Option<String>,
    go: Option<String>,
}

#[derive(Deserialize)]
struct Overlap {
    flags: Vec<String>,
}

#[derive(Deserialize)]
struct Constant {
    name: String,
    value: u64,
    forms: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Outside {
    c_defines: Vec<String>,
    c_structs: Vec<String>,
}

impl Def {
    fn constant(&self, name: &str) -> Option<u64> {
        self.constants
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }
    fn record(&self, name: &str) -> &Record {
        self.records
            .get(name)
            .unwrap_or_else(|| panic!("records.json: no record `{name}`"))
    }
    /// A record's fields as (name, canonical type), dimensions resolved through the constants.
    fn fields(&self, rec: &str, only_c: bool) -> Vec<(String, String)> {
        self.record(rec)
            .fields
            .iter()
            .filter(|f| f.c || !only_c)
            .map(|f| {
                let ty = canon(&f.ty, &|n| self.constant(n))
                    .unwrap_or_else(|e| panic!("records.json: {rec}.{}: {e}", f.name));
                (f.name.clone(), ty)
            })
            .collect()
    }
    fn offset_of(&self, rec: &str, field: &str) -> u64 {
        let l = layout(&self.fields(rec, false));
        l.fields
            .iter()
            .find(|f| f.0 == field)
            .unwrap_or_else(|| panic!("records.json: no field {rec}.{field}"))
            .2
    }
    fn size_of(&self, rec: &str) -> u64 {
        layout(&self.fields(rec, false)).size
    }
}

// ---------------------------------------------------------------- types and layouts

/// `T` or `T[N]` with N resolved: `u16[8]`.
fn canon(ty: &str, resolve: &dyn Fn(&str) -> Option<u64>) -> Result<String, String> {
    let ty = ty.trim();
    let Some((base, rest)) = ty.split_once('[') else {
        return Ok(ty.to_string());
    };
    let dim = rest.trim_end_matches(']').trim();
    let n = match dim.parse::<u64>() {
        Ok(n) => n,
        Err(_) => resolve(dim).ok_or_else(|| format!("unknown dimension `{dim}`"))?,
    };
    Ok(format!("{}[{n}]", base.trim()))
}

fn size_align(ty: &str) -> (u64, u64) {
    let (base, n) = match ty.split_once('[') {
        Some((b, d)) => (b, d.trim_end_matches(']').parse::<u64>().unwrap_or(0)),
        None => (ty, 1),
    };
    let (s, a) = match base {
        "u8" | "i8" => (1, 1),
        "u16" | "i16" => (2, 2),
        "u32" | "i32" => (4, 4),
        "u64" | "i64" | "ptr" => (8, 8),
        "str" => (16, 8),
        // A type only one form knows (a Go mutex): never equal to a definition's type.
        _ => (8, 8),
    };
    (s * n, a)
}

struct Layout {
    /// name, type, offset
    fields: Vec<(String, String, u64)>,
    size: u64,
}

fn layout(fields: &[(String, String)]) -> Layout {
    let (mut off, mut max) = (0u64, 1u64);
    let mut out = Vec::new();
    for (name, ty) in fields {
        let (s, a) = size_align(ty);
        off = off.div_ceil(a) * a;
        out.push((name.clone(), ty.clone(), off));
        off += s;
        max = max.max(a);
    }
    Layout {
        fields: out,
        size: off.div_ceil(max) * max,
    }
}

/// One line per difference between the definition's fields and a copy's (compared by position:
/// name when `names`, type, offset; then the size). `prefix`: the copy may have more fields.
#[allow(clippy::too_many_arguments)]
fn compare(
    errs: &mut Vec<String>,
    form: &str,
    file: &str,
    rec: &str,
    want: &[(String, String)],
    got: &[(String, String)],
    names: bool,
    prefix: bool,
) {
    let (w, g) = (layout(want), layout(got));
    for i in 0..w.fields.len().max(g.fields.len()) {
        match (w.fields.get(i), g.fields.get(i)) {
            (Some((wn, wt, wo)), Some((gn, gt, go))) => {
                if names && wn != gn {
                    errs.push(format!("{form} ({file}): {rec}.{wn}: definition has field `{wn}` at position {i}, {form} has `{gn}`"));
                }
                if wt != gt {
                    errs.push(format!("{form} ({file}): {rec}.{wn}: definition type {wt}, {form} type {gt}"));
                }
                if wo != go {
                    errs.push(format!("{form} ({file}): {rec}.{wn}: definition offset {wo}, {form} offset {go}"));
                }
            }
            (Some((wn, wt, wo)), None) => errs.push(format!(
                "{form} ({file}): {rec}.{wn}: definition has {wt} at offset {wo}, {form} has no such field"
            )),
            (None, Some((gn, gt, go))) if !prefix => errs.push(format!(
                "{form} ({file}): {rec}.{gn}: {form} has {gt} at offset {go}, the definition has no such field"
            )),
            (None, Some(_)) => {}
            (None, None) => unreachable!(),
        }
    }
    if !prefix && w.size != g.size {
        errs.push(format!(
            "{form} ({file}): {rec}: definition size {}, {form} size {}",
            w.size, g.size
        ));
    }
}

// ---------------------------------------------------------------- expressions

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i128),
    Id(String),
    Op(String),
}

fn tokens(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let t = s[st..i].replace('_', "");
            let t = t.trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = t.strip_prefix("0x") {
                i128::from_str_radix(h, 16).unwrap_or(i128::MIN)
            } else {
                t.parse().unwrap_or(i128::MIN)
            };
            out.push(Tok::Num(v));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':' || b[i] == b'.')
            {
                i += 1;
            }
            out.push(Tok::Id(s[st..i].to_string()));
        } else if s[i..].starts_with("<<") {
            out.push(Tok::Op("<<".into()));
            i += 2;
        } else {
            out.push(Tok::Op(c.to_string()));
            i += 1;
        }
    }
    out
}

/// A small integer expression evaluator for #define, Rust and Go constants: numbers, names,
/// `+ - * <<`, parentheses, C casts to the fixed-width types, `u64::MAX`, and (through `special`)
/// sizeof/offsetof. None when the expression is anything else.
struct Eval<'a> {
    t: Vec<Tok>,
    i: usize,
    name: &'a dyn Fn(&str) -> Option<i128>,
    special: &'a dyn Fn(&str, &[String]) -> Option<i128>,
}

impl Eval<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn op(&mut self, o: &str) -> bool {
        if self.peek() == Some(&Tok::Op(o.into())) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Option<i128> {
        let mut v = self.add()?;
        while self.op("<<") {
            v <<= self.add()?;
        }
        Some(v)
    }
    fn add(&mut self) -> Option<i128> {
        let mut v = self.mul()?;
        loop {
            if self.op("+") {
                v += self.mul()?;
            } else if self.op("-") {
                v -= self.mul()?;
            } else {
                return Some(v);
            }
        }
    }
    fn mul(&mut self) -> Option<i128> {
        let mut v = self.unary()?;
        while self.op("*") {
            v *= self.unary()?;
        }
        Some(v)
    }
    fn unary(&mut self) -> Option<i128> {
        if self.op("-") {
            return Some(-self.unary()?);
        }
        // A C cast: (u64)-1.
        if let (Some(Tok::Op(p)), Some(Tok::Id(t)), Some(Tok::Op(q))) = (
            self.t.get(self.i),
            self.t.get(self.i + 1),
            self.t.get(self.i + 2),
        ) {
            if p == "("
                && q == ")"
                && ["u8", "u16", "u32", "u64", "s64", "s32"].contains(&t.as_str())
            {
                let bits = match t.as_str() {
                    "u8" => 8,
                    "u16" => 16,
                    "u32" | "s32" => 32,
                    _ => 64,
                };
                let signed = t.starts_with('s');
                self.i += 3;
                let v = self.unary()?;
                let m = (1i128 << bits) - 1;
                return Some(if signed { v } else { v & m });
            }
        }
        self.primary()
    }
    fn primary(&mut self) -> Option<i128> {
        match self.peek()?.clone() {
            Tok::Num(n) if n != i128::MIN => {
                self.i += 1;
                Some(n)
            }
            Tok::Op(p) if p == "(" => {
                self.i += 1;
                let v = self.expr()?;
                self.op(")").then_some(v)
            }
            Tok::Id(id) => {
                self.i += 1;
                if id == "u64::MAX" {
                    return Some(u64::MAX as i128);
                }
                if self.peek() == Some(&Tok::Op("(".into())) {
                    // sizeof(struct X), __builtin_offsetof(struct X, f): arguments as words.
                    self.i += 1;
                    let mut args = vec![String::new()];
                    let mut depth = 0;
                    while let Some(t) = self.peek().cloned() {
                        self.i += 1;
                        match t {
                            Tok::Op(o) if o == ")" && depth == 0 => break,
                            Tok::Op(o) if o == "," && depth == 0 => args.push(String::new()),
                            Tok::Op(o) => {
                                depth += (o == "(") as i32 - (o == ")") as i32;
                                args.last_mut().unwrap().push_str(&o);
                            }
                            Tok::Id(s) => {
                                let a = args.last_mut().unwrap();
                                if !a.is_empty() {
                                    a.push(' ');
                                }
                                a.push_str(&s);
                            }
                            Tok::Num(n) => args.last_mut().unwrap().push_str(&n.to_string()),
                        }
                    }
                    return (self.special)(&id, &args);
                }
                (self.name)(&id)
            }
            _ => None,
        }
    }
}

fn eval(
    expr: &str,
    name: &dyn Fn(&str) -> Option<i128>,
    special: &dyn Fn(&str, &[String]) -> Option<i128>,
) -> Option<i128> {
    let mut e = Eval {
        t: tokens(expr),
        i: 0,
        name,
        special,
    };
    let v = e.expr()?;
    (e.i == e.t.len()).then_some(v)
}

fn no_special(_: &str, _: &[String]) -> Option<i128> {
    None
}

/// Evaluates names through a table of unevaluated expressions (with a depth bound for cycles).
fn eval_table(expr: &str, table: &BTreeMap<String, String>, depth: u32) -> Option<i128> {
    if depth > 16 {
        return None;
    }
    eval(
        expr,
        &|n| eval_table(table.get(n)?, table, depth + 1),
        &no_special,
    )
}

// ---------------------------------------------------------------- sources

struct Src {
    /// Relative to the repository.
    path: String,
    text: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every file a copy can live in: the eBPF crate's C and Rust, the instrumentation folders, the
/// Go fragments, the bpftrace generator and the USDT notes.
fn load_sources() -> Vec<Src> {
    let root = repo();
    let mut paths = Vec::new();
    for d in [
        "crates/gotap-ebpf/bpf",
        "crates/gotap-ebpf/src",
        "go/probes",
        "instrumentations",
        "go/testapps/cmd/usdtsites",
        "crates/gotap-ebpf/examples/sitebench",
    ] {
        walk(&root.join(d), &mut paths);
    }
    paths.push(root.join("crates/gotap-cli/src/probes.rs"));
    paths.push(root.join("crates/gotap-binary/src/usdt.rs"));
    paths
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            [".h", ".c", ".rs", ".go", ".s"]
                .iter()
                .any(|e| s.ends_with(e))
                && !s.ends_with("_test.go")
        })
        .map(|p| Src {
            path: p.strip_prefix(&root).unwrap().display().to_string(),
            text: std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
        })
        .collect()
}

fn load_def() -> Def {
    let p = repo().join("crates/gotap-ebpf/layout/records.json");
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn is_go(p: &str) -> bool {
    (p.starts_with("go/probes/") || (p.starts_with("instrumentations/") && p.contains("/probes/")))
        && p.ends_with(".go")
}

fn is_go_asm(p: &str) -> bool {
    (p.starts_with("go/probes/") || (p.starts_with("instrumentations/") && p.contains("/probes/")))
        && p.ends_with(".s")
}

fn is_c(p: &str) -> bool {
    (p.starts_with("crates/gotap-ebpf/bpf/")
        || (p.starts_with("instrumentations/") && p.contains("/bpf/")))
        && (p.ends_with(".h") || p.ends_with(".c"))
}

fn is_rust(p: &str) -> bool {
    (p.starts_with("crates/gotap-ebpf/src/") || p.starts_with("instrumentations/"))
        && p.ends_with(".rs")
}

/// The text from an opening `{` at `open` to its matching `}` (exclusive).
fn block(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    &text[open + 1..]
}

fn strip_c_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let a = rest.find("/*");
        let b = rest.find("//");
        match (a, b) {
            (Some(a), b) if b.is_none_or(|b| a < b) => {
                out.push_str(&rest[..a]);
                rest = rest[a + 2..].split_once("*/").map_or("", |x| x.1);
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = &rest[b..];
                rest = rest.find('\n').map_or("", |n| &rest[n..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn strip_line_comments(s: &str) -> String {
    s.lines()
        .map(|l| l.split_once("//").map_or(l, |x| x.0))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- C

/// A C struct's fields: type, name, array dimension.
type CFields = Vec<(String, String, Option<String>)>;
/// Fields as (name, canonical type).
type Fields = Vec<(String, String)>;

struct CForm {
    /// name -> (expression, file)
    defines: BTreeMap<String, (String, String)>,
    /// name -> (fields (type, name, dim), file); the first file that defines it.
    structs: BTreeMap<String, (CFields, String)>,
    /// Every file's definition of each struct (for records kept in more than one place).
    all_structs: Vec<(String, CFields, String)>,
    /// Every file's #define of each name: (name, expression, file).
    all_defines: Vec<(String, String, String)>,
}

fn parse_c(srcs: &[Src]) -> CForm {
    let mut f = CForm {
        defines: BTreeMap::new(),
        structs: BTreeMap::new(),
        all_structs: Vec::new(),
        all_defines: Vec::new(),
    };
    for s in srcs.iter().filter(|s| is_c(&s.path)) {
        let text = strip_c_comments(&s.text);
        for l in text.lines() {
            if let Some(rest) = l.trim().strip_prefix("#define ") {
                let (name, expr) = rest
                    .trim()
                    .split_once(char::is_whitespace)
                    .unwrap_or((rest.trim(), ""));
                if !name.contains('(') {
                    f.all_defines
                        .push((name.into(), expr.trim().into(), s.path.clone()));
                    f.defines
                        .entry(name.into())
                        .or_insert((expr.trim().into(), s.path.clone()));
                }
            }
        }
        let mut at = 0;
        while let Some(i) = text[at..].find("struct ") {
            let st = at + i;
            at = st + 7;
            // Top level only: at a line start.
            if st > 0 && !text[..st].ends_with('\n') {
                continue;
            }
            let head = &text[st + 7..];
            let Some(brace) = head.find('{') else { break };
            let name = head[..brace].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let body = block(&text, st + 7 + brace);
            let mut fields = Vec::new();
            for decl in body.split(';').map(str::trim).filter(|d| !d.is_empty()) {
                let decl = decl.split_whitespace().collect::<Vec<_>>().join(" ");
                let (ty, last) = decl.rsplit_once(' ').unwrap_or(("", &decl));
                let (fname, dim) = match last.split_once('[') {
                    Some((n, d)) => (n.to_string(), Some(d.trim_end_matches(']').to_string())),
                    None => (last.to_string(), None),
                };
                fields.push((ty.to_string(), fname, dim));
            }
            f.all_structs
                .push((name.into(), fields.clone(), s.path.clone()));
            f.structs
                .entry(name.into())
                .or_insert((fields, s.path.clone()));
        }
    }
    f
}

impl CForm {
    fn eval(&self, expr: &str, depth: u32) -> Option<i128> {
        if depth > 16 {
            return None;
        }
        eval(
            expr,
            &|n| self.eval(&self.defines.get(n)?.0, depth + 1),
            &|f, args| {
                let sname = args.first()?.strip_prefix("struct ")?.trim();
                let l = layout(&self.struct_fields(&self.structs.get(sname)?.0).ok()?);
                match f {
                    "sizeof" => Some(l.size as i128),
                    "__builtin_offsetof" => {
                        let fname = args.get(1)?.trim();
                        l.fields.iter().find(|x| x.0 == fname).map(|x| x.2 as i128)
                    }
                    _ => None,
                }
            },
        )
    }
    fn ty(c: &str) -> String {
        match c {
            "u8" | "__u8" | "char" | "unsigned char" => "u8",
            "u16" | "__u16" => "u16",
            "u32" | "__u32" => "u32",
            "u64" | "__u64" => "u64",
            "s64" | "__s64" => "i64",
            "s32" | "__s32" => "i32",
            "struct go_str" => "str",
            other => other,
        }
        .to_string()
    }
    fn struct_fields(
        &self,
        fields: &[(String, String, Option<String>)],
    ) -> Result<Vec<(String, String)>, String> {
        fields
            .iter()
            .map(|(t, n, d)| {
                let t = Self::ty(t);
                let t = match d {
                    None => t,
                    Some(d) => {
                        let v = self
                            .eval(d, 0)
                            .ok_or_else(|| format!("{n}: dimension `{d}` not evaluable"))?;
                        format!("{t}[{v}]")
                    }
                };
                Ok((n.clone(), t))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(merge_ptr_len)
    }
}

const TYPES_H: &str = "crates/gotap-ebpf/bpf/types.h";

fn check_c(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    let c = parse_c(srcs);
    let mut want_defines: BTreeMap<String, u64> = BTreeMap::new();
    for k in &def.constants {
        if let Some(n) = k.forms.get("c") {
            want_defines.insert(n.clone(), k.value);
        }
    }
    // The site kinds' #defines are generated from the definition (crates/gotap-ebpf/build.rs,
    // OUT_DIR/site_kinds.h): none is needed in the sources, any copy there must agree.
    let mut generated: BTreeSet<String> = BTreeSet::new();
    for k in &def.site_kinds {
        want_defines.insert(k.name.clone(), k.value);
        generated.insert(k.name.clone());
    }
    for fl in &def.record_flags.flags {
        if let Some(n) = &fl.c {
            want_defines.insert(n.clone(), fl.bit);
        }
    }
    for (name, want) in &want_defines {
        let copies: Vec<_> = c.all_defines.iter().filter(|d| &d.0 == name).collect();
        if copies.is_empty() && !generated.contains(name) {
            errs.push(format!(
                "C ({TYPES_H}): constant {name}: definition {want}, C has no #define {name}"
            ));
        }
        // Each copy (a define moving into an instrumentations folder may be in both places).
        for (_, expr, file) in copies {
            match c.eval(expr, 0) {
                Some(v) if v == *want as i128 => {}
                Some(v) => errs.push(format!(
                    "C ({file}): constant {name}: definition {want}, C {v} (`{expr}`)"
                )),
                None => errs.push(format!(
                    "C ({file}): constant {name}: definition {want}, C `{expr}` is not evaluable"
                )),
            }
        }
    }
    // Anything added to types.h must be added to the definition (or listed as outside it).
    if let Some(th) = srcs.iter().find(|s| s.path == TYPES_H) {
        let th = parse_c(std::slice::from_ref(th));
        for name in th.defines.keys() {
            if !want_defines.contains_key(name) && !def.outside.c_defines.contains(name) {
                errs.push(format!("C ({TYPES_H}): constant {name}: not in the definition (records.json constants, or outside.c_defines)"));
            }
        }
        for name in th.structs.keys() {
            let known = def.records.values().any(|r| r.c.as_deref() == Some(name));
            if !known && !def.outside.c_structs.contains(name) {
                errs.push(format!("C ({TYPES_H}): struct {name}: not in the definition (records.json records, or outside.c_structs)"));
            }
        }
    } else {
        errs.push(format!("C ({TYPES_H}): file not found"));
    }
    // Records: every C copy found.
    for (rname, rec) in &def.records {
        let Some(cname) = &rec.c else { continue };
        let copies: Vec<_> = c.all_structs.iter().filter(|s| &s.0 == cname).collect();
        if copies.is_empty() {
            errs.push(format!("C: {rname}: no `struct {cname}` in crates/gotap-ebpf/bpf or instrumentations/*/bpf"));
        }
        for (_, fields, file) in copies {
            match c.struct_fields(fields) {
                Ok(got) => {
                    // C keeps a pointer as a u64.
                    let want: Vec<_> = def
                        .fields(rname, true)
                        .into_iter()
                        .map(|(n, t)| (n, if t == "ptr" { "u64".into() } else { t }))
                        .collect();
                    compare(errs, "C", file, rname, &want, &got, true, false)
                }
                Err(e) => errs.push(format!("C ({file}): {rname}.{e}")),
            }
        }
    }
    // String caps of each kind, from the site_put calls of the branches on `kind`.
    let mut seen = BTreeSet::new();
    for s in srcs.iter().filter(|s| is_c(&s.path)) {
        let text = strip_c_comments(&s.text);
        let mut at = 0;
        while let Some(i) = text[at..].find("if (kind == ") {
            let st = at + i;
            at = st + 4;
            let cond_end = text[st..].find(')').map(|e| st + e).unwrap_or(st);
            let cond = &text[st + 4..cond_end];
            if cond.contains("&&") {
                continue;
            }
            let kinds: Vec<&str> = cond
                .split("||")
                .filter_map(|p| p.trim().strip_prefix("kind =="))
                .map(str::trim)
                .collect();
            let Some(brace) = text[cond_end..].find('{') else {
                continue;
            };
            let body = block(&text, cond_end + brace);
            if !body.contains("site_put(") {
                continue;
            }
            for kname in kinds {
                let Some(k) = def.site_kinds.iter().find(|k| k.name == kname) else {
                    errs.push(format!("C ({}): site kind {kname}: strings copied for a kind the definition does not have", s.path));
                    continue;
                };
                seen.insert(kname.to_string());
                let mut n = 0;
                for call in body.split("site_put(").skip(1) {
                    let args = split_args(call);
                    if args.len() < 6 {
                        continue;
                    }
                    n += 1;
                    let slot: usize = args[2].trim().parse().unwrap_or(usize::MAX);
                    let cap_expr = args[5].trim();
                    let cap = if let Some((cond, alt)) = cap_expr.split_once('?') {
                        let (yes, no) = alt.split_once(':').unwrap_or((alt, ""));
                        let on = cond.trim().strip_prefix("kind ==").map(str::trim)
                            == Some(k.name.as_str());
                        c.eval(if on { yes } else { no }, 0)
                    } else {
                        c.eval(cap_expr, 0)
                    };
                    match k.slots.get(slot) {
                        None => errs.push(format!("C ({}): {}: string slot {slot}: C copies it, the definition has {} slots", s.path, k.name, k.slots.len())),
                        Some(sl) => {
                            if cap != Some(sl.cap as i128) {
                                errs.push(format!(
                                    "C ({}): {} slot {slot} ({}): definition cap {}, C cap {} (`{cap_expr}`)",
                                    s.path, k.name, sl.rust, sl.cap,
                                    cap.map_or("not evaluable".to_string(), |v| v.to_string())
                                ));
                            }
                            if c.eval(&sl.c_cap, 0) != Some(sl.cap as i128) {
                                errs.push(format!("C ({TYPES_H}): {} slot {slot} ({}): definition cap {}, C `{}` is not that", k.name, sl.rust, sl.cap, sl.c_cap));
                            }
                        }
                    }
                }
                if n != k.slots.len() {
                    errs.push(format!(
                        "C ({}): {}: definition has {} string slots, C copies {n}",
                        s.path,
                        k.name,
                        k.slots.len()
                    ));
                }
            }
        }
    }
    // A library's function probes emit site events too (instrumentations/<lib>/bpf): each string
    // it copies with site_put must be cut at the cap its slot has in one of the kinds the file
    // emits, so `gotap run` and `gotap build --probes` make the same spans.
    for s in srcs
        .iter()
        .filter(|s| s.path.starts_with("instrumentations/") && is_c(&s.path))
    {
        let text = strip_c_comments(&s.text);
        let file_kinds = kinds_in(def, &text);
        // By function: the kinds a function names are those its strings are for; a helper that
        // names none serves any kind of the file.
        for body in top_level_blocks(&text) {
            let kinds = match kinds_in(def, body) {
                k if k.is_empty() => file_kinds.clone(),
                k => k,
            };
            for call in body.split("site_put(").skip(1) {
                let args = split_args(call);
                if args.len() < 6 {
                    continue;
                }
                let Ok(slot) = args[2].trim().parse::<usize>() else {
                    continue;
                };
                let cap_expr = args[5].trim();
                // A cap that depends on the kind (`kind == K ? A : B`, as the branches on `kind`
                // above may have): each arm must be a cap of the slot.
                let arms: Vec<&str> = match cap_expr.split_once('?') {
                    Some((cond, alt)) if cond.trim().starts_with("kind ==") => {
                        let (yes, no) = alt.split_once(':').unwrap_or((alt, ""));
                        vec![yes.trim(), no.trim()]
                    }
                    _ => vec![cap_expr],
                };
                for arm in arms {
                    let Some(cap) = c.eval(arm, 0) else {
                        errs.push(format!(
                            "C ({}): site_put slot {slot}: cap `{cap_expr}` is not evaluable",
                            s.path
                        ));
                        continue;
                    };
                    let ok = kinds
                        .iter()
                        .any(|k| k.slots.get(slot).is_some_and(|sl| sl.cap as i128 == cap));
                    if !ok {
                        let want: Vec<String> = kinds
                            .iter()
                            .filter_map(|k| {
                                k.slots
                                    .get(slot)
                                    .map(|sl| format!("{} {} cap {}", k.name, sl.rust, sl.cap))
                            })
                            .collect();
                        errs.push(format!(
                            "C ({}): site_put slot {slot}: definition {}, C cap {cap} (`{cap_expr}`)",
                            s.path,
                            if want.is_empty() {
                                "has no such slot in the kinds this file emits".to_string()
                            } else {
                                want.join(" or ")
                            }
                        ));
                    }
                }
            }
        }
    }
    for k in &def.site_kinds {
        if !seen.contains(&k.name) {
            errs.push(format!(
                "C: {}: no `if (kind == {})` branch copying its strings (site_put) in the BPF C",
                k.name, k.name
            ));
        }
    }
}

/// The site kinds a piece of C names.
fn kinds_in<'a>(def: &'a Def, text: &str) -> Vec<&'a Kind> {
    let toks = tokens(text);
    def.site_kinds
        .iter()
        .filter(|k| toks.contains(&Tok::Id(k.name.clone())))
        .collect()
}

/// The bodies of the top-level `{...}` blocks of a C file (functions, structs, maps).
fn top_level_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(o) = text[i..].find('{') {
        let b = block(text, i + o);
        out.push(b);
        i = i + o + b.len() + 2;
        if i >= text.len() {
            break;
        }
    }
    out
}

/// A Go string kept as two u64s `X_ptr`, `X_len` (the BPF C's site_args) is the definition's
/// `X: str`.
fn merge_ptr_len(fields: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, t) in fields {
        if let (Some(stem), Some(last)) = (n.strip_suffix("_len"), out.last()) {
            if t == "u64" && last.1 == "u64" && last.0.strip_suffix("_ptr") == Some(stem) {
                let stem = stem.to_string();
                *out.last_mut().unwrap() = (stem, "str".into());
                continue;
            }
        }
        out.push((n, t));
    }
    out
}

/// The arguments of a call whose text starts after its `(`, split at top-level commas.
fn split_args(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => break,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().unwrap().push(c);
    }
    out
}

// ---------------------------------------------------------------- Rust

struct RustForm {
    /// name -> [(expression, file)]
    consts: BTreeMap<String, Vec<(String, String)>>,
    /// name -> (value, file) of the `mod slot` constants
    slots: BTreeMap<String, Vec<(u64, String)>>,
    /// #[repr(C)] structs: name -> [(fields (name, type), file)]
    structs: BTreeMap<String, Vec<(Fields, String)>>,
}

fn parse_rust(srcs: &[Src]) -> RustForm {
    let mut f = RustForm {
        consts: BTreeMap::new(),
        slots: BTreeMap::new(),
        structs: BTreeMap::new(),
    };
    for s in srcs.iter().filter(|s| is_rust(&s.path)) {
        let text = strip_line_comments(&s.text);
        // The test modules build events of their own: not copies.
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let mut slot_ranges = Vec::new();
        let mut at = 0;
        // String-slot modules are those whose constants index an event's strings (a library's
        // `mod slot` of lib_cfg indices is not one).
        let strings = ["str(slot::", "string(slot::", "bytes(slot::"]
            .iter()
            .any(|p| text.contains(p));
        while let Some(i) = text[at..].find("mod slot {").filter(|_| strings) {
            let st = at + i;
            let body = block(text, st + 9);
            slot_ranges.push(st..st + 10 + body.len());
            for l in body.lines() {
                if let Some((name, v)) = rust_const(l) {
                    let v = v.trim().parse().unwrap_or(u64::MAX);
                    f.slots.entry(name).or_default().push((v, s.path.clone()));
                }
            }
            at = st + 10;
        }
        let mut pos = 0;
        for l in text.split_inclusive('\n') {
            let here = pos;
            pos += l.len();
            if slot_ranges.iter().any(|r| r.contains(&here)) {
                continue;
            }
            if let Some((name, v)) = rust_const(l) {
                f.consts.entry(name).or_default().push((v, s.path.clone()));
            }
        }
        let mut at = 0;
        while let Some(i) = text[at..].find("#[repr(C)]") {
            let st = at + i;
            at = st + 10;
            let Some(sp) = text[st..].find("pub struct ") else {
                break;
            };
            let head = &text[st + sp + 11..];
            let Some(brace) = head.find('{') else { break };
            let name = head[..brace].trim().to_string();
            let body = block(text, st + sp + 11 + brace);
            let mut fields = Vec::new();
            for l in body.lines() {
                let l = l.trim().trim_end_matches(',');
                let Some(l) = l.strip_prefix("pub ") else {
                    continue;
                };
                let Some((n, t)) = l.split_once(':') else {
                    continue;
                };
                fields.push((n.trim().to_string(), t.trim().to_string()));
            }
            f.structs
                .entry(name)
                .or_default()
                .push((fields, s.path.clone()));
        }
    }
    f
}

/// `pub const NAME: T = EXPR;` on one line.
fn rust_const(l: &str) -> Option<(String, String)> {
    let l = l.trim();
    let l = l
        .strip_prefix("pub(crate) ")
        .or_else(|| l.strip_prefix("pub "))
        .unwrap_or(l);
    let l = l.strip_prefix("const ")?;
    let (name, rest) = l.split_once(':')?;
    let (_, expr) = rest.split_once('=')?;
    let expr = expr.trim().strip_suffix(';')?;
    Some((name.trim().to_string(), expr.trim().to_string()))
}

impl RustForm {
    fn eval(&self, expr: &str, depth: u32) -> Option<i128> {
        if depth > 16 {
            return None;
        }
        eval(
            expr,
            &|n| self.eval(&self.consts.get(n)?.first()?.0, depth + 1),
            &no_special,
        )
    }
    fn ty(&self, t: &str) -> Result<String, String> {
        let t = t.trim();
        if let Some(inner) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            let (e, n) = inner.split_once(';').ok_or("array without length")?;
            let n = self
                .eval(n.trim(), 0)
                .ok_or_else(|| format!("length `{}` not evaluable", n.trim()))?;
            return Ok(format!("{}[{n}]", self.ty(e)?));
        }
        Ok(t.to_string())
    }
}

fn check_rust(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    let r = parse_rust(srcs);
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for k in &def.constants {
        if let Some(n) = k.forms.get("rust") {
            want.insert(n.clone(), k.value);
        }
    }
    for fl in &def.record_flags.flags {
        if let Some(n) = &fl.rust {
            want.insert(n.clone(), fl.bit);
        }
    }
    let kinds: BTreeMap<&str, u64> = def
        .site_kinds
        .iter()
        .map(|k| (k.name.as_str(), k.value))
        .collect();
    for (name, v) in &want {
        if !r.consts.contains_key(name) {
            errs.push(format!("Rust (crates/gotap-ebpf/src): constant {name}: definition {v}, Rust has no const {name}"));
        }
    }
    for k in &def.site_kinds {
        if !r.consts.contains_key(&k.name) {
            errs.push(format!(
                "Rust (crates/gotap-ebpf/src): kind {}: definition {}, Rust has no const {}",
                k.name, k.value, k.name
            ));
        }
    }
    const PREFIXES: &[&str] = &[
        "EV_",
        "EVF_",
        "PARENT_",
        "REC_",
        "CNT_",
        "SITE_",
        "RFLAG_",
        "EXIT_REFS",
        "BATCH_HEAD",
    ];
    for (name, copies) in &r.consts {
        let w = want
            .get(name)
            .copied()
            .or_else(|| kinds.get(name.as_str()).copied());
        for (expr, file) in copies {
            match (w, r.eval(expr, 0)) {
                (Some(w), Some(v)) if v == w as i128 => {}
                (Some(w), v) => errs.push(format!(
                    "Rust ({file}): constant {name}: definition {w}, Rust {} (`{expr}`)",
                    v.map_or("not evaluable".into(), |v| v.to_string())
                )),
                (None, _) if PREFIXES.iter().any(|p| name.starts_with(p)) => errs.push(format!(
                    "Rust ({file}): constant {name}: not in the definition (records.json)"
                )),
                (None, _) => {}
            }
        }
    }
    // String slots: each kind's slot constant has the slot's index; every slot constant is one.
    let mut used = BTreeSet::new();
    for k in &def.site_kinds {
        for (i, sl) in k.slots.iter().enumerate() {
            used.insert(sl.rust.clone());
            match r.slots.get(&sl.rust) {
                None => errs.push(format!("Rust (crates/gotap-ebpf/src): {} slot {i}: definition slot constant {}, Rust has no `mod slot` const {}", k.name, sl.rust, sl.rust)),
                Some(copies) => {
                    for (v, file) in copies {
                        if *v != i as u64 {
                            errs.push(format!("Rust ({file}): {} slot {}: definition {i}, Rust {v}", k.name, sl.rust));
                        }
                    }
                }
            }
        }
    }
    for (name, copies) in &r.slots {
        if !used.contains(name) {
            errs.push(format!(
                "Rust ({}): slot {name}: not a slot of any kind in the definition",
                copies[0].1
            ));
        }
    }
    // Structs.
    for (rname, rec) in &def.records {
        let Some(rs) = &rec.rust else { continue };
        let Some(copies) = r.structs.get(rs) else {
            errs.push(format!(
                "Rust (crates/gotap-ebpf/src): {rname}: no #[repr(C)] struct {rs}"
            ));
            continue;
        };
        let want: Vec<(String, String)> = rec
            .fields
            .iter()
            .zip(def.fields(rname, false))
            .map(|(f, (_, t))| (f.rust.clone().unwrap_or(f.name.clone()), t))
            .collect();
        for (fields, file) in copies {
            let got: Result<Vec<_>, String> = fields
                .iter()
                .map(|(n, t)| Ok((n.clone(), r.ty(t).map_err(|e| format!("{n}: {e}"))?)))
                .collect();
            match got {
                Ok(got) => compare(errs, "Rust", file, rname, &want, &got, true, false),
                Err(e) => errs.push(format!("Rust ({file}): {rname}.{e}")),
            }
        }
    }
    // The batch head's byte ranges read by site_batch.
    let mut found = false;
    for s in srcs.iter().filter(|s| is_rust(&s.path)) {
        for field in ["proc", "len"] {
            let pat = format!("let {field} = u32::from_le_bytes(b[");
            let Some(i) = s.text.find(&pat) else { continue };
            found = true;
            let range = &s.text[i + pat.len()..];
            let range = &range[..range.find(']').unwrap_or(0)];
            let (a, b) = range.split_once("..").unwrap_or(("", ""));
            let (a, b) = (
                a.parse::<u64>().unwrap_or(u64::MAX),
                b.parse::<u64>().unwrap_or(u64::MAX),
            );
            let off = def.offset_of("site_batch_head", field);
            if a != off || b.wrapping_sub(a) != 4 {
                errs.push(format!("Rust ({}): site_batch_head.{field}: definition bytes {off}..{}, Rust reads {range}", s.path, off + 4));
            }
        }
    }
    if !found {
        errs.push("Rust (crates/gotap-ebpf/src): site_batch_head: no `u32::from_le_bytes(b[..])` reads of proc and len found".into());
    }
}

// ---------------------------------------------------------------- Go

struct GoFile<'a> {
    path: &'a str,
    package: String,
    text: String,
}

/// `name = expr` entries of const blocks and `const name = expr` lines.
fn go_consts(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for l in text.lines() {
        let t = l.trim();
        if t == "const (" {
            in_block = true;
            continue;
        }
        if in_block && t == ")" {
            in_block = false;
            continue;
        }
        let entry = if in_block {
            Some(t)
        } else {
            t.strip_prefix("const ")
        };
        if let Some(e) = entry {
            if let Some((n, v)) = e.split_once('=') {
                let n = n.trim();
                let n = n.split_whitespace().next().unwrap_or("");
                if !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    out.push((n.to_string(), v.trim().to_string()));
                }
            }
        }
    }
    out
}

/// `name = [N]int{a, b, ...}` anywhere (var blocks or lines).
fn go_int_arrays(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for l in text.lines() {
        let t = l.trim().trim_start_matches("var ").trim();
        let Some((n, v)) = t.split_once('=') else {
            continue;
        };
        let v = v.trim();
        if !v.starts_with('[') || !v.contains("]int{") {
            continue;
        }
        let inner = v.split_once('{').unwrap().1.trim_end_matches('}');
        out.push((
            n.trim().to_string(),
            inner
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ));
    }
    out
}

/// `type NAME struct { ... }`: fields (name, Go type) in order.
fn go_struct(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let i = text.find(&format!("type {name} struct {{"))?;
    let open = i + text[i..].find('{')?;
    let mut out = Vec::new();
    for l in block(text, open).lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let (names, ty) = match l.rsplit_once(' ') {
            Some((n, t)) if n.contains(',') || !n.trim().contains(' ') => (n.trim(), t.trim()),
            _ => {
                // `names   type` with alignment spaces
                let mut p = l.split_whitespace();
                let first = p.next()?;
                (first, p.next().unwrap_or(""))
            }
        };
        for n in names.split(',') {
            out.push((n.trim().to_string(), ty.to_string()));
        }
    }
    Some(out)
}

fn go_type(t: &str, consts: &dyn Fn(&str) -> Option<i128>) -> String {
    match t {
        "uint64" | "uintptr" => "u64".into(),
        "int64" | "int" => "i64".into(),
        "uint32" => "u32".into(),
        "uint16" => "u16".into(),
        "byte" | "uint8" => "u8".into(),
        "string" => "str".into(),
        t if t.starts_with('*') => "ptr".into(),
        t if t.starts_with('[') => {
            let (n, e) = t[1..].split_once(']').unwrap_or(("", ""));
            let n = eval(n, consts, &no_special).map_or(n.to_string(), |v| v.to_string());
            format!("{}[{n}]", go_type(e, consts))
        }
        other => other.into(),
    }
}

/// Top-level `func NAME(...)` declarations and bodies (bodies end at a `}` at column 0).
fn go_funcs(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if let Some(rest) = lines[i].strip_prefix("func ") {
            let name = rest.split('(').next().unwrap_or("").trim().to_string();
            let sig = rest.to_string();
            let mut body = String::new();
            if rest.trim_end().ends_with('{') {
                i += 1;
                while i < lines.len() && lines[i] != "}" {
                    body.push_str(lines[i]);
                    body.push('\n');
                    i += 1;
                }
            }
            out.push((name, sig, body));
        }
        i += 1;
    }
    out
}

/// Parameter types of a Go signature `name(a, b string, c int64) ...`.
fn go_params(sig: &str) -> Vec<(String, String)> {
    let inner = sig.split_once('(').map_or("", |x| x.1);
    let inner = &inner[..inner.find(')').unwrap_or(0)];
    let mut out = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for p in inner.split(',') {
        let p = p.trim();
        match p.split_once(' ') {
            Some((n, t)) => {
                pending.push(n.to_string());
                for n in pending.drain(..) {
                    out.push((n, t.trim().to_string()));
                }
            }
            None => pending.push(p.to_string()),
        }
    }
    out
}

fn check_go(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    let files: Vec<GoFile> = srcs
        .iter()
        .filter(|s| is_go(&s.path))
        .map(|s| GoFile {
            path: &s.path,
            package: s
                .text
                .lines()
                .find_map(|l| l.strip_prefix("package "))
                .unwrap_or("")
                .trim()
                .to_string(),
            text: strip_line_comments(&s.text),
        })
        .collect();
    if files.is_empty() {
        errs.push(
            "Go: no probe-site fragments under go/probes or instrumentations/*/probes".into(),
        );
        return;
    }
    // Constants by package; the shared package's are compiled into every woven package.
    let mut consts: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut const_file: BTreeMap<(String, String), String> = BTreeMap::new();
    for f in &files {
        for (n, v) in go_consts(&f.text) {
            const_file.insert((f.package.clone(), n.clone()), f.path.to_string());
            consts.entry(f.package.clone()).or_default().insert(n, v);
        }
    }
    let shared = consts.get("gotapshared").cloned().unwrap_or_default();
    let table = |pkg: &str| {
        let mut t = shared.clone();
        t.extend(consts.get(pkg).cloned().unwrap_or_default());
        t
    };
    let file_of = |pkg: &str, n: &str| {
        const_file
            .get(&(pkg.to_string(), n.to_string()))
            .or_else(|| const_file.get(&("gotapshared".to_string(), n.to_string())))
            .cloned()
            .unwrap_or_else(|| format!("package {pkg}"))
    };
    let packages: BTreeSet<String> = def
        .site_kinds
        .iter()
        .map(|k| k.go.package.clone())
        .collect();
    for pkg in &packages {
        if !files.iter().any(|f| &f.package == pkg) {
            errs.push(format!("Go: package {pkg}: no probe-site fragment found"));
            continue;
        }
        let t = table(pkg);
        let mut check_const = |what: &str, name: &str, want: u64| match t.get(name) {
            None => errs.push(format!(
                "Go (package {pkg}): {what}: definition {want}, Go has no const {name}"
            )),
            Some(expr) => match eval_table(expr, &t, 0) {
                Some(v) if v == want as i128 => {}
                v => errs.push(format!(
                    "Go ({}): {what}: definition {want}, Go {name} = {} (`{expr}`)",
                    file_of(pkg, name),
                    v.map_or("not evaluable".into(), |v| v.to_string())
                )),
            },
        };
        for k in def.site_kinds.iter().filter(|k| &k.go.package == pkg) {
            check_const(&format!("kind {}", k.name), &k.go.kind, k.value);
            check_const(
                &format!("kind {} batch package", k.name),
                "gotapBatchPackage",
                k.batch_package,
            );
        }
        for c in &def.constants {
            if let Some(n) = c.forms.get("go") {
                check_const(&format!("constant {}", c.name), n, c.value);
            }
        }
        // Flags: those this package defines must have the definition's bit.
        for fl in &def.record_flags.flags {
            if let Some(n) = &fl.go {
                if t.contains_key(n) {
                    check_const(&format!("flag {}", fl.name), n, fl.bit);
                }
            }
        }
        let known_kind: BTreeSet<&str> = def
            .site_kinds
            .iter()
            .filter(|k| &k.go.package == pkg)
            .map(|k| k.go.kind.as_str())
            .collect();
        let known_flag: BTreeSet<&str> = def
            .record_flags
            .flags
            .iter()
            .filter_map(|f| f.go.as_deref())
            .collect();
        for n in t.keys() {
            if (n.starts_with("gotapKind") && !known_kind.contains(n.as_str()))
                || (n.starts_with("gotapFlag") && !known_flag.contains(n.as_str()))
            {
                errs.push(format!(
                    "Go ({}): const {n}: not in the definition (records.json)",
                    file_of(pkg, n)
                ));
            }
        }
    }
    for fl in &def.record_flags.flags {
        if let Some(n) = &fl.go {
            if !consts.values().any(|t| t.contains_key(n)) {
                errs.push(format!(
                    "Go: flag {}: definition {}, no Go const {n}",
                    fl.name, fl.bit
                ));
            }
        }
    }
    let site_event = def.record("site_event");
    let head_start = def.offset_of("site_event", "status");
    let slen_off = def.offset_of("site_event", "slen") - head_start;
    let head_fields: Vec<&str> = site_event
        .fields
        .iter()
        .filter_map(|f| f.go.as_deref())
        .collect();
    let mut seen_caps = BTreeSet::new();
    let mut seen_strs = BTreeSet::new();
    let mut seen_sites = BTreeSet::new();
    for f in &files {
        let t = table(&f.package);
        let cv = |n: &str| eval_table(t.get(n)?, &t, 0);
        // Caps arrays.
        for (name, vals) in go_int_arrays(&f.text) {
            if !name.ends_with("Caps") {
                continue;
            }
            let Some(k) = def
                .site_kinds
                .iter()
                .find(|k| k.go.package == f.package && k.go.caps == name)
            else {
                errs.push(format!(
                    "Go ({}): {name}: caps of no kind of the definition",
                    f.path
                ));
                continue;
            };
            seen_caps.insert(k.name.clone());
            for i in 0..vals.len().max(k.slots.len()) {
                let got = vals.get(i).and_then(|v| eval_table(v, &t, 0));
                let want = k.slots.get(i).map(|s| s.cap);
                if got.map(|g| g as u64) != want {
                    errs.push(format!(
                        "Go ({}): {} slot {i} ({}): definition cap {}, Go {name}[{i}] {}",
                        f.path,
                        k.name,
                        k.slots.get(i).map_or("-", |s| s.rust.as_str()),
                        want.map_or("none".into(), |w| w.to_string()),
                        vals.get(i).map_or("none", |v| v.as_str())
                    ));
                }
            }
        }
        for (fname, sig, body) in go_funcs(&f.text) {
            // The strings of each kind, in slot order.
            if let Some(i) = body.find("strs := [") {
                let decl = &body[i..];
                let dim = decl["strs := [".len()..].split(']').next().unwrap_or("");
                if eval_table(dim, &t, 0) != def.constant("SITE_STRS").map(|v| v as i128) {
                    errs.push(format!("Go ({}): {fname}: site_event.slen: definition SITE_STRS {}, Go strs has [{dim}]", f.path, def.constant("SITE_STRS").unwrap_or(0)));
                }
                let inner = decl.split_once('{').map_or("", |x| x.1);
                let inner = &inner[..inner.find('}').unwrap_or(0)];
                let got: Vec<&str> = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                let caps = body.split("&strs, &").nth(1).map(|r| {
                    r.split(|c: char| !c.is_alphanumeric())
                        .next()
                        .unwrap_or("")
                        .to_string()
                });
                let k = caps.and_then(|c| {
                    def.site_kinds
                        .iter()
                        .find(|k| k.go.package == f.package && k.go.caps == c)
                });
                match k {
                    None => errs.push(format!("Go ({}): {fname}: builds site strings, but its caps name no kind of the definition", f.path)),
                    Some(k) => {
                        seen_strs.insert(k.name.clone());
                        for i in 0..got.len().max(k.slots.len()) {
                            let w = k.slots.get(i).map(|s| s.go.as_str());
                            let g = got.get(i).copied();
                            if w != g {
                                errs.push(format!(
                                    "Go ({}): {} slot {i} ({}): definition `{}`, Go `{}` ({fname})",
                                    f.path,
                                    k.name,
                                    k.slots.get(i).map_or("-", |s| s.rust.as_str()),
                                    w.unwrap_or("none"),
                                    g.unwrap_or("none")
                                ));
                            }
                        }
                        if let Some(add) = body.split("gotapBatchAdd(").nth(1) {
                            let kc = add.split(',').next().unwrap_or("").trim();
                            if kc != k.go.kind {
                                errs.push(format!("Go ({}): {fname}: batches {} strings under `{kc}`, definition kind const {}", f.path, k.name, k.go.kind));
                            }
                        }
                    }
                }
            }
            // The event's head, as gotapProbeEvent writes it.
            if fname == "gotapProbeEvent" {
                let list = body
                    .split("range [")
                    .nth(1)
                    .and_then(|r| r.split_once('{'))
                    .map(|x| x.1)
                    .unwrap_or("");
                let list = &list[..list.find('}').unwrap_or(0)];
                let got: Vec<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                let fields: Vec<&Field> = site_event
                    .fields
                    .iter()
                    .filter(|x| x.go.is_some())
                    .collect();
                for i in 0..got.len().max(head_fields.len()) {
                    if got.get(i) != head_fields.get(i) {
                        let off = fields
                            .get(i)
                            .map(|x| def.offset_of("site_event", &x.name) - head_start);
                        errs.push(format!(
                            "Go ({}): site_event.{}: definition `{}` at event byte {}, Go writes `{}` there",
                            f.path,
                            fields.get(i).map_or("-", |x| x.name.as_str()),
                            head_fields.get(i).unwrap_or(&"none"),
                            off.map_or("-".into(), |o| o.to_string()),
                            got.get(i).unwrap_or(&"none")
                        ));
                    }
                }
                if !body.contains("gotapPut64(b[8*i:], v)") {
                    errs.push(format!("Go ({}): site_event.status: definition: the head's u64s at event byte 8*i, Go does not write `gotapPut64(b[8*i:], v)`", f.path));
                }
                let pat = format!(
                    "b[{slen_off}+2*i], b[{slen_off}+2*i+1] = byte(len(s)), byte(len(s)>>8)"
                );
                if !body.contains(&pat) {
                    let got = body
                        .lines()
                        .find(|l| l.contains("+2*i]"))
                        .unwrap_or("none")
                        .trim();
                    errs.push(format!(
                        "Go ({}): site_event.slen: definition at event byte {slen_off}, Go `{got}`",
                        f.path
                    ));
                }
            }
            // The site functions: their arguments are site_args.
            if let Some(k) = def
                .site_kinds
                .iter()
                .find(|k| k.go.site == fname && k.go.package == f.package)
            {
                seen_sites.insert(k.name.clone());
                let got: Vec<(String, String)> = go_params(&sig)
                    .into_iter()
                    .map(|(n, t)| (n, go_type(&t, &cv)))
                    .collect();
                let want = def.fields("site_args", false);
                compare(
                    errs,
                    "Go",
                    f.path,
                    &format!("site_args of {} ({fname})", k.name),
                    &want,
                    &got,
                    false,
                    false,
                );
            }
        }
        // Records.
        for rname in ["site_record", "batch_buffer"] {
            let rec = def.record(rname);
            let Some(gname) = &rec.go else { continue };
            let Some(fields) = go_struct(&f.text, gname) else {
                continue;
            };
            let got: Vec<(String, String)> = fields
                .iter()
                .map(|(n, t)| (n.clone(), go_type(t, &cv)))
                .collect();
            let want: Vec<(String, String)> = rec
                .fields
                .iter()
                .zip(def.fields(rname, false))
                .map(|(fd, (_, t))| (fd.name.clone(), t))
                .collect();
            // Names only where the definition gives the Go name (the strings are per library).
            let mut e = Vec::new();
            compare(
                &mut e,
                "Go",
                f.path,
                rname,
                &want,
                &got,
                false,
                rname == "batch_buffer",
            );
            errs.extend(e);
            for (i, fd) in rec.fields.iter().enumerate() {
                if let (Some(w), Some(g)) = (&fd.go, got.get(i)) {
                    if w != &g.0 {
                        errs.push(format!("Go ({}): {rname}.{}: definition Go name `{w}` at position {i}, Go `{}`", f.path, fd.name, g.0));
                    }
                }
            }
        }
    }
    for k in &def.site_kinds {
        if !seen_caps.contains(&k.name) {
            errs.push(format!(
                "Go (package {}): {}: no caps array {}",
                k.go.package, k.name, k.go.caps
            ));
        }
        if !seen_sites.contains(&k.name) {
            errs.push(format!(
                "Go (package {}): site_args of {}: no site function {}",
                k.go.package, k.name, k.go.site
            ));
        }
        if !seen_strs.contains(&k.name) {
            errs.push(format!(
                "Go (package {}): {}: no function builds its strings with &{}",
                k.go.package, k.name, k.go.caps
            ));
        }
    }
    // The sites' assembly: frame size and where the event argument is.
    let args = def.fields("site_args", false);
    let frame = layout(&args).size;
    let event_off = def.offset_of("site_args", "event");
    let mut seen_asm = BTreeSet::new();
    for s in srcs.iter().filter(|s| is_go_asm(&s.path)) {
        for k in &def.site_kinds {
            let Some(i) = s.text.find(&format!("TEXT ·{}(SB)", k.go.site)) else {
                continue;
            };
            seen_asm.insert(k.name.clone());
            let body = &s.text[i..];
            let body = &body[..body.find("RET").unwrap_or(body.len())];
            let line = body.lines().next().unwrap_or("");
            let got_frame = line.rsplit_once('-').map_or("", |x| x.1).trim();
            if got_frame != frame.to_string() {
                errs.push(format!("Go assembly ({}): site_args of {} ({}): definition frame $0-{frame}, assembly `{line}`", s.path, k.name, k.go.site));
            }
            for (part, off) in [("event_base", event_off), ("event_len", event_off + 8)] {
                let pat = format!("{part}+{off}(FP)");
                if !body.contains(&pat) {
                    let got = body
                        .lines()
                        .find(|l| l.contains(part))
                        .unwrap_or("none")
                        .trim();
                    errs.push(format!("Go assembly ({}): site_args.event of {}: definition {part} at {off}(FP), assembly `{got}`", s.path, k.name));
                }
            }
        }
    }
    for k in &def.site_kinds {
        if !seen_asm.contains(&k.name) {
            errs.push(format!(
                "Go assembly: site_args of {}: no `TEXT ·{}(SB)` under go/probes or instrumentations/*/probes",
                k.name, k.go.site
            ));
        }
    }
}

// ---------------------------------------------------------------- bpftrace and USDT

const PROBES_RS: &str = "crates/gotap-cli/src/probes.rs";

/// The content of the `"..."` string literals of `s += "...";` lines between two markers.
fn script_lines(text: &str, from: &str, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut on = false;
    for l in text.lines() {
        let Some(lit) = l
            .trim()
            .strip_prefix("s += \"")
            .and_then(|x| x.strip_suffix("\";"))
        else {
            continue;
        };
        let lit = lit.replace("\\n", "");
        if lit.starts_with(from) {
            on = true;
            continue;
        }
        if on && lit.starts_with(to) {
            break;
        }
        if on {
            out.push(lit);
        }
    }
    out
}

fn check_bpftrace(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    let Some(src) = srcs.iter().find(|s| s.path == PROBES_RS) else {
        errs.push(format!("bpftrace ({PROBES_RS}): file not found"));
        return;
    };
    let text = &src.text;
    let rec = def.record("site_record");
    let bname = rec.bpftrace.as_deref().unwrap_or("gotap_record");
    let decls = script_lines(text, &format!("struct {bname} {{"), "}");
    let mut got = Vec::new();
    for d in decls
        .iter()
        .flat_map(|l| l.split(';'))
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let (t, n) = d.rsplit_once(' ').unwrap_or(("", d));
        let t = match t.trim() {
            "unsigned long" => "u64",
            "long" => "i64",
            "unsigned int" => "u32",
            "int" => "i32",
            other => other,
        };
        got.push((n.to_string(), t.to_string()));
    }
    if got.is_empty() {
        errs.push(format!(
            "bpftrace ({PROBES_RS}): site_record: no `struct {bname}` in the script"
        ));
    }
    // A Go string is two fields there: NAME_ptr, NAME_len.
    let mut want = Vec::new();
    for (n, t) in def.fields("site_record", false) {
        if t == "str" {
            want.push((format!("{n}_ptr"), "u64".to_string()));
            want.push((format!("{n}_len"), "i64".to_string()));
        } else {
            want.push((n, t));
        }
    }
    compare(
        errs,
        "bpftrace",
        PROBES_RS,
        "site_record",
        &want,
        &got,
        true,
        false,
    );
    let rec_fields: BTreeSet<&str> = got.iter().map(|x| x.0.as_str()).collect();

    // The stack slots it reads at the NOP: argument N at 8 + 8N, the record pointer at its slot.
    let args = layout(&def.fields("site_args", false));
    let slot_of = |name: &str, part: u64| {
        args.fields
            .iter()
            .find(|f| f.0 == name)
            .map(|f| (f.2 + part) / 8)
    };
    let stack = text.split("const STACK_ARGS").nth(1).unwrap_or("");
    let stack = &stack[..stack.find("\";").unwrap_or(0)];
    let mut read = BTreeMap::new();
    for part in stack.split(';') {
        let part = part.trim().trim_start_matches("\\n").trim();
        let Some((var, rhs)) = part.split_once(" = ") else {
            continue;
        };
        let var = var.trim().rsplit(' ').next().unwrap_or("").trim();
        let Some(off) = rhs
            .split("($sp + ")
            .nth(1)
            .and_then(|r| r.split(')').next())
        else {
            continue;
        };
        read.insert(
            var.to_string(),
            off.trim().parse::<u64>().unwrap_or(u64::MAX),
        );
    }
    let text_ptr = slot_of("text", 0).unwrap_or(99);
    for (var, field, slot) in [
        ("$a6", "text (ptr)", text_ptr),
        ("$a7", "text (len)", text_ptr + 1),
        ("$r", "record", slot_of("record", 0).unwrap_or(99)),
    ] {
        let want = 8 + 8 * slot;
        match read.get(var) {
            Some(&o) if o == want => {}
            o => errs.push(format!(
                "bpftrace ({PROBES_RS}): site_args.{field}: definition at {want}(%rsp), bpftrace reads {var} at {}",
                o.map_or("nowhere".into(), |o| format!("$sp + {o}"))
            )),
        }
        if var == "$a6" && text_ptr != 6 {
            errs.push(format!("bpftrace ({PROBES_RS}): site_args.text: definition argument {text_ptr}, bpftrace names it $a6"));
        }
    }

    // Rows: one per site kind; the argument slots and record fields each uses.
    let usdt: BTreeSet<&str> = def.site_kinds.iter().map(|k| k.usdt.as_str()).collect();
    let mut rows = BTreeSet::new();
    let site_rows: Vec<(String, LibSiteRow)> = srcs
        .iter()
        .filter(|s| is_sites_rs(&s.path))
        .flat_map(|s| {
            lib_site_rows(&s.text)
                .into_iter()
                .map(|r| (s.path.clone(), r))
        })
        .collect();
    for (file, row) in &site_rows {
        let probe = row.name.clone();
        let a = row.bpftrace_args.as_str();
        if !usdt.contains(probe.as_str()) {
            errs.push(format!(
                "bpftrace ({file}): row {probe}: not a site kind of the definition"
            ));
        }
        for call in a.split("str(").skip(1) {
            let inner = call.split(')').next().unwrap_or("");
            let (p, l) = inner.split_once(',').unwrap_or((inner, ""));
            let (p, l) = (p.trim(), l.trim());
            if let (Some(pi), Some(li)) = (p.strip_prefix("arg"), l.strip_prefix("arg")) {
                let (pi, li) = (
                    pi.parse::<u64>().unwrap_or(99),
                    li.parse::<u64>().unwrap_or(99),
                );
                let ok = args.fields.iter().any(|f| f.1 == "str" && f.2 / 8 == pi) && li == pi + 1;
                if !ok {
                    errs.push(format!("bpftrace ({file}): row {probe}: site_args: definition has no string at arguments {pi}/{li} (`str({p}, {l})`)"));
                }
            }
            for r in [p, l] {
                if let Some(fld) = r.strip_prefix("$r->") {
                    if !rec_fields.contains(fld) {
                        errs.push(format!("bpftrace ({file}): row {probe}: site_record.{fld}: not a field of the definition's record"));
                    }
                }
            }
        }
        for tok in a.split([',', ' ']).map(str::trim) {
            if let Some(n) = tok.strip_prefix("arg").and_then(|n| n.parse::<u64>().ok()) {
                let f = args
                    .fields
                    .iter()
                    .find(|f| f.2 / 8 == n || (f.1 == "str" && f.2 / 8 + 1 == n));
                if f.is_none() {
                    errs.push(format!("bpftrace ({file}): row {probe}: site_args: argument {n} is past the definition's arguments"));
                }
            }
        }
        rows.insert(probe);
    }
    for u in usdt {
        if !rows.contains(u) {
            errs.push(format!("bpftrace (instrumentations/*/sites.rs): site kind with USDT name {u}: the definition has it, no library has a bpftrace row"));
        }
    }
    for fld in ["trace_hi", "trace_lo", "span", "parent"] {
        if !text.contains(&format!("$r->{fld}")) || !rec_fields.contains(fld) {
            errs.push(format!("bpftrace ({PROBES_RS}): site_record.{fld}: the ids line does not read it from the record"));
        }
    }
}

/// The USDT argument spec: every 8-byte slot of site_args that the notes list, signed where the
/// field is.
fn check_usdt(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    const USDT: &str = "crates/gotap-binary/src/usdt.rs";
    let Some(src) = srcs.iter().find(|s| s.path == USDT) else {
        errs.push(format!("USDT ({USDT}): file not found"));
        return;
    };
    let mut want = Vec::new();
    for ((_, t, off), f) in layout(&def.fields("site_args", false))
        .fields
        .iter()
        .zip(&def.record("site_args").fields)
    {
        if !f.c {
            continue;
        }
        let slots = size_align(t).0 / 8;
        for i in 0..slots {
            let sign = if t.starts_with('i') { "-" } else { "" };
            want.push(format!("{sign}8@{}(%rsp)", 8 + off + 8 * i));
        }
    }
    let want = want.join(" ");
    let got = src
        .text
        .split("pub const GOTAP_ARGS: &str =")
        .nth(1)
        .and_then(|r| r.split('"').nth(1))
        .unwrap_or("none");
    if got != want {
        errs.push(format!(
            "USDT ({USDT}): site_args: definition `{want}`, GOTAP_ARGS `{got}`"
        ));
    }
}

// ---------------------------------------------------------------- the definition itself

fn check_def(def: &Def, errs: &mut Vec<String>) {
    for (name, rec) in &def.records {
        let size = def.size_of(name);
        if let Some(s) = rec.size {
            if s != size {
                errs.push(format!(
                    "definition: {name}: size {s} given, its fields make {size}"
                ));
            }
        }
    }
    let head = def.size_of("site_event") - def.offset_of("site_event", "status");
    if def.constant("SITE_EVENT_HEAD") != Some(head) {
        errs.push(format!(
            "definition: SITE_EVENT_HEAD: {:?}, site_event's head from status is {head}",
            def.constant("SITE_EVENT_HEAD")
        ));
    }
    if def.constant("BATCH_HEAD") != Some(def.size_of("site_batch_head")) {
        errs.push("definition: BATCH_HEAD is not the size of site_batch_head".into());
    }
    if def.constant("BATCH_PREFIX") != Some(def.offset_of("site_event", "status")) {
        errs.push("definition: BATCH_PREFIX is not the offset of site_event.status".into());
    }
    let strs = def.constant("SITE_STRS").unwrap_or(0);
    let data = def.constant("PACKED_CAP").unwrap_or(0);
    let mut values = BTreeSet::new();
    for k in &def.site_kinds {
        if !values.insert(k.value) {
            errs.push(format!(
                "definition: {}: kind value {} used twice",
                k.name, k.value
            ));
        }
        if k.slots.len() as u64 > strs {
            errs.push(format!(
                "definition: {}: {} slots, SITE_STRS is {strs}",
                k.name,
                k.slots.len()
            ));
        }
        let sum: u64 = k.slots.iter().map(|s| s.cap).sum();
        if sum > data {
            errs.push(format!(
                "definition: {}: caps add up to {sum}, more than PACKED_CAP {data}",
                k.name
            ));
        }
        let batch = def.constant("GOTAP_BATCH_CAP").unwrap_or(0);
        if def.constant("BATCH_PREFIX").unwrap_or(0) + head + sum > batch {
            errs.push(format!(
                "definition: {}: its largest event does not fit an empty batch",
                k.name
            ));
        }
        if k.batch_package > def.constant("EXIT_REFS_MAX").unwrap_or(0) {
            errs.push(format!(
                "definition: {}: batch package {} past EXIT_REFS_MAX",
                k.name, k.batch_package
            ));
        }
    }
    // Record flags: one bit each, except overlaps listed (and explained) as known.
    let fl = &def.record_flags;
    for (i, a) in fl.flags.iter().enumerate() {
        if !a.bit.is_power_of_two() {
            errs.push(format!(
                "definition: flag {}: {} is not one bit",
                a.name, a.bit
            ));
        }
        for b in &fl.flags[i + 1..] {
            if a.bit == b.bit {
                let known = fl
                    .known_overlaps
                    .iter()
                    .any(|o| o.flags.contains(&a.name) && o.flags.contains(&b.name));
                if !known {
                    errs.push(format!(
                        "definition: flags {} and {} are both bit value {}",
                        a.name, b.name, a.bit
                    ));
                }
            }
        }
    }
}

/// Which BPF program serves which kind, and the tables that name programs, functions and batch
/// packages by USDT name: a kind swapped between two of them would decode one library's strings
/// as another's.
fn check_names(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    // C: `int site_X(struct pt_regs *ctx) { return site_hit(ctx, KIND); }`.
    let mut programs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for s in srcs.iter().filter(|s| is_c(&s.path)) {
        let text = strip_c_comments(&s.text);
        for part in text.split("\nint ").skip(1) {
            let name = part.split('(').next().unwrap_or("").trim().to_string();
            let Some(open) = part.find('{') else { continue };
            let body = block(part, open);
            if let Some(call) = body.split("site_hit(ctx, ").nth(1) {
                let k = call.split(')').next().unwrap_or("").trim().to_string();
                programs.insert(name, (k, s.path.clone()));
            }
        }
    }
    for k in &def.site_kinds {
        if !programs.values().any(|(pk, _)| pk == &k.name) {
            errs.push(format!(
                "C: {} (USDT {}): no BPF program calls site_hit with it",
                k.name, k.usdt
            ));
        }
    }
    // Rust: each library's sites.rs, its `LibSite` rows (USDT name, program, Go function) and
    // its `BatchSite` (batch USDT name, per-span prefix, package number).
    let mut known = BTreeSet::new();
    for s in srcs.iter().filter(|s| is_sites_rs(&s.path)) {
        for row in lib_site_rows(&s.text) {
            let (usdt, prog) = (row.name.as_str(), row.program.as_str());
            known.insert(usdt.to_string());
            let Some(k) = def.site_kinds.iter().find(|k| k.usdt == usdt) else {
                errs.push(format!(
                    "Rust ({}): USDT {usdt}: not a site kind of the definition",
                    s.path
                ));
                continue;
            };
            match programs.get(prog) {
                Some((pk, _)) if pk == &k.name => {}
                Some((pk, file)) => errs.push(format!(
                    "Rust ({}): USDT {usdt}: definition kind {}, its program {prog} ({file}) emits {pk}",
                    s.path, k.name
                )),
                None => errs.push(format!(
                    "Rust ({}): USDT {usdt}: program {prog} is not a BPF program calling site_hit",
                    s.path
                )),
            }
            // USDT: the note names the site's Go function.
            if !row.function.ends_with(&format!(".{}", k.go.site)) {
                errs.push(format!(
                    "USDT ({}): {} (USDT {usdt}): definition site function {}, sites.rs {}",
                    s.path, k.name, k.go.site, row.function
                ));
            }
        }
        for (name, prefix, n) in batch_site_rows(&s.text) {
            for k in def
                .site_kinds
                .iter()
                .filter(|k| k.usdt.starts_with(&prefix))
            {
                if k.batch_package != n {
                    errs.push(format!(
                        "Rust ({}): {} batch package: definition {}, BatchSite {name} {n}",
                        s.path, k.name, k.batch_package
                    ));
                }
            }
        }
    }
    for k in &def.site_kinds {
        if !known.contains(&k.usdt) {
            errs.push(format!(
                "Rust (instrumentations/*/sites.rs): USDT {}: the definition has it, no library's LibSite names its program",
                k.usdt
            ));
        }
    }
}

/// A library's probe-site table (instrumentations/<lib>/sites.rs).
fn is_sites_rs(p: &str) -> bool {
    p.starts_with("instrumentations/") && p.ends_with("/sites.rs")
}

/// One `LibSite { … }` of a sites.rs.
struct LibSiteRow {
    name: String,
    program: String,
    function: String,
    /// Its bpftrace row's `args`.
    bpftrace_args: String,
}

fn quoted_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(key).nth(1).and_then(|r| r.split('"').next())
}

fn lib_site_rows(text: &str) -> Vec<LibSiteRow> {
    text.split("LibSite {")
        .skip(1)
        .filter(|row| row.contains("program: \""))
        .map(|row| LibSiteRow {
            name: quoted_after(row, "name: \"").unwrap_or("").to_string(),
            program: quoted_after(row, "program: \"").unwrap_or("").to_string(),
            function: quoted_after(row, "function: \"").unwrap_or("").to_string(),
            bpftrace_args: row
                .split("BpftraceRow {")
                .nth(1)
                .and_then(|r| r.split("args: \"").nth(1))
                .and_then(|r| r.split("\",").next())
                .unwrap_or("")
                .to_string(),
        })
        .collect()
}

/// The `BatchSite { … }` of a sites.rs: (USDT name, prefix, package).
fn batch_site_rows(text: &str) -> Vec<(String, String, u64)> {
    text.split("BatchSite {")
        .skip(1)
        .filter(|row| row.contains("prefix: \""))
        .map(|row| {
            let package = row
                .split("package: ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(u64::MAX);
            (
                quoted_after(row, "name: \"").unwrap_or("").to_string(),
                quoted_after(row, "prefix: \"").unwrap_or("").to_string(),
                package,
            )
        })
        .collect()
}

/// Go programs that declare the sites themselves, in package main: the test program of the
/// argument ABI (go/testapps/cmd/usdtsites, no event argument, as older builds) and the cost
/// examples' program of the event ABI (crates/gotap-ebpf/examples/sitebench).
fn is_go_program(p: &str) -> bool {
    p.starts_with("go/testapps/cmd/usdtsites/")
        || p.starts_with("crates/gotap-ebpf/examples/sitebench/")
}

fn check_go_programs(def: &Def, srcs: &[Src], errs: &mut Vec<String>) {
    let args = def.fields("site_args", false);
    let event_off = def.offset_of("site_args", "event");
    // The argument ABI: every argument before the event.
    let old: Fields = args.iter().filter(|f| f.0 != "event").cloned().collect();
    let mut found = 0;
    for s in srcs.iter().filter(|s| is_go_program(&s.path)) {
        let text = strip_line_comments(&s.text);
        if s.path.ends_with(".go") {
            let none = |_: &str| None;
            if let Some(fields) = go_struct(&text, "gotapProbeRecord") {
                found += 1;
                let got: Fields = fields
                    .iter()
                    .map(|(n, t)| (n.clone(), go_type(t, &none)))
                    .collect();
                compare(
                    errs,
                    "Go",
                    &s.path,
                    "site_record",
                    &def.fields("site_record", false),
                    &got,
                    false,
                    false,
                );
            }
            for (fname, sig, _) in go_funcs(&text) {
                let Some(k) = def.site_kinds.iter().find(|k| k.go.site == fname) else {
                    continue;
                };
                let got: Fields = go_params(&sig)
                    .into_iter()
                    .map(|(n, t)| (n, go_type(&t, &none)))
                    .collect();
                let want = if got.len() == old.len() { &old } else { &args };
                compare(
                    errs,
                    "Go",
                    &s.path,
                    &format!("site_args of {} ({fname})", k.name),
                    want,
                    &got,
                    false,
                    false,
                );
            }
        } else if s.path.ends_with(".s") {
            for k in &def.site_kinds {
                let Some(i) = text.find(&format!("TEXT ·{}(SB)", k.go.site)) else {
                    continue;
                };
                let line = text[i..].lines().next().unwrap_or("");
                let frame = line.rsplit_once('-').map_or("", |x| x.1).trim();
                let body = &text[i..];
                let body = &body[..body.find("RET").unwrap_or(body.len())];
                let want = if body.contains("event_base") {
                    layout(&args).size
                } else {
                    event_off
                };
                if frame != want.to_string() {
                    errs.push(format!(
                        "Go assembly ({}): site_args of {}: definition frame $0-{want}, assembly `{}`",
                        s.path, k.name, line.trim()
                    ));
                }
                if body.contains("event_base")
                    && !body.contains(&format!("event_base+{event_off}(FP)"))
                {
                    errs.push(format!(
                        "Go assembly ({}): site_args.event of {}: definition event_base at {event_off}(FP)",
                        s.path, k.name
                    ));
                }
            }
        }
    }
    if found == 0 {
        errs.push("Go: no gotapProbeRecord in go/testapps/cmd/usdtsites or crates/gotap-ebpf/examples/sitebench".into());
    }
}

fn check_all(def: &Def, srcs: &[Src]) -> Vec<String> {
    let mut errs = Vec::new();
    check_def(def, &mut errs);
    check_c(def, srcs, &mut errs);
    check_rust(def, srcs, &mut errs);
    check_go(def, srcs, &mut errs);
    check_bpftrace(def, srcs, &mut errs);
    check_usdt(def, srcs, &mut errs);
    check_names(def, srcs, &mut errs);
    check_go_programs(def, srcs, &mut errs);
    errs
}

#[test]
fn every_copy_matches_the_definition() {
    let def = load_def();
    let srcs = load_sources();
    let errs = check_all(&def, &srcs);
    assert!(
        errs.is_empty(),
        "{} difference(s) between crates/gotap-ebpf/layout/records.json and its copies:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// The HTTP function-probe event is checked wherever its copies are (crates/gotap-ebpf, or an
/// instrumentations folder once it moves): both a C and a Rust copy must be found.
#[test]
fn the_http_event_has_a_c_and_a_rust_copy() {
    let srcs = load_sources();
    let c: Vec<_> = srcs
        .iter()
        .filter(|s| is_c(&s.path) && s.text.contains("\nstruct http_event {"))
        .map(|s| &s.path)
        .collect();
    let rs: Vec<_> = srcs
        .iter()
        .filter(|s| is_rust(&s.path) && s.text.contains("pub struct HttpEvent {"))
        .map(|s| &s.path)
        .collect();
    assert!(
        !c.is_empty(),
        "no `struct http_event` in crates/gotap-ebpf/bpf or instrumentations/*/bpf"
    );
    assert!(
        !rs.is_empty(),
        "no `pub struct HttpEvent` in crates/gotap-ebpf/src or instrumentations"
    );
}

// ---------------------------------------------------------------- the checker on mutated copies

/// Replaces `from` by `to` in the one source (found by content, whatever its path) that contains
/// it and whose path satisfies `pick`.
fn mutate(srcs: &mut [Src], pick: fn(&str) -> bool, from: &str, to: &str) -> String {
    let s = srcs
        .iter_mut()
        .find(|s| pick(&s.path) && s.text.contains(from))
        .unwrap_or_else(|| panic!("no source contains `{from}`"));
    s.text = s.text.replacen(from, to, 1);
    s.path.clone()
}

/// The checker's lines for a mutated copy; asserts one names every part.
fn fails_naming(pick: fn(&str) -> bool, from: &str, to: &str, parts: &[&str]) {
    let def = load_def();
    let mut srcs = load_sources();
    let file = mutate(&mut srcs, pick, from, to);
    let errs = check_all(&def, &srcs);
    assert!(
        errs.iter().any(|e| parts.iter().all(|p| e.contains(p))),
        "mutating `{from}` -> `{to}` in {file}: no line names all of {parts:?}; lines:\n{}",
        errs.join("\n")
    );
}

fn types_h(p: &str) -> bool {
    p == TYPES_H
}
fn bpf_c(p: &str) -> bool {
    is_c(p)
}
fn abi_rs(p: &str) -> bool {
    is_rust(p)
}
fn go(p: &str) -> bool {
    is_go(p)
}
fn go_asm(p: &str) -> bool {
    is_go_asm(p)
}
fn probes_rs(p: &str) -> bool {
    p == PROBES_RS
}
fn sites_rs(p: &str) -> bool {
    is_sites_rs(p)
}
fn usdt_rs(p: &str) -> bool {
    p.ends_with("gotap-binary/src/usdt.rs")
}

#[test]
fn checker_c_field_type() {
    fails_naming(
        types_h,
        "\tu64 parent;         /* 0 = root */",
        "\tu32 parent;",
        &["C (", "site_event.parent", "u64", "u32"],
    );
}

#[test]
fn checker_c_field_order() {
    fails_naming(
        types_h,
        "\tu64 trace_hi;       /* trace id bytes 0-7, big-endian value */\n\tu64 trace_lo;",
        "\tu64 trace_lo;\n\tu64 trace_hi;",
        &["C (", "site_event.trace_hi", "trace_lo"],
    );
}

#[test]
fn checker_c_constant() {
    fails_naming(
        types_h,
        "#define REC_MONO 32",
        "#define REC_MONO 64",
        &["C (", "REC_MONO", "32", "64"],
    );
    fails_naming(
        types_h,
        "#define SITE_STRS 8",
        "#define SITE_STRS 9",
        &["C (", "SITE_STRS", "8", "9"],
    );
}

#[test]
fn checker_c_new_define_must_be_defined() {
    fails_naming(
        types_h,
        "#define REC_MONO 32",
        "#define REC_MONO 32\n#define REC_NEW 64",
        &["C (", "REC_NEW", "not in the definition"],
    );
}

#[test]
fn checker_c_slot_cap() {
    fails_naming(
        bpf_c,
        "off = site_put(s, off, 1, a->path_ptr, a->path_len, URL_CAP);",
        "off = site_put(s, off, 1, a->path_ptr, a->path_len, PATH_CAP);",
        &["C (", "EV_SITE_CLIENT slot 1", "512", "256"],
    );
}

#[test]
fn checker_c_http_event() {
    fails_naming(
        bpf_c,
        "#define UA_CAP 256",
        "#define UA_CAP 255",
        &["C (", "http_event", "ua"],
    );
}

#[test]
fn checker_rust_struct_field() {
    fails_naming(
        abi_rs,
        "    pub parent: u64,\n    pub start: i64,",
        "    pub parent: u32,\n    pub start: i64,",
        &["Rust (", "site_event.parent", "u64", "u32"],
    );
}

#[test]
fn checker_rust_constant_and_slot() {
    fails_naming(
        abi_rs,
        "pub const REC_TEXT_CUT: u64 = 8;",
        "pub const REC_TEXT_CUT: u64 = 4;",
        &["Rust (", "REC_TEXT_CUT", "8", "4"],
    );
    fails_naming(
        abi_rs,
        "pub const SQL_STATE: usize = 4;",
        "pub const SQL_STATE: usize = 5;",
        &["Rust (", "EV_SITE_SQL slot SQL_STATE", "4", "5"],
    );
}

#[test]
fn checker_rust_http_event() {
    fails_naming(
        abi_rs,
        "    pub remote: [u8; 64],",
        "    pub remote: [u8; 65],",
        &["Rust (", "http_event.remote", "u8[64]", "u8[65]"],
    );
}

#[test]
fn checker_rust_batch_head() {
    fails_naming(
        abi_rs,
        "u32::from_le_bytes(b[8..12]",
        "u32::from_le_bytes(b[12..16]",
        &["Rust (", "site_batch_head.len", "8..12", "12..16"],
    );
}

#[test]
fn checker_go_caps() {
    fails_naming(
        go,
        "gotapSQLCaps = [8]int{128, 4096,",
        "gotapSQLCaps = [8]int{128, 4095,",
        &["Go (", "EV_SITE_SQL slot 1", "4096", "4095"],
    );
}

#[test]
fn checker_go_slot_order() {
    fails_naming(
        go,
        "strs := [8]string{fullMethod, target, msg}",
        "strs := [8]string{target, fullMethod, msg}",
        &["Go (", "EV_SITE_GRPC_CLIENT slot 0", "fullMethod", "target"],
    );
}

#[test]
fn checker_go_event_head() {
    fails_naming(
        go,
        "rec.span, rec.parent, uint64(rec.start), flags}",
        "rec.parent, rec.span, uint64(rec.start), flags}",
        &["Go (", "site_event.span", "rec.span", "rec.parent"],
    );
    fails_naming(
        go,
        "gotapEventHead      = 80",
        "gotapEventHead      = 88",
        &["Go (", "SITE_EVENT_HEAD", "80", "88"],
    );
}

#[test]
fn checker_go_constants() {
    fails_naming(
        go,
        "gotapKindSQL      = 5",
        "gotapKindSQL      = 6",
        &["Go (", "EV_SITE_SQL", "5", "6"],
    );
    fails_naming(
        go,
        "gotapBatchCap = 16384",
        "gotapBatchCap = 8192",
        &["Go (", "GOTAP_BATCH_CAP", "16384", "8192"],
    );
}

#[test]
fn checker_go_record_and_site() {
    fails_naming(
        go,
        "\tstart            int64  // span start",
        "\tstart            int32  // span start",
        &["Go (", "site_record.start", "i64", "int32"],
    );
    fails_naming(
        go,
        "func gotapProbeSQLQuery(driver, query string, failed, durationNs int64,",
        "func gotapProbeSQLQuery(driver, query string, failed, durationNs int32,",
        &["Go (", "site_args of EV_SITE_SQL", "i64", "int32"],
    );
}

#[test]
fn checker_go_assembly() {
    fails_naming(
        go_asm,
        "MOVQ event_base+72(FP), SI",
        "MOVQ event_base+64(FP), SI",
        &["Go assembly (", "site_args.event", "72", "+64(FP)"],
    );
}

#[test]
fn checker_bpftrace_record() {
    fails_naming(
        probes_rs,
        "unsigned long span; unsigned long parent;",
        "unsigned long parent; unsigned long span;",
        &["bpftrace (", "site_record.span", "parent"],
    );
    fails_naming(
        probes_rs,
        "long start; unsigned long flags;",
        "int start; unsigned long flags;",
        &["bpftrace (", "site_record.start", "i64", "i32"],
    );
}

#[test]
fn checker_bpftrace_stack_and_rows() {
    fails_naming(
        probes_rs,
        "$r = (struct gotap_record *)*(uint64 *)($sp + 72)",
        "$r = (struct gotap_record *)*(uint64 *)($sp + 80)",
        &["bpftrace (", "site_args.record", "72", "$sp + 80"],
    );
    fails_naming(
        sites_rs,
        "str($r->host_ptr, $r->host_len)",
        "str($r->error_ptr, $r->host_len)",
        &["bpftrace (", "row sql_query", "site_record.error_ptr"],
    );
    fails_naming(
        sites_rs,
        "name: \"grpc_client\",",
        "name: \"grpc_call\",",
        &["bpftrace (", "grpc_client", "no library has a bpftrace row"],
    );
}

#[test]
fn checker_usdt_args() {
    fails_naming(
        usdt_rs,
        "-8@40(%rsp) -8@48(%rsp)",
        "8@40(%rsp) -8@48(%rsp)",
        &["USDT (", "site_args", "-8@40(%rsp)"],
    );
}

#[test]
fn checker_flag_overlap() {
    // A definition whose flags collide where no known overlap says so.
    let mut def = load_def();
    def.record_flags
        .flags
        .iter_mut()
        .find(|f| f.name == "REC_TEXT_CUT")
        .unwrap()
        .bit = 4;
    let errs = check_all(&def, &load_sources());
    assert!(
        errs.iter().any(|e| e.contains("REC_PACKED")
            && e.contains("REC_TEXT_CUT")
            && e.contains("bit value 4")),
        "{errs:?}"
    );
}

#[test]
fn checker_more_copies() {
    fails_naming(
        go,
        "gotapFlagTLS = 16",
        "gotapFlagTLS = 32",
        &["Go (", "flag TLS", "16", "32"],
    );
    fails_naming(
        go,
        "gotapBatchPackage = 3",
        "gotapBatchPackage = 4",
        &["Go (", "batch package", "3", "4"],
    );
    fails_naming(
        go,
        "\t\tgotapBatchAdd(gotapKindServer, event)",
        "\t\tgotapBatchAdd(gotapKindClient, event)",
        &["Go (", "gotapKindClient", "gotapKindServer"],
    );
    fails_naming(
        go,
        "\tn     int // bytes",
        "\tn     int32 // bytes",
        &["Go (", "batch_buffer.n", "i64", "int32"],
    );
    fails_naming(
        abi_rs,
        "pub const EV_SITE_GRPC_SERVER: u8 = 6;",
        "pub const EV_SITE_GRPC_SERVER: u8 = 9;",
        &["Rust (", "EV_SITE_GRPC_SERVER", "6", "9"],
    );
    fails_naming(
        bpf_c,
        "\tstruct go_str remote;",
        "\tu64 remote;",
        &["C (", "site_record.remote", "str", "u64"],
    );
}

#[test]
fn checker_library_bpf() {
    fails_naming(
        bpf_c,
        "off = site_put(s, off, 1, target.ptr, target.len, HOST_CAP);",
        "off = site_put(s, off, 1, target.ptr, target.len, REMOTE_CAP);",
        &[
            "C (instrumentations/grpc",
            "site_put slot 1",
            "GRPC_PEER cap 128",
            "C cap 64",
        ],
    );
}

#[test]
fn checker_programs_and_tables() {
    fails_naming(
        bpf_c,
        "return site_hit(ctx, EV_SITE_GRPC_SERVER);",
        "return site_hit(ctx, EV_SITE_GRPC_CLIENT);",
        &["EV_SITE_GRPC_SERVER", "no BPF program"],
    );
    fails_naming(
        sites_rs,
        "program: \"site_sql_query\",",
        "program: \"site_grpc_server\",",
        &[
            "Rust (",
            "USDT sql_query",
            "EV_SITE_SQL",
            "EV_SITE_GRPC_SERVER",
        ],
    );
    fails_naming(
        sites_rs,
        "package: 2,",
        "package: 3,",
        &["Rust (", "EV_SITE_SQL batch package", "2", "3"],
    );
    fails_naming(
        sites_rs,
        "function: \"database/sql.gotapProbeSQLQuery\"",
        "function: \"database/sql.gotapProbeSQL\"",
        &[
            "USDT (",
            "EV_SITE_SQL",
            "gotapProbeSQLQuery",
            "gotapProbeSQL",
        ],
    );
}

#[test]
fn checker_test_programs() {
    fn usdtsites(p: &str) -> bool {
        p.starts_with("go/testapps/cmd/usdtsites/")
    }
    fn sitebench(p: &str) -> bool {
        p.starts_with("crates/gotap-ebpf/examples/sitebench/")
    }
    fails_naming(
        usdtsites,
        "\tspan, parent     uint64\n",
        "\tspan, parent     uint32\n",
        &[
            "Go (go/testapps/cmd/usdtsites",
            "site_record.span",
            "u64",
            "u32",
        ],
    );
    fails_naming(
        usdtsites,
        "NOSPLIT|NOFRAME, $0-72",
        "NOSPLIT|NOFRAME, $0-64",
        &["Go assembly (go/testapps/cmd/usdtsites", "$0-72", "$0-64"],
    );
    fails_naming(
        sitebench,
        "errText string, rec *gotapProbeRecord, event string)",
        "errText string, event string, rec *gotapProbeRecord)",
        &[
            "Go (crates/gotap-ebpf/examples/sitebench",
            "site_args of EV_SITE_CLIENT",
            "ptr",
            "str",
        ],
    );
}

/// Wherever the HTTP event's copies are (types.h and abi.rs, or instrumentations/nethttp after the
/// move, or both during it), a change to each one fails, naming that copy's file.
#[test]
fn checker_http_event_every_copy() {
    let def = load_def();
    let srcs = load_sources();
    let copies: Vec<(usize, &str, &str, &str)> = srcs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            if is_c(&s.path) && s.text.contains("\nstruct http_event {") {
                Some((i, "\tu16 ua_len;", "\tu32 ua_len;", "C ("))
            } else if is_rust(&s.path) && s.text.contains("pub struct HttpEvent {") {
                Some((i, "    pub ua_len: u16,", "    pub ua_len: u32,", "Rust ("))
            } else {
                None
            }
        })
        .collect();
    assert!(
        copies.len() >= 2,
        "expected a C and a Rust copy of the HTTP event"
    );
    for (i, from, to, form) in copies {
        let mut m: Vec<Src> = srcs
            .iter()
            .map(|s| Src {
                path: s.path.clone(),
                text: s.text.clone(),
            })
            .collect();
        assert!(m[i].text.contains(from), "{}: no `{from}`", m[i].path);
        m[i].text = m[i].text.replacen(from, to, 1);
        let errs = check_all(&def, &m);
        let want = format!("{form}{})", m[i].path);
        assert!(
            errs.iter().any(|e| e.starts_with(&want)
                && e.contains("http_event.ua_len")
                && e.contains("u16")
                && e.contains("u32")),
            "mutating {}: no line names it; lines:\n{}",
            m[i].path,
            errs.join("\n")
        );
    }
}
