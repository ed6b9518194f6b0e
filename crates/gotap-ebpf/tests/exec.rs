//! `gotap run`'s order: the child is created, stopped before its exec; the agent attaches to the
//! executable it will exec, filtered to the child's pid; the child is released and execs. The
//! probes must fire in the new image.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use gotap_spans::SpanKind;
use gotap_testkit::{Toolchain, Variant};

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

#[test]
fn probes_attached_before_exec_fire_after_it() {
    let bin = app(Toolchain::Go126, Variant::default());
    let port = gotap_testkit::free_port();
    let (pid_r, pid_w) = pipe();
    let (go_r, go_w) = pipe();
    // Command::spawn returns only once the child has exec'd, so it runs on its own thread while
    // this one learns the pid from the child itself.
    let spawner = {
        let bin = bin.clone();
        std::thread::spawn(move || {
            let mut cmd = Command::new(&bin);
            cmd.arg(port.to_string()).stdout(Stdio::piped());
            // SAFETY: only async-signal-safe calls (getpid, write, read) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let pid = libc::getpid().to_ne_bytes();
                    libc::write(pid_w, pid.as_ptr().cast(), 4);
                    let mut b = [0u8; 1];
                    libc::read(go_r, b.as_mut_ptr().cast(), 1);
                    Ok(())
                });
            }
            cmd.spawn().unwrap()
        })
    };
    let mut pid = [0u8; 4];
    // SAFETY: reading 4 bytes into our buffer from our pipe.
    assert_eq!(unsafe { libc::read(pid_r, pid.as_mut_ptr().cast(), 4) }, 4);
    let pid = i32::from_ne_bytes(pid) as u32;

    let (mut agent, sink) = agent(false);
    let t = agent
        .trace_executable(&bin, pid, resource("run"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.pid, pid);
    // Release the child.
    // SAFETY: writing one byte from our buffer to our pipe.
    assert_eq!(unsafe { libc::write(go_w, [1u8].as_ptr().cast(), 1) }, 1);
    let mut child = spawner.join().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    agent.confirm_exec(pid).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(request(port, "/hello", &[]), 200);
    let spans = sink.wait_for(1, |s| s.kind == SpanKind::Server);
    let _ = child.kill();
    let _ = child.wait();
    agent.shutdown();
    assert!(
        spans
            .iter()
            .any(|s| str_attr(s, "url.path") == Some("/hello")),
        "{spans:#?}"
    );
}

#[test]
fn confirm_exec_detects_another_executable() {
    // A process already running something else than the file the probes were attached to.
    let bin = app(Toolchain::Go126, Variant::default());
    let other = app(Toolchain::Go127, Variant::default());
    let app = App::start(&other);
    let (mut agent, _sink) = agent(false);
    agent
        .trace_executable(&bin, app.pid(), resource("x"))
        .unwrap();
    let err = agent.confirm_exec(app.pid()).unwrap_err();
    assert!(
        matches!(err, gotap_ebpf::EbpfError::BinaryChanged { .. }),
        "{err}"
    );
    assert!(agent.traced().is_empty(), "untraced after the mismatch");
}
