//! Test support shared by gotap's integration tests: real Go programs built with every supported
//! toolchain and build variant, cached under `target/gotap-testbins/` so a test run builds each
//! (program, toolchain, variant) once; child processes that end with the test; and the real
//! OpenTelemetry Collector ([`collector`]).
//!
//! Not for production code.
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod collector;

/// The Go toolchains every test runs against (see scripts/toolchains.sh, which installs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toolchain {
    Go119,
    Go126,
    Go127,
}

pub const ALL_TOOLCHAINS: [Toolchain; 3] = [Toolchain::Go119, Toolchain::Go126, Toolchain::Go127];

impl Toolchain {
    pub fn label(self) -> &'static str {
        match self {
            Toolchain::Go119 => "go1.19",
            Toolchain::Go126 => "go1.26",
            Toolchain::Go127 => "go1.27",
        }
    }

    /// Path of this toolchain's `go` command. Panics with the fix when it is not installed: a test
    /// that needs a toolchain must fail loudly, never skip.
    pub fn go(self) -> PathBuf {
        static CACHE: OnceLock<Mutex<HashMap<Toolchain, PathBuf>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(p) = cache.lock().unwrap().get(&self) {
            return p.clone();
        }
        let env_name = match self {
            Toolchain::Go119 => "GO119",
            Toolchain::Go126 => "GO126",
            Toolchain::Go127 => "GO127",
        };
        let path = match std::env::var_os(env_name) {
            Some(p) => PathBuf::from(p),
            None => match self {
                Toolchain::Go119 => PathBuf::from("/usr/lib/go-1.19/bin/go"),
                Toolchain::Go126 => which_go(),
                Toolchain::Go127 => {
                    let out = Command::new(which_go())
                        .args(["env", "GOROOT"])
                        .env("GOTOOLCHAIN", "go1.27.3")
                        .output()
                        .expect("run go env GOROOT");
                    let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    PathBuf::from(root).join("bin/go")
                }
            },
        };
        assert!(
            path.is_file(),
            "{} toolchain not found at {} — run scripts/toolchains.sh first",
            self.label(),
            path.display()
        );
        cache.lock().unwrap().insert(self, path.clone());
        path
    }

    /// `go version` of this toolchain, e.g. `go1.26.8`.
    pub fn version(self) -> String {
        let out = self
            .command()
            .arg("env")
            .arg("GOVERSION")
            .output()
            .expect("go env GOVERSION");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A `go` command with a hermetic-enough environment: no toolchain switching.
    pub fn command(self) -> Command {
        let mut c = Command::new(self.go());
        c.env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-modcacherw")
            .env_remove("GOROOT");
        c
    }
}

fn which_go() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("go");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("/usr/local/go/bin/go")
}

/// How a test binary is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Variant {
    /// `-ldflags=-s -w`: no symbol table, no DWARF.
    pub stripped: bool,
    /// `-buildmode=pie`.
    pub pie: bool,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant {
            stripped: false,
            pie: false,
        },
        Variant {
            stripped: true,
            pie: false,
        },
        Variant {
            stripped: false,
            pie: true,
        },
        Variant {
            stripped: true,
            pie: true,
        },
    ];
    pub fn label(self) -> String {
        format!(
            "{}-{}",
            if self.stripped { "stripped" } else { "full" },
            if self.pie { "pie" } else { "exe" }
        )
    }
}

/// Repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Where cached test binaries go.
pub fn bin_dir() -> PathBuf {
    let d = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("gotap-testbins");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Builds `go/<module_dir>` package `pkg` (e.g. `./cmd/hello`) with `tc` and `variant`, once per
/// test process and again only when Go's own cache says something changed (go build is fast when
/// nothing did). Returns the executable's path. Panics with Go's stderr on failure.
pub fn build(module_dir: &str, pkg: &str, tc: Toolchain, variant: Variant) -> PathBuf {
    build_with(module_dir, pkg, tc, variant, &[], &[])
}

/// [`build`] with extra `go build` flags and environment (e.g. `CGO_ENABLED=1`).
pub fn build_with(
    module_dir: &str,
    pkg: &str,
    tc: Toolchain,
    variant: Variant,
    flags: &[&str],
    env: &[(&str, &str)],
) -> PathBuf {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<bool>>>>> = OnceLock::new();
    let name = format!(
        "{}-{}-{}-{}{}",
        module_dir.replace('/', "_"),
        pkg.trim_start_matches("./").replace('/', "_"),
        tc.label(),
        variant.label(),
        if flags.is_empty() && env.is_empty() {
            String::new()
        } else {
            format!("-{:x}", fnv(&format!("{flags:?}{env:?}")))
        }
    );
    let out = bin_dir().join(&name);
    let lock = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(out.clone())
        .or_default()
        .clone();
    let mut built = lock.lock().unwrap();
    if *built {
        return out;
    }
    let src = repo_root().join("go").join(module_dir);
    // Not with_extension: the name contains `go1.26`, whose `.26-…` would be taken as the
    // extension, giving every variant of a toolchain the same temporary file.
    let tmp = out.with_file_name(format!("{name}.tmp{}", std::process::id()));
    let mut cmd = tc.command();
    cmd.current_dir(&src).arg("build").arg("-o").arg(&tmp);
    if variant.pie {
        cmd.arg("-buildmode=pie");
    }
    if variant.stripped {
        cmd.arg("-ldflags=-s -w");
    }
    cmd.args(flags).arg(pkg);
    if !env.iter().any(|(k, _)| *k == "CGO_ENABLED") {
        // Deterministic default: pure Go unless a test asks for cgo. PIE needs an external linker
        // only with cgo, so this also keeps PIE builds free of a C toolchain.
        cmd.env("CGO_ENABLED", "0");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let res = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tc.go().display()));
    assert!(
        res.status.success(),
        "building go/{module_dir} {pkg} with {} ({}) failed:\n{}",
        tc.label(),
        variant.label(),
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    *built = true;
    out
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Runs `build` (which writes `out`) once per test process and one build at a time; later
/// callers for the same `out` wait for it and reuse the file. A second build of a binary that
/// another test is running would touch or replace it, and gotap rightly refuses to attach to an
/// executable that changes while it analyses it ("the executable ... changed"). A build that
/// panics is not recorded, so the next caller tries again.
pub fn build_once(out: &Path, build: impl FnOnce()) {
    static BUILT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|p| p == out) {
        return;
    }
    build();
    built.push(out.to_path_buf());
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    try_free_port().expect("no free TCP port on 127.0.0.1")
}

/// A TCP port that was free on 127.0.0.1 a moment ago, taken below the kernel's ephemeral range.
///
/// Why not bind port 0: that hands out an ephemeral port, and between our release and the child's
/// bind any outgoing connection on the host (load generators, exporters) may take the same port as
/// its source port; the child then fails with "address already in use". Ports below the ephemeral
/// range are only ever taken by an explicit bind. Each process walks them from its own random
/// start, so concurrent tests and arena runs do not hand out the same port either.
pub fn try_free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    const LOW: u32 = 10_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .min(65_535);
    if high < LOW + 1_000 {
        // An unusual ephemeral range leaves no room below it: fall back to the kernel's choice.
        return Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port());
    }
    let span = high - LOW;
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seed = (std::process::id().wrapping_mul(7_919) ^ nanos) % span;
        let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let port = LOW + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return Ok(port as u16);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "every port below the ephemeral range is taken",
    ))
}

/// A child process that is killed and reaped when the guard drops, so a failing test leaves
/// nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Copies `src` to `dst` (mode kept) with an external `cp`, for executables a test has just
/// written or patched in this process. Written here, the file's write descriptor would be inherited
/// by any child another test thread forks at that moment and held until that child execs, and an
/// exec of the file meanwhile fails with ETXTBSY ("Text file busy"). `cp` is a process of its
/// own: nobody else can inherit its descriptor, and it has closed it when it exits.
pub fn install_exe(src: &Path, dst: &Path) {
    let _ = std::fs::remove_file(dst);
    let st = Command::new("cp")
        .arg("-p")
        .arg(src)
        .arg(dst)
        .status()
        .expect("cannot run cp");
    assert!(
        st.success(),
        "cp {} {} failed",
        src.display(),
        dst.display()
    );
}

