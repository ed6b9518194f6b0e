//! The weaving plan: rules in force for one toolchain, and the cache key for woven objects.
use crate::assets::{self, Extracted};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything `gotap toolexec` needs, passed from `gotap build` through a JSON file named by
/// `GOTAP_WEAVE_CONFIG` (so concurrent tool runs read it instead of recomputing it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub weaver: PathBuf,
    pub rules: Vec<PathBuf>,
    /// Toolchain version the rules were filtered for (`go1.26.8`).
    pub go_version: String,
    /// SHA-256 (truncated) of gotap's version, the rules and the runtime sources.
    pub hash: String,
    /// Import paths some rule targets.
    pub packages: Vec<String>,
    pub best_effort: bool,
    pub runtime_dir: PathBuf,
    /// Files `gotap build` adds through `-overlay` (package dir path → real file). Tools that do
    /// not read overlays themselves (`cover`) are given the real file.
    #[serde(default)]
    pub overlay: std::collections::BTreeMap<PathBuf, PathBuf>,
}

pub const CONFIG_ENV: &str = "GOTAP_WEAVE_CONFIG";

#[derive(Deserialize)]
struct WeaverPlan {
    hash: String,
    packages: Vec<String>,
}

impl Plan {
    /// Validates the rules (built-in + `extra`) with the weaver built for toolchain `go`.
    pub fn new(ex: &Extracted, go: &Path, go_version: &str, extra: &[PathBuf], best_effort: bool) -> Result<Plan> {
        let weaver = assets::weaver(ex, go, go_version)?;
        let mut rules = ex.builtin_rules();
        for r in extra {
            let abs = std::fs::canonicalize(r).with_context(|| format!("cannot read rules file {}", r.display()))?;
            rules.push(abs);
        }
        let out = Command::new(&weaver)
            .arg("plan")
            .args(["-go", go_version, "-salt", crate::VERSION, "-runtime"])
            .arg(ex.runtime_dir())
            .args(&rules)
            .output()
            .with_context(|| format!("cannot run {}", weaver.display()))?;
        if !out.status.success() {
            bail!("invalid rules: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let wp: WeaverPlan = serde_json::from_slice(&out.stdout).context("unexpected output from gotap's weaver")?;
        Ok(Plan {
            weaver,
            rules,
            go_version: go_version.to_owned(),
            hash: wp.hash,
            packages: wp.packages,
            best_effort,
            runtime_dir: ex.runtime_dir(),
            overlay: Default::default(),
        })
    }

    /// The marker added to `compile -V=full`: different rules or runtime, different cache keys.
    pub fn tool_id_suffix(&self) -> String {
        format!("gotap@{}+{}", crate::VERSION, self.hash)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Plan> {
        let data = std::fs::read(path).with_context(|| format!("cannot read gotap's build plan {}", path.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("{} is not a gotap build plan", path.display()))
    }
}
