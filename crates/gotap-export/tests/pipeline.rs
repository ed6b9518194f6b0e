//! The pipeline's batching, queue bound, retry buffer bound and shutdown, with in-memory exporters.
mod common;

use common::*;
use gotap_export::{Batch, BatchConfig, ExportError, Exporter, Pipeline};
use gotap_spans::sink::SpanSink;
use gotap_spans::Span;
use gotap_spans::SpanFrame;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records batch sizes; fails the first `fail_first` calls (retryably), or every call after
/// `permanent_after`, and can be slowed down.
#[derive(Clone, Default)]
struct Probe {
    batches: Arc<Mutex<Vec<(Instant, usize)>>>,
    calls: Arc<Mutex<usize>>,
    fail_first: usize,
    permanent: bool,
    delay: Duration,
}

impl Exporter for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn export(&mut self, batch: &Batch, _timeout: Duration) -> Result<u64, ExportError> {
        std::thread::sleep(self.delay);
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        if self.permanent {
            return Err(ExportError::Permanent("rejected".into()));
        }
        if *calls <= self.fail_first {
            return Err(ExportError::Retryable("down".into()));
        }
        self.batches
            .lock()
            .unwrap()
            .push((Instant::now(), batch.spans.len()));
        Ok(0)
    }
}

fn spans(n: usize) -> Vec<gotap_spans::Span> {
    let r = resource();
    let base = sample_spans(&r, 9);
    (0..n).map(|i| base[i % base.len()].clone()).collect()
}

#[test]
fn batches_by_size_then_by_time() {
    let probe = Probe::default();
    let p = Pipeline::start_with(
        BatchConfig {
            max_queue_size: 8192,
            ..Default::default()
        },
        vec![Box::new(probe.clone())],
        None,
    );
    let tx = p.sender();
    for s in spans(4200) {
        assert!(tx.send(s));
    }
    let sent = Instant::now();
    while probe.batches.lock().unwrap().len() < 3 && sent.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let sizes: Vec<usize> = probe.batches.lock().unwrap().iter().map(|b| b.1).collect();
    assert_eq!(
        sizes,
        [2048, 2048, 104],
        "full batches at once, the rest after the 200 ms delay"
    );
    let last = probe.batches.lock().unwrap()[2].0;
    let waited = last - sent;
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_millis(1000),
        "partial batch after {waited:?}"
    );
    let stats = p.shutdown();
    assert_eq!(stats.exporter("probe").unwrap().exported, 4200);
}

#[test]
fn batches_are_cut_by_encoded_size() {
    // Spans of one size, a byte bound of ten of them: batches of ten, far below the span bound.
    let one = spans(1).pop().unwrap();
    let size = gotap_export::otlp::EncodedSpan::new(one.clone())
        .bytes
        .len();
    let probe = Probe::default();
    let p = Pipeline::start_with(
        BatchConfig {
            max_export_batch_bytes: 10 * size,
            ..Default::default()
        },
        vec![Box::new(probe.clone())],
        None,
    );
    let tx = p.sender();
    for _ in 0..35 {
        assert!(tx.send(one.clone()));
    }
    let stats = p.shutdown();
    let sizes: Vec<usize> = probe.batches.lock().unwrap().iter().map(|b| b.1).collect();
    assert_eq!(
        sizes,
        [10, 10, 10, 5],
        "cut at 10 spans' bytes, the rest at shutdown"
    );
    assert_eq!(stats.exporter("probe").unwrap().exported, 35);
}

#[test]
fn full_queue_drops_without_blocking() {
    // A slow exporter and a tiny queue: most sends must be dropped, quickly.
    let probe = Probe {
        delay: Duration::from_millis(50),
        ..Default::default()
    };
    let cfg = BatchConfig {
        max_queue_size: 8,
        max_export_batch_size: 4,
        shutdown_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(probe.clone())], None);
    let tx = p.sender();
    let t = Instant::now();
    let accepted = spans(1000)
        .into_iter()
        .filter(|s| tx.send(s.clone()))
        .count();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "sending took {:?}",
        t.elapsed()
    );
    assert!(accepted < 100, "accepted {accepted}");
    let stats = p.shutdown();
    assert_eq!(stats.dropped_queue_full, (1000 - accepted) as u64);
    assert_eq!(
        stats.exporter("probe").unwrap().exported,
        accepted as u64,
        "{stats:?}"
    );
    assert!(
        !tx.send(spans(1).pop().unwrap()),
        "send after shutdown is refused"
    );
}

