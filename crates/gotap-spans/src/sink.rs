//! Where builders put a span: piece by piece into a [`SpanSink`], so that a sink that encodes
//! (the OTLP batch writer of `gotap-export`) gets the span's strings borrowed from the strategy's
//! buffer and never allocates a [`Span`], while [`Collect`] assembles the owned [`Span`] for
//! everything else. The builders call the same sink methods in the same order whatever the sink,
//! so both forms are one span.
use crate::SpanFrame;
use crate::{Span, SpanKind, Status, Value};

/// An attribute value as a builder emits it: borrowed from the request it describes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A constant (`GET`, `http`, `1.1`…): [`Collect`] keeps it without copying.
    Static(&'static str),
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Double(f64),
}

impl ValueRef<'_> {
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Static(s) => Value::from_static(s),
            ValueRef::Str(s) => Value::from(s),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Double(d) => Value::Double(d),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ValueRef::Static(s) => Some(s),
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Value {
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Double(d) => ValueRef::Double(*d),
        }
    }
}

/// A span's status as a builder emits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRef<'a> {
    Unset,
    Ok,
    Error(&'a str),
}

impl StatusRef<'_> {
    pub fn to_status(self) -> Status {
        match self {
            StatusRef::Unset => Status::Unset,
            StatusRef::Ok => Status::Ok,
            StatusRef::Error(m) => Status::Error(m.to_owned()),
        }
    }
}

impl Status {
    pub fn as_status_ref(&self) -> StatusRef<'_> {
        match self {
            Status::Unset => StatusRef::Unset,
            Status::Ok => StatusRef::Ok,
            Status::Error(m) => StatusRef::Error(m),
        }
    }
}

/// Receives spans. A streamed span is `begin`, its attributes in order, then `end`; a builder
/// that made an owned span hands it over whole with `span`.
pub trait SpanSink {
    fn begin(&mut self, frame: &SpanFrame, scope: &'static str);
    fn attr(&mut self, key: &'static str, value: ValueRef<'_>);
    /// The span's name is the concatenation of `name` (`["GET", " ", "/users/{id}"]`), so that a
    /// builder composing it needs no buffer.
    fn end(&mut self, name: &[&str], kind: SpanKind, status: StatusRef<'_>);
    /// A whole span.
    fn span(&mut self, span: Span);
    /// The producer has nothing more for now (the eBPF reader after each drain of its ring): a
    /// sink that buffers may hand its buffer on here.
    fn idle(&mut self) {}
}

/// The owned-span sink: assembles each streamed span and passes it to a function.
pub struct Collect<F: FnMut(Span)> {
    pending: Option<Span>,
    out: F,
}

impl<F: FnMut(Span)> Collect<F> {
    pub fn new(out: F) -> Collect<F> {
        Collect { pending: None, out }
    }
}

impl<F: FnMut(Span)> SpanSink for Collect<F> {
    fn begin(&mut self, f: &SpanFrame, scope: &'static str) {
        self.pending = Some(Span {
            trace_id: f.trace_id,
            span_id: f.span_id,
            parent_span_id: f.parent_span_id,
            name: String::new(),
            kind: SpanKind::Internal,
            start_unix_nano: f.start_unix_nano,
            end_unix_nano: f.end_unix_nano,
            attributes: Vec::with_capacity(12),
            status: Status::Unset,
            resource: f.resource.clone(),
            scope,
        });
    }
    fn attr(&mut self, key: &'static str, value: ValueRef<'_>) {
        if let Some(s) = &mut self.pending {
            s.attributes.push((key, value.to_value()));
        }
    }
    fn end(&mut self, name: &[&str], kind: SpanKind, status: StatusRef<'_>) {
        if let Some(mut s) = self.pending.take() {
            s.name = name.concat();
            s.kind = kind;
            s.status = status.to_status();
            (self.out)(s);
        }
    }
    fn span(&mut self, span: Span) {
        (self.out)(span)
    }
}

/// Builds one span with a builder that streams it (`|sink| server_span_to(&req, &f, false, sink)`).
pub fn collect_one(build: impl FnOnce(&mut dyn SpanSink)) -> Span {
    let mut got = None;
    build(&mut Collect::new(|s| got = Some(s)));
    got.expect("the builder emitted a span")
}

/// `code` in decimal, in `buf` (status codes as `error.type` without an allocation).
pub fn decimal(code: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut v = code;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), "0");
        assert_eq!(decimal(503, &mut b), "503");
        assert_eq!(decimal(u64::MAX, &mut b), u64::MAX.to_string());
    }

    #[test]
    fn collect_assembles_streamed_spans_and_passes_whole_ones() {
        let f = SpanFrame {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            start_unix_nano: 5,
            end_unix_nano: 9,
            resource: Default::default(),
        };
        let whole = collect_one(|sink| {
            sink.begin(&f, "s");
            sink.end(&["whole"], SpanKind::Internal, StatusRef::Unset);
        });
        let mut got = Vec::new();
        let mut c = Collect::new(|s| got.push(s));
        c.begin(&f, "scope");
        c.attr("a", ValueRef::Static("x"));
        c.attr("b", ValueRef::Int(7));
        c.end(
            &["GET", " ", "/x"],
            SpanKind::Server,
            StatusRef::Error("boom"),
        );
        c.span(whole);
        assert_eq!(got.len(), 2);
        let s = &got[0];
        assert_eq!(s.name, "GET /x");
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.parent_span_id, Some([3; 8]));
        assert_eq!((s.start_unix_nano, s.end_unix_nano), (5, 9));
        assert_eq!(s.attr("a"), Some(&Value::from("x")));
        assert_eq!(s.attr("b"), Some(&Value::Int(7)));
        assert_eq!(s.status, Status::Error("boom".into()));
        assert_eq!(s.scope, "scope");
        assert_eq!(got[1].name, "whole");
    }
}
