//! Embeds the Go sources gotap needs at build time (the injected runtime go/gotaprt, the source
//! rewriter go/weaver, the probe-site fragments go/probes) and the built-in rules, so one `gotap`
//! binary is self-contained.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("go" | "s" | "mod" | "sum" | "yaml")
        ) && !p.to_string_lossy().ends_with("_test.go")
        {
            out.push(p);
        }
    }
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for sub in ["go/gotaprt", "go/weaver", "go/probes", "rules"] {
        let dir = repo.join(sub);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        collect(&dir, &mut files);
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
            let rel = f
                .strip_prefix(&repo)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            writeln!(
                code,
                "    ({rel:?}, include_bytes!({:?})),",
                f.display().to_string()
            )
            .unwrap();
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(out, code).unwrap();
}
