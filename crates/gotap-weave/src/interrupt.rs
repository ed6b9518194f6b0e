//! SIGINT and SIGTERM during `gotap build`: forwarded to the go command, which is waited for, so
//! that gotap's temporary directory is removed before gotap exits (with 128 + the signal number,
//! the shell's convention). And the directories a gotap killed by SIGKILL left behind, removed
//! by the next build once their owner is gone.
use std::os::raw::c_int;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::atomic::{AtomicI32, Ordering};

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

extern "C" {
    // glibc's and musl's signal(): BSD semantics (the handler stays, SA_RESTART).
    fn signal(signum: c_int, handler: usize) -> usize;
    fn kill(pid: c_int, sig: c_int) -> c_int;
}

/// The signal received (0: none), and the child it must reach (0: none running).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: c_int) {
    // Async-signal-safe only: atomics and kill(2).
    RECEIVED.store(sig, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill has no memory preconditions.
        unsafe { kill(child, sig) };
    }
}

/// Catches SIGINT and SIGTERM for the rest of the process (gotap build's, which only waits on
/// its children). A terminal's Ctrl-C reaches the whole foreground process group, the go
/// command included; a `kill` reaches gotap only, hence the forwarding.
pub fn install() {
    for sig in [SIGINT, SIGTERM] {
        // SAFETY: the handler only touches atomics and calls kill(2), both async-signal-safe.
        unsafe { signal(sig, on_signal as extern "C" fn(c_int) as usize) };
    }
}

/// The signal gotap received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The error of a step that a signal cut short.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by signal {}", self.0)
    }
}

impl std::error::Error for Interrupted {}

fn start(cmd: &mut Command) -> std::io::Result<Child> {
    if let Some(sig) = received() {
        return Err(std::io::Error::other(Interrupted(sig)));
    }
    let child = cmd.spawn()?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // A signal between the spawn and the store was not forwarded.
    if let Some(sig) = received() {
        // SAFETY: kill has no memory preconditions.
        unsafe { kill(child.id() as c_int, sig) };
    }
    Ok(child)
}

/// `cmd.status()`, the child receiving the signals gotap receives meanwhile.
pub fn status(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    let mut child = start(cmd)?;
    let st = child.wait();
    CHILD.store(0, Ordering::SeqCst);
    st
}

/// `cmd.output()`, the child receiving the signals gotap receives meanwhile.
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = start(cmd)?;
    let out = child.wait_with_output();
    CHILD.store(0, Ordering::SeqCst);
    out
}

/// Prefix of gotap build's temporary directories in `$TMPDIR`, followed by the owner's pid.
pub const TEMP_PREFIX: &str = "gotap-build-";

/// The start time of process `pid` (clock ticks after boot, /proc/PID/stat field 22): with the pid,
/// it names one process, even after the pid is reused.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// This process's pid namespace (`pid:[4026531836]`): pids of other namespaces mean nothing here.
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a temporary directory's `owner` file holds: `<pid> <start time> <pid namespace>`.
pub fn owner_line() -> String {
    let pid = std::process::id();
    format!(
        "{pid} {} {}\n",
        start_time(pid).unwrap_or_default(),
        pid_namespace()
    )
}

/// Whether the gotap that made directory `dir` (named `gotap-build-<pid>-…`) is gone: no process
/// with that pid, or one started at another time than the one its `owner` file records. A
/// directory recorded from another pid namespace is never judged.
fn owner_gone(dir: &Path) -> bool {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(pid) = name
        .strip_prefix(TEMP_PREFIX)
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let recorded = std::fs::read_to_string(dir.join("owner")).unwrap_or_default();
    let mut fields = recorded.split_whitespace().skip(1);
    let (started, ns) = (fields.next(), fields.next());
    if ns.is_some_and(|ns| ns != pid_namespace()) {
        // A gotap in another container sharing this $TMPDIR: its pid is not visible here.
        return false;
    }
    let Some(now) = start_time(pid) else {
        return Path::new("/proc/self").exists(); // no /proc: cannot tell, keep it
    };
    match started {
        Some(t) => t != now, // the pid now belongs to another process
        None => false,       // alive, or no owner file yet: a gotap that just created it
    }
}

/// Removes the `gotap-build-*` directories in `tmp` whose gotap is gone (killed by SIGKILL, or a
/// crash); those of running gotaps stay.
pub fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TEMP_PREFIX))
            && owner_gone(&p)
        {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_directories_of_dead_owners_only_are_removed() {
        let tmp = std::env::temp_dir().join(format!("gotap-stale-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        // A pid that is surely gone: a child that has exited and been reaped.
        let mut c = Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let stale = tmp.join(format!("{TEMP_PREFIX}{dead}-1"));
        // A live process (pid 1) that did not make it: recorded with another start time.
        let reused = tmp.join(format!("{TEMP_PREFIX}1-2"));
        // Live, and the recorded start time is its own: kept.
        let live = tmp.join(format!("{TEMP_PREFIX}1-3"));
        // Live, no owner file (being created): kept.
        let fresh = tmp.join(format!("{TEMP_PREFIX}1-4"));
        let other = tmp.join("gotap-buildx");
        // Dead pid, but recorded in another pid namespace: kept.
        let elsewhere = tmp.join(format!("{TEMP_PREFIX}{dead}-5"));
        for d in [&stale, &reused, &live, &fresh, &other, &elsewhere] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(reused.join("owner"), "1 999999999999\n").unwrap();
        std::fs::write(elsewhere.join("owner"), format!("{dead} 1 pid:[1]\n")).unwrap();
        std::fs::write(
            live.join("owner"),
            format!("1 {}\n", start_time(1).unwrap()),
        )
        .unwrap();
        remove_stale(&tmp);
        assert!(!stale.exists() && !reused.exists());
        assert!(live.exists() && fresh.exists() && other.exists() && elsewhere.exists());
        // What this process writes names it as live.
        let mine = tmp.join(format!("{TEMP_PREFIX}{}-6", std::process::id()));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("owner"), owner_line()).unwrap();
        assert!(!owner_gone(&mine));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
