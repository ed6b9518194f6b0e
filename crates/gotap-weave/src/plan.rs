//! The weaving plan: rules in force for one toolchain, and the cache key for woven objects.
use crate::assets::{self, Extracted};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Probe mode (`gotap build --probes`): USDT sites instead of the runtime; `gotap toolexec`
    /// also adds the USDT notes to every linked executable.
    #[serde(default)]
    pub probes: bool,
    /// Modules whose version some rule constrains (`join.module` + `join.version`).
    #[serde(default)]
    pub modules: Vec<String>,
    /// Versions of [`Plan::modules`] in this build, from `go list -m` (set by
    /// [`Plan::resolve_modules`]; "" = in the build, version unknown). Empty in a plan made by
    /// `gotap toolexec` alone: it then reads the version from the module cache path of the files.
    #[serde(default)]
    pub module_versions: BTreeMap<String, String>,
    #[serde(default)]
    pub modules_resolved: bool,
}

/// Rules left out because their module's version is outside all their ranges (one report per
/// rules file and module; `gotap build` prints it once).
#[derive(Debug, Clone, Deserialize)]
pub struct Skipped {
    /// The rules, comma-separated.
    pub rule: String,
    pub module: String,
    pub version: String,
    pub message: String,
}

pub const CONFIG_ENV: &str = "GOTAP_WEAVE_CONFIG";

#[derive(Deserialize)]
struct WeaverPlan {
    hash: String,
    packages: Vec<String>,
    #[serde(default)]
    modules: Vec<String>,
    #[serde(default)]
    skipped: Vec<Skipped>,
}

impl Plan {
    /// Validates the rules (built-in + `extra`) with the weaver built for toolchain `go`. In probe
    /// mode the built-in rules are the probe ones and the runtime is not part of the build.
    pub fn new(
        ex: &Extracted,
        go: &Path,
        go_version: &str,
        extra: &[PathBuf],
        best_effort: bool,
        probes: bool,
    ) -> Result<Plan> {
        let weaver = assets::weaver(ex, go, go_version)?;
        let mut rules = ex.builtin_rules(probes);
        for r in extra {
            let abs = std::fs::canonicalize(r)
                .with_context(|| format!("cannot read rules file {}", r.display()))?;
            rules.push(abs);
        }
        let mut plan = Plan {
            weaver,
            rules,
            go_version: go_version.to_owned(),
            hash: String::new(),
            packages: Vec::new(),
            best_effort,
            runtime_dir: ex.runtime_dir(),
            overlay: Default::default(),
            probes,
            modules: Vec::new(),
            module_versions: BTreeMap::new(),
            modules_resolved: false,
        };
        let wp = plan.run_weaver_plan()?;
        plan.hash = wp.hash;
        plan.packages = wp.packages;
        plan.modules = wp.modules;
        Ok(plan)
    }

    fn run_weaver_plan(&self) -> Result<WeaverPlan> {
        // The salt names gotap's version and every embedded source (the weaver's code included:
        // a changed rewrite is a changed object even when the rules are the same).
        let salt = format!("{}+{}", crate::VERSION, assets::sources_id());
        let mut cmd = Command::new(&self.weaver);
        cmd.arg("plan").args(["-go", &self.go_version]);
        if self.probes {
            cmd.args(["-salt", &format!("{salt}+probes")]);
        } else {
            cmd.args(["-salt", &salt, "-runtime"])
                .arg(&self.runtime_dir);
        }
        if self.modules_resolved {
            cmd.arg("-modules-resolved");
            for (m, v) in &self.module_versions {
                cmd.arg(format!("-modver={m}={v}"));
            }
        }
        let out = crate::interrupt::output(cmd.args(&self.rules))
            .with_context(|| format!("cannot run {}", self.weaver.display()))?;
        if !out.status.success() {
            bail!(
                "invalid rules: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("unexpected output from gotap's weaver")
    }

    /// Records the versions of [`Plan::modules`] in this build (modules absent from `versions`
    /// are not in the build) and drops the packages of rules whose range they miss; returns
    /// those rules, each once, for `gotap build` to report.
    pub fn resolve_modules(&mut self, versions: BTreeMap<String, String>) -> Result<Vec<Skipped>> {
        self.module_versions = versions;
        self.modules_resolved = true;
        let wp = self.run_weaver_plan()?;
        self.packages = wp.packages;
        Ok(wp.skipped)
    }

    /// The marker added to `compile -V=full` (and, in probe mode, `link -V=full`): different
    /// rules, runtime, fragments or mode, different cache keys.
    pub fn tool_id_suffix(&self) -> String {
        let mode = if self.probes { "gotap-probes" } else { "gotap" };
        format!("{mode}@{}+{}", crate::VERSION, self.hash)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Plan> {
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read gotap's build plan {}", path.display()))?;
        serde_json::from_slice(&data)
            .with_context(|| format!("{} is not a gotap build plan", path.display()))
    }
}
