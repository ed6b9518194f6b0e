//! The peers: other zero-code strategies, installed the way their users would (`go install` from
//! the Go module proxy). Each gets a row saying whether it installed and, if not, why. Running them
//! against the arena is not wired yet; the row says so.
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub kind: String,
    pub install: String,
    /// "installed", "not installable", "not attempted".
    pub status: String,
    pub detail: String,
    /// Version the installed binary reports, if any.
    pub version: Option<String>,
    pub install_secs: Option<f64>,
}

/// (name, strategy kind, `go install` argument, binary name, version argument).
pub const PEERS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "OpenTelemetry Go auto-instrumentation",
        "eBPF agent",
        "go.opentelemetry.io/auto/cli@latest",
        "cli",
        "--version",
    ),
    (
        "otelc",
        "compile-time",
        "go.opentelemetry.io/otelc/tool/cmd/otelc@latest",
        "otelc",
        "version",
    ),
    (
        "DataDog Orchestrion",
        "compile-time",
        "github.com/DataDog/orchestrion@latest",
        "orchestrion",
        "version",
    ),
];

const NOT_RUN: &str = "not yet run against the arena services";

/// Installs every peer into `dir/bin` (results cached in `dir/<binary>.json`; delete to retry).
/// With `attempt` false, only cached results are reported.
pub fn check(go: &Path, dir: &Path, attempt: bool, timeout: Duration) -> Vec<Peer> {
    let bin_dir = dir.join("bin");
    let _ = std::fs::create_dir_all(&bin_dir);
    let proxy = proxy_only(go);
    PEERS
        .iter()
        .map(|&(name, kind, install, bin, version_arg)| {
            let cache = dir.join(format!("{bin}.json"));
            // A cached result is what was installed, with the command that did it; an install run
            // retries one whose command changed since (e.g. a newly pinned version).
            if let Some(p) = std::fs::read(&cache)
                .ok()
                .and_then(|b| serde_json::from_slice::<Peer>(&b).ok())
            {
                if !attempt || p.install == format!("go install {install}") {
                    return p;
                }
            }
            let mut peer = Peer {
                name: name.into(),
                kind: kind.into(),
                install: format!("go install {install}"),
                status: "not attempted".into(),
                detail: "installs are tried by a full run (without --quick); none is cached yet"
                    .into(),
                version: None,
                install_secs: None,
            };
            if !attempt {
                return peer;
            }
            let t = Instant::now();
            let mut cmd = Command::new(go);
            cmd.args(["install", install])
                .env("GOBIN", &bin_dir)
                .env("GOTOOLCHAIN", "local")
                .env("GOFLAGS", "-modcacherw");
            if let Some(p) = &proxy {
                cmd.env("GOPROXY", p);
            }
            let out = run_with_timeout(&mut cmd, timeout);
            peer.install_secs = Some(t.elapsed().as_secs_f64());
            match out {
                Ok(()) => {
                    peer.status = "installed".into();
                    peer.version = Command::new(bin_dir.join(bin))
                        .arg(version_arg)
                        .output()
                        .ok()
                        .map(|o| {
                            String::from_utf8_lossy(&o.stdout)
                                .lines()
                                .next()
                                .unwrap_or("")
                                .trim()
                                .to_owned()
                        })
                        .filter(|v| !v.is_empty());
                    peer.detail = NOT_RUN.into();
                }
                Err(why) => {
                    peer.status = "not installable".into();
                    peer.detail = why;
                }
            }
            if let Ok(j) = serde_json::to_vec_pretty(&peer) {
                let _ = std::fs::write(&cache, j);
            }
            peer
        })
        .collect()
}

/// The configured GOPROXY without `direct`: a peer counts as installable only if the module proxy
/// serves it (fetching from a VCS would bypass what users' `go install` normally goes through).
fn proxy_only(go: &Path) -> Option<String> {
    let o = Command::new(go)
        .args(["env", "GOPROXY"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&o.stdout);
    let kept: Vec<&str> = v
        .trim()
        .split([',', '|'])
        .filter(|p| !p.is_empty() && *p != "direct" && *p != "off")
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// Runs `cmd`, killing it after `timeout`. Err holds the reason in one line.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<(), String> {
    let tmp = tempfile_path();
    let log = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run go: {e}"))?;
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(st);
        }
        if t.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = std::fs::read_to_string(&tmp).unwrap_or_default();
    let _ = std::fs::remove_file(&tmp);
    match status {
        Some(st) if st.success() => Ok(()),
        Some(_) => Err(summarize_go_error(&err)),
        None => Err(format!(
            "go install did not finish within {}s",
            timeout.as_secs()
        )),
    }
}

fn tempfile_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "gotap-bench-peer-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `go install` errors span several lines; keep the sentence that says why, without download noise.
fn summarize_go_error(err: &str) -> String {
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("go: downloading") && !l.trim().is_empty())
        .collect();
    let joined = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    let mut s = joined.chars().take(300).collect::<String>();
    if s.is_empty() {
        s = "go install failed without output".into();
    }
    // Go's wording when the proxy has no such module but serves a parent path.
    if s.contains("@latest found (") && s.contains("but does not contain package") {
        s = format!("the module proxy does not serve this module (only a parent path): {s}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_error_summary_drops_download_noise() {
        let e = "go: downloading go.opentelemetry.io/auto v0.24.0\ngo: go.opentelemetry.io/auto/cli@latest (in go.opentelemetry.io/auto@v0.24.0):\n\tThe go.mod file for the module providing named packages contains one or\n\tmore replace directives.\n";
        let s = summarize_go_error(e);
        assert!(
            s.starts_with("go: go.opentelemetry.io/auto/cli@latest"),
            "{s}"
        );
        assert!(s.contains("replace directives"));
        assert!(!s.contains("downloading"));
        let e = "go: go.opentelemetry.io/otelc/tool/cmd/otelc@latest: module go.opentelemetry.io@latest found (v0.1.0), but does not contain package go.opentelemetry.io/otelc/tool/cmd/otelc\n";
        assert!(summarize_go_error(e).starts_with("the module proxy does not serve this module"));
    }
}
