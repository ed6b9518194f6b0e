//! `gotap toolexec <tool> args…`: the go command runs every tool (compile, asm, link, vet, cgo…)
//! through this. Changed:
//! - `compile -V=full` (the go command's tool-identity probe) gets gotap's marker appended, so
//!   every object compiled in a gotap build has its own cache key — a plain `go build` never
//!   reuses a woven object, and a changed rule or runtime rebuilds.
//! - compiling a package that a rule targets: its files are rewritten by the weaver into the
//!   action's work directory and the compiler is given those instead; files that rules add
//!   (`add-files`) are compiled too, Go assembly ones assembled and packed into the archive.
//! - probe mode only: `link -V=full` gets the same marker plus the identity of the gotap
//!   executable (which writes the notes), and every linked executable gets its USDT notes (the
//!   `annotate` hook, gotap-binary's writer, given by the CLI).
//! - SDK mode without `gotap build` (`go build -toolexec` alone, or the GOFLAGS of
//!   `--print-goflags`): a link without the runtime is refused — it would trace nothing.
//!
//! Everything else is `exec`ed unchanged.
use crate::plan::{Plan, CONFIG_ENV};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Adds the USDT notes to a linked executable; returns how many probes it wrote.
pub type Annotate<'a> = &'a dyn Fn(&Path) -> Result<usize>;

/// Runs one tool invocation; returns only on error, for `-V=full`, or when gotap ran the tool
/// itself (probe-mode compile with assembly, link) — with the exit code to use.
pub fn run(mut argv: Vec<OsString>, plan: Option<PathBuf>, annotate: Annotate) -> Result<i32> {
    if argv.is_empty() {
        bail!("usage: gotap toolexec <tool> [args…] (this is meant to be run by `go build -toolexec`)");
    }
    if let Some(p) = plan {
        let _ = PLAN_FLAG.set(p);
    }
    let tool = PathBuf::from(argv.remove(0));
    let name = tool.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if name == "cover" {
        return Err(exec(&tool, cover_args(argv)?));
    }
    if name == "link" {
        return link(&tool, argv, annotate);
    }
    if name != "compile" {
        return Err(exec(&tool, argv));
    }
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let plan = load_plan(&tool)?;
    if args.iter().any(|a| a == "-V=full") {
        return tool_id(&tool, &argv, &plan.tool_id_suffix());
    }
    let args = expand_response_files(args)?;
    let pkg = flag_value(&args, "-p").unwrap_or_default();
    if !plan.packages.contains(&pkg) {
        return Err(exec(&tool, argv));
    }
    let (args, asm) = match weave(&plan, &pkg, args.clone()) {
        Ok(a) => a,
        Err(e) if plan.best_effort => {
            eprintln!("gotap: warning: {pkg} is compiled unwoven (--best-effort): {e:#}");
            (args, Vec::new())
        }
        Err(e) => return Err(e),
    };
    if asm.is_empty() {
        return Err(exec(&tool, args.into_iter().map(OsString::from).collect()));
    }
    compile_with_asm(&tool, &pkg, args, &asm)
}

/// `gotap toolexec --plan=FILE` (the GOFLAGS of `gotap build --print-goflags`).
static PLAN_FLAG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The plan file: `--plan`, else `$GOTAP_WEAVE_CONFIG` (set by `gotap build`), else none.
fn plan_file() -> Option<PathBuf> {
    PLAN_FLAG
        .get()
        .cloned()
        .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from))
}

/// Probe mode: `link` is run (not exec'd) so that the executable it writes gets its USDT notes
/// before the go command moves it into place (and into the build cache).
fn link(tool: &Path, argv: Vec<OsString>, annotate: Annotate) -> Result<i32> {
    let id_probe = argv.iter().any(|a| a == "-V=full");
    let Some(config) = plan_file() else {
        if !id_probe {
            check_runtime_linked(&argv)?;
        }
        return Err(exec(tool, argv));
    };
    let plan = Plan::read(&config)?;
    if !plan.probes {
        // Under --print-goflags the overlay covers only the main packages named then; another
        // main package built with the same GOFLAGS would link without the runtime.
        if PLAN_FLAG.get().is_some() && !id_probe {
            check_runtime_linked(&argv)?;
        }
        return Err(exec(tool, argv));
    }
    if argv.iter().any(|a| a == "-V=full") {
        // The notes are written by this executable (gotap-binary's writer and its site table,
        // GOTAP_SITES), which the plan's hash does not cover: a gotap whose notes differ must not
        // reuse executables annotated by another.
        let marker = format!("{}+notes-{}", plan.tool_id_suffix(), annotator_id()?);
        return tool_id(tool, &argv, &marker);
    }
    let status = Command::new(tool)
        .args(&argv)
        .status()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !status.success() {
        return Ok(status.code().unwrap_or(1));
    }
    let args = expand_response_files(
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )?;
    let out = flag_value(&args, "-o").context("the linker was run without -o")?;
    annotate(Path::new(&out)).with_context(|| format!("cannot add gotap's USDT notes to {out}"))?;
    Ok(0)
}

