//! Embeds the Go sources gotap needs at build time (the injected runtime go/gotaprt, the source
//! rewriter go/weaver, the probe-site fragments) and the built-in rules, so one `gotap` binary is
//! self-contained.
//!
//! The libraries of instrumentations/registry.txt join in here (docs/architecture.md): each
//! folder's `weave/rules.yaml` becomes `rules/<name>.yaml` of the extracted tree,
//! `weave/probes.yaml` becomes `rules/<name>_probes.yaml` (any other `weave/<x>.yaml`,
//! `rules/<name>_<x>.yaml`), `probes/` becomes `go/probes/<name>/` and the files of `runtime/`
//! join package gotaprt in `go/gotaprt/`. The extracted tree is then the one the weaver and
//! [`assets`](src/assets.rs) have always read: a folder not in the registry is not built in.
//!
//! The rules' `add-files` paths are relative to the rules file. They are written for the
//! repository's layout (`../probes/x.go`, `../../../go/probes/shared/y.go`), so the rules work
//! from the repository as they are (the weaver tests use them there); the embedded copy has them
//! rewritten for the extracted layout. A path naming a file that is not embedded fails the build.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// Embedded file extensions (test files never are: `_test.go`).
fn embedded(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("go" | "s" | "mod" | "sum" | "yaml")
    ) && !p.to_string_lossy().ends_with("_test.go")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if embedded(&p) {
            out.push(p);
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

/// The registry's folder names, in order (same format as crates/gotap-ebpf/build.rs reads).
fn registry(repo: &Path) -> Vec<String> {
    let path = repo.join("instrumentations/registry.txt");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            if !l
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                fail(&format!(
                    "{}: `{l}` is not a folder name of lowercase letters and digits",
                    path.display()
                ));
            }
            l.to_owned()
        })
        .collect()
}

/// `p` with `.` and `..` resolved lexically (`p` is relative to the repository).
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(s) => out.push(s),
            _ => return None,
        }
    }
    Some(out)
}

fn rel_string(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// `text` (a rules file at `repo_rel` in the repository, `extracted_rel` once extracted) with each
/// `add-files` entry rewritten from the repository's layout to the extracted one.
fn rewrite_rules(
    text: &str,
    repo_rel: &Path,
    extracted_rel: &Path,
    map: &BTreeMap<PathBuf, PathBuf>,
) -> String {
    let ups = extracted_rel.components().count() - 1;
    let mut out = String::with_capacity(text.len());
    let mut list_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        let indent = body.len() - trimmed.len();
        if let Some(at) = list_indent {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                out.push_str(line);
                continue;
            }
            if let (Some(item), true) = (trimmed.strip_prefix("- "), indent >= at) {
                let item = item.trim().trim_matches('"');
                let from = repo_rel.parent().unwrap().join(item);
                let target = normalize(&from).and_then(|f| map.get(&f).cloned()).unwrap_or_else(|| {
                    fail(&format!(
                        "{}: add-files entry `{item}` names {}, which gotap does not embed (a registry folder's probes/ or runtime/, or go/)",
                        rel_string(repo_rel),
                        rel_string(&from)
                    ))
                });
                let new = format!("{}{}", "../".repeat(ups), rel_string(&target));
                out.push_str(&body[..indent]);
                out.push_str("- ");
                out.push_str(&new);
                out.push_str(&line[body.len()..]);
                continue;
            }
            list_indent = None;
        }
        if trimmed == "add-files:" {
            list_indent = Some(indent);
        }
        out.push_str(line);
    }
    out
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    // Repository path → extracted path, for every embedded file.
    let mut map: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let add = |map: &mut BTreeMap<PathBuf, PathBuf>, from: PathBuf, to: PathBuf| {
        if let Some((other, _)) = map.iter().find(|(_, t)| **t == to) {
            fail(&format!(
                "{} and {} would both be embedded as {}",
                rel_string(other),
                rel_string(&from),
                rel_string(&to)
            ));
        }
        map.insert(from, to);
    };
    for sub in ["go/gotaprt", "go/weaver", "go/probes", "rules"] {
        let dir = repo.join(sub);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        collect(&dir, &mut files);
        for f in files {
            let rel = f.strip_prefix(&repo).unwrap().to_path_buf();
            add(&mut map, rel.clone(), rel);
        }
    }
    for name in registry(&repo) {
        let lib = repo.join("instrumentations").join(&name);
        if !lib.is_dir() {
            fail(&format!(
                "instrumentations/registry.txt names `{name}`, but {} is not a folder",
                lib.display()
            ));
        }
        println!("cargo:rerun-if-changed={}", lib.display());
        for (sub, dest) in [
            ("probes", PathBuf::from("go/probes").join(&name)),
            ("runtime", PathBuf::from("go/gotaprt")),
        ] {
            let dir = lib.join(sub);
            println!("cargo:rerun-if-changed={}", dir.display());
            if !dir.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            collect(&dir, &mut files);
            for f in files {
                let inner = f.strip_prefix(&dir).unwrap();
                add(
                    &mut map,
                    f.strip_prefix(&repo).unwrap().to_path_buf(),
                    dest.join(inner),
                );
            }
        }
        let weave = lib.join("weave");
        println!("cargo:rerun-if-changed={}", weave.display());
        if weave.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&weave)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
                .collect();
            entries.sort();
            for f in entries {
                let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
                let file = match stem.as_str() {
                    "rules" => format!("{name}.yaml"),
                    other => format!("{name}_{other}.yaml"),
                };
                add(
                    &mut map,
                    f.strip_prefix(&repo).unwrap().to_path_buf(),
                    PathBuf::from("rules").join(file),
                );
            }
        }
    }

    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    let mut entries: Vec<(&PathBuf, &PathBuf)> = map.iter().collect();
    entries.sort_by(|a, b| a.1.cmp(b.1));
    for (from, to) in entries {
        let src = repo.join(from);
        println!("cargo:rerun-if-changed={}", src.display());
        let included = if to.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let text = std::fs::read_to_string(&src)
                .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", src.display())));
            let text = rewrite_rules(&text, from, to, &map);
            let dst = out_dir.join("embedded").join(to);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if std::fs::read_to_string(&dst).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&dst, text).unwrap();
            }
            dst
        } else {
            src
        };
        writeln!(
            code,
            "    ({:?}, include_bytes!({:?})),",
            rel_string(to),
            included.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("embedded.rs"), code).unwrap();
}
