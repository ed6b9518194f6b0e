//! A uprobe with a USDT semaphore: what aya 0.14 cannot create (its uprobe attach has no
//! `ref_ctr_offset`). The perf event is opened here on the `uprobe` PMU with the semaphore's file
//! offset in `config[32:63]`, so the kernel increments the semaphore in the traced process while
//! the probe exists and decrements it when the probe goes; an aya-loaded program is then linked
//! to the event with a BPF cookie. Dropping a [`UsdtLink`] detaches: link first, then the event.
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// `struct perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1, 72 bytes): all a uprobe needs.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// uprobe: pointer to the path of the file.
    config1: u64,
    /// uprobe: file offset of the probed instruction.
    config2: u64,
}
const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 72);

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PERF_EVENT: u32 = 41;
/// `uprobe/format/ref_ctr_offset` is `config:32-63` on every kernel that has it (≥ 4.20).
const REF_CTR_SHIFT: u32 = 32;

/// An attached USDT probe: the BPF link and the perf event (the uprobe itself) it is linked to.
/// Field order is drop order: the program is detached before the uprobe (and with it the
/// semaphore increment) goes away.
pub struct UsdtLink {
    _link: OwnedFd,
    _event: OwnedFd,
}

/// The `uprobe` PMU's perf event type (dynamic, from sysfs).
fn uprobe_pmu_type() -> io::Result<u32> {
    let s = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")?;
    s.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected uprobe PMU type {s:?}"),
        )
    })
}

/// Whether this kernel maintains USDT semaphores (uprobe `ref_ctr_offset`, Linux ≥ 4.20).
pub fn kernel_has_ref_ctr() -> bool {
    Path::new("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset").exists()
}

/// Creates a uprobe at file offset `offset` of `path` for process `pid`, with the semaphore at
/// file offset `ref_ctr_offset` (0: none), and links `prog` to it with `cookie`.
pub fn attach(
    prog: BorrowedFd<'_>,
    path: &Path,
    offset: u64,
    ref_ctr_offset: u64,
    pid: u32,
    cookie: u64,
) -> io::Result<UsdtLink> {
    if ref_ctr_offset >> (64 - REF_CTR_SHIFT) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("semaphore offset {ref_ctr_offset:#x} does not fit the uprobe PMU's 32 bits"),
        ));
    }
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let attr = PerfEventAttr {
        type_: uprobe_pmu_type()?,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: ref_ctr_offset << REF_CTR_SHIFT,
        config1: cpath.as_ptr() as u64,
        config2: offset,
        ..Default::default()
    };
    // SAFETY: attr is a valid perf_event_attr of the size it declares; cpath outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            pid as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };

    // union bpf_attr, link_create: prog_fd, target_fd, attach_type, flags, perf_event.bpf_cookie.
    let mut la = [0u8; 64];
    la[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    la[4..8].copy_from_slice(&(event.as_raw_fd() as u32).to_ne_bytes());
    la[8..12].copy_from_slice(&BPF_PERF_EVENT.to_ne_bytes());
    la[16..24].copy_from_slice(&cookie.to_ne_bytes());
    // SAFETY: la is a zero-padded bpf_attr of the size passed.
    let lfd =
        unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_CREATE, la.as_ptr(), la.len() as u32) };
    if lfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let link = unsafe { OwnedFd::from_raw_fd(lfd as i32) };
    Ok(UsdtLink {
        _link: link,
        _event: event,
    })
}
