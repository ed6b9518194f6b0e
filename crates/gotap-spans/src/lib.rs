//! The one span model every gotap strategy feeds, and the rules that make spans identical
//! whatever produced them.
//!
//! A strategy (eBPF probes, compile-time weaving, probe sites…) turns what it observed into a
//! request description (for net/http, `nethttp::ServerRequest`, `nethttp::ClientRequest`) and
//! calls the builders of its library's module (`gotap_spans::<lib>`, from
//! instrumentations/<lib>/spans.rs); those alone decide span names, kinds, attribute keys
//! ([`semconv`]) and status, so switching strategy never changes the telemetry. Builders emit into a [`sink::SpanSink`]: the
//! OTLP batch writer (crate `gotap-export`) encodes spans from there without building them, and
//! [`sink::Collect`] makes owned [`Span`]s for everything else.
//!
//! Not in scope: transport, batching, export formats.

pub mod ids;
pub mod semconv;
pub mod sink;

// The libraries' span builders: `instrumentations/<lib>/spans.rs` of each folder of
// instrumentations/registry.txt, as the module `gotap_spans::<lib>` (build.rs).
include!(concat!(env!("OUT_DIR"), "/libs.rs"));

use std::borrow::Cow;
use std::sync::Arc;

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Borrowed for the constants semconv is full of (`http`, `GET`, `1.1`, `sqlite`…): the agent
    /// builds a span per event, and an allocation per such attribute showed in its profile.
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
    Double(f64),
}

impl Value {
    pub const fn from_static(s: &'static str) -> Value {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Cow::Owned(s.to_owned()))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

pub type Attributes = Vec<(&'static str, Value)>;

/// The process a span comes from: `service.name`, `process.pid`, … (see [`Resource::for_process`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    pub attributes: Vec<(String, Value)>,
}

impl Resource {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn service_name(&self) -> &str {
        match self.get(semconv::SERVICE_NAME) {
            Some(Value::Str(s)) => s.as_ref(),
            _ => "unknown_service",
        }
    }
    /// Sets or replaces one attribute.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }
}

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    /// Unix epoch nanoseconds.
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Attributes,
    pub status: Status,
    pub resource: Arc<Resource>,
    /// Instrumentation scope name (`gotap/net/http` …).
    pub scope: &'static str,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// Identity and timing shared by every span, decided by the strategy's context tracking.
#[derive(Debug, Clone)]
pub struct SpanFrame {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub resource: Arc<Resource>,
}

pub(crate) fn byte_pos(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

pub(crate) fn byte_rpos(s: &str, b: u8) -> Option<usize> {
    s.bytes().rposition(|c| c == b)
}

/// `host:port` → (host, port); IPv6 in brackets handled.
pub fn split_host_port(hp: &str) -> (String, Option<u16>) {
    let (h, p) = host_port(hp);
    (h.to_owned(), p)
}

/// [`split_host_port`] without copying the host.
pub fn host_port(hp: &str) -> (&str, Option<u16>) {
    if hp.starts_with('[') {
        if let Some(end) = byte_pos(hp, b']') {
            let port = hp[end + 1..].strip_prefix(':').and_then(|p| p.parse().ok());
            return (&hp[1..end], port);
        }
    }
    match byte_rpos(hp, b':') {
        Some(i) if byte_pos(&hp[..i], b':').is_none() => (&hp[..i], hp[i + 1..].parse().ok()),
        _ => (hp, None),
    }
}
