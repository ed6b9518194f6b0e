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
        assert!(std::fs::read_to_string(format!("/proc/{kid}/cmdline"))
            .unwrap()
            .starts_with("sleep"));
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
}
