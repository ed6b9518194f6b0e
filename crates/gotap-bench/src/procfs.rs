//! What a process cost, read from /proc: CPU time (all threads, user + system) and resident memory.
use anyhow::{Context, Result};
use std::time::Duration;

/// User + system CPU time consumed so far by every thread of `pid` (fields 14 and 15 of
/// /proc/PID/stat, in clock ticks).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid} is gone"))?;
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
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("process {pid} is gone"))?;
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
            assert!(t.elapsed() < Duration::from_secs(20), "CPU time does not grow while spinning");
        }
        std::hint::black_box(x);
        let (rss, peak) = rss_kib(me).unwrap();
        assert!(rss > 0 && peak >= rss);
    }

    #[test]
    fn missing_process_is_an_error() {
        assert!(cpu_time(u32::MAX - 1).is_err());
    }
}