/// Whether a process listens on 127.0.0.1:`port`. A connect to a port nobody listens on can
/// succeed by connecting to itself (TCP simultaneous open, when the kernel picks the same port as
/// the source): free ports come from the ephemeral range, so a wait loop of many connects must
/// reject that case or it reports "ready" before the server is up.
pub fn listening(port: u16) -> bool {
    match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s.local_addr().is_ok_and(|a| a.port() != port),
        Err(_) => false,
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`; panics after 30 s, naming
/// `what`.
pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !listening(port) {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// eBPF tests need root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN for uprobes). Fail, never skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test attaches eBPF uprobes and must run as root (euid is {euid})"
    );
}

/// Path of the `gotap` binary built by cargo for integration tests of the CLI crate; other crates
/// build it with `cargo build -p gotap-cli` first (scripts/test.sh does).
pub fn gotap_bin() -> PathBuf {
    let p = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join(if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        })
        .join("gotap");
    assert!(
        p.is_file(),
        "{} not built — run `cargo build -p gotap-cli`",
        p.display()
    );
    p
}

/// `gotap` ([`gotap_bin`]) set up for a test's `gotap build`: `tc` as the Go toolchain
/// (`GOTAP_GO`), no toolchain switching, a module cache the test may delete, and no rules file
/// from the developer's environment (`GOTAP_WEAVE_CONFIG`).
pub fn gotap_command(tc: Toolchain) -> Command {
    let mut c = Command::new(gotap_bin());
    c.env("GOTAP_GO", tc.go())
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .env_remove("GOTAP_WEAVE_CONFIG");
    c
}

/// Woven builds recompile the standard library: one at a time on a small machine.
static WOVEN_BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `gotap build -o <bin_dir>/<name> .` of the Go module in `dir` with `tc`, once per test
/// process ([`build_once`]) and one woven build at a time; panics with gotap's stderr on failure.
pub fn gotap_build_once(dir: &Path, tc: Toolchain, name: &str) -> PathBuf {
    let out = bin_dir().join(name);
    build_once(&out, || {
        let _guard = WOVEN_BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let res = gotap_command(tc)
            .current_dir(dir)
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .output()
            .expect("run gotap build");
        assert!(
            res.status.success(),
            "gotap build of {} with {} failed:\n{}",
            dir.display(),
            tc.label(),
            String::from_utf8_lossy(&res.stderr)
        );
    });
    out
}

/// A throwaway PostgreSQL cluster (scripts/postgres.sh), stopped and deleted on drop.
pub struct Postgres {
    /// `postgres://…` DSN of its database.
    pub dsn: String,
    data_dir: String,
}

impl Postgres {
    /// Starts one; panics with the script's stderr if it cannot.
    pub fn start() -> Postgres {
        let res = Command::new(repo_root().join("scripts/postgres.sh"))
            .arg("start")
            .output()
            .expect("run scripts/postgres.sh");
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(
            res.status.success(),
            "scripts/postgres.sh start failed: {stderr}"
        );
        let data_dir = stderr
            .lines()
            .find_map(|l| l.strip_prefix("postgres: data dir "))
            .and_then(|l| l.split_whitespace().next())
            .expect("scripts/postgres.sh names its data dir")
            .to_owned();
        Postgres {
            dsn: String::from_utf8(res.stdout).unwrap().trim().to_owned(),
            data_dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/postgres.sh"))
            .args(["stop", &self.data_dir])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut uniq = ports.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), ports.len(), "{ports:?}");
        for p in ports {
            assert!((10_000..low).contains(&p), "{p} not below {low}");
            std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
