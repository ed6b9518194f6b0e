//! Span → OTLP protobuf (the one conversion every OTLP exporter uses), and OTLP/JSON as the
//! collector's `file` exporter writes it.
use gotap_spans::{Resource, Span, SpanKind, Status, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, ResourceSpans, ScopeSpans, Span as PbSpan, Status as PbStatus};
use std::sync::Arc;

/// Spans of one scope, under one resource.
type ScopeGroup = (&'static str, Vec<PbSpan>);

/// Groups spans by resource, then by instrumentation scope, keeping first-seen order.
pub fn to_request(spans: &[Span]) -> ExportTraceServiceRequest {
    let mut groups: Vec<(&Arc<Resource>, Vec<ScopeGroup>)> = Vec::new();
    for s in spans {
        let gi = match groups.iter().position(|(r, _)| Arc::ptr_eq(r, &s.resource) || ***r == *s.resource) {
            Some(i) => i,
            None => {
                groups.push((&s.resource, Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[gi].1;
        let si = match scopes.iter().position(|(n, _)| *n == s.scope) {
            Some(i) => i,
            None => {
                scopes.push((s.scope, Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[si].1.push(span(s));
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(r, scopes)| ResourceSpans {
                resource: Some(PbResource { attributes: r.attributes.iter().map(|(k, v)| kv(k, v)).collect(), ..Default::default() }),
                scope_spans: scopes
                    .into_iter()
                    .map(|(name, spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: name.to_owned(),
                            version: env!("CARGO_PKG_VERSION").to_owned(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn span(s: &Span) -> PbSpan {
    let (code, message) = match &s.status {
        Status::Unset => (StatusCode::Unset, String::new()),
        Status::Ok => (StatusCode::Ok, String::new()),
        Status::Error(m) => (StatusCode::Error, m.clone()),
    };
    PbSpan {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        name: s.name.clone(),
        kind: kind_number(s.kind),
        start_time_unix_nano: s.start_unix_nano,
        end_time_unix_nano: s.end_unix_nano,
        attributes: s.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        status: Some(PbStatus { code: code as i32, message }),
        ..Default::default()
    }
}

/// OTLP's numeric span kind.
pub fn kind_number(k: SpanKind) -> i32 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn kv(k: &str, v: &Value) -> KeyValue {
    let value = match v {
        Value::Str(s) => any_value::Value::StringValue(s.clone()),
        Value::Int(i) => any_value::Value::IntValue(*i),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Double(d) => any_value::Value::DoubleValue(*d),
    };
    KeyValue { key: k.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// One line of OTLP/JSON, shaped like the collector `file` exporter's output: camelCase keys, hex
/// ids, 64-bit integers as strings, enums as numbers, and fields at their default value left out
/// (protobuf JSON's rule), except inside attribute values and the `resource`/`scope`/`status`
/// objects the collector always writes.
pub fn to_json_line(req: &ExportTraceServiceRequest) -> String {
    let mut v = serde_json::to_value(req).expect("OTLP request serializes");
    prune_defaults(&mut v);
    v.to_string()
}

fn prune_defaults(v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Object(map) => {
            map.retain(|k, child| {
                // An attribute value is a oneof: "" or 0 there is the value itself.
                if k == "value" || k == "values" {
                    prune_inside_any_value(child);
                    return true;
                }
                prune_defaults(child);
                !is_default(child) || matches!(k.as_str(), "resource" | "scope" | "status")
            });
        }
        J::Array(items) => items.iter_mut().for_each(prune_defaults),
        _ => {}
    }
}

/// Keeps the variant of an AnyValue (or each of an array's values) but prunes nested key/values.
fn prune_inside_any_value(v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Array(items) => items.iter_mut().for_each(prune_inside_any_value),
        J::Object(map) => {
            for (k, child) in map.iter_mut() {
                match k.as_str() {
                    "arrayValue" | "kvlistValue" => prune_defaults(child),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn is_default(v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match v {
        J::Null => true,
        J::Bool(b) => !b,
        J::Number(n) => n.as_f64() == Some(0.0),
        // 64-bit integers are strings in OTLP/JSON ("0" is their default).
        J::String(s) => s.is_empty() || s == "0",
        J::Array(a) => a.is_empty(),
        J::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(resource: Arc<Resource>, scope: &'static str, id: u8) -> Span {
        Span {
            trace_id: [id; 16],
            span_id: [id; 8],
            parent_span_id: None,
            name: format!("s{id}"),
            kind: SpanKind::Server,
            start_unix_nano: 1,
            end_unix_nano: 2,
            attributes: vec![("k", Value::Int(0)), ("e", Value::from(""))],
            status: Status::Unset,
            resource,
            scope,
        }
    }

    #[test]
    fn groups_by_resource_then_scope() {
        let mut a = Resource::default();
        a.set("service.name", "a");
        let a = Arc::new(a);
        let a_copy = Arc::new((*a).clone());
        let b = Arc::new(Resource::default());
        let spans =
            vec![sample(a.clone(), "x", 1), sample(b.clone(), "x", 2), sample(a_copy, "y", 3), sample(a.clone(), "x", 4)];
        let req = to_request(&spans);
        assert_eq!(req.resource_spans.len(), 2);
        let rs = &req.resource_spans[0];
        assert_eq!(rs.scope_spans.len(), 2);
        assert_eq!(rs.scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["s1", "s4"]);
        assert_eq!(rs.scope_spans[1].spans[0].name, "s3");
    }

    #[test]
    fn json_keeps_zero_attribute_values_and_drops_defaults() {
        let req = to_request(&[sample(Arc::new(Resource::default()), "x", 1)]);
        let line = to_json_line(&req);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "01010101010101010101010101010101");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1");
        assert!(span.get("parentSpanId").is_none(), "{line}");
        assert!(span.get("droppedAttributesCount").is_none(), "{line}");
        assert_eq!(span["status"], serde_json::json!({}));
        assert_eq!(span["attributes"][0]["value"], serde_json::json!({"intValue": "0"}));
        assert_eq!(span["attributes"][1]["value"], serde_json::json!({"stringValue": ""}));
        assert_eq!(v["resourceSpans"][0]["resource"], serde_json::json!({}));
    }
}
