//! The extracted tree build.rs assembles from the generic parts and the folders of
//! instrumentations/registry.txt (docs/architecture.md): every registry library's weaving rules,
//! probe-site fragments and runtime hooks are where the weaver and `gotap build` look for them,
//! every `add-files` path of the embedded rules names an embedded file, and the assembled runtime
//! module gotap.dev/gotaprt compiles as the one package it is.
use gotap_testkit::{repo_root, Toolchain};
use gotap_weave::assets;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn registry() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("instrumentations/registry.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One extraction for the whole file, in a cache of its own (never the user's).
fn extracted() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cache = std::env::temp_dir().join(format!("gotap-layout-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        std::env::set_var("GOTAP_CACHE", &cache);
        assets::extract().unwrap().root
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn registry_folders_land_where_the_weaver_reads_them() {
    let root = extracted();
    let libs = registry();
    assert!(libs.iter().any(|l| l == "nethttp"), "{libs:?}");
    for lib in &libs {
        let dir = repo_root().join("instrumentations").join(lib);
        for (src, dst) in [
            ("weave/rules.yaml", format!("rules/{lib}.yaml")),
            ("weave/probes.yaml", format!("rules/{lib}_probes.yaml")),
        ] {
            if dir.join(src).is_file() {
                assert!(
                    root.join(&dst).is_file(),
                    "{lib}/{src} is not extracted as {dst}"
                );
            }
        }
        for (sub, dst) in [
            ("probes", format!("go/probes/{lib}")),
            ("runtime", "go/gotaprt".into()),
        ] {
            if !dir.join(sub).is_dir() {
                continue;
            }
            for f in files_under(&dir.join(sub)) {
                let name = f.to_string_lossy();
                if !(name.ends_with(".go") || name.ends_with(".s")) || name.ends_with("_test.go") {
                    continue;
                }
                let rel = f.strip_prefix(dir.join(sub)).unwrap();
                let got = root.join(&dst).join(rel);
                assert_eq!(
                    std::fs::read(&got).ok().as_deref(),
                    Some(std::fs::read(&f).unwrap().as_slice()),
                    "{} is not extracted as {}",
                    f.display(),
                    got.display()
                );
            }
        }
    }
    // The generic parts stay generic, and nothing of the repository's layout leaks into the tree.
    assert!(root.join("rules/main.yaml").is_file());
    assert!(root.join("go/probes/shared/gotap_batch.go").is_file());
    assert!(root.join("go/probes/shared/gotap_trace.go").is_file());
    assert!(!root.join("instrumentations").exists());
    let rules = assets::Extracted {
        root: root.to_path_buf(),
    };
    let sdk: Vec<String> = rules
        .builtin_rules(false)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let probes: Vec<String> = rules
        .builtin_rules(true)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for lib in &libs {
        assert!(sdk.contains(&format!("{lib}.yaml")), "{lib}: {sdk:?}");
        assert!(
            probes.contains(&format!("{lib}_probes.yaml")),
            "{lib}: {probes:?}"
        );
    }
    assert!(sdk.contains(&"main.yaml".to_owned()));
}

/// Each `add-files` entry of the embedded rules, rewritten by build.rs for the extracted layout,
/// names the same file as the repository's rules do from theirs.
#[test]
fn embedded_add_files_resolve_in_the_extracted_tree() {
    let root = extracted();
    let mut seen = 0;
    for lib in registry() {
        for (src, dst) in [
            ("weave/rules.yaml", format!("rules/{lib}.yaml")),
            ("weave/probes.yaml", format!("rules/{lib}_probes.yaml")),
        ] {
            let repo_rules = repo_root().join("instrumentations").join(&lib).join(src);
            if !repo_rules.is_file() {
                continue;
            }
            let entries = |text: &str| -> Vec<String> {
                let mut v = Vec::new();
                let mut inside: Option<usize> = None;
                for l in text.lines() {
                    let t = l.trim_start();
                    let indent = l.len() - t.len();
                    if t.trim_end() == "add-files:" {
                        inside = Some(indent);
                    } else if let (Some(at), Some(item)) = (inside, t.strip_prefix("- ")) {
                        if indent >= at {
                            v.push(item.trim().to_owned());
                        } else {
                            inside = None;
                        }
                    } else if !t.is_empty() && !t.starts_with('#') {
                        inside = None;
                    }
                }
                v
            };
            let theirs = entries(&std::fs::read_to_string(&repo_rules).unwrap());
            let ours = entries(&std::fs::read_to_string(root.join(&dst)).unwrap());
            assert_eq!(theirs.len(), ours.len(), "{dst}");
            for (a, b) in theirs.iter().zip(&ours) {
                let in_repo = repo_rules.parent().unwrap().join(a);
                let in_tree = root.join(&dst).parent().unwrap().join(b);
                assert_eq!(
                    std::fs::read(&in_tree).ok(),
                    Some(std::fs::read(&in_repo).unwrap()),
                    "{dst}: `{b}` is not the repository's `{a}`"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no add-files entry checked");
}

/// The runtime module assembled from go/gotaprt and the libraries' runtime/ files compiles (the
/// libraries' hooks, `var _ = addHook(…)`, fit the generic part), and so does go/gotaprt alone in
/// the repository: the generic part without any library, where its Go tests run.
#[test]
fn assembled_runtime_module_compiles() {
    let root = extracted();
    let repo = repo_root().join("go/gotaprt");
    for (tc, dir) in [
        (Toolchain::Go126, root.join("go/gotaprt")),
        (Toolchain::Go127, root.join("go/gotaprt")),
        (Toolchain::Go126, repo),
    ] {
        let out = tc
            .command()
            .current_dir(&dir)
            .env("GOFLAGS", "-mod=readonly")
            .env("GOWORK", "off")
            .args(["vet", "./..."])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: go vet in {}: {}{}",
            tc.label(),
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