/// `go build -toolexec='gotap toolexec'` without `gotap build`: the packages are woven but nothing
/// adds the runtime, so every hook would stay nil and the program would trace nothing. Refuse to
/// link such a program (one that imports gotap.dev/gotaprt itself is fine).
fn check_runtime_linked(argv: &[OsString]) -> Result<()> {
    let args = expand_response_files(
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )?;
    let Some(cfg) = flag_value(&args, "-importcfg") else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&cfg)
        .with_context(|| format!("cannot read the linker's importcfg {cfg}"))?;
    let needle = format!("packagefile {}=", crate::RUNTIME_MODULE);
    if text.lines().any(|l| l.starts_with(&needle)) {
        return Ok(());
    }
    bail!(
        "this program was woven by `go build -toolexec` alone, which does not link the gotap runtime ({}), so it would produce no spans: build it with `gotap build` (same flags), or with the GOFLAGS `gotap build --print-goflags <its packages>` prints",
        crate::RUNTIME_MODULE
    )
}

/// `go build -cover` runs the cover tool on every file of a covered package, ours included, but
/// the cover tool does not read `-overlay`: hand it the real file.
fn cover_args(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    let Some(p) = plan_file() else {
        return Ok(argv);
    };
    let plan = Plan::read(&p)?;
    Ok(argv
        .into_iter()
        .map(|a| match plan.overlay.get(Path::new(&a)) {
            Some(real) => real.clone().into_os_string(),
            None => a,
        })
        .collect())
}

fn exec(tool: &Path, args: Vec<OsString>) -> anyhow::Error {
    let e = Command::new(tool).args(args).exec();
    anyhow::anyhow!("cannot run {}: {e}", tool.display())
}

/// The plan from `gotap build`, or — when a user runs `go build -toolexec='gotap toolexec'`
/// directly — the built-in (SDK-mode) rules for the toolchain the tool belongs to.
fn load_plan(tool: &Path) -> Result<Plan> {
    if let Some(p) = plan_file() {
        return Plan::read(&p);
    }
    // <GOROOT>/pkg/tool/<goos_goarch>/compile
    let goroot = tool
        .ancestors()
        .nth(4)
        .context("cannot find GOROOT from the compiler's path")?;
    let go = goroot.join("bin/go");
    let gover = crate::assets::goroot_version(goroot).with_context(|| {
        format!(
            "cannot read the Go version from {}/VERSION",
            goroot.display()
        )
    })?;
    let ex = crate::assets::extract()?;
    Plan::new(&ex, &go, &gover, &[], false, false)
}

/// Identity of the running gotap executable, which writes the USDT notes at link: its size,
/// modification time and inode (any rebuild of gotap changes it; hashing a 100 MB executable
/// at every build would cost more than the links it saves).
fn annotator_id() -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().context("cannot find gotap's own executable")?;
    let m = std::fs::metadata(&exe).with_context(|| format!("cannot stat {}", exe.display()))?;
    let id = crate::assets::fnv(&[
        &m.len().to_le_bytes(),
        &m.mtime().to_le_bytes(),
        &m.mtime_nsec().to_le_bytes(),
        &m.ino().to_le_bytes(),
        &m.dev().to_le_bytes(),
    ]);
    Ok(format!("{id:016x}"))
}

/// Answers the tool-identity probe with the tool's own answer plus gotap's marker.
fn tool_id(tool: &Path, argv: &[OsString], marker: &str) -> Result<i32> {
    let out = Command::new(tool)
        .args(argv)
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Some(first) = lines.first_mut() {
        // Development toolchains are identified by their trailing buildID= field alone.
        if first.contains(" buildID=") {
            first.push_str(&format!(".{marker}"));
        } else {
            first.push(' ');
            first.push_str(marker);
        }
    }
    for l in &lines {
        println!("{l}");
    }
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(out.status.code().unwrap_or(1))
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let eq = format!("{flag}=");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == flag {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&eq) {
            return Some(v.to_owned());
        }
    }
    None
}

