//! `gotap run [FLAGS] -- CMD ARGS…`: starts a Go program with gotap's probes already attached.
//!
//! The child is forked and waits on a pipe before its exec; the probes are attached to the
//! executable it is about to run, filtered to its pid; then the pipe releases it. So the first Go
//! instruction already runs under the probes. gotap forwards SIGINT/SIGTERM/SIGHUP that were sent
//! to it (a terminal's Ctrl-C already reaches the child, which shares the process group), waits
//! for the child, flushes the spans and exits with the child's exit code (128+N if signal N
//! killed it).
use crate::telemetry::{self, Session, Signals, TelemetryArgs};
use anyhow::{bail, Context};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    /// The Go program to run and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // First, before any thread exists, so every thread inherits the mask.
    let signals = Signals::block()?;
    args.telemetry.export_config()?;
    gotap_ebpf::check_environment().map_err(telemetry::ebpf_err)?;
    let program = resolve(&args.command[0])?;
    let mut session = Session::start(&args.telemetry)?;

    let child = BlockedChild::fork(&program, &args.command)?;
    let pid = child.pid;
    let resource = session.resource(pid, &program);
    let info = match session.agent.trace_executable(&program, pid, resource) {
        Ok(info) => info,
        Err(e) => {
            child.abandon();
            return Err(telemetry::ebpf_err(e));
        }
    };
    // Printed before the release so it precedes anything the program prints.
    telemetry::announce(&program, pid, &info);
    child.release().inspect_err(|_| {
        let _ = session.agent.untrace_process(pid);
    })?;
    // The child has exec'd: make sure it runs the very file the probes are on.
    match session.agent.confirm_exec(pid) {
        Ok(()) => {}
        // Already exiting (its /proc/N/exe is gone): not an error, report its exit as usual.
        Err(gotap_ebpf::EbpfError::NoProcess { .. }) => {
            let mut status = 0;
            // SAFETY: waitpid writes the status into our variable.
            unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
            session.finish();
            return Ok(ExitCode::from(exit_code(status)));
        }
        Err(e) => {
            // SAFETY: kill has no memory-safety preconditions. Never leave it running untraced.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            reap(pid);
            return Err(telemetry::ebpf_err(e));
        }
    }

    let mut lingered = false;
    let status = loop {
        for sig in signals.drain() {
            if sig.signo != libc::SIGCHLD && !sig.from_kernel {
                if !lingered {
                    // Spans the woven code still buffers (batch sites) reach gotap before the
                    // signal can end the program.
                    std::thread::sleep(session.agent.batch_linger());
                    lingered = true;
                }
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid as libc::pid_t, sig.signo) };
            }
        }
        if let Some(status) = try_wait(pid)? {
            break status;
        }
        telemetry::wait(&signals, &[], Duration::from_millis(500));
    };
    session.finish();
    Ok(ExitCode::from(exit_code(status)))
}

/// The shell's convention: the exit code, or 128+N for death by signal N.
fn exit_code(status: libc::c_int) -> u8 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)) as u8
    } else {
        1
    }
}

fn try_wait(pid: u32) -> anyhow::Result<Option<libc::c_int>> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our variable.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
    match r {
        0 => Ok(None),
        r if r == pid as libc::pid_t => Ok(Some(status)),
        _ => {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(None);
            }
            Err(e).context("cannot wait for the traced program")
        }
    }
}

/// Finds `cmd` like a shell: a name with a slash is a path, else it is looked up in PATH.
fn resolve(cmd: &OsStr) -> anyhow::Result<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let shown = cmd.to_string_lossy();
    if cmd.as_bytes().contains(&b'/') {
        let p = PathBuf::from(cmd);
        if !p.exists() {
            bail!("command not found: {shown}");
        }
        if !is_exec(&p) {
            bail!("{shown} is not an executable file");
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let p = dir.join(cmd);
        if is_exec(&p) {
            return Ok(p);
        }
    }
    bail!("command not found: {shown}")
}

