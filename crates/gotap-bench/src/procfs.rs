//! What a process cost, read from /proc: CPU time (all threads, user + system) and resident memory.
use anyhow::{Context, Result};
use std::time::Duration;

/// User + system CPU time consumed so far by every thread of `pid` (fields 14 and 15 of
/// /proc/PID/stat, in clock ticks).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its
    // last ')'.
    let rest = &stat[stat.rfind(')').context("malformed /proc stat line")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state), so field n is f[n - 3].
    let utime: u64 = f.get(11).context("short /proc stat line")?.parse()?;
    let stime: u64 = f.get(12).context("short /proc stat line")?.parse()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// (current RSS, peak RSS) in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// The single child process of `pid` (e.g. the Go program under `gotap run`), from
/// /proc/PID/task/*/children.
pub fn only_child(pid: u32) -> Result<u32> {
    let mut kids = vec![];
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("process {pid} is gone"))?
    {
        let text = std::fs::read_to_string(task?.path().join("children")).unwrap_or_default();
        kids.extend(
            text.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok()),
        );
    }
    kids.sort_unstable();
    kids.dedup();
    match kids.as_slice() {
        [k] => Ok(*k),
        [] => anyhow::bail!("process {pid} has no child process"),
        _ => anyhow::bail!(
            "process {pid} has {} child processes, expected one",
            kids.len()
        ),
    }
}

/// Whether `root` or one of its descendants (the Go program under `gotap run`) holds a TCP socket
/// listening on `port`. A bare connect cannot tell: with ports picked from the ephemeral range, it
/// can reach another test's server that got the same free port, or connect to itself (TCP
/// simultaneous open), before the process we started listens.
pub fn listens(root: u32, port: u16) -> bool {
    let mut inodes = vec![];
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 0A is TCP_LISTEN.
            if local_port == Some(port) && f.get(3) == Some(&"0A") {
                inodes.extend(f.get(9).map(|i| format!("socket:[{i}]")));
            }
        }
    }
    if inodes.is_empty() {
        return false;
    }
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                        return true;
                    }
                }
            }
        }
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let text =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                todo.extend(
                    text.split_whitespace()
                        .filter_map(|k| k.parse::<u32>().ok()),
                );
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work_and_rss_is_nonzero() {
        let me = std::process::id();
        let before = cpu_time(me).unwrap();
        // Spin until 200 ms of CPU are accounted (wall time varies with the other tests' load).
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time(me).unwrap() - before < Duration::from_millis(200) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "CPU time does not grow while spinning"
            );
        }
        std::hint::black_box(x);
        let (rss, peak) = rss_kib(me).unwrap();
        assert!(rss > 0 && peak >= rss);
    }

    #[test]
    fn finds_the_only_child() {
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        // Our test process may have other children (parallel tests): check via the child's parent.
        let status = std::fs::read_to_string(format!("/proc/{}/status", c.id())).unwrap();
        assert!(status.contains(&format!("PPid:\t{}", std::process::id())));
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        let kid = loop {
            if let Ok(k) = only_child(sh.id()) {
                break k;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "sh's child never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The forked child is sh itself until its exec of sleep: wait for that.
        while !std::fs::read_to_string(format!("/proc/{kid}/cmdline"))
            .unwrap_or_default()
            .starts_with("sleep")
        {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "sh's child never ran sleep"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in [&mut c, &mut sh] {
            p.kill().unwrap();
            p.wait().unwrap();
        }
        let _ = std::process::Command::new("kill")
            .arg(kid.to_string())
            .status();
    }

    #[test]
    fn missing_process_is_an_error() {
        assert!(cpu_time(u32::MAX - 1).is_err());
    }

    #[test]
    fn listens_names_the_owner_of_a_listening_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listens(std::process::id(), port));
        // A child of ours does not own it, and a port nobody listens on is nobody's.
        let mut sh = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(!listens(sh.id(), port));
        drop(l);
        assert!(!listens(std::process::id(), port));
        let _ = sh.kill();
        let _ = sh.wait();
    }
}