/// The go command passes long argument lists as `@file` (one argument per line, `\n` and `\\`
/// escaped); read them so the file list can be edited.
fn expand_response_files(args: Vec<String>) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match a.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read response file {path}"))?;
                for line in text.lines() {
                    out.push(line.replace("\\n", "\n").replace("\\\\", "\\"));
                }
            }
            None => out.push(a),
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Applied {
    files: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Files the rules add to the package (`add-files`).
    #[serde(default)]
    added: Vec<PathBuf>,
    /// Rules left out because of the module's version.
    #[serde(default)]
    skipped: Vec<crate::plan::Skipped>,
}

/// `-modver` arguments for the weaver: the version of each constrained module providing `pkg`.
/// `gotap build` resolved them with `go list -m` (the plan says so); `go build -toolexec` alone
/// reads them from the files' module cache path.
fn module_args(plan: &Plan, pkg: &str, files: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for m in plan
        .modules
        .iter()
        .filter(|m| pkg == m.as_str() || pkg.starts_with(&format!("{m}/")))
    {
        let v = if plan.modules_resolved {
            plan.module_versions.get(m).cloned()
        } else {
            files
                .first()
                .and_then(|f| version_from_module_cache_path(m, f))
        };
        if let Some(v) = v {
            out.push(format!("-modver={m}={v}"));
        }
    }
    out
}

