//! gotap's own diagnostics: `tracing` events from every crate (exporter outages and recoveries,
//! drop counts, probes that could not be armed) printed on stderr as `gotap: …` lines while they
//! happen. `RUST_LOG` picks what is shown (tracing-subscriber's `EnvFilter` syntax); by default
//! warnings, plus the export pipeline's recoveries.
use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What is shown when `RUST_LOG` is unset: every warning, and the info line that says an
/// exporter recovered (its failure was a warning; the user should see both ends of an outage).
pub const DEFAULT_FILTER: &str = "warn,gotap_export=info";

/// Installs the stderr subscriber. A bad `RUST_LOG` falls back to the default with a warning
/// rather than failing the command.
pub fn init() {
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(format!("{v:?}: {e}"))),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Line)
        .try_init()
        .is_ok();
    if let (true, Some(bad)) = (installed, bad) {
        tracing::warn!("RUST_LOG ignored: {bad}");
    }
}

/// `gotap: warning: MESSAGE (field=value …)`: the shape of gotap's other stderr lines, one event
/// a line, no timestamps (the user sees them live; spans carry the times).
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(w, "gotap: {level}")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
