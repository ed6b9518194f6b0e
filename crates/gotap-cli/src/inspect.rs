//! `gotap inspect BIN|--pid N`: what gotap sees in a Go binary (like `go version -m`, plus the
//! ELF facts, functions, RET sites, struct offsets and which instrumentations apply).
use anyhow::{bail, Context};
use gotap_binary::instrumentations::{self, Instrumentation};
use gotap_binary::{offsets, FieldOffset, Function, GoBinary, Module, ReturnSite};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The Go executable to inspect.
    #[arg(required_unless_present = "pid", conflicts_with = "pid")]
    path: Option<PathBuf>,
    /// Inspect the executable of a running process (/proc/N/exe).
    #[arg(long)]
    pid: Option<u32>,
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    json: bool,
    /// Show entry and every RET site of these functions (exact name or glob; repeatable).
    #[arg(long = "func", value_name = "NAME")]
    funcs: Vec<String>,
    /// Resolve the struct field offsets gotap's probes need.
    #[arg(long)]
    offsets: bool,
    /// List all functions (the JSON output always includes them).
    #[arg(long)]
    functions: bool,
}

#[derive(Serialize)]
struct Probe<'a> {
    #[serde(flatten)]
    function: &'a Function,
    returns: Vec<ReturnSite>,
}

#[derive(Serialize)]
struct Setting<'a> {
    key: &'a str,
    value: &'a str,
}

/// The `--json` document (a contract with the integration tests: keep field names stable).
#[derive(Serialize)]
struct Report<'a> {
    path: String,
    go_version: &'a str,
    goos: &'a str,
    goarch: &'a str,
    main_path: &'a str,
    main: Option<&'a Module>,
    deps: &'a [Module],
    settings: Vec<Setting<'a>>,
    elf: &'a gotap_binary::ElfFacts,
    functions: &'a [Function],
    probes: Vec<Probe<'a>>,
    offsets: Vec<FieldOffset>,
    instrumentations: Vec<Instrumentation>,
    /// Whether gotap instrumentation is built in already (`gotap build`, `--probes`).
    built_with: instrumentations::BuiltWith,
    #[serde(skip)]
    build_info: &'a gotap_binary::BuildInfo,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match (args.pid, &args.path) {
        (Some(pid), _) => exe_of(pid)?,
        (None, Some(p)) => p.clone(),
        (None, None) => bail!("give a binary path or --pid N"),
    };
    let bin = GoBinary::open(&path)?;
    // For a process, show where its executable lives (the analysis read it via /proc/N/exe).
    let shown = match args.pid {
        Some(_) => std::fs::read_link(&path).unwrap_or_else(|_| path.clone()),
        None => path.clone(),
    };
    let mut probes = Vec::new();
    for pattern in &args.funcs {
        for f in bin.find_functions(pattern)? {
            probes.push(Probe {
                function: f,
                returns: bin.return_sites(f)?,
            });
        }
    }
    let offsets = if args.offsets {
        offsets::resolve(&bin, offsets::REQUIRED)
    } else {
        Vec::new()
    };
    let bi = bin.build_info();
    let report = Report {
        path: shown.display().to_string(),
        go_version: bin.go_version(),
        goos: bin.goos(),
        goarch: bin.goarch(),
        main_path: &bi.path,
        main: bi.main.as_ref(),
        deps: &bi.deps,
        settings: bi
            .settings
            .iter()
            .map(|(key, value)| Setting { key, value })
            .collect(),
        elf: bin.elf(),
        functions: bin.functions(),
        probes,
        offsets,
        instrumentations: instrumentations::detect(&bin),
        built_with: instrumentations::built_with(&bin),
        build_info: bi,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_human(&mut out, &report, args.functions)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// /proc/N/exe, with a clear message for a missing process.
fn exe_of(pid: u32) -> anyhow::Result<PathBuf> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        bail!("no process with pid {pid}");
    }
    let exe = proc_dir.join("exe");
    // Read through the magic link (works even if the file was deleted or is in another mount
    // namespace); keep the link path so the binary analysed is the one running.
    std::fs::metadata(&exe).with_context(|| format!("cannot read the executable of pid {pid}"))?;
    Ok(exe)
}

fn write_human(out: &mut impl Write, r: &Report, all_functions: bool) -> std::io::Result<()> {
    writeln!(out, "{}: {}", r.path, r.go_version)?;
    // Byte for byte what `go version -m` prints after its first line.
    for line in r.build_info.to_string().lines() {
        writeln!(out, "\t{line}")?;
    }
    let e = r.elf;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    writeln!(out)?;
    writeln!(out, "platform:      {}/{}", r.goos, r.goarch)?;
    writeln!(out, "pie:           {}", yes_no(e.pie))?;
    writeln!(out, "stripped:      {}", yes_no(e.stripped))?;
    writeln!(out, "dwarf:         {}", yes_no(e.dwarf))?;
    writeln!(out, "cgo:           {}", yes_no(e.cgo))?;
    writeln!(
        out,
        "build id:      {}",
        e.build_id.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "go build id:   {}",
        e.go_build_id.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "functions:     {}", r.functions.len())?;
    use instrumentations::BuiltWith;
    let built = match r.built_with {
        BuiltWith::Plain => {
            "plain (no gotap instrumentation built in: gotap run traces it with uprobes)"
        }
        BuiltWith::Woven => "woven by gotap build (exports its own spans; gotap run refuses it)",
        BuiltWith::ProbeSites => {
            "gotap build --probes (gotap run traces it through its probe sites)"
        }
    };
    writeln!(out, "built:         {built}")?;
    writeln!(out)?;
    writeln!(
        out,
        "instrumentations (library, strategies that trace it, what was found):"
    )?;
    for i in &r.instrumentations {
        let strategies: Vec<&str> = i.strategies.iter().map(|s| s.label()).collect();
        writeln!(
            out,
            "  [{}] {:<16} {:<28} {}",
            if i.applies { "x" } else { " " },
            i.name,
            strategies.join(", "),
            i.detail
        )?;
    }
    for p in &r.probes {
        let f = p.function;
        writeln!(out)?;
        writeln!(
            out,
            "{}: entry {:#x} (file offset {:#x}), size {}",
            f.name, f.entry, f.offset, f.size
        )?;
        for ret in &p.returns {
            writeln!(
                out,
                "  ret at {:#x} (file offset {:#x}, +{})",
                ret.address,
                ret.offset,
                ret.address.saturating_sub(f.entry)
            )?;
        }
    }
    if !r.offsets.is_empty() {
        writeln!(out)?;
        writeln!(out, "struct offsets:")?;
        for o in &r.offsets {
            let what = match (&o.offset, &o.source, &o.error) {
                (Some(off), Some(gotap_binary::OffsetSource::Dwarf), _) => format!("{off} (dwarf)"),
                (Some(off), Some(gotap_binary::OffsetSource::Table { entry }), _) => {
                    format!("{off} (table {entry})")
                }
                (Some(off), None, _) => off.to_string(),
                (None, _, Some(err)) => format!("unavailable: {err}"),
                (None, _, None) => "unavailable".to_string(),
            };
            writeln!(out, "  {}.{}: {}", o.strukt, o.field, what)?;
        }
    }
    if all_functions {
        writeln!(out)?;
        writeln!(out, "functions (entry, file offset, size, name):")?;
        for f in r.functions {
            writeln!(
                out,
                "  {:#x} {:#x} {} {}",
                f.entry, f.offset, f.size, f.name
            )?;
        }
    }
    Ok(())
}
