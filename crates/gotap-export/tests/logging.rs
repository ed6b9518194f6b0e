//! A destination that is down is reported once, not once per batch, and its recovery once.
//! (Own test binary: it installs the process-wide tracing subscriber.)
use gotap_export::{Batch, BatchConfig, ExportError, Exporter, Pipeline};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fails its first 8 calls, then works.
struct Flaky(usize);
impl Exporter for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn export(&mut self, _: &Batch, _: Duration) -> Result<u64, ExportError> {
        self.0 += 1;
        if self.0 <= 8 {
            Err(ExportError::Retryable(
                "flaky: collector unreachable".into(),
            ))
        } else {
            Ok(0)
        }
    }
}

#[test]
fn down_is_logged_once_and_recovery_once() {
    let buf = Buf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let cfg = BatchConfig {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
        schedule_delay: Duration::from_millis(5),
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(Flaky(0))], None);
    let tx = p.sender();
    let r = std::sync::Arc::new(gotap_spans::Resource::default());
    let span = gotap_spans::Span {
        trace_id: [1; 16],
        span_id: [1; 8],
        parent_span_id: None,
        name: "x".into(),
        kind: gotap_spans::SpanKind::Internal,
        start_unix_nano: 1,
        end_unix_nano: 2,
        attributes: vec![],
        status: gotap_spans::Status::Unset,
        resource: r,
        scope: "t",
    };
    for _ in 0..20 {
        tx.send(span.clone());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = p.shutdown();
    assert_eq!(stats.exporters[0].exported, 20, "{stats:?}");
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches("collector unreachable").count(), 1, "{log}");
    assert_eq!(log.matches("export works again").count(), 1, "{log}");
}
