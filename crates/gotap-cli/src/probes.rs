//! `gotap probes list|bpftrace|annotate BIN`: the USDT probes of a `gotap build --probes` binary,
//! for people and for standard tools (bpftrace, readelf, perf).
use anyhow::{bail, Context};
use gotap_binary::usdt::{
    self, LibSite, SiteDef, UsdtProbe, GOTAP_ARGS, GOTAP_PROVIDER, GOTAP_SITES,
};
use gotap_binary::GoBinary;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// The USDT probes in a binary: provider, name, address, file offset, semaphore, arguments.
    List {
        /// The Go executable.
        path: PathBuf,
        /// Machine-readable output (one JSON object).
        #[arg(long)]
        json: bool,
    },
    /// A bpftrace script that prints one line per span: HTTP request or round trip, SQL query, gRPC call.
    Bpftrace {
        /// The Go executable (built with `gotap build --probes`).
        path: PathBuf,
        /// Write the script to this file (made executable) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write gotap's USDT notes into a binary that has the probe sites (`gotap build --probes`
    /// does this itself; for binaries linked elsewhere).
    Annotate {
        /// The Go executable, rewritten in place.
        path: PathBuf,
        /// Go package whose `gotapProbeHTTPServer`/`gotapProbeHTTPClient` are the sites.
        #[arg(long, default_value = "net/http", hide = true)]
        package: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::List { path, json } => list(&path, json),
        Cmd::Bpftrace { path, output } => bpftrace(&path, output.as_deref()),
        Cmd::Annotate { path, package } => annotate(&path, &package),
    }
}

/// The binary's USDT probes. Errors for unreadable, non-ELF and non-Go files are `gotap
/// inspect`'s.
fn probes_of(path: &Path) -> anyhow::Result<Vec<UsdtProbe>> {
    let bin = GoBinary::open(path)?;
    usdt::read_probes(bin.data()).with_context(|| path.display().to_string())
}

fn no_sites(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} has no gotap probe sites; build it with `gotap build --probes`",
        path.display()
    )
}

#[derive(Serialize)]
struct ListReport<'a> {
    path: String,
    probes: &'a [UsdtProbe],
}

fn list(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let probes = probes_of(path)?;
    if probes.is_empty() {
        return Err(no_sites(path));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer(
            &mut out,
            &ListReport {
                path: path.display().to_string(),
                probes: &probes,
            },
        )?;
        writeln!(out)?;
    } else {
        let rows: Vec<[String; 6]> = probes
            .iter()
            .map(|p| {
                [
                    p.provider.clone(),
                    p.name.clone(),
                    format!("{:#x}", p.address),
                    format!("{:#x}", p.offset),
                    p.semaphore.map_or("-".into(), |s| format!("{s:#x}")),
                    p.args_raw.clone(),
                ]
            })
            .collect();
        let head = [
            "PROVIDER",
            "NAME",
            "ADDRESS",
            "OFFSET",
            "SEMAPHORE",
            "ARGUMENTS",
        ];
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        for r in std::iter::once(head.map(String::from)).chain(rows) {
            let line: Vec<String> = r
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn bpftrace(path: &Path, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let probes = probes_of(path)?;
    // Each library's sites and their lines (instrumentations/<lib>/sites.rs).
    let sites: Vec<&LibSite> = usdt::lib_sites()
        .filter(|site| {
            probes.iter().any(|p| {
                p.provider == GOTAP_PROVIDER && p.name == site.def.name && p.args_raw == GOTAP_ARGS
            })
        })
        .collect();
    if sites.is_empty() {
        return Err(no_sites(path));
    }
    // bpftrace resolves the path itself; an absolute one keeps the script valid from any directory.
    let abs = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let script = bpftrace_script(&abs, &sites)?;
    match output {
        None => print!("{script}"),
        Some(file) => {
            std::fs::write(file, &script)
                .with_context(|| format!("cannot write {}", file.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", file.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The script: one block per site, each printing its values and the trace id, span id and parent
/// span id read from the span record through a `struct gotap_record` cast.
fn bpftrace_script(bin: &Path, sites: &[&LibSite]) -> anyhow::Result<String> {
    let bin = bin.to_str().context("the binary's path is not UTF-8")?;
    if bin.contains(['"', '\\', ':', ' ', '\n']) {
        bail!("bpftrace cannot name a binary whose path contains quotes, backslashes, colons or spaces: {bin}");
    }
    let mut s = String::new();
    s += "#!/usr/bin/env bpftrace\n";
    s += &format!("// gotap probes of {bin}: one line per span (server request, client round trip, query, RPC).\n");
    s += "// Generated by `gotap probes bpftrace`; run as root: bpftrace THIS_FILE\n";
    s += "// Strings are cut at 64 bytes (bpftrace's default string size).\n\n";
    s += "// The span record (docs/probes.md): ids and timing; the strings are Go (ptr, len) pairs.\n";
    s += "struct gotap_record {\n";
    s += "  unsigned long trace_hi; unsigned long trace_lo;\n";
    s += "  unsigned long span; unsigned long parent;\n";
    s += "  long start; unsigned long flags;\n";
    s += "  unsigned long host_ptr; long host_len;\n";
    s += "  unsigned long remote_ptr; long remote_len;\n";
    s += "  unsigned long ua_ptr; long ua_len;\n";
    s += "  unsigned long proto_ptr; long proto_len;\n";
    s += "  unsigned long query_ptr; long query_len;\n";
    s += "}\n\n";
    // In the format string, not as a string argument: bpftrace caps string literals at 64 bytes.
    s += &format!(
        "BEGIN {{ printf(\"tracing gotap probes of {}; Ctrl-C to stop\\n\"); }}\n",
        bin.replace('%', "%%")
    );
    for site in sites {
        s += &format!("\nusdt:{bin}:gotap:{}\n{{\n", site.def.name);
        s += STACK_ARGS;
        s += &format!(
            "  printf(\"{} trace=%016lx%016lx span=%016lx parent=%016lx\\n\",\n",
            site.bpftrace.format
        );
        s += &format!("    {},\n", site.bpftrace.args);
        s += "    $r->trace_hi, $r->trace_lo, $r->span, $r->parent);\n";
        s += "}\n";
    }
    Ok(s)
}

/// bpftrace up to 0.17 refuses `arg6`+ on x86-64 even for USDT probes; the contract's last three
/// arguments are read from their stack slots (at the site's NOP, argument N is at `8(N+1)(%rsp)`).
const STACK_ARGS: &str = "  // arg6..arg8 from their stack slots (older bpftrace stops at arg5).\n  $sp = reg(\"sp\");\n  $a6 = *(uint64 *)($sp + 56); $a7 = *(int64 *)($sp + 64);\n  $r = (struct gotap_record *)*(uint64 *)($sp + 72);\n";

fn annotate(path: &Path, package: &str) -> anyhow::Result<ExitCode> {
    let functions: Vec<String> = GOTAP_SITES
        .iter()
        .map(|s| s.function.replacen("net/http", package, 1))
        .collect();
    let sites: Vec<SiteDef> = GOTAP_SITES
        .iter()
        .zip(&functions)
        .map(|(s, f)| SiteDef { function: f, ..*s })
        .collect();
    let n = usdt::annotate_gotap_sites(path, &sites)?;
    if n == 0 {
        return Err(no_sites(path));
    }
    eprintln!("gotap: {}: {n} gotap probe site(s) noted", path.display());
    Ok(ExitCode::SUCCESS)
}
