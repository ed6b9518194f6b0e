//! The export pipeline: a bounded queue that never blocks producers, one thread that batches and
//! exports to every exporter, per-exporter retry buffers with exponential backoff, counted drops.
use crate::config::{BatchConfig, ExportConfig, Protocol};
use crate::exporter::{Batch, ConsoleExporter, ExportError, Exporter, JsonFileExporter};
use crate::net::{GrpcExporter, HttpExporter};
use crate::otlp::{BatchWriter, EncodedBatch, EncodedSpan};
use crate::Error;
use crossbeam_channel::{bounded, select, Receiver, Sender, TryRecvError, TrySendError};
use gotap_spans::sink::{Collect, SpanSink, StatusRef, ValueRef};
use gotap_spans::SpanFrame;
use gotap_spans::{Span, SpanKind};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counts of one exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterStats {
    pub name: String,
    /// Spans the destination accepted.
    pub exported: u64,
    /// Spans given up on: retry buffer full, rejected by the destination, or still undelivered when
    /// shutdown's timeout ran out.
    pub dropped_export_failed: u64,
    /// Spans waiting for a retry right now (0 after shutdown).
    pub pending: u64,
}

/// What [`Pipeline::shutdown`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans [`SpanSender::send`] dropped because the queue was full (or the pipeline was shut).
    pub dropped_queue_full: u64,
    pub exporters: Vec<ExporterStats>,
}

impl ExportStats {
    pub fn exporter(&self, name: &str) -> Option<&ExporterStats> {
        self.exporters.iter().find(|e| e.name == name)
    }
}

/// Producer handle: cheap to clone, never blocks.
///
/// The export thread does not wait on the queue itself (a wake-up per span, and the channel's
/// waker lock taken on both sides, showed in the agent's profile at ~50k spans/s): a sender rings
/// it only when the queue holds a full batch, or for the first span after it went idle (which
/// starts the batch timer).
///
/// When no exporter reads spans (OTLP only), `send` also encodes the span to protobuf on the
/// caller's thread, where its strings are still in cache and are freed by the thread that
/// allocated them (both cost the export thread more, measured in docs/benchmarks.md).
#[derive(Clone)]
pub struct SpanSender {
    tx: Sender<Item>,
    /// No exporter reads spans: encode each one here (see [`Exporter::needs_spans`]).
    encode: bool,
    dropped: Arc<AtomicU64>,
    doorbell: Sender<()>,
    idle: Arc<AtomicBool>,
    ring_at: usize,
    /// Spans queued inside written batches ([`PipelineSink`]), bounded by the queue size.
    batched: Arc<AtomicUsize>,
    batch: BatchConfig,
}

impl SpanSender {
    /// A sink for span builders (see [`gotap_spans::sink`]) that feeds this pipeline. When no
    /// exporter reads spans (OTLP only), it encodes each span straight into the batch being
    /// gathered, on the caller's thread, and queues whole batches: no [`Span`] is built, no
    /// allocation or queue operation is made per span, and the export thread only adds the
    /// request's headers. The batch goes when full (`max_export_batch_size` spans or
    /// `max_export_batch_bytes`), at the first [`SpanSink::idle`] call `schedule_delay` after its
    /// first span, or when the sink is dropped. Otherwise it sends each span with
    /// [`SpanSender::send`].
    pub fn sink(&self) -> PipelineSink {
        if self.encode {
            let b = &self.batch;
            PipelineSink(SinkKind::Encode(Writing {
                writer: BatchWriter::new(),
                sender: self.clone(),
                first: None,
                max_spans: b.max_export_batch_size.min(b.max_queue_size).max(1),
                max_bytes: b.max_export_batch_bytes,
                delay: b.schedule_delay,
                peer: None,
            }))
        } else {
            let sender = self.clone();
            PipelineSink(SinkKind::Spans(Collect::new(Box::new(move |s| {
                // gotap's own export requests, traced in the program they went to (own.rs).
                if !crate::own::is_own_span(&s) {
                    sender.send(s);
                }
            }))))
        }
    }

