//! Span trees two strategies must agree on: each span's signature is everything but its ids and
//! times (and what a test normalises, such as per-run ports), with its parent described the same
//! way recursively, so equal sorted signatures mean equal trace trees.
use super::FlatSpan;
use serde_json::Value;
use std::collections::BTreeMap;

/// The trace of the `traceparent` the tests send: `00-{INCOMING_TRACE_ID}-{INCOMING_PARENT_ID}-01`.
pub const INCOMING_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const INCOMING_PARENT_ID: &str = "00f067aa0ba902b7";

/// The incoming `traceparent` header value.
pub fn incoming_traceparent() -> String {
    format!("00-{INCOMING_TRACE_ID}-{INCOMING_PARENT_ID}-01")
}

/// An attribute's value as compared: `norm` may replace it (ports, per-run file names).
pub type Normalise<'a> = &'a dyn Fn(&str, &Value) -> Option<Value>;

/// Every `*.port` attribute compares equal (ephemeral, or each run's listening ports).
pub fn any_port(k: &str, _: &Value) -> Option<Value> {
    k.ends_with(".port").then(|| Value::from("<port>"))
}

pub fn signature(s: &FlatSpan, all: &[FlatSpan], norm: Normalise) -> String {
    let attrs: BTreeMap<&str, Value> = s
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), norm(k, v).unwrap_or_else(|| v.clone())))
        .collect();
    let parent = if s.parent.is_empty() {
        "root".to_string()
    } else if let Some(p) = all
        .iter()
        .find(|p| p.span_id == s.parent && p.trace_id == s.trace_id)
    {
        format!("child of [{}]", signature(p, all, norm))
    } else if s.parent == INCOMING_PARENT_ID {
        "child of the incoming traceparent".to_string()
    } else {
        format!("child of remote {}", s.parent)
    };
    let trace = if s.trace_id == INCOMING_TRACE_ID {
        "the incoming trace"
    } else {
        "a new trace"
    };
    format!(
        "{} kind={} {:?} status={} {attrs:?} in {trace}, {parent}",
        s.service, s.kind, s.name, s.status
    )
}

/// The sorted signatures of `spans`.
pub fn signatures(spans: &[FlatSpan], norm: Normalise) -> Vec<String> {
    let mut v: Vec<String> = spans.iter().map(|s| signature(s, spans, norm)).collect();
    v.sort();
    v
}

/// The spans `gotap run --output-file DIR/<service>.jsonl` wrote for each service.
pub fn read_spans(dir: &std::path::Path, services: &[&str]) -> Vec<FlatSpan> {
    services
        .iter()
        .flat_map(|s| {
            super::parse_otlp_json_lines(
                &std::fs::read_to_string(dir.join(format!("{s}.jsonl"))).unwrap_or_default(),
            )
        })
        .collect()
}
