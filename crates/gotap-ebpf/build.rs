//! Compiles bpf/gotap.bpf.c with clang into OUT_DIR; src/ include_bytes! the object.
//! Needs clang (Debian `clang`), libbpf's headers (`libbpf-dev`) and the kernel uapi headers
//! (`linux-libc-dev`); fails with the package to install when one is missing.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let src = Path::new("bpf/gotap.bpf.c");
    for f in ["bpf/gotap.bpf.c", "bpf/types.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("gotap.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo:rerun-if-env-changed=CLANG");

    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        fail("libbpf headers (/usr/include/bpf/bpf_helpers.h) not found: install the `libbpf-dev` package");
    }
    let multiarch = "/usr/include/x86_64-linux-gnu";
    if !Path::new("/usr/include/linux/bpf.h").exists() {
        fail("kernel uapi headers (/usr/include/linux/bpf.h) not found: install the `linux-libc-dev` package");
    }
    let status = Command::new(&clang)
        .args([
            "-target",
            "bpf",
            "-O2",
            "-g",
            "-Wall",
            "-Werror",
            "-D__TARGET_ARCH_x86",
        ])
        .arg(format!("-I{multiarch}"))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("clang failed to compile {} ({s})", src.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fail(&format!("`{clang}` not found: install the `clang` package (or set CLANG) to compile gotap's BPF programs"))
        }
        Err(e) => fail(&format!("cannot run `{clang}`: {e}")),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
