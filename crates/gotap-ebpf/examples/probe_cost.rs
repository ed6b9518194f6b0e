//! Measures the raw cost of a uprobe hit at a given instruction: attaches one of gotap's programs
//! (it returns at once: no process config for cookie 0) at `OFFSET` of `EXE` for `PID`, holds it
//! `SECONDS`. Compare the target's ns/call with and without. Used for docs/ebpf.md's per-site
//! costs. Usage: `probe_cost EXE PID OFFSET(hex) SECONDS`.
use std::num::NonZeroU32;

use aya::programs::uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope};
use aya::programs::UProbe;

static BPF_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gotap.bpf.o"));

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!("usage: probe_cost EXE PID OFFSET(hex) SECONDS");
        std::process::exit(2);
    }
    let pid: u32 = a[2].parse().expect("PID");
    let off = u64::from_str_radix(a[3].trim_start_matches("0x"), 16).expect("OFFSET");
    let secs: u64 = a[4].parse().expect("SECONDS");
    let mut ebpf = aya::EbpfLoader::new()
        .map_pin_path(
            "gotap_links",
            std::path::Path::new("/sys/fs/bpf/gotap/gotap_links"),
        )
        .load(BPF_OBJ)
        .expect("load");
    let p: &mut UProbe = ebpf.program_mut("server_ret").unwrap().try_into().unwrap();
    p.load().expect("verify");
    let point = UProbeAttachPoint {
        location: UProbeAttachLocation::AbsoluteOffset(off),
        cookie: Some(0),
    };
    p.attach(
        point,
        &a[1],
        UProbeScope::OneProcess(NonZeroU32::new(pid).unwrap()),
    )
    .expect("attach");
    eprintln!("attached at {off:#x}");
    std::thread::sleep(std::time::Duration::from_secs(secs));
}
