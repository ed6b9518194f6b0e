//! Preconditions: privileges, kernel features, the bpffs directory of the shared link map.
use std::path::Path;

use crate::EbpfError;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Checks what loading gotap's uprobes needs, failing with one sentence naming what is missing:
/// CAP_BPF, CAP_PERFMON (uprobes and reading user memory), CAP_SYS_ADMIN (bpffs, pid-filtered
/// perf events on other processes), uprobe support, kernel BTF.
pub fn check_environment() -> Result<(), EbpfError> {
    let caps = effective_caps();
    for (bit, name) in [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ] {
        if caps & (1u64 << bit) == 0 {
            return Err(EbpfError::MissingCapability(name));
        }
    }
    if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        return Err(EbpfError::NoUprobes);
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(EbpfError::NoBtf);
    }
    Ok(())
}

/// CapEff of this process, from /proc/self/status (0 if unreadable).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn is_bpffs(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we own; the path is a valid C string.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    }
}

/// Makes `dir` usable for pinning: mounts bpffs on /sys/fs/bpf when `dir` is below it and it is
/// not mounted yet (what every BPF agent does at start), then creates `dir`.
pub(crate) fn prepare_pin_dir(dir: &Path) -> Result<(), EbpfError> {
    let err = |why: String| EbpfError::PinDir {
        dir: dir.to_path_buf(),
        why,
    };
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(root) {
        std::fs::create_dir_all(root)
            .map_err(|e| err(format!("cannot create {}: {e}", root.display())))?;
        let src = c"bpf";
        let target = c"/sys/fs/bpf";
        // SAFETY: constant, NUL-terminated arguments.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(err(format!(
                "mounting bpffs on /sys/fs/bpf failed: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    if !is_bpffs(dir) {
        return Err(err(
            "it is not on a bpf filesystem (mount -t bpf bpf <dir>)".into(),
        ));
    }
    Ok(())
}
