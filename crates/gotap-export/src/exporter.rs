//! The exporter trait and the local exporters (console, OTLP/JSON lines file).
use crate::otlp;
use gotap_spans::{ids::hex, semconv as sc, Span, SpanKind, Status, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// One batch: the spans (console), and the OTLP request and its protobuf encoding, each built at
/// most once, on first use — a console-only pipeline never builds them, and retries reuse them.
/// A pipeline whose exporters all send protobuf gets its spans already encoded
/// ([`Exporter::needs_spans`]): then `spans` is empty and the batch holds their encodings.
pub struct Batch {
    pub spans: Vec<Span>,
    pre_encoded: Vec<otlp::EncodedSpan>,
    written: otlp::EncodedBatch,
    request: std::sync::OnceLock<ExportTraceServiceRequest>,
    encoded: std::sync::OnceLock<hyper::body::Bytes>,
}

impl Batch {
    pub fn new(spans: Vec<Span>) -> Batch {
        Batch {
            spans,
            pre_encoded: Vec::new(),
            written: Default::default(),
            request: Default::default(),
            encoded: Default::default(),
        }
    }
    /// A batch written by an [`otlp::BatchWriter`].
    pub fn from_written(written: otlp::EncodedBatch) -> Batch {
        Batch {
            spans: Vec::new(),
            pre_encoded: Vec::new(),
            written,
            request: Default::default(),
            encoded: Default::default(),
        }
    }
    /// A batch of spans encoded by [`otlp::EncodedSpan::new`].
    pub fn from_encoded(spans: Vec<otlp::EncodedSpan>) -> Batch {
        Batch {
            spans: Vec::new(),
            pre_encoded: spans,
            written: Default::default(),
            request: Default::default(),
            encoded: Default::default(),
        }
    }
    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len() + self.pre_encoded.len() + self.written.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The OTLP request for these spans.
    pub fn request(&self) -> &ExportTraceServiceRequest {
        self.request.get_or_init(|| {
            if self.pre_encoded.is_empty() && self.written.is_empty() {
                otlp::to_request(&self.spans)
            } else {
                use prost::Message;
                ExportTraceServiceRequest::decode(self.encoded())
                    .expect("gotap's own encoding decodes")
            }
        })
    }
    /// The request, protobuf-encoded (cheap to clone: shared bytes), written straight from the
    /// spans without building [`Batch::request`].
    pub fn encoded(&self) -> hyper::body::Bytes {
        self.encoded
            .get_or_init(|| {
                hyper::body::Bytes::from(if !self.written.is_empty() {
                    otlp::encode_request_batch(&self.written)
                } else if self.pre_encoded.is_empty() {
                    otlp::encode_request(&self.spans)
                } else {
                    otlp::encode_request_encoded(&self.pre_encoded)
                })
            })
            .clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Worth retrying later (destination down, overloaded, timed out).
    #[error("{0}")]
    Retryable(String),
    /// Retrying would fail the same way (the destination rejected the data); the batch is dropped.
    #[error("{0}")]
    Permanent(String),
}

/// A destination for spans. Runs on the pipeline's export thread only.
pub trait Exporter: Send {
    /// Short name used in stats and logs (`console`, `file`, `otlp-grpc`, `otlp-http`).
    fn name(&self) -> &str;
    /// Exports one batch within `timeout`. `Ok(n)`: delivered, the destination rejected `n` spans.
    fn export(&mut self, batch: &Batch, timeout: Duration) -> Result<u64, ExportError>;
    /// Called once at the end; flush what is buffered.
    fn shutdown(&mut self) {}
    /// Whether [`Exporter::export`] reads `batch.spans`. When no exporter of a pipeline does
    /// (OTLP only), spans are encoded to protobuf as they are sent, on the sender's thread, and
    /// batches carry only their encodings ([`Batch::encoded`], [`Batch::request`]).
    fn needs_spans(&self) -> bool {
        true
    }
}

/// One aligned, readable line per span:
/// `12:00:01.123 orders  SERVER GET /users/{id}   200 OK     1.234ms trace=4bf9…`.
pub struct ConsoleExporter {
    out: Box<dyn Write + Send>,
    service_width: usize,
    name_width: usize,
}

impl ConsoleExporter {
    pub fn new(out: Box<dyn Write + Send>) -> ConsoleExporter {
        ConsoleExporter {
            out,
            service_width: 8,
            name_width: 24,
        }
    }
    pub fn stdout() -> ConsoleExporter {
        Self::new(Box::new(std::io::stdout()))
    }

    /// The line for one span, without the newline. Column widths grow with what was seen (capped),
    /// so lines stay aligned without knowing every span in advance.
    pub fn format(&mut self, s: &Span) -> String {
        let service = s.resource.service_name();
        self.service_width = self.service_width.max(service.chars().count()).min(24);
        self.name_width = self.name_width.max(s.name.chars().count()).min(48);
        let code = match s.attr(sc::HTTP_RESPONSE_STATUS_CODE) {
            Some(Value::Int(c)) => c.to_string(),
            _ => "-".to_owned(),
        };
        // Console readers want "did it fail": OK covers both Unset and Ok.
        let (status, msg) = match &s.status {
            Status::Error(m) => (
                "ERROR",
                if m.is_empty() {
                    String::new()
                } else {
                    format!(" error={m:?}")
                },
            ),
            _ => ("OK", String::new()),
        };
        format!(
            "{} {:<sw$} {:<8} {:<nw$} {:>3} {:<5} {:>10} trace={}{}",
            local_time(s.end_unix_nano),
            service,
            kind_name(s.kind),
            s.name,
            code,
            status,
            duration(s.duration_nanos()),
            hex(&s.trace_id),
            msg,
            sw = self.service_width,
            nw = self.name_width,
        )
    }
}

impl Exporter for ConsoleExporter {
    fn name(&self) -> &str {
        "console"
    }
    fn export(&mut self, batch: &Batch, _timeout: Duration) -> Result<u64, ExportError> {
        let mut text = String::new();
        for s in &batch.spans {
            text.push_str(&self.format(s));
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush())
            .map_err(|e| ExportError::Permanent(format!("cannot write to the console: {e}")))?;
        Ok(0)
    }
}

fn kind_name(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Internal => "INTERNAL",
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
    }
}

fn duration(nanos: u64) -> String {
    if nanos < 1_000_000_000 {
        format!("{:.3}ms", nanos as f64 / 1e6)
    } else {
        format!("{:.3}s", nanos as f64 / 1e9)
    }
}

/// `HH:MM:SS.mmm` in the local time zone.
fn local_time(unix_nano: u64) -> String {
    let secs = (unix_nano / 1_000_000_000) as libc::time_t;
    let millis = (unix_nano / 1_000_000) % 1000;
    // SAFETY: localtime_r only writes the tm we own; a zeroed tm is a valid initial value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("{secs}.{millis:03}");
    }
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        tm.tm_hour, tm.tm_min, tm.tm_sec, millis
    )
}

