//! While spans are dropped, the pipeline says so as it happens: the first drop at once, later ones
//! at most once per interval, each line with the count since the last one. Its own test binary:
//! the lines are read through a process-wide subscriber (the export thread logs them).
mod common;

use common::*;
use gotap_export::{Batch, BatchConfig, ExportError, Exporter, Pipeline};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Always down.
struct Down;

impl Exporter for Down {
    fn name(&self) -> &str {
        "down"
    }
    fn export(&mut self, _: &Batch, _: Duration) -> Result<u64, ExportError> {
        Err(ExportError::Retryable("down: connection refused".into()))
    }
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn matching(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn drops_are_reported_while_they_happen_rate_limited() {
    let lines = Lines::default();
    let w = lines.clone();
    tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_ansi(false)
        .init();
    let interval = Duration::from_millis(700);
    let cfg = BatchConfig {
        max_export_batch_size: 10,
        max_buffered_spans: 20,
        schedule_delay: Duration::from_millis(20),
        drop_report_interval: interval,
        shutdown_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(Down)], None);
    let tx = p.sender();
    let r = resource();
    let one = sample_spans(&r, 1).remove(0);
    let send = |n: usize| {
        for _ in 0..n {
            assert!(tx.send(one.clone()));
        }
    };
    let wait = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = lines.matching("spans dropped");
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "no drop line: {got:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let count = |l: &str| -> u64 {
        l.trim_start()
            .split(' ')
            .find_map(|w| w.parse().ok())
            .unwrap()
    };
    // 50 spans into a retry buffer of 20: drops start, said at once (well before the interval).
    send(50);
    let t = Instant::now();
    let first = wait(1);
    assert!(
        t.elapsed() < interval,
        "first drop said at once: {:?}",
        t.elapsed()
    );
    assert!(first[0].contains("spans dropped so far ("), "{first:?}");
    // More drops right away: not said again before the interval has passed...
    send(40);
    std::thread::sleep(interval / 3);
    assert_eq!(wait(1).len(), 1, "rate-limited");
    // ...then lines with the count since the last one, until all 70 are told.
    let deadline = Instant::now() + Duration::from_secs(10);
    let all = loop {
        let got = lines.matching("spans dropped");
        if got
            .iter()
            .map(|l| count(l.split("WARN").last().unwrap()))
            .sum::<u64>()
            == 70
        {
            break got;
        }
        assert!(Instant::now() < deadline, "drops not all told: {got:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(all.len() >= 2, "{all:?}");
    assert!(all[1].contains("spans dropped in the last"), "{all:?}");
    assert!(all.last().unwrap().contains("70 in all"), "{all:?}");
    assert_eq!(
        lines.matching("retrying with backoff").len(),
        1,
        "outage said once"
    );
    // No new drops: no new line.
    std::thread::sleep(interval * 2);
    assert_eq!(lines.matching("spans dropped").len(), all.len());
    p.shutdown();
}
