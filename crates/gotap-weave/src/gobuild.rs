//! `gotap build` / `gotap test`: prepare a temporary modfile (a temporary go.work in a workspace)
//! and overlay, then run the go command with `-toolexec` pointing back at this executable (or
//! print those flags: `--print-goflags`). With `--probes` (probe mode) there is no
//! runtime, hence no modfile and no overlay: only `-toolexec`.
use crate::assets;
use crate::interrupt;
use crate::plan::{Plan, CONFIG_ENV};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Options {
    /// `build` or `test`.
    pub verb: String,
    /// The go command (`$GOTAP_GO`, else `go` from PATH).
    pub go: PathBuf,
    /// Extra rules files, after the built-in ones.
    pub rules: Vec<PathBuf>,
    pub best_effort: bool,
    /// Arguments for `go build` / `go test`, as the user wrote them.
    pub args: Vec<String>,
    /// Probe mode: USDT probe sites in net/http instead of the OpenTelemetry runtime; the
    /// module graph is not changed at all (docs/probes.md).
    pub probes: bool,
    /// Prepare the modfile, overlay and plan in a stable directory of gotap's cache and print the
    /// `GOFLAGS` value that makes a plain `go build`/`go test` do what `gotap build` does.
    pub print_goflags: bool,
}

/// Flags gotap sets itself, or that change what the go command reads in ways not supported yet.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "-toolexec",
        "gotap runs the build through its own -toolexec",
    ),
    ("-modfile", "gotap passes its own temporary -modfile"),
    (
        "-overlay",
        "gotap passes its own -overlay (merging overlays is not supported yet)",
    ),
    ("-C", "run gotap from the module directory instead"),
    ("-compiler", "only the gc compiler is supported"),
];

/// The part of [`UNSUPPORTED`] that also applies in probe mode (no modfile, no overlay there).
const UNSUPPORTED_PROBES: &[&str] = &["-toolexec", "-C", "-compiler"];

const VENDOR_REFUSED: &str = "flag -mod=vendor is not supported by gotap build: the gotap runtime and the OpenTelemetry SDK are not in vendor/; use -mod=mod (module cache) or gotap build --probes (adds no module)";

/// `go build`/`go test` flags that take a value as the next argument (to find the packages).
const VALUE_FLAGS: &[&str] = &[
    "-o",
    "-p",
    "-tags",
    "-gcflags",
    "-ldflags",
    "-asmflags",
    "-gccgoflags",
    "-buildmode",
    "-installsuffix",
    "-mod",
    "-modfile",
    "-overlay",
    "-pgo",
    "-pkgdir",
    "-coverpkg",
    "-covermode",
    "-exec",
    "-run",
    "-bench",
    "-benchtime",
    "-count",
    "-cpu",
    "-parallel",
    "-timeout",
    "-skip",
    "-coverprofile",
    "-cpuprofile",
    "-memprofile",
    "-blockprofile",
    "-mutexprofile",
    "-outputdir",
    "-trace",
    "-fuzz",
    "-fuzztime",
    "-list",
    "-shuffle",
    "-reuse",
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoEnv {
    #[serde(rename = "GOVERSION")]
    go_version: String,
    #[serde(rename = "GOMOD")]
    go_mod: String,
    #[serde(rename = "GOWORK")]
    go_work: String,
    #[serde(rename = "GOFLAGS")]
    go_flags: String,
    #[serde(rename = "GOOS", default)]
    goos: String,
    #[serde(rename = "GOARCH", default)]
    goarch: String,
    #[serde(rename = "GOMODCACHE", default)]
    go_mod_cache: String,
    #[serde(rename = "GOPROXY", default)]
    go_proxy: String,
    #[serde(rename = "GONOSUMDB", default)]
    go_nosumdb: String,
}

fn flag_name(a: &str) -> Option<&str> {
    if !a.starts_with('-') || a == "-" || a == "--" {
        return None;
    }
    let body = a.trim_start_matches('-');
    Some(body.split('=').next().unwrap_or(body))
}

/// Rejects flags gotap cannot honour, naming them; returns the package patterns. Probe mode adds
/// no runtime: its own modfile/overlay/vendoring limits do not apply.
pub fn check_args(args: &[String], goflags: &str, probes: bool) -> Result<Vec<String>> {
    for a in args
        .iter()
        .map(String::as_str)
        .chain(goflags.split_whitespace())
    {
        if let Some(name) = flag_name(a) {
            if let Some((f, why)) = UNSUPPORTED.iter().find(|(f, _)| &f[1..] == name) {
                if !probes || UNSUPPORTED_PROBES.contains(f) {
                    bail!("flag -{name} is not supported by gotap build: {why}");
                }
            }
            if name == "mod" && a.ends_with("=vendor") && !probes {
                bail!("{VENDOR_REFUSED}");
            }
        }
    }
    let mut pkgs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        match flag_name(a) {
            Some(name) => {
                if !a.contains('=') && VALUE_FLAGS.iter().any(|f| &f[1..] == name) {
                    i += 1;
                }
                if name == "mod" && args.get(i).map(String::as_str) == Some("vendor") && !probes {
                    bail!("{VENDOR_REFUSED}");
                }
            }
            None => pkgs.push(a.clone()),
        }
        i += 1;
    }
    if pkgs.is_empty() {
        pkgs.push(".".into());
    }
    Ok(pkgs)
}

/// The user's flags that change which packages `go list` sees (build tags, module mode), in
/// `-name=value` form for the nested `go list`.
fn list_flags(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        for name in ["tags", "mod"] {
            let body = a.trim_start_matches('-');
            if a.starts_with('-') && body == name {
                if let Some(v) = it.next() {
                    out.push(format!("-{name}={v}"));
                }
            } else if a.starts_with('-') && body.starts_with(&format!("{name}=")) {
                out.push(format!("-{body}"));
            }
        }
    }
    out
}

/// A temporary directory removed on drop (unless `keep`: `--print-goflags` files outlive gotap).
struct TempDir(PathBuf, bool);
impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = interrupt::output(cmd).with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the woven build; returns the go command's exit code, or 128 + the signal number when
/// SIGINT or SIGTERM interrupted it: the signal is forwarded to the go command, which is waited
/// for, and the temporary directory is removed before this returns.
pub fn run(opts: &Options) -> Result<i32> {
    interrupt::install();
    // Directories of gotaps killed by SIGKILL (which nothing can catch) go at the next build.
    interrupt::remove_stale(&std::env::temp_dir());
    let res = run_uninterrupted(opts);
    // Every TempDir is dropped by now.
    match interrupt::received() {
        Some(sig) => Ok(128 + sig),
        None => res,
    }
}

/// A temporary directory of this build in `$TMPDIR`, named after gotap's pid and holding an
/// `owner` file (pid and start time) for [`interrupt::remove_stale`].
fn build_temp_dir() -> Result<TempDir> {
    let tmp = TempDir(
        std::env::temp_dir().join(format!(
            "{}{}-{}",
            interrupt::TEMP_PREFIX,
            std::process::id(),
            nanos()
        )),
        false,
    );
    std::fs::create_dir_all(&tmp.0)
        .with_context(|| format!("cannot create {}", tmp.0.display()))?;
    std::fs::write(tmp.0.join("owner"), interrupt::owner_line())?;
    Ok(tmp)
}