/// OTLP/JSON lines: one `ExportTraceServiceRequest` per line, as the collector's `file` exporter
/// writes, appended to the file.
pub struct JsonFileExporter {
    out: BufWriter<File>,
    path: String,
    /// Reused line buffer.
    line: Vec<u8>,
}

impl JsonFileExporter {
    pub fn create(path: &Path) -> Result<JsonFileExporter, crate::Error> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                crate::Error::Config(format!("cannot open span file {}: {e}", path.display()))
            })?;
        Ok(JsonFileExporter {
            out: BufWriter::new(f),
            path: path.display().to_string(),
            line: Vec::new(),
        })
    }
}

impl Exporter for JsonFileExporter {
    fn name(&self) -> &str {
        "file"
    }
    fn export(&mut self, batch: &Batch, _timeout: Duration) -> Result<u64, ExportError> {
        self.line.clear();
        otlp::write_json_line(&batch.spans, &mut self.line);
        self.line.push(b'\n');
        // Flushed per batch so readers (tail -f, tests) see whole lines promptly.
        self.out
            .write_all(&self.line)
            .and_then(|_| self.out.flush())
            .map_err(|e| {
                ExportError::Permanent(format!("cannot write span file {}: {e}", self.path))
            })?;
        Ok(0)
    }
    fn shutdown(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gotap_spans::Resource;
    use std::sync::Arc;

    #[test]
    fn console_line_columns() {
        let mut r = Resource::default();
        r.set("service.name", "orders");
        let s = Span {
            trace_id: [0x4b; 16],
            span_id: [1; 8],
            parent_span_id: None,
            name: "GET /users/{id}".into(),
            kind: SpanKind::Server,
            start_unix_nano: 1_700_000_000_000_000_000,
            end_unix_nano: 1_700_000_000_001_234_000,
            attributes: vec![(sc::HTTP_RESPONSE_STATUS_CODE, Value::Int(200))],
            status: Status::Unset,
            resource: Arc::new(r),
            scope: "t",
        };
        let mut c = ConsoleExporter::new(Box::new(std::io::sink()));
        let line = c.format(&s);
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0].len(), "12:00:01.123".len(), "{line}");
        assert_eq!(
            &fields[1..],
            [
                "orders",
                "SERVER",
                "GET",
                "/users/{id}",
                "200",
                "OK",
                "1.234ms",
                &format!("trace={}", "4b".repeat(16))
            ]
        );
        let mut err = s.clone();
        err.status = Status::Error("boom".into());
        err.name = "x".into();
        let line2 = c.format(&err);
        assert!(line2.ends_with("error=\"boom\""), "{line2}");
        // Aligned: the trace column starts at the same offset for both lines.
        assert_eq!(line.find("trace="), line2.find("trace="));
    }
}