    /// Queues a written batch; `false` (all its spans counted as dropped) when the queue has no
    /// room for that many spans or the pipeline has shut down.
    fn send_written(&self, b: EncodedBatch) -> bool {
        let n = b.len();
        let queued = self.batched.fetch_add(n, Ordering::SeqCst);
        if queued + n > self.batch.max_queue_size.max(n) || self.tx.is_full() {
            self.batched.fetch_sub(n, Ordering::SeqCst);
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        match self.tx.try_send(Item::Written(b)) {
            Ok(()) => {
                // A whole batch: always worth the export thread's attention.
                let _ = self.doorbell.try_send(());
                true
            }
            Err(_) => {
                self.batched.fetch_sub(n, Ordering::SeqCst);
                self.dropped.fetch_add(n as u64, Ordering::Relaxed);
                false
            }
        }
    }
    /// Queues a span for export. Returns `false` (and counts the span as dropped) when the queue is
    /// full or the pipeline has shut down; never waits.
    pub fn send(&self, span: Span) -> bool {
        let item = if self.encode {
            // Not worth encoding a span the full queue would refuse.
            if self.tx.is_full() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            Item::Encoded(EncodedSpan::new(span))
        } else {
            Item::Span(span)
        };
        match self.tx.try_send(item) {
            Ok(()) => {
                if self.tx.len() >= self.ring_at
                    || (self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst))
                {
                    // A full doorbell already has the thread's attention.
                    let _ = self.doorbell.try_send(());
                }
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// What the queue carries: spans, or their protobuf encodings when no exporter reads spans, one
/// by one or as written batches.
enum Item {
    Span(Span),
    Encoded(EncodedSpan),
    Written(EncodedBatch),
}

/// The sink of [`SpanSender::sink`].
pub struct PipelineSink(SinkKind);

enum SinkKind {
    Encode(Writing),
    Spans(Collect<Box<dyn FnMut(Span) + Send>>),
}

/// A batch being written by a [`PipelineSink`], and when to hand it over.
struct Writing {
    writer: BatchWriter,
    sender: SpanSender,
    /// When the batch's first span came.
    first: Option<Instant>,
    max_spans: usize,
    max_bytes: usize,
    delay: Duration,
    /// The streamed span's peer while gotap has an export connection open (`own.rs`).
    peer: Option<crate::own::Peer>,
}

impl Writing {
    fn after_span(&mut self) {
        if self.first.is_none() {
            self.first = Some(Instant::now());
        }
        if self.writer.len() >= self.max_spans || self.writer.bytes() >= self.max_bytes {
            self.hand_over();
        }
    }
    fn hand_over(&mut self) {
        self.first = None;
        if !self.writer.is_empty() {
            self.sender.send_written(self.writer.take());
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.hand_over();
    }
}

impl SpanSink for PipelineSink {
    fn begin(&mut self, frame: &SpanFrame, scope: &'static str) {
        match &mut self.0 {
            SinkKind::Encode(w) => {
                w.peer = crate::own::any().then(crate::own::Peer::default);
                w.writer.begin(frame, scope)
            }
            SinkKind::Spans(c) => c.begin(frame, scope),
        }
    }
    fn attr(&mut self, key: &'static str, value: ValueRef<'_>) {
        match &mut self.0 {
            SinkKind::Encode(w) => {
                if let Some(p) = &mut w.peer {
                    p.note(key, &value);
                }
                w.writer.attr(key, value)
            }
            SinkKind::Spans(c) => c.attr(key, value),
        }
    }
    fn end(&mut self, name: &[&str], kind: SpanKind, status: StatusRef<'_>) {
        match &mut self.0 {
            SinkKind::Encode(w) => {
                // A request gotap itself exported, traced in the program it went to: exporting
                // its span would make one more request, for ever (own.rs).
                if kind == SpanKind::Server && w.peer.take().is_some_and(|p| p.is_own()) {
                    w.writer.discard();
                    return;
                }
                w.writer.end(name, kind, status);
                w.after_span();
            }
            SinkKind::Spans(c) => c.end(name, kind, status),
        }
    }
    fn span(&mut self, span: Span) {
        match &mut self.0 {
            SinkKind::Encode(w) => {
                if crate::own::is_own_span(&span) {
                    return;
                }
                w.writer.span(span);
                w.after_span();
            }
            SinkKind::Spans(c) => c.span(span),
        }
    }
    fn idle(&mut self) {
        if let SinkKind::Encode(w) = &mut self.0 {
            if w.first.is_some_and(|t| t.elapsed() >= w.delay) {
                w.hand_over();
            }
        }
    }
}

/// The spans of a batch being gathered, in the form the queue delivers them (one pipeline's
/// senders all send one form).
struct Gathered {
    spans: Vec<Span>,
    encoded: Vec<EncodedSpan>,
    /// Protobuf size of the spans so far (see `BatchConfig::max_export_batch_bytes`).
    bytes: usize,
}

impl Gathered {
    fn new(encode: bool, cap: usize) -> Gathered {
        let (a, b) = if encode { (0, cap) } else { (cap, 0) };
        Gathered {
            spans: Vec::with_capacity(a),
            encoded: Vec::with_capacity(b),
            bytes: 0,
        }
    }
    fn push(&mut self, item: Item) {
        match item {
            Item::Span(s) => {
                self.bytes += crate::otlp::pb::span_len(&s);
                self.spans.push(s)
            }
            Item::Encoded(e) => {
                self.bytes += e.bytes.len();
                self.encoded.push(e)
            }
            Item::Written(_) => unreachable!("written batches are dispatched whole"),
        }
    }
    fn is_full(&self, cfg: &BatchConfig) -> bool {
        self.len() >= cfg.max_export_batch_size || self.bytes >= cfg.max_export_batch_bytes
    }
    fn len(&self) -> usize {
        self.spans.len() + self.encoded.len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn into_batch(mut self) -> Batch {
        if self.encoded.is_empty() {
            return Batch::new(self.spans);
        }
        self.encoded
            .extend(self.spans.into_iter().map(EncodedSpan::new));
        Batch::from_encoded(self.encoded)
    }
}

/// The running pipeline. Dropping it without [`Pipeline::shutdown`] stops the thread without a flush.
pub struct Pipeline {
    sender: SpanSender,
    control: Sender<Instant>,
    thread: Option<JoinHandle<()>>,
    done: Receiver<()>,
    shared: Arc<Mutex<Vec<ExporterStats>>>,
    shutdown_timeout: Duration,
}

impl Pipeline {
    /// Builds the exporters `config` asks for and starts the export thread.
    pub fn start(config: &ExportConfig) -> Result<Pipeline, Error> {
        let rt = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Config(format!("cannot start the export runtime: {e}")))?,
        );
        let mut exporters: Vec<Box<dyn Exporter>> = Vec::new();
        if config.console {
            exporters.push(Box::new(ConsoleExporter::stdout()));
        }
        if let Some(path) = &config.json_file {
            exporters.push(Box::new(JsonFileExporter::create(path)?));
        }
        if let Some(otlp) = &config.otlp {
            match otlp.protocol {
                Protocol::Grpc => exporters.push(Box::new(GrpcExporter::new(rt.clone(), otlp)?)),
                Protocol::HttpProtobuf => {
                    exporters.push(Box::new(HttpExporter::new(rt.clone(), otlp)?))
                }
            }
        }
        Ok(Self::start_with(config.batch.clone(), exporters, Some(rt)))
    }

    /// Starts the export thread with the given exporters (custom ones included). `rt` is the runtime
    /// the network exporters were built on; it is kept alive on the export thread.
    pub fn start_with(
        batch: BatchConfig,
        exporters: Vec<Box<dyn Exporter>>,
        rt: Option<Arc<tokio::runtime::Runtime>>,
    ) -> Pipeline {
        let (tx, rx) = bounded(batch.max_queue_size.max(1));
        // No exporter at all (`gotap run` counting spans only) takes the OTLP path too: building
        // owned spans nobody reads cost the reader ~2x more, and the encoding is what gotap's
        // cost per span is measured on (scripts/bench-probes.sh, pinned pairs).
        let encode = exporters.iter().all(|e| !e.needs_spans());
        let (doorbell, doorbell_rx) = bounded(1);
        let idle = Arc::new(AtomicBool::new(false));
        let ring_at = batch.max_export_batch_size.min(batch.max_queue_size).max(1);
        let (control, control_rx) = bounded(1);
        let (done_tx, done) = bounded(1);
        let shared = Arc::new(Mutex::new(
            exporters
                .iter()
                .map(|e| ExporterStats {
                    name: e.name().to_owned(),
                    ..Default::default()
                })
                .collect(),
        ));
        let shutdown_timeout = batch.shutdown_timeout;
        let batched = Arc::new(AtomicUsize::new(0));
        let sender_batch = batch.clone();
        let dropped = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            drops: DropReport::new(dropped.clone()),
            batched: batched.clone(),
            slots: exporters
                .into_iter()
                .map(|e| Slot::new(e, &batch))
                .collect(),
            cfg: batch,
            rx,
            encode,
            doorbell: doorbell_rx,
            idle: idle.clone(),
            control: control_rx,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("gotap-export".into())
            .spawn(move || {
                let _rt = rt; // dropped on this thread, after the exporters that use it
                worker.run();
                let _ = done_tx.send(());
            })
            .expect("spawn the export thread");
        Pipeline {
            sender: SpanSender {
                tx,
                encode,
                dropped,
                doorbell,
                idle,
                ring_at,
                batched: batched.clone(),
                batch: sender_batch,
            },
            control,
            thread: Some(thread),
            done,
            shared,
            shutdown_timeout,
        }
    }

    pub fn sender(&self) -> SpanSender {
        self.sender.clone()
    }

    /// Exports what is queued and buffered, for at most the configured shutdown timeout, then
    /// returns the counts. Spans not delivered by then are counted as `dropped_export_failed`.
    pub fn shutdown(mut self) -> ExportStats {
        let deadline = Instant::now() + self.shutdown_timeout;
        let _ = self.control.try_send(deadline);
        // The worker stops its own exports at the deadline; the grace covers one in-flight call.
        let finished = self
            .done
            .recv_timeout(self.shutdown_timeout + Duration::from_millis(250))
            .is_ok();
        if finished {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        } else {
            tracing::warn!(
                "span export did not finish within {:?}; abandoning undelivered spans",
                self.shutdown_timeout
            );
        }
        let mut exporters = self
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for e in &mut exporters {
            e.dropped_export_failed += e.pending;
            e.pending = 0;
        }
        ExportStats {
            dropped_queue_full: self.sender.dropped.load(Ordering::Relaxed),
            exporters,
        }
    }
}

struct Slot {
    exporter: Box<dyn Exporter>,
    pending: VecDeque<Arc<Batch>>,
    pending_spans: usize,
    next_attempt: Instant,
    backoff: Duration,
    healthy: bool,
    stats: ExporterStats,
}

impl Slot {
    fn new(exporter: Box<dyn Exporter>, cfg: &BatchConfig) -> Slot {
        let stats = ExporterStats {
            name: exporter.name().to_owned(),
            ..Default::default()
        };
        Slot {
            exporter,
            pending: VecDeque::new(),
            pending_spans: 0,
            next_attempt: Instant::now(),
            backoff: cfg.initial_backoff,
            healthy: true,
            stats,
        }
    }

    fn enqueue(&mut self, batch: Arc<Batch>, cfg: &BatchConfig) {
        self.pending_spans += batch.len();
        self.pending.push_back(batch);
        // Bounded memory while the destination is down: the oldest spans go first.
        while self.pending_spans > cfg.max_buffered_spans && self.pending.len() > 1 {
            let old = self.pending.pop_front().expect("non-empty");
            self.pending_spans -= old.len();
            self.stats.dropped_export_failed += old.len() as u64;
        }
    }

    /// Exports pending batches in order until one fails or the deadline passes.
    fn drain(&mut self, cfg: &BatchConfig, export_timeout: Duration, deadline: Option<Instant>) {
        while let Some(batch) = self.pending.front().cloned() {
            let now = Instant::now();
            if now < self.next_attempt {
                return;
            }
            let timeout = match deadline {
                Some(d) if d <= now => return,
                Some(d) => export_timeout.min(d - now),
                None => export_timeout,
            };
            let n = batch.len() as u64;
            match self.exporter.export(&batch, timeout) {
                Ok(rejected) => {
                    self.stats.exported += n.saturating_sub(rejected);
                    self.stats.dropped_export_failed += rejected.min(n);
                    if rejected > 0 {
                        tracing::warn!(
                            "{}: the destination rejected {rejected} of {n} spans",
                            self.exporter.name()
                        );
                    }
                    self.pop();
                    if !self.healthy {
                        tracing::info!("{}: export works again", self.exporter.name());
                        self.healthy = true;
                    }
                    self.backoff = cfg.initial_backoff;
                }
                Err(ExportError::Retryable(msg)) => {
                    // One line when the destination goes down, not one per batch.
                    if self.healthy {
                        tracing::warn!(
                            "{msg}; retrying with backoff, spans are buffered (up to {}) meanwhile",
                            cfg.max_buffered_spans
                        );
                        self.healthy = false;
                    }
                    self.next_attempt = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(cfg.max_backoff);
                    return;
                }
                Err(ExportError::Permanent(msg)) => {
                    if self.healthy {
                        tracing::warn!("{msg}; dropping the batch");
                        self.healthy = false;
                    }
                    self.stats.dropped_export_failed += n;
                    self.pop();
                }
            }
        }
    }

    fn pop(&mut self) {
        if let Some(b) = self.pending.pop_front() {
            self.pending_spans -= b.len();
        }
    }
}

struct Worker {
    slots: Vec<Slot>,
    cfg: BatchConfig,
    rx: Receiver<Item>,
    encode: bool,
    doorbell: Receiver<()>,
    /// Set while the thread waits with no batch open (see [`SpanSender`]).
    idle: Arc<AtomicBool>,
    control: Receiver<Instant>,
    shared: Arc<Mutex<Vec<ExporterStats>>>,
    batched: Arc<AtomicUsize>,
    drops: DropReport,
}

/// The rate-limited "spans are being dropped" line: the first drop is said at once, later ones at
/// most once per [`BatchConfig::drop_report_interval`], each with the count since the last line.
struct DropReport {
    queue_full: Arc<AtomicU64>,
    /// Queue-full and export-failed drops already said.
    said: (u64, u64),
    last: Option<Instant>,
}

impl DropReport {
    fn new(queue_full: Arc<AtomicU64>) -> DropReport {
        DropReport {
            queue_full,
            said: (0, 0),
            last: None,
        }
    }

    fn check(&mut self, slots: &[Slot], interval: Duration) {
        if self.last.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        let queue = self.queue_full.load(Ordering::Relaxed);
        let failed: u64 = slots.iter().map(|s| s.stats.dropped_export_failed).sum();
        let (dq, df) = (queue - self.said.0, failed - self.said.1);
        if dq + df == 0 {
            return;
        }
        let since = match self.last {
            Some(t) => format!("in the last {}s", t.elapsed().as_secs().max(1)),
            None => "so far".to_owned(),
        };
        let mut why = Vec::new();
        if dq > 0 {
            why.push(format!("{dq} with the queue full"));
        }
        if df > 0 {
            why.push(format!("{df} the destination could not take"));
        }
        tracing::warn!(
            "{} spans dropped {since} ({}); {} in all",
            dq + df,
            why.join(", "),
            queue + failed
        );
        self.said = (queue, failed);
        self.last = Some(Instant::now());
    }
}

impl Worker {
    /// Adds a queued item to the batch being gathered, or exports a written batch as it is
    /// (after what was gathered before it, to keep the order).
    fn take(&mut self, item: Item, batch: &mut Gathered, cap: usize, deadline: Option<Instant>) {
        match item {
            Item::Written(w) => {
                self.batched.fetch_sub(w.len(), Ordering::SeqCst);
                if !batch.is_empty() {
                    self.dispatch(
                        std::mem::replace(batch, Gathered::new(self.encode, cap)),
                        deadline,
                    );
                }
                self.dispatch_batch(Batch::from_written(w), deadline);
            }
            item => {
                batch.push(item);
                if batch.is_full(&self.cfg) {
                    self.dispatch(
                        std::mem::replace(batch, Gathered::new(self.encode, cap)),
                        deadline,
                    );
                }
            }
        }
    }

    fn run(mut self) {
        // Sized for a full batch up front: growing it span by span moved every span several times.
        let cap = self
            .cfg
            .max_export_batch_size
            .min(self.cfg.max_queue_size)
            .clamp(1, 8192);
        let mut batch = Gathered::new(self.encode, cap);
        let mut batch_started = Instant::now();
        let shutdown_deadline = 'run: loop {
            // Take what is queued: full batches go out at once, the rest when its timer expires.
            loop {
                match self.rx.try_recv() {
                    Ok(item) => {
                        if batch.is_empty() {
                            batch_started = Instant::now();
                        }
                        self.take(item, &mut batch, cap, None);
                    }
                    Err(TryRecvError::Empty) => break,
                    // Every sender is gone (the Pipeline was dropped without shutdown).
                    Err(TryRecvError::Disconnected) => break 'run None,
                }
            }
            if !batch.is_empty() && batch_started.elapsed() >= self.cfg.schedule_delay {
                self.dispatch(
                    std::mem::replace(&mut batch, Gathered::new(self.encode, cap)),
                    None,
                );
            }
            self.retry(None);
            self.drops.check(&self.slots, self.cfg.drop_report_interval);
            // Wake for the batch timer or the earliest retry, whichever comes first.
            let mut wake: Option<Instant> =
                (!batch.is_empty()).then(|| batch_started + self.cfg.schedule_delay);
            for s in self.slots.iter().filter(|s| !s.pending.is_empty()) {
                wake = Some(wake.map_or(s.next_attempt, |w| w.min(s.next_attempt)));
            }
            if batch.is_empty() {
                // The next sender rings. Checked again after raising the flag, so a span queued
                // meanwhile is not left waiting; should a ring still be missed, the timeout below
                // picks the span up one schedule delay later.
                self.idle.store(true, Ordering::SeqCst);
                if !self.rx.is_empty() {
                    self.idle.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            let timeout = wake.map_or(self.cfg.schedule_delay, |w| {
                w.saturating_duration_since(Instant::now())
            });
            select! {
                recv(self.doorbell) -> msg => if msg.is_err() {
                    break None;
                },
                recv(self.control) -> msg => break Some(msg.unwrap_or_else(|_| Instant::now())),
                default(timeout) => {}
            }
            self.idle.store(false, Ordering::SeqCst);
        };
        let Some(deadline) = shutdown_deadline else {
            self.finish();
            return;
        };
        // Flush: everything queued, then retries until the buffers are empty or time is up.
        while let Ok(item) = self.rx.try_recv() {
            self.take(item, &mut batch, cap, Some(deadline));
        }
        if !batch.is_empty() {
            self.dispatch(batch, Some(deadline));
        }
        loop {
            self.retry(Some(deadline));
            let next = self
                .slots
                .iter()
                .filter(|s| !s.pending.is_empty())
                .map(|s| s.next_attempt)
                .min();
            match next {
                None => break,
                Some(_) if Instant::now() >= deadline => break,
                Some(t) => std::thread::sleep(
                    t.min(deadline)
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1)),
                ),
            }
        }
        self.finish();
    }

    fn dispatch(&mut self, spans: Gathered, deadline: Option<Instant>) {
        self.dispatch_batch(spans.into_batch(), deadline)
    }

    fn dispatch_batch(&mut self, batch: Batch, deadline: Option<Instant>) {
        let batch = Arc::new(batch);
        for s in &mut self.slots {
            s.enqueue(batch.clone(), &self.cfg);
            s.drain(&self.cfg, self.cfg.export_timeout, deadline);
        }
        self.publish();
    }

    fn retry(&mut self, deadline: Option<Instant>) {
        let now = Instant::now();
        let mut any = false;
        for s in self
            .slots
            .iter_mut()
            .filter(|s| !s.pending.is_empty() && s.next_attempt <= now)
        {
            s.drain(&self.cfg, self.cfg.export_timeout, deadline);
            any = true;
        }
        if any {
            self.publish();
        }
    }

    /// Makes counts visible to `shutdown` even if this thread is stuck in an export.
    fn publish(&self) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for (dst, s) in shared.iter_mut().zip(&self.slots) {
            *dst = ExporterStats {
                pending: s.pending_spans as u64,
                ..s.stats.clone()
            };
        }
    }

    fn finish(&mut self) {
        for s in &mut self.slots {
            s.stats.dropped_export_failed += s.pending_spans as u64;
            s.pending.clear();
            s.pending_spans = 0;
            s.exporter.shutdown();
        }
        self.publish();
    }
}