fn run_uninterrupted(opts: &Options) -> Result<i32> {
    let env: GoEnv = serde_json::from_str(&output(
        Command::new(&opts.go).args([
            "env",
            "-json",
            "GOVERSION",
            "GOMOD",
            "GOWORK",
            "GOFLAGS",
            "GOOS",
            "GOARCH",
            "GOMODCACHE",
            "GOPROXY",
            "GONOSUMDB",
        ]),
        "go env",
    )?)
    .context("unexpected output from go env -json")?;
    if opts.probes {
        if opts.print_goflags {
            bail!("--print-goflags is not supported with --probes yet: use gotap build --probes");
        }
        return run_probes(opts, &env);
    }
    let pkgs = check_args(&opts.args, &env.go_flags, false)?;
    let workspace = !env.go_work.is_empty() && env.go_work != "off";
    if !workspace && (env.go_mod.is_empty() || env.go_mod == "/dev/null") {
        bail!("gotap build needs a Go module: no go.mod in this directory or above (GOPATH mode is not supported)");
    }
    // The file that anchors the module graph: go.work in a workspace, else go.mod.
    let anchor = PathBuf::from(if workspace { &env.go_work } else { &env.go_mod });
    let root = anchor.parent().unwrap().to_path_buf();
    // A vendor directory makes -mod=vendor the default; an explicit -mod=mod or -mod=readonly
    // (the only one a workspace accepts) builds from the module cache instead.
    let from_cache = opts
        .args
        .iter()
        .map(String::as_str)
        .chain(env.go_flags.split_whitespace())
        .any(|a| matches!(a.trim_start_matches('-'), "mod=mod" | "mod=readonly"));
    if root.join("vendor/modules.txt").is_file() && !from_cache {
        bail!(
            "vendoring is not supported by gotap build ({} exists): the gotap runtime and the OpenTelemetry SDK are not in vendor/; pass {} to build from the module cache, or use gotap build --probes (adds no module)",
            root.join("vendor").display(),
            if workspace { "-mod=readonly" } else { "-mod=mod" }
        );
    }
    if version_lt(&env.go_version, (1, 23)) {
        bail!(
            "gotap build needs Go 1.23 or newer (this is {})",
            env.go_version
        );
    }

    if opts.print_goflags && workspace {
        bail!("--print-goflags is not supported in a workspace ({}): GOFLAGS cannot carry the GOWORK setting gotap needs there; use gotap build", env.go_work);
    }

    let ex = assets::extract()?;
    let mut plan = Plan::new(
        &ex,
        &opts.go,
        &env.go_version,
        &opts.rules,
        opts.best_effort,
        false,
    )?;
    let tmp = if opts.print_goflags {
        // Stable and content-named: the same inputs give the same GOFLAGS (and cache keys: the
        // overlay's path is part of them), changed ones a new directory.
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        let key = assets::fnv(&[
            anchor.as_os_str().as_encoded_bytes(),
            &read(&anchor),
            &read(&anchor.with_extension("sum")),
            plan.hash.as_bytes(),
            env.go_version.as_bytes(),
            std::env::current_dir()?.as_os_str().as_encoded_bytes(),
            opts.args.join("\0").as_bytes(),
            std::env::var("GOFLAGS").unwrap_or_default().as_bytes(),
        ]);
        TempDir(
            assets::cache_dir().join(format!("goflags-{key:016x}")),
            true,
        )
    } else {
        build_temp_dir()?
    };
    std::fs::create_dir_all(&tmp.0)?;

    // 1. The module graph with the runtime, replaced by gotap's extracted copy: a temporary copy
    //    of go.mod passed with -modfile, or — in a workspace, where -modfile is refused — a
    //    temporary copy of go.work passed through GOWORK, with a `use` of the runtime.
    let (graph, warning, graph_inputs) = if workspace {
        let work = tmp.0.join("go.work");
        let (w, uses) = write_workfile(&anchor, &ex.runtime_dir(), &work)?;
        // The cached go-list answers also depend on every workspace module's go.mod and go.sum.
        let inputs = uses
            .iter()
            .flat_map(|d| [d.join("go.mod"), d.join("go.sum")])
            .collect::<Vec<_>>();
        (Graph::Work(work), w, inputs)
    } else {
        let modfile = tmp.0.join("gotap.mod");
        let rt = runtime_module(&opts.go, &plan, &ex.runtime_dir(), &env)?;
        let w = write_modfile(&anchor, &ex.runtime_dir(), &rt, &modfile)?;
        let _ = RUNTIME_ENV.set(rt.env.clone());
        complete_modfile(&opts.go, &env.go_version, &anchor, &modfile, &rt);
        (Graph::Modfile(modfile.clone()), w, Vec::new())
    };
    // Warnings are collected and printed together at the end, once per change (see
    // `print_warnings_once`).
    let mut warnings: Vec<String> = warning.into_iter().collect();
    let graph_key = graph_key(&anchor, Some(&graph), &graph_inputs);

    // 2. Overlay: one extra file per main package importing the runtime (for `test`, per package
    //    under test). The go command resolves and builds that import itself.
    let mut list = Command::new(&opts.go);
    list.current_dir(std::env::current_dir()?).arg("list");
    graph.apply(&mut list);
    list.args(list_flags(&opts.args));
    list.args([
        "-f",
        "{{.Name}}\t{{.Dir}}\t{{with .Module}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}",
    ])
    .args(&pkgs);
    let listed = output(&mut list, "go list")?;
    let mut replace = BTreeMap::new();
    let mut copied = BTreeMap::new();
    for line in listed.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, mut dir) = match f.as_slice() {
            [name, dir, ..] => (*name, PathBuf::from(dir)),
            _ => continue,
        };
        if name != "main" && opts.verb != "test" {
            continue;
        }
        // The go command refuses overlay files beneath GOMODCACHE: a main package of a
        // dependency module gets its file in a copy of that module, which the graph replaces.
        if let [_, _, mpath, mver, mdir] = f.as_slice() {
            let cache = Path::new(&env.go_mod_cache);
            if !env.go_mod_cache.is_empty()
                && !mver.is_empty()
                && Path::new(mdir).starts_with(cache)
            {
                let copy = module_copy(mpath, mver, Path::new(mdir))?;
                if let Ok(rel) = dir.strip_prefix(mdir) {
                    dir = copy.join(rel);
                }
                copied.insert((mpath.to_string(), mver.to_string()), copy);
            }
        }
        let src = overlay_source(name)?;
        replace.insert(dir.join("zz_gotap_runtime.go"), src);
    }
    if !copied.is_empty() {
        let mut text = std::fs::read_to_string(graph.file())?;
        text.push_str("\n// Added by gotap build: main packages of dependency modules, from copies (no overlay beneath GOMODCACHE).\n");
        for ((m, v), dir) in &copied {
            text.push_str(&format!(
                "replace {m} {v} => {:?}\n",
                dir.display().to_string()
            ));
        }
        std::fs::write(graph.file(), text)?;
    }
    if replace.is_empty() {
        warnings.push(format!("no main package among {}: nothing links the gotap runtime, so no spans will be produced", pkgs.join(" ")));
    }
    let overlay = tmp.0.join("overlay.json");
    std::fs::write(
        &overlay,
        serde_json::to_vec(&serde_json::json!({ "Replace": replace }))?,
    )?;

    // The modules the binary contains: those of the packages the build compiles (the runtime's
    // included, through the overlay). Warnings about other modules of the graph (a grpc or a
    // testify that only tests or unused packages of a dependency need) would be noise.
    let in_binary = binary_modules(opts, &graph, &overlay, &pkgs);

    // 1b. Versions of the modules whose version rules constrain (join.module/join.version): the
    //     go command's own answer for this build's module graph, with the runtime added.
    if !plan.modules.is_empty() {
        let mut versions = module_versions_cached(
            &opts.go,
            &env.go_version,
            &graph_key,
            Some(&graph),
            &list_flags(&opts.args),
            &plan.modules,
        )
        .context("cannot find the versions of the modules the rules are scoped to")?;
        // A module copied for its main package (above) is that version, not a directory.
        for (m, v) in copied.keys() {
            if let Some(have) = versions.get_mut(m) {
                *have = v.clone();
            }
        }
        for s in plan.resolve_modules(versions)? {
            if in_binary.as_ref().is_none_or(|b| b.contains(&s.module)) {
                warnings.push(s.message);
            }
        }
    }

    // 3. Tell the user if adding the runtime moved any of their modules (minimal version selection).
    match mvs_upgrades_cached(&opts.go, &env.go_version, &graph_key, &graph) {
        Ok(ws) => warnings.extend(ws.into_iter().filter(|w| {
            let m = w
                .strip_prefix("adding the gotap runtime upgrades ")
                .and_then(|r| r.split_whitespace().next());
            match (m, &in_binary) {
                (Some(m), Some(b)) => b.contains(m),
                _ => true,
            }
        })),
        // The build itself may still work (it needs fewer modules than `all`): say what is unknown.
        Err(e) => warnings.push(format!(
            "cannot check whether the gotap runtime upgrades your modules: {e:#}"
        )),
    }
    print_warnings_once(&anchor, opts, &warnings);

    // 4. The build itself.
    let config = tmp.0.join("plan.json");
    plan.overlay = replace.clone();
    plan.write(&config)?;
    let me = std::env::current_exe().context("cannot find gotap's own executable")?;
    if opts.print_goflags {
        // GOFLAGS entries are split like a shell would (cmd/internal/quoted): the -toolexec value
        // holds spaces, so it is quoted; the plan travels in the -toolexec command itself.
        let modfile = graph.file();
        for p in [modfile, overlay.as_path(), config.as_path(), me.as_path()] {
            if p.to_string_lossy()
                .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            {
                bail!("--print-goflags cannot express the path {} (it contains a space or a quote): use gotap build", p.display());
            }
        }
        println!(
            "-modfile={} -overlay={} '-toolexec={} toolexec --plan={}'",
            modfile.display(),
            overlay.display(),
            me.display(),
            config.display()
        );
        return Ok(0);
    }
    let mut go = Command::new(&opts.go);
    go.arg(&opts.verb);
    graph.apply(&mut go);
    go.arg(format!("-overlay={}", overlay.display()))
        .arg(format!("-toolexec={} toolexec", quote(&me)))
        .args(&opts.args)
        .env(CONFIG_ENV, &config);
    let status =
        interrupt::status(&mut go).with_context(|| format!("cannot run {}", opts.go.display()))?;
    Ok(status.code().unwrap_or(1))
}

