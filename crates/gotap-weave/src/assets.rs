//! Embedded sources, extracted once per content hash into gotap's cache directory.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// gotap's cache: `$GOTAP_CACHE`, else `$XDG_CACHE_HOME/gotap`, else `~/.cache/gotap`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GOTAP_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("gotap");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/gotap")
}

pub(crate) fn fnv(data: &[&[u8]]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for d in data {
        for b in d.iter().chain(&[0xffu8]) {
            h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Names the extraction directory; content identity only (the cache key proper is a SHA-256
/// computed by the weaver, see [`crate::plan`]).
pub fn sources_id() -> String {
    let mut parts: Vec<&[u8]> = Vec::new();
    for (p, c) in FILES {
        parts.push(p.as_bytes());
        parts.push(c);
    }
    format!("{:016x}", fnv(&parts))
}

/// The extracted tree: `<root>/go/gotaprt`, `<root>/go/weaver`, `<root>/go/probes`, `<root>/rules`.
/// build.rs assembles it from the repository's generic parts (go/gotaprt, go/weaver,
/// go/probes/shared, rules/main.yaml) and the folders of instrumentations/registry.txt: a
/// library's `weave/rules.yaml` is `rules/<name>.yaml`, `weave/probes.yaml`
/// `rules/<name>_probes.yaml`, `probes/` `go/probes/<name>/`, and `runtime/*.go` files of package
/// gotaprt in `go/gotaprt/`.
pub struct Extracted {
    pub root: PathBuf,
}

impl Extracted {
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join("go/gotaprt")
    }
    pub fn weaver_src(&self) -> PathBuf {
        self.root.join("go/weaver")
    }
    /// Built-in rules files, sorted: the probe-mode ones (`rules/*_probes.yaml`, which add USDT
    /// sites and no runtime) or the SDK-mode ones (all others). The two sets join the same
    /// functions, so they are never used together.
    pub fn builtin_rules(&self, probes: bool) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = FILES
            .iter()
            .filter(|(p, _)| p.starts_with("rules/") && p.ends_with("_probes.yaml") == probes)
            .map(|(p, _)| self.root.join(p))
            .collect();
        v.sort();
        v
    }
}

/// Extracts the embedded files (once: the directory name is their hash, written atomically).
pub fn extract() -> Result<Extracted> {
    let cache = cache_dir();
    let root = cache.join(format!("src-{}", sources_id()));
    if root.join(".complete").is_file() {
        return Ok(Extracted { root });
    }
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create gotap's cache directory {}", cache.display()))?;
    // Unique per call: test threads of one process extract at the same time, and a shared
    // temporary directory would be renamed into place half-written.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cache.join(format!(
        ".src-{}-{}-{seq}",
        sources_id(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, content) in FILES {
        let p = tmp.join(rel);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::write(&p, content).with_context(|| format!("cannot write {}", p.display()))?;
    }
    std::fs::write(tmp.join(".complete"), b"")?;
    if std::fs::rename(&tmp, &root).is_err() {
        // Another gotap process won the race; its copy is identical.
        let _ = std::fs::remove_dir_all(&tmp);
        if !root.join(".complete").is_file() {
            bail!("cannot extract gotap's sources into {}", root.display());
        }
    }
    Ok(Extracted { root })
}

/// Go version of a toolchain: the first line of `$GOROOT/VERSION` (no process spawned).
pub fn goroot_version(goroot: &Path) -> Option<String> {
    let v = std::fs::read_to_string(goroot.join("VERSION")).ok()?;
    let first = v.lines().next()?.trim().to_owned();
    first.starts_with("go").then_some(first)
}

/// The weaver built with toolchain `go` (version `gover`), cached per sources and toolchain.
pub fn weaver(ex: &Extracted, go: &Path, gover: &str) -> Result<PathBuf> {
    let bin = cache_dir().join(format!("weaver-{}-{gover}", sources_id()));
    if bin.is_file() {
        return Ok(bin);
    }
    // Unique per call: threads of one process (tests) may build it at the same time.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = bin.with_extension(format!("tmp{}-{seq}", std::process::id()));
    // No -trimpath: with the go command's default flags the standard-library packages the weaver
    // needs come from the user's build cache when plain builds put them there (≈ 15 s of CPU
    // less on a first `gotap build` here); -trimpath would key them apart and compile them again.
    let out = crate::interrupt::output(
        Command::new(go)
            .current_dir(ex.weaver_src())
            .args(["build", "-o"])
            .arg(&tmp)
            .arg(".")
            // A clean, ordinary build: never through gotap, never the user's flags or workspace.
            .env("GOFLAGS", "-mod=readonly")
            .env("GOWORK", "off")
            .env("CGO_ENABLED", "0")
            .env_remove("GOOS")
            .env_remove("GOARCH")
            .env_remove("GOTAP_WEAVE_CONFIG"),
    )
    .with_context(|| format!("cannot run {}", go.display()))?;
    if !out.status.success() {
        bail!(
            "cannot build gotap's weaver with {}: {}",
            go.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(&tmp, &bin)?;
    Ok(bin)
}