#[test]
fn retryable_failures_are_retried_with_backoff() {
    let probe = Probe {
        fail_first: 3,
        ..Default::default()
    };
    let cfg = BatchConfig {
        initial_backoff: Duration::from_millis(50),
        schedule_delay: Duration::from_millis(10),
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(probe.clone())], None);
    let tx = p.sender();
    let t = Instant::now();
    for s in spans(10) {
        tx.send(s);
    }
    let stats = p.shutdown();
    assert_eq!(stats.exporter("probe").unwrap().exported, 10, "{stats:?}");
    assert_eq!(*probe.calls.lock().unwrap(), 4);
    // Backoff 50 + 100 + 200 ms between the four attempts.
    assert!(
        t.elapsed() >= Duration::from_millis(340),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn retry_buffer_is_bounded_and_permanent_errors_drop() {
    let down = Probe {
        fail_first: usize::MAX,
        ..Default::default()
    };
    let rejecting = Probe {
        permanent: true,
        ..Default::default()
    };
    let cfg = BatchConfig {
        max_export_batch_size: 10,
        max_buffered_spans: 30,
        shutdown_timeout: Duration::from_millis(300),
        max_queue_size: 1000,
        ..Default::default()
    };
    let p = Pipeline::start_with(
        cfg,
        vec![Box::new(down.clone()), Box::new(rejecting.clone())],
        None,
    );
    let tx = p.sender();
    for s in spans(200) {
        assert!(tx.send(s));
    }
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let stats = p.shutdown();
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "shutdown took {:?}",
        t.elapsed()
    );
    for e in &stats.exporters {
        assert_eq!(
            (e.exported, e.dropped_export_failed, e.pending),
            (0, 200, 0),
            "{stats:?}"
        );
    }
    assert!(
        *down.calls.lock().unwrap() < 20,
        "retries back off instead of spinning"
    );
}

/// Voluntary context switches of the calling thread so far.
fn own_switches() -> u64 {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Notes the export thread's context switches at each export.
#[derive(Clone, Default)]
struct Switches(Arc<Mutex<Vec<u64>>>);

impl Exporter for Switches {
    fn name(&self) -> &str {
        "switches"
    }
    fn export(&mut self, _: &Batch, _: Duration) -> Result<u64, ExportError> {
        self.0.lock().unwrap().push(own_switches());
        Ok(0)
    }
}

/// Spans trickling in (one every 50 µs, as the agent hands them over) do not wake the export
/// thread one by one: it sleeps until a batch is full or its timer expires.
#[test]
fn trickling_spans_do_not_wake_the_export_thread_per_span() {
    let probe = Switches::default();
    let p = Pipeline::start_with(
        BatchConfig {
            max_export_batch_size: 100,
            ..Default::default()
        },
        vec![Box::new(probe.clone())],
        None,
    );
    let tx = p.sender();
    for s in spans(500) {
        assert!(tx.send(s));
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(50) {}
    }
    let stats = p.shutdown();
    assert_eq!(stats.exporter("switches").unwrap().exported, 500);
    let seen = probe.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "five full batches");
    // Per span this would be ~400 switches; per batch it is a handful.
    let switches = seen[4] - seen[0];
    assert!(switches < 40, "{switches} context switches for 400 spans");
}

/// Per export: (spans the batch holds unencoded, spans in the batch, the encoded request).
type Exports = Arc<Mutex<Vec<(usize, usize, Vec<u8>)>>>;

/// Reads only the protobuf bytes, as the OTLP exporters do.
#[derive(Clone, Default)]
struct BytesOnly {
    got: Exports,
}

impl Exporter for BytesOnly {
    fn name(&self) -> &str {
        "bytes"
    }
    fn export(&mut self, batch: &Batch, _timeout: Duration) -> Result<u64, ExportError> {
        self.got
            .lock()
            .unwrap()
            .push((batch.spans.len(), batch.len(), batch.encoded().to_vec()));
        Ok(0)
    }
    fn needs_spans(&self) -> bool {
        false
    }
}

/// With only byte-reading exporters, spans are encoded as they are sent: batches carry no `Span`,
/// and their request is byte for byte the one built from the spans. One exporter that reads
/// spans keeps them for everyone.
#[test]
fn spans_are_encoded_when_no_exporter_reads_them() {
    let sent = spans(600);
    let bytes = BytesOnly::default();
    let cfg = BatchConfig {
        max_export_batch_size: 512,
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(bytes.clone())], None);
    let tx = p.sender();
    for s in sent.clone() {
        assert!(tx.send(s));
    }
    let stats = p.shutdown();
    assert_eq!(stats.exporter("bytes").unwrap().exported, 600);
    let got = bytes.got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(),
        [(0, 512), (0, 88)]
    );
    assert_eq!(got[0].2, gotap_export::otlp::encode_request(&sent[..512]));
    assert_eq!(got[1].2, gotap_export::otlp::encode_request(&sent[512..]));

    let (bytes, probe) = (BytesOnly::default(), Probe::default());
    let p = Pipeline::start_with(
        BatchConfig::default(),
        vec![Box::new(bytes.clone()), Box::new(probe.clone())],
        None,
    );
    let tx = p.sender();
    for s in sent[..10].iter().cloned() {
        assert!(tx.send(s));
    }
    p.shutdown();
    let got = bytes.got.lock().unwrap().clone();
    assert_eq!((got[0].0, got[0].1), (10, 10), "spans kept");
    assert_eq!(got[0].2, gotap_export::otlp::encode_request(&sent[..10]));
    assert_eq!(probe.batches.lock().unwrap()[0].1, 10);
}