/// The version in a module cache path: `<GOMODCACHE>/<escaped module>@<version>/…` (the go
/// command passes the compiler absolute file paths, with or without -trimpath). Module paths
/// and versions are case-escaped there (`!` + lower case for each upper-case letter).
pub fn version_from_module_cache_path(module: &str, file: &str) -> Option<String> {
    let escaped: String = module
        .chars()
        .flat_map(|c| {
            if c.is_ascii_uppercase() {
                vec!['!', c.to_ascii_lowercase()]
            } else {
                vec![c]
            }
        })
        .collect();
    let needle = format!("/{escaped}@");
    let start = file.rfind(&needle)? + needle.len();
    let v = file[start..].split('/').next()?;
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '!' {
            out.push(it.next()?.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Rewrites the package's Go files (the trailing `.go` arguments) and swaps the paths; appends the
/// `.go` files rules add. Returns the new arguments and the added assembly files (copied into the
/// action's work directory).
fn weave(plan: &Plan, pkg: &str, mut args: Vec<String>) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let first_file = args
        .iter()
        .rposition(|a| !a.ends_with(".go"))
        .map_or(0, |i| i + 1);
    let files = &args[first_file..];
    if files.is_empty() {
        return Ok((args, Vec::new()));
    }
    // The action's work directory ($WORK/bNNN), removed by the go command after the build.
    let out_dir = match flag_value(&args, "-o") {
        Some(o) => Path::new(&o)
            .parent()
            .unwrap_or(Path::new("."))
            .join("gotap-woven"),
        None => std::env::temp_dir().join(format!("gotap-woven-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut cmd = Command::new(&plan.weaver);
    cmd.args(["apply", "-go", &plan.go_version, "-pkg", pkg, "-out"])
        .arg(&out_dir);
    if plan.best_effort {
        cmd.arg("-best-effort");
    }
    // Type information for call-site join points: the export data this compile step imports
    // (the weaver type-checks only packages a call-site rule targets).
    if let Some(cfg) = flag_value(&args, "-importcfg") {
        cmd.arg(format!("-importcfg={cfg}"));
    }
    cmd.args(module_args(plan, pkg, files));
    cmd.args(&plan.rules).arg("--").args(files);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", plan.weaver.display()))?;
    if !out.status.success() {
        bail!(
            "cannot weave package {pkg}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let applied: Applied =
        serde_json::from_slice(&out.stdout).context("unexpected output from gotap's weaver")?;
    for w in &applied.warnings {
        eprintln!("gotap: warning: {w}");
    }
    if !plan.modules_resolved {
        // `gotap build` reported these once already; `go build -toolexec` alone has no other place.
        for s in &applied.skipped {
            eprintln!("gotap: warning: {}", s.message);
        }
    }
    for a in &mut args[first_file..] {
        if let Some(new) = applied.files.get(a.as_str()) {
            *a = new.clone();
        }
    }
    // Added files are copied next to the woven ones: the recorded path is then
    // `gotap-woven/<name>` in every build (the go command trims $WORK/bNNN), never gotap's cache.
    let mut asm = Vec::new();
    let mut name = None;
    for src in &applied.added {
        let dst = out_dir.join(src.file_name().context("added file without a name")?);
        let text = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
        let text = if shared_fragment(&text).is_some() {
            // A fragment every woven package shares (go/probes/shared): it becomes part of this
            // package under this package's name.
            if name.is_none() {
                name = Some(package_name(&args[first_file..])?);
            }
            adopt_shared(&text, name.as_deref().unwrap_or_default())
        } else {
            text
        };
        std::fs::write(&dst, text)
            .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        match dst.extension().and_then(|e| e.to_str()) {
            Some("go") => args.push(dst.display().to_string()),
            _ => asm.push(dst),
        }
    }
    Ok((args, asm))
}

/// The package clause of fragments shared by every package they are added to.
const SHARED_CLAUSE: &[u8] = b"\npackage gotapshared\n";

/// Where a shared fragment's package clause starts (after its newline), if `text` is one.
fn shared_fragment(text: &[u8]) -> Option<usize> {
    text.windows(SHARED_CLAUSE.len())
        .position(|w| w == SHARED_CLAUSE)
        .map(|i| i + 1)
}

/// `text`, a shared fragment, with its package clause naming `name`.
fn adopt_shared(text: &[u8], name: &str) -> Vec<u8> {
    let Some(at) = shared_fragment(text) else {
        return text.to_vec();
    };
    let mut t = text[..at].to_vec();
    t.extend_from_slice(format!("package {name}").as_bytes());
    // SHARED_CLAUSE without its two newlines is what is replaced.
    t.extend_from_slice(&text[at + SHARED_CLAUSE.len() - 2..]);
    t
}

/// The package name in the package clause of the first of `files` (Go sources being compiled).
fn package_name(files: &[String]) -> Result<String> {
    let f = files
        .first()
        .context("no Go file to take the package name from")?;
    let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("package "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .with_context(|| format!("{f} has no package clause"))
}

/// Compiles a package to which rules added Go assembly, the way the go command builds a package
/// with `.s` files: `asm -gensymabis`, `compile -symabis` (without `-complete`, which forbids
/// body-less functions), `asm` each file, `pack r` the objects into the compiler's archive.
/// The go command itself cannot be told: its file list is fixed before tools run, and an
/// `-overlay` into GOROOT is refused for toolchains under GOMODCACHE (GOTOOLCHAIN downloads).
fn compile_with_asm(
    compile: &Path,
    pkg: &str,
    args: Vec<String>,
    asm_files: &[PathBuf],
) -> Result<i32> {
    let goarch = std::env::var("GOARCH").unwrap_or_default();
    if goarch != "amd64" {
        bail!("gotap's probe sites are amd64 assembly: GOARCH={goarch} is not supported by gotap build --probes");
    }
    let tools = compile
        .parent()
        .context("cannot find the Go tool directory")?;
    let goroot = match std::env::var_os("GOROOT") {
        Some(r) => PathBuf::from(r),
        None => compile
            .ancestors()
            .nth(4)
            .context("cannot find GOROOT from the compiler's path")?
            .to_path_buf(),
    };
    let archive = flag_value(&args, "-o").context("the compiler was run without -o")?;
    let obj_dir = Path::new(&archive)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let work = asm_files[0].parent().unwrap_or(&obj_dir).to_path_buf();

    // Flags as the go command gives asm for a standard-library package (cmd/go gc.go asmArgs).
    let mut asm_args: Vec<String> = vec!["-p".into(), pkg.into()];
    if let Some(t) = flag_value(&args, "-trimpath") {
        asm_args.extend(["-trimpath".into(), t]);
    }
    asm_args.extend(["-I".into(), format!("{}/", obj_dir.display())]);
    asm_args.extend([
        "-I".into(),
        goroot.join("pkg/include").display().to_string(),
    ]);
    let goos = std::env::var("GOOS").unwrap_or_else(|_| "linux".into());
    asm_args.extend([
        "-D".into(),
        format!("GOOS_{goos}"),
        "-D".into(),
        format!("GOARCH_{goarch}"),
    ]);
    // Go 1.27's asm takes -std for standard-library packages, as the compiler does.
    let gover = std::env::var("GOVERSION").unwrap_or_default();
    if args.iter().any(|a| a == "-std") && asm_has_std(&gover) {
        asm_args.push("-std".into());
    }
    let goamd64 = std::env::var("GOAMD64")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "v1".into());
    asm_args.extend(["-D".into(), format!("GOAMD64_{goamd64}")]);
    for f in ["-shared", "-dynlink", "-linkshared"] {
        if args.iter().any(|a| a == f) {
            asm_args.push(f.into());
        }
    }
    if let Some(s) = flag_value(&args, "-spectre") {
        asm_args.extend(["-spectre".into(), s]);
    }
    let asm = tools.join("asm");
    let run = |tool: &Path, args: &[String]| -> Result<bool> {
        let st = Command::new(tool)
            .args(args)
            .status()
            .with_context(|| format!("cannot run {}", tool.display()))?;
        Ok(st.success())
    };

    let symabis = work.join("symabis");
    let mut a = asm_args.clone();
    a.extend([
        "-gensymabis".into(),
        "-o".into(),
        symabis.display().to_string(),
    ]);
    a.extend(asm_files.iter().map(|f| f.display().to_string()));
    if !run(&asm, &a)? {
        return Ok(1);
    }

    let first_file = args
        .iter()
        .rposition(|a| !a.ends_with(".go"))
        .map_or(0, |i| i + 1);
    let mut c: Vec<String> = args[..first_file]
        .iter()
        .filter(|a| *a != "-complete")
        .cloned()
        .collect();
    c.extend(["-symabis".into(), symabis.display().to_string()]);
    c.extend(args[first_file..].iter().cloned());
    if !run(compile, &c)? {
        return Ok(1);
    }

    let mut objs = Vec::new();
    for f in asm_files {
        let obj = f.with_extension("o");
        let mut a = asm_args.clone();
        a.extend([
            "-o".into(),
            obj.display().to_string(),
            f.display().to_string(),
        ]);
        if !run(&asm, &a)? {
            return Ok(1);
        }
        objs.push(obj);
    }
    pack(Path::new(&archive), &objs)?;
    Ok(0)
}

/// `pack r archive objs…` as the go command does it itself (cmd/go packInternal; the `pack` tool
/// is not shipped prebuilt): one ar member per object, appended.
fn pack(archive: &Path, objs: &[PathBuf]) -> Result<()> {
    use std::io::Write;
    let mut out = Vec::new();
    for obj in objs {
        let data = std::fs::read(obj).with_context(|| format!("cannot read {}", obj.display()))?;
        let name = obj
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = &name.as_bytes()[..name.len().min(16)];
        out.extend_from_slice(name);
        out.resize(out.len() + 16 - name.len(), b' ');
        writeln!(
            out,
            "{:<12}{:<6}{:<6}{:<8o}{:<10}`",
            0,
            0,
            0,
            0o644,
            data.len()
        )?;
        out.extend_from_slice(&data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    f.write_all(&out)
        .with_context(|| format!("cannot append to {}", archive.display()))
}

/// Whether this toolchain's asm knows `-std` (added in Go 1.27).
fn asm_has_std(gover: &str) -> bool {
    let v = gover.trim_start_matches("go");
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (1, 27)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_fragments_take_the_package_name() {
        let src = b"// Comment: package gotapshared is replaced.\n\npackage gotapshared\n\nimport \"sync\"\n";
        assert_eq!(
            String::from_utf8(adopt_shared(src, "http")).unwrap(),
            "// Comment: package gotapshared is replaced.\n\npackage http\n\nimport \"sync\"\n"
        );
        // Other fragments are left alone.
        assert!(shared_fragment(b"package http\n\nvar x int\n").is_none());
        let dir = std::env::temp_dir().join(format!("gotap-pkgname-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.go");
        std::fs::write(
            &f,
            "// Package sql does things.\n//go:build amd64\n\npackage sql // import\n",
        )
        .unwrap();
        assert_eq!(package_name(&[f.display().to_string()]).unwrap(), "sql");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn module_version_from_cache_path() {
        let f = "/root/go/pkg/mod/google.golang.org/grpc@v1.83.2/server.go";
        assert_eq!(
            version_from_module_cache_path("google.golang.org/grpc", f).as_deref(),
            Some("v1.83.2")
        );
        let f = "/root/go/pkg/mod/github.com/!burnt!sushi/toml@v1.2.0-!r!c1/decode.go";
        assert_eq!(
            version_from_module_cache_path("github.com/BurntSushi/toml", f).as_deref(),
            Some("v1.2.0-RC1")
        );
        // A module replaced by a directory, or vendored: no version in the path.
        assert_eq!(
            version_from_module_cache_path("google.golang.org/grpc", "/src/grpc/server.go"),
            None
        );
        assert_eq!(
            version_from_module_cache_path(
                "google.golang.org/grpc",
                "/app/vendor/google.golang.org/grpc/server.go"
            ),
            None
        );
    }
}
