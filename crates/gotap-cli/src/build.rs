//! `gotap build`, `gotap test` and `gotap toolexec`: the compile-time strategy (crate gotap-weave).
use anyhow::Result;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Extra rules file (YAML), applied after the built-in rules; repeatable.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// A join point that cannot be woven is a warning and the package is compiled unwoven,
    /// instead of failing the build.
    #[arg(long)]
    best_effort: bool,
    /// Probe mode: build net/http with USDT probe sites (provider `gotap`) instead of linking the
    /// OpenTelemetry runtime; `gotap run` or any USDT tracer attaches to them. Adds no module to
    /// the build (linux/amd64 only; docs/probes.md).
    #[arg(long)]
    probes: bool,
    /// Print the GOFLAGS value that makes a plain `go build`/`go test` weave and link the runtime
    /// like `gotap build` (for CI: `export GOFLAGS="$(gotap build --print-goflags ./cmd/app)"`);
    /// rerun it when go.mod, go.sum, the rules or gotap change. Builds nothing.
    #[arg(long)]
    print_goflags: bool,
    /// `go build` / `go test` flags and packages, passed through (gotap's own flags come first).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "GO ARGS"
    )]
    go_args: Vec<String>,
}

#[derive(clap::Args)]
pub struct ToolexecArgs {
    /// The build plan written by `gotap build --print-goflags` (else `$GOTAP_WEAVE_CONFIG`, else
    /// the built-in rules).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// The tool the go command runs (compile, link, asm…) and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "TOOL ARGS"
    )]
    argv: Vec<OsString>,
}

fn go_command() -> PathBuf {
    std::env::var_os("GOTAP_GO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("go"))
}

/// `verb` is `build` or `test`.
pub fn run(verb: &str, args: Args) -> Result<ExitCode> {
    let opts = gotap_weave::gobuild::Options {
        verb: verb.to_owned(),
        go: go_command(),
        rules: args.rules,
        best_effort: args.best_effort,
        args: args.go_args,
        probes: args.probes,
        print_goflags: args.print_goflags,
    };
    let code = gotap_weave::gobuild::run(&opts)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

pub fn toolexec(args: ToolexecArgs) -> Result<ExitCode> {
    // Probe mode: every executable the linker writes gets the USDT notes of its sites.
    let annotate =
        |p: &std::path::Path| -> Result<usize> { Ok(gotap_binary::usdt::annotate_gotap(p)?) };
    let code = gotap_weave::toolexec::run(args.argv, args.plan, &annotate)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
