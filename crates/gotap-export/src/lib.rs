//! Span export: where gotap's spans go once a strategy has built them.
//!
//! [`ExportConfig::from_env`] reads the standard `OTEL_*` variables (plus CLI overrides);
//! [`Pipeline::start`] runs one export thread that batches spans (2048, 2 MiB or 200 ms) and sends them to
//! every configured [`Exporter`]: the console (one aligned line per span), an OTLP/JSON lines file
//! (the OpenTelemetry Collector `file` exporter's format), OTLP/gRPC, OTLP/HTTP protobuf.
//! Producers hold a [`SpanSender`] whose `send` never blocks: a full queue drops and counts. A
//! destination that is down is retried with exponential backoff from a bounded buffer, and
//! [`Pipeline::shutdown`] flushes within a timeout and reports [`ExportStats`].
//!
//! Not in scope: building spans (crate `gotap-spans`), metrics, logs, TLS.

mod config;
mod exporter;
mod net;
pub mod otlp;
pub mod own;
mod pipeline;

pub use config::{
    parse_key_values, resource_for_process, BatchConfig, ExportConfig, OtlpConfig, Overrides,
    Protocol,
};
pub use exporter::{Batch, ConsoleExporter, ExportError, Exporter, JsonFileExporter};
pub use net::{GrpcExporter, HttpExporter};
pub use pipeline::{ExportStats, ExporterStats, Pipeline, PipelineSink, SpanSender};

/// Configuration and start-up errors, as sentences a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
}
