//! One gotap per traced process. Two tracers on one process would both export each of its spans
//! (function probes: every hit runs both agents' programs; probe sites: both see each event), so
//! an agent claims a process before it attaches to it, and a second agent is refused.
//!
//! The claim is an exclusive `flock` on a file named after the process in [`CLAIM_DIR`]: the
//! kernel drops the lock when the holder dies, whatever way, so a crashed gotap leaves nothing
//! that blocks the next one (a pinned bpffs marker would outlive it). The name is the process as
//! the kernel knows it for this PID namespace: its pid and its start time (a reused pid is
//! another process), and the namespace's inode. gotaps in different PID namespaces do not see
//! each other's claims; for a probe-site binary the USDT semaphore check of the agent still
//! catches them (a semaphore already above 0 before gotap attaches).
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::EbpfError;

/// Where claims are kept: a tmpfs, emptied at boot like the processes it names.
pub const CLAIM_DIR: &str = "/run/gotap/traced";

/// A process this agent traces; dropping it releases the claim.
#[derive(Debug)]
pub struct Claim {
    /// Holds the lock while the claim lives.
    _lock: File,
    path: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Removed while still locked: an agent that opened it meanwhile finds, once it holds the
        // lock, that the name no longer leads to its file, and starts over (see `claim`).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The claim's name for process `pid`: PID namespace, pid, start time (clock ticks since boot).
fn claim_name(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime), counted after the command name's closing parenthesis.
    let after = &stat[stat.rfind(')')? + 1..];
    let start: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let ns = std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0);
    Some(format!("{ns}-{pid}-{start}"))
}

/// Removes the claims of this PID namespace's processes that are gone (a gotap killed with
/// SIGKILL leaves its file behind, unlocked): a name whose pid is not running, or runs a process
/// started at another time, can never be claimed again.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ns = std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0);
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let mut f = name.splitn(3, '-');
        let (Some(n), Some(pid)) = (f.next(), f.next()) else {
            continue;
        };
        if n != ns.to_string() {
            continue; // another namespace's: its pids mean nothing here
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if claim_name(pid).as_deref() != Some(name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Claims process `pid` for this agent, or fails with [`EbpfError::TracedElsewhere`] when another
/// gotap holds it.
pub fn claim(pid: u32) -> Result<Claim, EbpfError> {
    claim_in(Path::new(CLAIM_DIR), pid)
}

fn claim_in(dir: &Path, pid: u32) -> Result<Claim, EbpfError> {
    let name = claim_name(pid).ok_or_else(|| EbpfError::NoProcess {
        pid,
        why: format!("/proc/{pid}/stat cannot be read"),
    })?;
    let io = |e: std::io::Error| EbpfError::Claim {
        dir: dir.to_path_buf(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(name);
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(e));
            }
            let mut by = String::new();
            let _ = file.read_to_string(&mut by);
            return Err(EbpfError::TracedElsewhere {
                pid,
                by: by.trim().parse().ok(),
            });
        }
        // The holder before us may have removed the name after we opened it: our lock is then on
        // a file nobody else will look at.
        let same = std::fs::metadata(&path)
            .ok()
            .zip(file.metadata().ok())
            .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
        if !same {
            continue;
        }
        // Who holds it, for the refusal's message.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        sweep(dir);
        return Ok(Claim { _lock: file, path });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("gotap-claims-{}", std::process::id()));
        let me = std::process::id();
        let first = claim_in(&dir, me).unwrap();
        // flock is per open file: a second open in this process conflicts like another process.
        match claim_in(&dir, me) {
            Err(EbpfError::TracedElsewhere { pid, by }) => {
                assert_eq!((pid, by), (me, Some(me)));
            }
            other => panic!("second claim: {other:?}"),
        }
        // A stale claim (a process that is gone) is swept by the next claim.
        let ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
        // Above the kernel's pid limit (4194304): never a running process.
        let stale = dir.join(format!("{ns}-4194304999-1"));
        std::fs::write(&stale, "1").unwrap();
        drop(claim_in(&dir, me)); // refused (ours is held), no sweep
        assert!(stale.exists());
        drop(first);
        let again = claim_in(&dir, me).unwrap();
        assert!(!stale.exists(), "stale claim swept");
        drop(again);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "claim file removed"
        );
        let again = claim_in(&dir, me).unwrap();
        drop(again);
        let _ = std::fs::remove_dir(&dir);
    }
}