/// Streams an owned span into a sink the way the builders do.
fn stream(sink: &mut impl SpanSink, s: &Span) {
    let frame = SpanFrame {
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        start_unix_nano: s.start_unix_nano,
        end_unix_nano: s.end_unix_nano,
        resource: s.resource.clone(),
    };
    sink.begin(&frame, s.scope);
    for (k, v) in &s.attributes {
        sink.attr(k, v.as_value_ref());
    }
    sink.end(&[&s.name], s.kind, s.status.as_status_ref());
}

/// Distinct span ids, so that requests compare span for span.
fn numbered(n: usize) -> Vec<Span> {
    spans(n)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.span_id = (i as u64 + 1).to_be_bytes();
            s
        })
        .collect()
}

/// A request re-encoded by prost with each scope's spans in span-id order.
fn canonical(bytes: &[u8]) -> Vec<u8> {
    let mut req = ExportTraceServiceRequest::decode(bytes).expect("the request decodes");
    for r in &mut req.resource_spans {
        for s in &mut r.scope_spans {
            s.spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        }
    }
    req.encode_to_vec()
}

/// OTLP-only pipeline: the sink writes spans into whole batches, handed over when full, at the
/// first idle call a schedule delay after a batch's first span, and when dropped; each request
/// holds exactly the spans written.
#[test]
fn sink_hands_over_full_late_and_last_batches() {
    let sent = numbered(601);
    let bytes = BytesOnly::default();
    let cfg = BatchConfig {
        max_export_batch_size: 512,
        // Long enough that the "not yet" check holds on a busy machine.
        schedule_delay: Duration::from_millis(1000),
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(bytes.clone())], None);
    let mut sink = p.sender().sink();
    for (i, s) in sent[..600].iter().enumerate() {
        if i % 3 == 0 {
            sink.span(s.clone());
        } else {
            stream(&mut sink, s);
        }
    }
    let exported = || bytes.got.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(5);
    while exported() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(exported(), 1, "a full batch goes at once");
    sink.idle();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(exported(), 1, "88 spans, 100 ms old: not yet");
    std::thread::sleep(Duration::from_millis(950));
    sink.idle();
    let deadline = Instant::now() + Duration::from_secs(5);
    while exported() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        exported(),
        2,
        "the partial batch goes once it is a schedule delay old"
    );
    stream(&mut sink, &sent[600]);
    drop(sink);
    let stats = p.shutdown();
    assert_eq!(stats.exporter("bytes").unwrap().exported, 601);
    assert_eq!(stats.dropped_queue_full, 0);
    let got = bytes.got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(),
        [(0, 512), (0, 88), (0, 1)]
    );
    for (b, range) in got.iter().zip([0..512, 512..600, 600..601]) {
        assert_eq!(
            canonical(&b.2),
            canonical(&gotap_export::otlp::encode_request(&sent[range]))
        );
    }
}

/// Written batches count against the queue bound: with the export thread stuck, whole batches
/// are refused and counted as dropped, never blocking the writer.
#[test]
fn sink_drops_whole_batches_when_the_queue_is_full() {
    let probe = BytesOnly::default();
    let slow = Slow(probe.clone());
    let cfg = BatchConfig {
        max_queue_size: 100,
        max_export_batch_size: 64,
        ..Default::default()
    };
    let p = Pipeline::start_with(cfg, vec![Box::new(slow)], None);
    let mut sink = p.sender().sink();
    let t0 = Instant::now();
    for s in numbered(64 * 6) {
        stream(&mut sink, &s);
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "the writer never waits"
    );
    drop(sink);
    let stats = p.shutdown();
    let exported = stats.exporter("slow").unwrap().exported;
    assert!(stats.dropped_queue_full >= 64, "{stats:?}");
    assert_eq!(exported + stats.dropped_queue_full, 64 * 6, "{stats:?}");
    assert_eq!(exported % 64, 0, "whole batches: {stats:?}");
}

/// A byte-reading exporter that takes 300 ms per batch.
struct Slow(BytesOnly);

impl Exporter for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn export(&mut self, batch: &Batch, t: Duration) -> Result<u64, ExportError> {
        std::thread::sleep(Duration::from_millis(300));
        self.0.export(batch, t)
    }
    fn needs_spans(&self) -> bool {
        false
    }
}

/// With an exporter that reads spans, the sink assembles each streamed span: the same spans.
#[test]
fn sink_builds_spans_for_exporters_that_read_them() {
    let probe = Probe::default();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Keep(got.clone());
    let p = Pipeline::start_with(
        BatchConfig::default(),
        vec![Box::new(probe.clone()), Box::new(keep)],
        None,
    );
    let sent = numbered(30);
    let mut sink = p.sender().sink();
    for s in &sent {
        stream(&mut sink, s);
    }
    drop(sink);
    p.shutdown();
    assert_eq!(*got.lock().unwrap(), sent);
}

/// Keeps the spans of every batch.
struct Keep(Arc<Mutex<Vec<Span>>>);

impl Exporter for Keep {
    fn name(&self) -> &str {
        "keep"
    }
    fn export(&mut self, batch: &Batch, _: Duration) -> Result<u64, ExportError> {
        self.0.lock().unwrap().extend(batch.spans.iter().cloned());
        Ok(0)
    }
}