/// A forked child waiting on a pipe before its exec.
struct BlockedChild {
    pid: u32,
    release: OwnedFd,
    exec_error: OwnedFd,
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create a pipe");
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstring(s: &OsStr) -> anyhow::Result<CString> {
    CString::new(s.as_bytes())
        .with_context(|| format!("argument {:?} contains a NUL byte", s.to_string_lossy()))
}

impl BlockedChild {
    fn fork(program: &Path, argv: &[OsString]) -> anyhow::Result<BlockedChild> {
        // Everything the child needs is allocated before fork: after it, in a multi-threaded
        // process, the child may only make async-signal-safe calls.
        let prog = cstring(program.as_os_str())?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| cstring(a))
            .collect::<anyhow::Result<_>>()?;
        let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argp.push(std::ptr::null());
        let (release_r, release_w) = pipe()?;
        let (err_r, err_w) = pipe()?;

        // SAFETY: the child branch only calls async-signal-safe functions (read, write, close,
        // sigprocmask, signal, execv, _exit) on data prepared above.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).context("cannot fork");
        }
        if pid == 0 {
            unsafe {
                libc::close(release_w.as_raw_fd());
                libc::close(err_r.as_raw_fd());
                let mut b = 0u8;
                loop {
                    let n = libc::read(
                        release_r.as_raw_fd(),
                        &mut b as *mut u8 as *mut libc::c_void,
                        1,
                    );
                    if n == 1 {
                        break;
                    }
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    // gotap went away without releasing: do not run untraced.
                    libc::_exit(1);
                }
                // gotap blocks these signals and Rust ignores SIGPIPE; the program gets defaults.
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::execv(prog.as_ptr(), argp.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(
                    err_w.as_raw_fd(),
                    &errno as *const i32 as *const libc::c_void,
                    4,
                );
                libc::_exit(127);
            }
        }
        drop(release_r);
        drop(err_w);
        Ok(BlockedChild {
            pid: pid as u32,
            release: release_w,
            exec_error: err_r,
        })
    }

    /// Lets the child exec; returns once it has (the error pipe closes on exec) or failed to.
    fn release(self) -> anyhow::Result<()> {
        // SAFETY: writing one byte from a local to our pipe.
        let n = unsafe {
            libc::write(
                self.release.as_raw_fd(),
                &1u8 as *const u8 as *const libc::c_void,
                1,
            )
        };
        drop(self.release);
        if n != 1 {
            reap(self.pid);
            bail!("the program exited before it could be started");
        }
        let mut errno = 0i32;
        let n = loop {
            // SAFETY: reading at most 4 bytes into a local i32.
            let n = unsafe {
                libc::read(
                    self.exec_error.as_raw_fd(),
                    &mut errno as *mut i32 as *mut libc::c_void,
                    4,
                )
            };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break n;
        };
        if n == 4 {
            reap(self.pid);
            bail!(
                "cannot run the program: {}",
                std::io::Error::from_raw_os_error(errno)
            );
        }
        Ok(())
    }

    /// Kills the child before it ever ran the program.
    fn abandon(self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        reap(self.pid);
    }
}

fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our variable.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_a_shell() {
        assert_eq!(
            resolve(OsStr::new("sh")).unwrap().file_name().unwrap(),
            "sh"
        );
        assert_eq!(
            resolve(OsStr::new("/bin/sh")).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            resolve(OsStr::new("no-such-gotap-cmd"))
                .unwrap_err()
                .to_string(),
            "command not found: no-such-gotap-cmd"
        );
        let plain = std::env::temp_dir().join(format!("gotap-run-test-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(plain.as_os_str()).unwrap_err().to_string();
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(
            err,
            format!("{} is not an executable file", plain.display())
        );
        assert_eq!(
            resolve(OsStr::new("/etc")).unwrap_err().to_string(),
            "/etc is not an executable file"
        );
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        // Raw wait statuses: exit code in bits 8..16, terminating signal in the low 7 bits.
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGINT), 130);
    }
}