/// Probe mode: the go command with `-toolexec` and the user's arguments, nothing else. The sites
/// are added to net/http by `gotap toolexec` and the USDT notes to the executable after link, so
/// the user's go.mod, go.sum and module graph are exactly those of a plain `go build`.
fn run_probes(opts: &Options, env: &GoEnv) -> Result<i32> {
    check_args(&opts.args, &env.go_flags, true)?;
    if env.goos != "linux" || env.goarch != "amd64" {
        bail!(
            "gotap build --probes supports linux/amd64 only (USDT notes are ELF, the sites are amd64 assembly); this build is {}/{}",
            env.goos,
            env.goarch
        );
    }
    if version_lt(&env.go_version, (1, 23)) {
        bail!(
            "gotap build --probes needs Go 1.23 or newer (this is {})",
            env.go_version
        );
    }
    let ex = assets::extract()?;
    let mut plan = Plan::new(
        &ex,
        &opts.go,
        &env.go_version,
        &opts.rules,
        opts.best_effort,
        true,
    )?;
    if !plan.modules.is_empty() && !env.go_mod.is_empty() && env.go_mod != "/dev/null" {
        let key = graph_key(Path::new(&env.go_mod), None, &[]);
        let versions = module_versions_cached(
            &opts.go,
            &env.go_version,
            &key,
            None,
            &list_flags(&opts.args),
            &plan.modules,
        )
        .context("cannot find the versions of the modules the rules are scoped to")?;
        for s in plan.resolve_modules(versions)? {
            eprintln!("gotap: warning: {}", s.message);
        }
    }
    let tmp = build_temp_dir()?;
    let config = tmp.0.join("plan.json");
    plan.write(&config)?;
    let me = std::env::current_exe().context("cannot find gotap's own executable")?;
    let status = interrupt::status(
        Command::new(&opts.go)
            .arg(&opts.verb)
            .arg(format!("-toolexec={} toolexec", quote(&me)))
            .args(&opts.args)
            .env(CONFIG_ENV, &config),
    )
    .with_context(|| format!("cannot run {}", opts.go.display()))?;
    Ok(status.code().unwrap_or(1))
}

