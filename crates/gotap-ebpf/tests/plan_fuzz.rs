//! The probe planners on damaged binaries. gotap-binary's fuzz test covers the parsers, but the
//! libraries' planners (instrumentations/*/ebpf.rs) read the ELF too — database/sql looks for
//! `runtime.firstmoduledata` and driver types itself — and `gotap run` / `attach` call them on
//! whatever file they are given. For every mutation of the ELF header, program headers and
//! section headers of real Go binaries that link net/http, database/sql (two drivers) and grpc,
//! `plan::plan` must return (a plan or an error) within a bounded time and never panic.
//!
//! Deterministic: each field of each header gets the same set of hostile values on every run
//! (0, 1, a length just past the file, huge, all ones), one mutation per case. The bases are
//! stripped: the planners then do their own finding (moduledata, driver types from pclntab)
//! instead of reading DWARF, whose parser gotap-binary's fuzz test covers.
use gotap_binary::GoBinary;
use gotap_testkit::{Toolchain, Variant};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

const CASE_LIMIT: Duration = Duration::from_secs(if cfg!(debug_assertions) { 30 } else { 10 });

fn gosql(tc: Toolchain, variant: Variant) -> PathBuf {
    gotap_testkit::build("../crates/gotap-ebpf/tests/gosql", "./both", tc, variant)
}

fn gogrpc(tc: Toolchain, variant: Variant) -> PathBuf {
    gotap_testkit::build("../crates/gotap-ebpf/tests/gogrpc", ".", tc, variant)
}

fn u16_at(d: &[u8], o: usize) -> usize {
    u16::from_le_bytes([d[o], d[o + 1]]) as usize
}

fn u64_at(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap())
}

/// (file offset, width) of every field a planner may trust: e_phoff, e_shoff, e_phentsize,
/// e_phnum, e_shentsize, e_shnum, e_shstrndx; each program header's p_type, p_flags, p_offset,
/// p_vaddr, p_filesz, p_memsz; each section header's sh_name, sh_type, sh_addr, sh_offset,
/// sh_size, sh_entsize.
fn fields(d: &[u8]) -> Vec<(usize, usize)> {
    let mut out = vec![
        (32, 8),
        (40, 8),
        (54, 2),
        (56, 2),
        (58, 2),
        (60, 2),
        (62, 2),
    ];
    let (phoff, phentsize, phnum) = (u64_at(d, 32) as usize, u16_at(d, 54), u16_at(d, 56));
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        out.extend([
            (p, 4),
            (p + 4, 4),
            (p + 8, 8),
            (p + 16, 8),
            (p + 32, 8),
            (p + 40, 8),
        ]);
    }
    let (shoff, shentsize, shnum) = (u64_at(d, 40) as usize, u16_at(d, 58), u16_at(d, 60));
    for i in 0..shnum {
        let s = shoff + i * shentsize;
        out.extend([
            (s, 4),
            (s + 4, 4),
            (s + 16, 8),
            (s + 24, 8),
            (s + 32, 8),
            (s + 56, 8),
        ]);
    }
    out
}

fn values(len: usize, width: usize) -> Vec<u64> {
    let all = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (width * 8)) - 1
    };
    let mut v = vec![0, 1, len as u64 + 1, all / 2, all];
    v.retain(|x| *x <= all);
    v.dedup();
    v
}

/// Plans `data` on another thread: Ok(()) when it returned, Err(what) on a panic or a timeout.
fn plan_bounded(name: String, data: Vec<u8>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| {
            if let Ok(bin) = GoBinary::from_bytes(name, data) {
                match gotap_ebpf::plan::plan(&bin) {
                    Ok(_) => {}
                    Err(e) => {
                        let m = e.to_string();
                        assert!(!m.contains('\n'), "a multi-line error: {m:?}");
                    }
                }
            }
        });
        let _ = tx.send(r.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(panic)) => Err(format!("panicked: {panic}")),
        Err(_) => Err(format!("did not return within {CASE_LIMIT:?}")),
    }
}

#[test]
fn planners_never_panic_or_hang_on_damaged_headers() {
    let stripped = Variant {
        stripped: true,
        pie: false,
    };
    let bases = [
        ("sql-go126-stripped", gosql(Toolchain::Go126, stripped)),
        ("sql-go127-stripped", gosql(Toolchain::Go127, stripped)),
        ("sql-go119-stripped", gosql(Toolchain::Go119, stripped)),
        ("grpc-go126-stripped", gogrpc(Toolchain::Go126, stripped)),
    ];
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut seen = 0usize;
    for (label, path) in &bases {
        let data = std::fs::read(path).unwrap();
        // The base itself plans, so the mutations reach the planners' own reading.
        let bin = GoBinary::from_bytes(path.clone(), data.clone()).unwrap();
        let plan = gotap_ebpf::plan::plan(&bin).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(!plan.sites.is_empty(), "{label}: nothing planned");
        let t0 = std::time::Instant::now();
        let before = cases;
        for (at, width) in fields(&data) {
            if at + width > data.len() {
                continue;
            }
            for v in values(data.len(), width) {
                let mut d = data.clone();
                d[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
                if d == data {
                    continue;
                }
                // Every other mutation, alternating between bases, keeps the run within a few
                // minutes of a debug build while every field and value is tried on some base.
                seen += 1;
                if seen.is_multiple_of(2) {
                    continue;
                }
                cases += 1;
                if let Err(e) = plan_bounded(format!("{label}@{at}={v:#x}"), d) {
                    failures.push(format!(
                        "{label}: field at {at} ({width} bytes) = {v:#x}: {e}"
                    ));
                }
            }
        }
        eprintln!("{label}: {} cases in {:?}", cases - before, t0.elapsed());
    }
    eprintln!("{cases} damaged binaries planned");
    assert!(cases > 1000, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
