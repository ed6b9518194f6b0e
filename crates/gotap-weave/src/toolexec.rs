//! `gotap toolexec <tool> args…`: the go command runs every tool (compile, asm, link, vet, cgo…)
//! through this. Only `compile` is changed:
//! - `compile -V=full` (the go command's tool-identity probe) gets gotap's marker appended, so
//!   every object compiled in a gotap build has its own cache key — a plain `go build` never
//!   reuses a woven object, and a changed rule or runtime rebuilds.
//! - compiling a package that a rule targets: its files are rewritten by the weaver into the
//!   action's work directory and the compiler is given those instead.
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

/// Runs one tool invocation; returns only on error or for `-V=full` (exit code).
pub fn run(mut argv: Vec<OsString>) -> Result<i32> {
    if argv.is_empty() {
        bail!("usage: gotap toolexec <tool> [args…] (this is meant to be run by `go build -toolexec`)");
    }
    let tool = PathBuf::from(argv.remove(0));
    let name = tool.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if name == "cover" {
        return Err(exec(&tool, cover_args(argv)?));
    }
    if name != "compile" {
        return Err(exec(&tool, argv));
    }
    let args: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let plan = load_plan(&tool)?;
    if args.iter().any(|a| a == "-V=full") {
        return tool_id(&tool, &argv, &plan);
    }
    let args = expand_response_files(args)?;
    let pkg = flag_value(&args, "-p").unwrap_or_default();
    if !plan.packages.contains(&pkg) {
        return Err(exec(&tool, argv));
    }
    let args = match weave(&plan, &pkg, args.clone()) {
        Ok(a) => a,
        Err(e) if plan.best_effort => {
            eprintln!("gotap: warning: {pkg} is compiled unwoven (--best-effort): {e:#}");
            args
        }
        Err(e) => return Err(e),
    };
    Err(exec(&tool, args.into_iter().map(OsString::from).collect()))
}

/// `go build -cover` runs the cover tool on every file of a covered package, ours included, but
/// the cover tool does not read `-overlay`: hand it the real file.
fn cover_args(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    let Some(p) = std::env::var_os(CONFIG_ENV) else { return Ok(argv) };
    let plan = Plan::read(Path::new(&p))?;
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
/// directly — the built-in rules for the toolchain the tool belongs to.
fn load_plan(tool: &Path) -> Result<Plan> {
    if let Some(p) = std::env::var_os(CONFIG_ENV) {
        return Plan::read(Path::new(&p));
    }
    // <GOROOT>/pkg/tool/<goos_goarch>/compile
    let goroot = tool.ancestors().nth(4).context("cannot find GOROOT from the compiler's path")?;
    let go = goroot.join("bin/go");
    let gover = crate::assets::goroot_version(goroot)
        .with_context(|| format!("cannot read the Go version from {}/VERSION", goroot.display()))?;
    let ex = crate::assets::extract()?;
    Plan::new(&ex, &go, &gover, &[], false)
}

/// Answers the tool-identity probe with the compiler's own answer plus gotap's marker.
fn tool_id(tool: &Path, argv: &[OsString], plan: &Plan) -> Result<i32> {
    let out = Command::new(tool).args(argv).output().with_context(|| format!("cannot run {}", tool.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Some(first) = lines.first_mut() {
        let marker = plan.tool_id_suffix();
        // Development toolchains are identified by their trailing buildID= field alone.
        if first.contains(" buildID=") {
            first.push_str(&format!(".{marker}"));
        } else {
            first.push(' ');
            first.push_str(&marker);
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
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read response file {path}"))?;
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
}

/// Rewrites the package's Go files (the trailing `.go` arguments) and swaps the paths.
fn weave(plan: &Plan, pkg: &str, mut args: Vec<String>) -> Result<Vec<String>> {
    let first_file = args.iter().rposition(|a| !a.ends_with(".go")).map_or(0, |i| i + 1);
    let files = &args[first_file..];
    if files.is_empty() {
        return Ok(args);
    }
    // The action's work directory ($WORK/bNNN), removed by the go command after the build.
    let out_dir = match flag_value(&args, "-o") {
        Some(o) => Path::new(&o).parent().unwrap_or(Path::new(".")).join("gotap-woven"),
        None => std::env::temp_dir().join(format!("gotap-woven-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut cmd = Command::new(&plan.weaver);
    cmd.args(["apply", "-go", &plan.go_version, "-pkg", pkg, "-out"]).arg(&out_dir);
    if plan.best_effort {
        cmd.arg("-best-effort");
    }
    cmd.args(&plan.rules).arg("--").args(files);
    let out = cmd.output().with_context(|| format!("cannot run {}", plan.weaver.display()))?;
    if !out.status.success() {
        bail!("cannot weave package {pkg}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let applied: Applied = serde_json::from_slice(&out.stdout).context("unexpected output from gotap's weaver")?;
    for w in &applied.warnings {
        eprintln!("gotap: warning: {w}");
    }
    for a in &mut args[first_file..] {
        if let Some(new) = applied.files.get(a.as_str()) {
            *a = new.clone();
        }
    }
    Ok(args)
}