/// The file added to package `name`. Its path is part of the compile action's key (the go command
/// maps it with -trimpath), so it lives at a stable, content-named path in gotap's cache: a path
/// that changed per build would recompile every main package every time.
fn overlay_source(name: &str) -> Result<PathBuf> {
    let text = format!(
        "// Added by gotap build: links the gotap runtime.\npackage {name}\n\nimport _ \"{}\"\n",
        crate::RUNTIME_MODULE
    );
    let dir = assets::cache_dir().join("overlay");
    let path = dir.join(format!(
        "runtime-{:016x}.go",
        assets::fnv(&[text.as_bytes()])
    ));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::create_dir_all(&dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// Paths of the modules providing the packages this build compiles (`go list -deps`, with the
/// overlay, so the runtime's modules count), or None when the go command cannot say (then
/// nothing is filtered).
fn binary_modules(
    opts: &Options,
    graph: &Graph,
    overlay: &Path,
    pkgs: &[String],
) -> Option<BTreeSet<String>> {
    let mut c = Command::new(&opts.go);
    c.current_dir(std::env::current_dir().ok()?).arg("list");
    graph.apply(&mut c);
    c.args(list_flags(&opts.args))
        .arg(format!("-overlay={}", overlay.display()));
    if opts.verb == "test" {
        c.arg("-test");
    }
    c.args(["-deps", "-e", "-f", "{{with .Module}}{{.Path}}{{end}}"])
        .args(pkgs);
    let text = output(&mut c, "go list -deps").ok()?;
    Some(
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// Prints `warnings`, unless this same set was the last one printed for this module, directory,
/// arguments and rules files: a rebuild with nothing changed repeats nothing, a change shows them
/// all again. The last set is remembered by hash in gotap's cache.
fn print_warnings_once(anchor: &Path, opts: &Options, warnings: &[String]) {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut parts: Vec<Vec<u8>> = vec![
        b"warned".to_vec(),
        anchor.as_os_str().as_encoded_bytes().to_vec(),
        cwd.as_os_str().as_encoded_bytes().to_vec(),
        opts.verb.as_bytes().to_vec(),
        opts.args.join("\0").into_bytes(),
    ];
    // Another rules file is another build, even when its warnings read the same.
    for r in &opts.rules {
        let abs = std::path::absolute(r).unwrap_or_else(|_| r.clone());
        parts.push(abs.as_os_str().as_encoded_bytes().to_vec());
        parts.push(std::fs::read(r).unwrap_or_default());
    }
    let key = assets::fnv(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let seen = assets::fnv(&warnings.iter().map(|w| w.as_bytes()).collect::<Vec<_>>());
    let path = assets::cache_dir()
        .join("warned")
        .join(format!("{key:016x}"));
    if std::fs::read_to_string(&path).ok().as_deref() == Some(format!("{seen:016x}").as_str()) {
        return;
    }
    for w in warnings {
        eprintln!("gotap: warning: {w}");
    }
    if let Some(d) = path.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = std::fs::write(&path, format!("{seen:016x}"));
}

/// A copy of module `path@version` (read from `dir` in GOMODCACHE) in gotap's cache, made once:
/// a module version's content never changes. Files are hard links where the file system allows,
/// else copies; the copy is built under a temporary name and renamed into place.
fn module_copy(path: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    let dst = assets::cache_dir()
        .join("modsrc")
        .join(format!("{path}@{version}"));
    if dst.join("go.mod").is_file() || dst.is_dir() {
        return Ok(dst);
    }
    let tmp = dst.with_extension(format!("tmp{}-{}", std::process::id(), nanos()));
    fn walk(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            let (src, dst) = (e.path(), to.join(e.file_name()));
            let t = e.file_type()?;
            if t.is_dir() {
                walk(&src, &dst)?;
            } else if t.is_file() && std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst)?;
            }
        }
        Ok(())
    }
    let res = walk(dir, &tmp).and_then(|_| std::fs::rename(&tmp, &dst));
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dst.is_dir() {
            return Err(e).with_context(|| format!("cannot copy module {path}@{version}"));
        }
    }
    Ok(dst)
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The go command splits -toolexec like a shell would for simple quoting.
fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains([' ', '\'', '"']) {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        s
    }
}

fn version_lt(gover: &str, (maj, min): (u32, u32)) -> bool {
    let v = gover.trim_start_matches("go");
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) < (maj, min)
}

/// Rewrites the version of the `require` entries named in `raise` (module → (old, new)).
fn set_require_versions(gomod: &str, raise: &BTreeMap<String, (String, String)>) -> String {
    let mut out = String::with_capacity(gomod.len());
    for line in gomod.split_inclusive('\n') {
        let code = line.split("//").next().unwrap_or("");
        let mut toks = code.split_whitespace();
        let first = toks.next();
        let module = if first == Some("require") {
            toks.next()
        } else {
            first
        };
        match module.and_then(|m| raise.get(m).map(|r| (m, r))) {
            Some((m, (old, new))) if code.contains(&format!("{m} {old}")) => {
                out.push_str(&line.replacen(&format!("{m} {old}"), &format!("{m} {new}"), 1));
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Semantic-version order of module versions (`v1.2.3`, `v1.2.3-pre`, pseudo-versions).
fn semver_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(v: &str) -> (Vec<u64>, Option<&str>) {
        let v = v.trim_start_matches('v');
        let v = v.split('+').next().unwrap_or(v);
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (v, None),
        };
        (
            core.split('.').map(|n| n.parse().unwrap_or(0)).collect(),
            pre,
        )
    }
    let ((ca, pa), (cb, pb)) = (split(a), split(b));
    ca.cmp(&cb).then_with(|| match (pa, pb) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => {
            let (mut ix, mut iy) = (x.split('.'), y.split('.'));
            loop {
                match (ix.next(), iy.next()) {
                    (None, None) => return std::cmp::Ordering::Equal,
                    (None, Some(_)) => return std::cmp::Ordering::Less,
                    (Some(_), None) => return std::cmp::Ordering::Greater,
                    (Some(p), Some(q)) => {
                        let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                            (Ok(m), Ok(n)) => m.cmp(&n),
                            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
                            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
                            _ => p.cmp(q),
                        };
                        if o.is_ne() {
                            return o;
                        }
                    }
                }
            }
        }
    })
}

/// `require` entries of a go.mod text, single-line and block form.
fn requirements(gomod: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in gomod.lines() {
        let l = line.split("//").next().unwrap_or("").trim();
        let entry = if in_block {
            if l == ")" {
                in_block = false;
                continue;
            }
            l
        } else if l == "require (" {
            in_block = true;
            continue;
        } else if let Some(rest) = l.strip_prefix("require ") {
            rest.trim()
        } else {
            continue;
        };
        let mut f = entry.split_whitespace();
        if let (Some(m), Some(v)) = (f.next(), f.next()) {
            out.push((m.to_owned(), v.to_owned()));
        }
    }
    out
}

/// The `go` directive of a go.mod text.
/// `1.19.3` → `1.19`: `godebug default=` takes a language version.
fn major_minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

fn go_directive(gomod: &str) -> Option<&str> {
    gomod
        .lines()
        .find_map(|l| l.trim().strip_prefix("go ").map(str::trim))
}

fn parse_version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Copies go.mod/go.sum next to each other in `modfile`'s directory, adding the runtime module.
/// Go requires the main module's `go` line to be at least every dependency's: when the runtime's
/// is newer, the copy is raised and the returned warning says so (the language version changes).
fn write_modfile(
    gomod: &Path,
    runtime: &Path,
    rt: &RuntimeModule,
    modfile: &Path,
) -> Result<Option<String>> {
    let mut text = std::fs::read_to_string(gomod)
        .with_context(|| format!("cannot read {}", gomod.display()))?;
    let rt_mod = std::fs::read_to_string(runtime.join("go.mod"))?;
    let mut warning = None;
    if let (Some(user), Some(need)) = (
        go_directive(&text).map(str::to_owned),
        go_directive(&rt_mod),
    ) {
        if parse_version(&user) < parse_version(need) {
            // `go 1.25` and `go 1.25.0` are the same language version: the copy is raised to
            // the runtime's spelling, but nothing changes that the user should hear about.
            warning = (major_minor(&user) != major_minor(need)).then(|| format!(
                "the gotap runtime (OpenTelemetry Go SDK) needs go {need}: the main module is compiled with language version go{need} instead of go{user}; its runtime behaviour (GODEBUG defaults) stays go{user}'s (go.mod itself is untouched)"
            ));
            // The go line also selects the program's GODEBUG defaults (ServeMux patterns, TLS,
            // x509…): pin them to the user's version so the woven program behaves like theirs.
            let pin = !text.lines().any(|l| l.trim_start().starts_with("godebug"));
            text = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("toolchain "))
                .map(|l| {
                    if !l.trim_start().starts_with("go ") {
                        l.to_owned()
                    } else if pin {
                        format!("go {need}\ngodebug default=go{}", major_minor(&user))
                    } else {
                        format!("go {need}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
    }
    text.push_str(&format!(
        "\n// Added by gotap build (temporary copy; the original go.mod is untouched).\nrequire {} {}\n",
        crate::RUNTIME_MODULE,
        rt.version
    ));
    // With module graph pruning (go >= 1.17) the main module must require every module that
    // provides a package it builds, at the selected version: the runtime's requirements are added
    // as indirect ones, and a user requirement older than the runtime's is raised (what minimal
    // version selection selects anyway; mvs_upgrades reports it).
    let user_reqs: BTreeMap<String, String> = requirements(&text).into_iter().collect();
    let mut raise = BTreeMap::new();
    let mut added = String::new();
    for (m, v) in requirements(&rt_mod) {
        match user_reqs.get(&m) {
            None => added.push_str(&format!("require {m} {v} // indirect\n")),
            Some(u) if semver_cmp(&v, u).is_gt() => {
                raise.insert(m, (u.clone(), v));
            }
            Some(_) => {}
        }
    }
    let mut text = set_require_versions(&text, &raise);
    text.push_str(&added);
    std::fs::write(modfile, text)?;
    // go.sum: the user's entries plus the runtime's (the go command reads <modfile>.sum).
    let mut sums = BTreeSet::new();
    for f in [gomod.with_extension("sum"), runtime.join("go.sum")] {
        if let Ok(s) = std::fs::read_to_string(&f) {
            sums.extend(
                s.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    sums.extend(rt.sums.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    let mut sum = sums.into_iter().collect::<Vec<_>>().join("\n");
    sum.push('\n');
    std::fs::write(modfile.with_extension("sum"), sum)?;
    Ok(warning)
}

/// Makes the temporary modfile's module graph complete and consistent by running
/// `go get gotap.dev/gotaprt@<its version>` on the copy (`-modfile`: only the copy and its go.sum are
/// written). Raising the runtime's direct requirements alone is not enough when the user already
/// requires other modules of the same family (go.opentelemetry.io/otel/sdk/metric next to a raised
/// otel/sdk): the go command then finds the graph inconsistent and refuses with "updates to go.mod
/// needed". `go get` raises every module the upgrade touches together, as it would in the user's
/// go.mod, and never downgrades. The result is remembered per input in gotap's cache (a no-op
/// rebuild must not ask the module proxy). If it fails (offline, no cache), the copy is left as
/// written and the build reports what the go command says.
fn complete_modfile(go: &Path, gover: &str, gomod: &Path, modfile: &Path, rt: &RuntimeModule) {
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    let sum = modfile.with_extension("sum");
    let key = assets::fnv(&[
        b"modget",
        &read(gomod),
        &read(modfile),
        &read(&sum),
        gover.as_bytes(),
        std::env::var("GOFLAGS").unwrap_or_default().as_bytes(),
    ]);
    let dir = assets::cache_dir().join("modget");
    let (cmod, csum) = (
        dir.join(format!("{key:016x}.mod")),
        dir.join(format!("{key:016x}.sum")),
    );
    if let (Ok(m), Ok(s)) = (std::fs::read(&cmod), std::fs::read(&csum)) {
        let _ = std::fs::write(modfile, m);
        let _ = std::fs::write(&sum, s);
        return;
    }
    let mut c = Command::new(go);
    c.current_dir(gomod.parent().unwrap_or(Path::new(".")))
        .arg("get")
        .arg(format!("-modfile={}", modfile.display()))
        .arg(format!("{}@{}", crate::RUNTIME_MODULE, rt.version))
        .envs(rt.env.iter().map(|(k, v)| (k, v)));
    // go get refuses -mod=…; the user's GOFLAGS may carry one (-mod=mod, the vendoring escape).
    if let Ok(f) = std::env::var("GOFLAGS") {
        let kept: Vec<&str> = f
            .split_whitespace()
            .filter(|a| !a.trim_start_matches('-').starts_with("mod="))
            .collect();
        c.env("GOFLAGS", kept.join(" "));
    }
    match interrupt::output(&mut c) {
        Ok(out) if out.status.success() => {
            if std::fs::create_dir_all(&dir).is_ok() {
                let tmp = |p: &Path| p.with_extension(format!("tmp{}", std::process::id()));
                let ok = std::fs::copy(modfile, tmp(&cmod)).is_ok()
                    && std::fs::copy(&sum, tmp(&csum)).is_ok()
                    && std::fs::rename(tmp(&csum), &csum).is_ok()
                    && std::fs::rename(tmp(&cmod), &cmod).is_ok();
                if !ok {
                    let _ = std::fs::remove_file(tmp(&cmod));
                    let _ = std::fs::remove_file(tmp(&csum));
                }
            }
        }
        Ok(out) => eprintln!(
            "gotap: warning: cannot complete the module graph with the gotap runtime (go get -modfile=…): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("gotap: warning: cannot run go get: {e:#}"),
    }
}

/// Copies go.work (and go.work.sum) to `out`, which the build then names in `GOWORK`: relative
/// `use` and `replace` paths made absolute (they are relative to the go.work file), a `use` of
/// the runtime added, and — as for a modfile — the `go` line raised to the runtime's with the
/// GODEBUG defaults pinned to the workspace's own (in workspace mode both come from go.work;
/// the modules' go.mod files, and so their language versions, are untouched). Returns the
/// warning for a raised `go` line and the workspace's module directories.
fn write_workfile(
    gowork: &Path,
    runtime: &Path,
    out: &Path,
) -> Result<(Option<String>, Vec<PathBuf>)> {
    let text = std::fs::read_to_string(gowork)
        .with_context(|| format!("cannot read {}", gowork.display()))?;
    let dir = gowork.parent().unwrap_or(Path::new("/"));
    let rt_mod = std::fs::read_to_string(runtime.join("go.mod"))?;
    let mut warning = None;
    let mut raise = None;
    if let (Some(user), Some(need)) = (go_directive(&text), go_directive(&rt_mod)) {
        if parse_version(user) < parse_version(need) {
            warning = (major_minor(user) != major_minor(need)).then(|| format!(
                "the gotap runtime (OpenTelemetry Go SDK) needs go {need}: the workspace's go line is raised from go {user} in a temporary copy of {}; the modules keep their language versions and the program its GODEBUG defaults (go.work itself is untouched)",
                gowork.display()
            ));
            let pin = !text.lines().any(|l| l.trim_start().starts_with("godebug"));
            raise = Some((need.to_owned(), pin.then(|| major_minor(user))));
        }
    }
    let abs = |p: &str| -> String {
        let unq = p.trim_matches('"');
        let path = if Path::new(unq).is_absolute() {
            PathBuf::from(unq)
        } else {
            dir.join(unq)
        };
        format!("{:?}", clean(&path).display().to_string())
    };
    let is_local = |p: &str| {
        let p = p.trim_matches('"');
        p == "." || p == ".." || p.starts_with("./") || p.starts_with("../") || p.starts_with('/')
    };
    let mut uses = Vec::new();
    let mut entry = |kw: &str, e: &str| -> String {
        let code = e.split("//").next().unwrap_or("").trim();
        match kw {
            "use" if !code.is_empty() => {
                let a = abs(code);
                uses.push(PathBuf::from(a.trim_matches('"')));
                a
            }
            "replace" => match code.split_once("=>") {
                Some((l, r)) => {
                    let mut t: Vec<&str> = r.split_whitespace().collect();
                    let target = match t.first() {
                        Some(p) if t.len() == 1 && is_local(p) => abs(p),
                        _ => std::mem::take(&mut t).join(" "),
                    };
                    format!("{} => {target}", l.trim())
                }
                None => e.to_owned(),
            },
            _ => e.to_owned(),
        }
    };
    let mut lines = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("").trim();
        if let Some(kw) = &block {
            if code == ")" {
                block = None;
                lines.push(line.to_owned());
            } else {
                lines.push(format!("\t{}", entry(kw, line.trim())));
            }
            continue;
        }
        let (kw, rest) = code
            .split_once(char::is_whitespace)
            .map(|(k, r)| (k, r.trim()))
            .unwrap_or((code, ""));
        match (kw, &raise) {
            ("use" | "replace", _) if rest == "(" => {
                block = Some(kw.to_owned());
                lines.push(line.to_owned());
            }
            ("use" | "replace", _) => lines.push(format!("{kw} {}", entry(kw, rest))),
            ("go", Some((need, pin))) => {
                lines.push(format!("go {need}"));
                if let Some(v) = pin {
                    lines.push(format!("godebug default=go{v}"));
                }
            }
            ("toolchain", Some(_)) => {}
            _ => lines.push(line.to_owned()),
        }
    }
    let mut text = lines.join("\n");
    text.push_str(&format!("\n\n// Added by gotap build (temporary copy; the original go.work is untouched).\nuse {:?}\n", runtime.display().to_string()));
    std::fs::write(out, text)?;
    // go.work.sum: the workspace's plus the runtime's (the go command reads <GOWORK>.sum; the
    // modules' own go.sum files are read from their directories).
    let mut sums = BTreeSet::new();
    let mut user_sum = gowork.as_os_str().to_owned();
    user_sum.push(".sum");
    for f in [PathBuf::from(user_sum), runtime.join("go.sum")] {
        if let Ok(s) = std::fs::read_to_string(&f) {
            sums.extend(
                s.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    let mut out_sum = out.as_os_str().to_owned();
    out_sum.push(".sum");
    std::fs::write(
        PathBuf::from(out_sum),
        sums.into_iter().map(|l| l + "\n").collect::<String>(),
    )?;
    Ok((warning, uses))
}

/// `a/./b/../c` → `a/c`, lexically as Go's filepath.Clean (the go command compares workspace
/// module directories as cleaned paths).
fn clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The runtime as a module version: `gotap.dev/gotaprt v<gotap version>-rt<hash of the runtime
/// sources>`, served from a file-based module proxy in gotap's cache. A `replace` by the
/// extracted directory would put that directory, a path of the building machine, into every
/// woven binary's build info; a module version is recorded as `dep gotap.dev/gotaprt <version>
/// h1:…`, the same on every machine. The version changes with the runtime's content (the module
/// cache never changes a version once extracted).
struct RuntimeModule {
    version: String,
    /// GOPROXY with the file proxy first, and GONOSUMDB naming the runtime (no checksum
    /// database knows it; its sums come with the temporary go.sum).
    env: Vec<(String, String)>,
    /// The go.sum lines of the runtime module (zip and go.mod hashes).
    sums: String,
}

/// Set once the runtime module is known: every go command run on the temporary modfile gets it.
static RUNTIME_ENV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

fn runtime_module(go: &Path, plan: &Plan, dir: &Path, env: &GoEnv) -> Result<RuntimeModule> {
    // Content of the runtime sources, in a fixed order.
    let mut files = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(d)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(base, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&p)?));
            }
        }
        Ok(())
    }
    walk(dir, dir, &mut files).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut parts: Vec<&[u8]> = Vec::new();
    for (p, c) in &files {
        parts.push(p.as_bytes());
        parts.push(c);
    }
    let version = format!("v{}-rt{:016x}", crate::VERSION, assets::fnv(&parts));
    let proxy = assets::cache_dir().join("proxy");
    let vdir = proxy.join(crate::RUNTIME_MODULE).join("@v");
    if !vdir.join(format!("{version}.zip")).is_file() {
        let out = interrupt::output(
            Command::new(&plan.weaver)
                .arg("modproxy")
                .args([
                    "-module",
                    crate::RUNTIME_MODULE,
                    "-version",
                    &version,
                    "-dir",
                ])
                .arg(dir)
                .arg("-proxy")
                .arg(&proxy),
        )
        .context("cannot run the weaver")?;
        if !out.status.success() {
            bail!(
                "cannot write the gotap runtime module: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let upstream = if env.go_proxy.is_empty() {
        "https://proxy.golang.org,direct"
    } else {
        env.go_proxy.as_str()
    };
    let nosumdb = if env.go_nosumdb.is_empty() {
        crate::RUNTIME_MODULE.to_owned()
    } else {
        format!("{},{}", env.go_nosumdb, crate::RUNTIME_MODULE)
    };
    let rt_env = vec![
        (
            "GOPROXY".to_owned(),
            format!("file://{},{upstream}", proxy.display()),
        ),
        ("GONOSUMDB".to_owned(), nosumdb),
    ];
    // The sums, computed once by the go command itself from the proxy's files (which puts the
    // module into the module cache too: a plain `go build` with --print-goflags's flags then
    // finds it there without gotap's GOPROXY).
    let sums_file = vdir.join(format!("{version}.sums"));
    let sums = match std::fs::read_to_string(&sums_file) {
        Ok(s) => s,
        Err(_) => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Dl {
                #[serde(default)]
                sum: String,
                #[serde(default)]
                go_mod_sum: String,
                #[serde(default)]
                error: String,
            }
            let mut c = Command::new(go);
            c.current_dir(&proxy)
                .args(["mod", "download", "-json"])
                .arg(format!("{}@{version}", crate::RUNTIME_MODULE))
                .envs(rt_env.iter().map(|(k, v)| (k, v)))
                .env("GOWORK", "off");
            if let Ok(f) = std::env::var("GOFLAGS") {
                let kept: Vec<&str> = f
                    .split_whitespace()
                    .filter(|a| !a.trim_start_matches('-').starts_with("mod="))
                    .collect();
                c.env("GOFLAGS", kept.join(" "));
            }
            let out = interrupt::output(&mut c).context("cannot run go mod download")?;
            let dl: Dl = serde_json::from_slice(&out.stdout).with_context(|| {
                format!(
                    "go mod download of the gotap runtime failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })?;
            if !dl.error.is_empty() || dl.sum.is_empty() {
                bail!("go mod download of the gotap runtime failed: {}", dl.error);
            }
            let m = crate::RUNTIME_MODULE;
            let s = format!(
                "{m} {version} {}\n{m} {version}/go.mod {}\n",
                dl.sum, dl.go_mod_sum
            );
            let tmp = sums_file.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, &s).is_ok() {
                let _ = std::fs::rename(&tmp, &sums_file);
            }
            s
        }
    };
    Ok(RuntimeModule {
        version,
        env: rt_env,
        sums,
    })
}

/// How the go command sees the module graph with the runtime added.
enum Graph {
    /// A temporary copy of go.mod, passed with `-modfile`.
    Modfile(PathBuf),
    /// A temporary copy of go.work, passed through `GOWORK` (the go command refuses `-modfile`
    /// in workspace mode).
    Work(PathBuf),
}

impl Graph {
    /// Points a go command (after its verb) at this graph.
    fn apply(&self, c: &mut Command) {
        match self {
            Graph::Modfile(m) => {
                c.arg(format!("-modfile={}", m.display()));
                for (k, v) in RUNTIME_ENV.get().into_iter().flatten() {
                    c.env(k, v);
                }
            }
            Graph::Work(w) => {
                c.env("GOWORK", w);
            }
        }
    }
    fn file(&self) -> &Path {
        match self {
            Graph::Modfile(p) | Graph::Work(p) => p,
        }
    }
}

/// Identity of the inputs of the go-list answers gotap caches: go.mod or go.work and its sum
/// file, the temporary graph file, extra files (a workspace's go.mod/go.sum files), GOFLAGS.
fn graph_key(anchor: &Path, graph: Option<&Graph>, inputs: &[PathBuf]) -> u64 {
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    let mut sum = anchor.as_os_str().to_owned();
    sum.push(".sum");
    let sum = if anchor.extension().is_some_and(|e| e == "mod") {
        anchor.with_extension("sum")
    } else {
        PathBuf::from(sum)
    };
    let mut parts = vec![
        read(anchor),
        read(&sum),
        graph.map(|g| read(g.file())).unwrap_or_default(),
    ];
    parts.extend(inputs.iter().map(|p| read(p)));
    parts.push(std::env::var("GOFLAGS").unwrap_or_default().into_bytes());
    parts.push(std::env::var("GOWORK").unwrap_or_default().into_bytes());
    assets::fnv(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// [`mvs_upgrades`] remembered per (graph inputs, toolchain): the two `go list -m all` runs are
/// most of gotap's own time in a no-op rebuild.
fn mvs_upgrades_cached(go: &Path, gover: &str, key: &u64, graph: &Graph) -> Result<Vec<String>> {
    let key = assets::fnv(&[&key.to_le_bytes(), gover.as_bytes()]);
    let path = assets::cache_dir().join(format!("mvs-{key:016x}.txt"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.lines().map(str::to_owned).collect());
    }
    let warnings = mvs_upgrades(go, graph)?;
    let _ = std::fs::write(
        &path,
        warnings
            .iter()
            .map(|w| format!("{w}\n"))
            .collect::<String>(),
    );
    Ok(warnings)
}

/// [`module_versions`] remembered per (graph inputs, toolchain, flags, modules).
fn module_versions_cached(
    go: &Path,
    gover: &str,
    key: &u64,
    graph: Option<&Graph>,
    flags: &[String],
    modules: &[String],
) -> Result<BTreeMap<String, String>> {
    let key = assets::fnv(&[
        b"modver",
        &key.to_le_bytes(),
        gover.as_bytes(),
        flags.join(" ").as_bytes(),
        modules.join(" ").as_bytes(),
    ]);
    let path = assets::cache_dir().join(format!("modver-{key:016x}.json"));
    if let Ok(v) = std::fs::read(&path)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(serde_json::from_slice(&b)?))
    {
        return Ok(v);
    }
    let versions = module_versions(go, graph, flags, modules)?;
    let _ = std::fs::write(&path, serde_json::to_vec(&versions)?);
    Ok(versions)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedModule {
    path: String,
    #[serde(default)]
    version: String,
    replace: Option<Box<ListedModule>>,
    error: Option<serde_json::Value>,
}

/// The version of each of `modules` in the build (`go list -m`, the go command's own module
/// graph; a module it does not know is not in the build and left out). A `replace` by another
/// module version counts as that version; a replace by a directory has no version: "".
fn module_versions(
    go: &Path,
    graph: Option<&Graph>,
    flags: &[String],
    modules: &[String],
) -> Result<BTreeMap<String, String>> {
    let mut c = Command::new(go);
    c.args(["list", "-m", "-e", "-json"]);
    if let Some(g) = graph {
        g.apply(&mut c);
    }
    c.args(flags.iter().filter(|f| f.starts_with("-mod=")));
    c.args(modules);
    let text = output(&mut c, "go list -m")?;
    parse_module_versions(&text)
}

fn parse_module_versions(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for m in serde_json::Deserializer::from_str(text).into_iter::<ListedModule>() {
        let m = m.context("unexpected output from go list -m -json")?;
        if m.error.is_some() {
            continue; // "not a known dependency": the module is not in this build
        }
        let version = match m.replace {
            Some(r) => r.version,
            None => m.version,
        };
        out.insert(m.path, version);
    }
    Ok(out)
}

/// Modules whose selected version changes once the runtime's requirements join the graph.
fn mvs_upgrades(go: &Path, graph: &Graph) -> Result<Vec<String>> {
    let list = |extra: Option<&Graph>| -> Result<BTreeMap<String, String>> {
        let mut c = Command::new(go);
        c.args(["list", "-m", "-f", "{{.Path}} {{.Version}}"]);
        if let Some(g) = extra {
            g.apply(&mut c);
        }
        c.arg("all");
        let text = output(&mut c, "go list -m all")?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(p, v)| (p.to_owned(), v.to_owned())))
            .collect())
    };
    let before = list(None)?;
    let after = list(Some(graph))?;
    let mut out = Vec::new();
    for (m, v) in &before {
        if let Some(w) = after.get(m) {
            if w != v && !v.is_empty() {
                out.push(format!(
                    "adding the gotap runtime upgrades {m} from {v} to {w} (Go minimal version selection); the woven binary uses {w}"
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn packages_found_after_flags_with_values() {
        let pkgs = check_args(
            &s(&["-o", "bin/x", "-tags", "a,b", "-race", "./cmd/x", "./cmd/y"]),
            "",
            false,
        )
        .unwrap();
        assert_eq!(pkgs, s(&["./cmd/x", "./cmd/y"]));
        assert_eq!(
            check_args(&s(&["-ldflags=-s -w"]), "", false).unwrap(),
            s(&["."])
        );
        assert_eq!(
            list_flags(&s(&["-tags", "a,b", "-o", "x", "--mod=mod"])),
            s(&["-tags=a,b", "-mod=mod"])
        );
        assert_eq!(list_flags(&s(&["--tags=x", "-race"])), s(&["-tags=x"]));
    }

    #[test]
    fn unsupported_flags_named_from_args_and_goflags() {
        let e = check_args(&s(&["-modfile=x.mod", "."]), "", false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("flag -modfile is not supported"), "{e}");
        let e = check_args(&s(&["."]), "-toolexec=foo", false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("flag -toolexec is not supported"), "{e}");
        let e = check_args(&s(&["-mod", "vendor"]), "", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-mod=vendor"), "{e}");
        // Probe mode has no runtime module: its own modfile, overlay and vendoring are fine.
        assert_eq!(
            check_args(
                &s(&["-modfile=x.mod", "-overlay", "o.json", "-mod=vendor", "."]),
                "",
                true
            )
            .unwrap(),
            s(&["."])
        );
        let e = check_args(&s(&["."]), "-toolexec=foo", true)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("flag -toolexec is not supported"), "{e}");
    }

    #[test]
    fn module_versions_from_go_list() {
        let text = r#"{
	"Path": "google.golang.org/grpc",
	"Version": "v1.83.2"
}
{
	"Path": "example.com/forked",
	"Version": "v1.0.0",
	"Replace": {"Path": "example.com/fork", "Version": "v1.0.1-fork"}
}
{
	"Path": "example.com/local",
	"Version": "v1.0.0",
	"Replace": {"Path": "../local", "Dir": "/src/local"}
}
{
	"Path": "example.com/absent",
	"Error": {"Err": "module example.com/absent: not a known dependency"}
}
"#;
        let v = parse_module_versions(text).unwrap();
        assert_eq!(
            v.get("google.golang.org/grpc").map(String::as_str),
            Some("v1.83.2")
        );
        assert_eq!(
            v.get("example.com/forked").map(String::as_str),
            Some("v1.0.1-fork")
        );
        assert_eq!(
            v.get("example.com/local").map(String::as_str),
            Some(""),
            "a directory has no version"
        );
        assert!(!v.contains_key("example.com/absent"));
    }

    #[test]
    fn semver_order() {
        assert!(semver_cmp("v0.41.0", "v0.13.0").is_gt());
        assert!(semver_cmp("v1.2.3", "v1.2.3-rc.1").is_gt());
        assert!(semver_cmp(
            "v0.0.0-20260819154853-08b0e4226688",
            "v0.0.0-20250101000000-aaaaaaaaaaaa"
        )
        .is_gt());
        assert!(semver_cmp("v1.10.0", "v1.9.9").is_gt());
        assert!(semver_cmp("v2.0.0+incompatible", "v2.0.0").is_eq());
    }

    #[test]
    fn user_requirements_raised_in_place() {
        let m = "module u\n\nrequire golang.org/x/text v0.13.0\nrequire (\n\tgolang.org/x/sys v0.50.0 // newer than ours\n\tgolang.org/x/net v0.1.0\n)\n";
        let mut raise = BTreeMap::new();
        raise.insert(
            "golang.org/x/text".to_owned(),
            ("v0.13.0".to_owned(), "v0.41.0".to_owned()),
        );
        raise.insert(
            "golang.org/x/net".to_owned(),
            ("v0.1.0".to_owned(), "v0.58.0".to_owned()),
        );
        assert_eq!(
            set_require_versions(m, &raise),
            "module u\n\nrequire golang.org/x/text v0.41.0\nrequire (\n\tgolang.org/x/sys v0.50.0 // newer than ours\n\tgolang.org/x/net v0.58.0\n)\n"
        );
    }

    #[test]
    fn requirements_parsed_in_both_forms() {
        let m = "module x\n\ngo 1.25.0\n\nrequire a.b/c v1.0.0\nrequire (\n\td.e/f v0.2.0 // indirect\n\t// comment\n)\n";
        assert_eq!(
            requirements(m),
            vec![
                ("a.b/c".into(), "v1.0.0".into()),
                ("d.e/f".into(), "v0.2.0".into())
            ]
        );
        assert_eq!(go_directive(m), Some("1.25.0"));
    }

    #[test]
    fn workfile_copy_uses_absolute_paths_and_the_runtime() {
        let dir = std::env::temp_dir().join(format!("gotap-workfile-test-{}", std::process::id()));
        let rt = dir.join("rt");
        std::fs::create_dir_all(&rt).unwrap();
        let work = "go 1.23\n\ntoolchain go1.23.4\n\nuse (\n\t./app // the service\n\t../lib\n)\nuse /abs/x\n\nreplace example.com/a v1.0.0 => ./fork/a\nreplace example.com/b => example.com/c v1.2.0\n";
        std::fs::write(dir.join("go.work"), work).unwrap();
        std::fs::write(dir.join("go.work.sum"), "u.dep v1 h1:x=\n").unwrap();
        std::fs::write(rt.join("go.mod"), "module gotap.dev/gotaprt\n\ngo 1.25.0\n").unwrap();
        std::fs::write(rt.join("go.sum"), "o.t/el v1.2.3 h1:y=\n").unwrap();
        let out = dir.join("tmp/go.work");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let (w, uses) = write_workfile(&dir.join("go.work"), &rt, &out).unwrap();
        assert!(w.unwrap().contains("raised from go 1.23"));
        let d = dir.display();
        let up = dir.parent().unwrap().display().to_string();
        assert_eq!(
            uses,
            vec![
                dir.join("app"),
                dir.parent().unwrap().join("lib"),
                PathBuf::from("/abs/x")
            ]
        );
        let got = std::fs::read_to_string(&out).unwrap();
        let want = format!(
            "go 1.25.0\ngodebug default=go1.23\n\n\nuse (\n\t\"{d}/app\"\n\t\"{up}/lib\"\n)\nuse \"/abs/x\"\n\nreplace example.com/a v1.0.0 => \"{d}/fork/a\"\nreplace example.com/b => example.com/c v1.2.0\n\n// Added by gotap build (temporary copy; the original go.work is untouched).\nuse \"{}\"\n",
            rt.display()
        );
        assert_eq!(got, want);
        assert_eq!(
            std::fs::read_to_string(dir.join("tmp/go.work.sum")).unwrap(),
            "o.t/el v1.2.3 h1:y=\nu.dep v1 h1:x=\n"
        );
        assert_eq!(std::fs::read_to_string(dir.join("go.work")).unwrap(), work);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn modfile_raises_go_line_and_merges_sums() {
        let dir = std::env::temp_dir().join(format!("gotap-modfile-test-{}", std::process::id()));
        let rt = dir.join("rt");
        std::fs::create_dir_all(&rt).unwrap();
        std::fs::write(
            dir.join("go.mod"),
            "module u\n\ngo 1.22\n\ntoolchain go1.22.1\n",
        )
        .unwrap();
        std::fs::write(dir.join("go.sum"), "u.dep v1 h1:x=\n").unwrap();
        std::fs::write(
            rt.join("go.mod"),
            "module gotap.dev/gotaprt\n\ngo 1.25.0\n\nrequire o.t/el v1.2.3\n",
        )
        .unwrap();
        std::fs::write(rt.join("go.sum"), "o.t/el v1.2.3 h1:y=\n").unwrap();
        let out = dir.join("tmp/gotap.mod");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let rtm = RuntimeModule {
            version: "v0.1.0-rt0123456789abcdef".into(),
            env: Vec::new(),
            sums: "gotap.dev/gotaprt v0.1.0-rt0123456789abcdef h1:z=\n".into(),
        };
        let w = write_modfile(&dir.join("go.mod"), &rt, &rtm, &out)
            .unwrap()
            .unwrap();
        assert!(w.contains("go1.25.0 instead of go1.22"), "{w}");
        let m = std::fs::read_to_string(&out).unwrap();
        assert!(
            m.contains("\ngo 1.25.0\ngodebug default=go1.22\n") && !m.contains("toolchain"),
            "{m}"
        );
        assert!(
            m.contains("require gotap.dev/gotaprt v0.1.0-rt0123456789abcdef\n")
                && !m.contains("replace"),
            "{m}"
        );
        assert!(m.contains("require o.t/el v1.2.3 // indirect"), "{m}");
        let sum = std::fs::read_to_string(out.with_extension("sum")).unwrap();
        assert_eq!(
            sum,
            "gotap.dev/gotaprt v0.1.0-rt0123456789abcdef h1:z=\no.t/el v1.2.3 h1:y=\nu.dep v1 h1:x=\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("go.mod")).unwrap(),
            "module u\n\ngo 1.22\n\ntoolchain go1.22.1\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
