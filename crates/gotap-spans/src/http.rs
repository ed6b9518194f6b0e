//! HTTP server and client spans. Every strategy describes a request with these structs and gets
//! the span from [`server_span`] / [`client_span`], so names and attributes never diverge.
use crate::{semconv as sc, Attributes, Resource, Span, SpanId, SpanKind, Status, TraceId, Value};
use std::sync::Arc;

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

/// What a strategy saw of one served request.
#[derive(Debug, Clone, Default)]
pub struct ServerRequest {
    pub method: String,
    pub path: String,
    /// Raw query without `?`; exported only when `capture_query` is on (it may hold secrets).
    pub query: Option<String>,
    /// Go ≥ 1.22 ServeMux pattern as Go reports it (`GET /users/{id}` or `/users/{id}`).
    pub pattern: Option<String>,
    /// From the Host header / URL.
    pub host: Option<String>,
    pub client_address: Option<String>,
    pub client_port: Option<u16>,
    pub user_agent: Option<String>,
    /// `HTTP/1.1` style, or `1.1`.
    pub protocol: Option<String>,
    pub status_code: Option<u16>,
}

/// What a strategy saw of one outgoing request.
#[derive(Debug, Clone, Default)]
pub struct ClientRequest {
    pub method: String,
    pub url: String,
    pub status_code: Option<u16>,
    /// Transport error text (connection refused…), if the round trip failed.
    pub error: Option<String>,
}

const KNOWN_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// semconv: unknown methods are reported as `_OTHER` (with the original kept aside).
fn normalize_method(m: &str, attrs: &mut Attributes) -> String {
    if KNOWN_METHODS.contains(&m) {
        m.to_owned()
    } else {
        attrs.push((sc::HTTP_REQUEST_METHOD_ORIGINAL, Value::from(m)));
        "_OTHER".to_owned()
    }
}

/// `GET /users/{id}` → `/users/{id}`; strips a method and a host from a ServeMux pattern.
pub fn route_from_pattern(pattern: &str) -> Option<String> {
    let p = pattern.trim();
    if p.is_empty() {
        return None;
    }
    let p = match p.split_once(' ') {
        Some((_, rest)) => rest.trim_start(),
        None => p,
    };
    let route = match p.find('/') {
        Some(i) => &p[i..],
        None => return None,
    };
    Some(route.to_owned())
}

/// `host:port` → (host, port); IPv6 in brackets handled.
pub fn split_host_port(hp: &str) -> (String, Option<u16>) {
    if let Some(rest) = hp.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h.to_owned(), port);
        }
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_owned(), p.parse().ok()),
        _ => (hp.to_owned(), None),
    }
}

fn protocol_version(p: &str) -> String {
    p.trim().trim_start_matches("HTTP/").to_owned()
}

pub fn server_span(req: &ServerRequest, frame: SpanFrame, capture_query: bool) -> Span {
    let mut attrs: Attributes = Vec::with_capacity(12);
    let method = normalize_method(&req.method, &mut attrs);
    attrs.push((sc::HTTP_REQUEST_METHOD, Value::from(method.as_str())));
    attrs.push((sc::URL_PATH, Value::from(req.path.as_str())));
    attrs.push((sc::URL_SCHEME, Value::from("http")));
    if capture_query {
        if let Some(q) = req.query.as_deref().filter(|q| !q.is_empty()) {
            attrs.push((sc::URL_QUERY, Value::from(q)));
        }
    }
    let route = req.pattern.as_deref().and_then(route_from_pattern);
    if let Some(r) = &route {
        attrs.push((sc::HTTP_ROUTE, Value::from(r.as_str())));
    }
    if let Some(h) = req.host.as_deref().filter(|h| !h.is_empty()) {
        let (host, port) = split_host_port(h);
        attrs.push((sc::SERVER_ADDRESS, Value::from(host)));
        if let Some(p) = port {
            attrs.push((sc::SERVER_PORT, Value::Int(p as i64)));
        }
    }
    if let Some(c) = req.client_address.as_deref().filter(|c| !c.is_empty()) {
        attrs.push((sc::CLIENT_ADDRESS, Value::from(c)));
        if let Some(p) = req.client_port {
            attrs.push((sc::CLIENT_PORT, Value::Int(p as i64)));
        }
    }
    if let Some(ua) = req.user_agent.as_deref().filter(|u| !u.is_empty()) {
        attrs.push((sc::USER_AGENT_ORIGINAL, Value::from(ua)));
    }
    if let Some(p) = req.protocol.as_deref().filter(|p| !p.is_empty()) {
        attrs.push((sc::NETWORK_PROTOCOL_VERSION, Value::from(protocol_version(p))));
    }
    let mut status = Status::Unset;
    if let Some(code) = req.status_code {
        attrs.push((sc::HTTP_RESPONSE_STATUS_CODE, Value::Int(code as i64)));
        // semconv: only 5xx is an error on the server side.
        if code >= 500 {
            status = Status::Error(String::new());
            attrs.push((sc::ERROR_TYPE, Value::from(code.to_string())));
        }
    }
    let name = match &route {
        Some(r) if method != "_OTHER" => format!("{method} {r}"),
        _ if method == "_OTHER" => "HTTP".to_owned(),
        _ => method.clone(),
    };
    finish(name, SpanKind::Server, attrs, status, frame, "gotap/net/http/server")
}

pub fn client_span(req: &ClientRequest, frame: SpanFrame) -> Span {
    let mut attrs: Attributes = Vec::with_capacity(8);
    let method = normalize_method(&req.method, &mut attrs);
    attrs.push((sc::HTTP_REQUEST_METHOD, Value::from(method.as_str())));
    attrs.push((sc::URL_FULL, Value::from(redact_url(&req.url))));
    if let Some((host, port)) = url_host_port(&req.url) {
        attrs.push((sc::SERVER_ADDRESS, Value::from(host)));
        attrs.push((sc::SERVER_PORT, Value::Int(port as i64)));
    }
    let mut status = Status::Unset;
    if let Some(code) = req.status_code {
        attrs.push((sc::HTTP_RESPONSE_STATUS_CODE, Value::Int(code as i64)));
        // semconv: 4xx and 5xx are errors on the client side.
        if code >= 400 {
            status = Status::Error(String::new());
            attrs.push((sc::ERROR_TYPE, Value::from(code.to_string())));
        }
    }
    if let Some(e) = &req.error {
        status = Status::Error(e.clone());
        attrs.push((sc::ERROR_TYPE, Value::from(error_type(e))));
    }
    let name = if method == "_OTHER" { "HTTP".to_owned() } else { method };
    finish(name, SpanKind::Client, attrs, status, frame, "gotap/net/http/client")
}

fn error_type(e: &str) -> &'static str {
    if e.contains("connection refused") {
        "connection_refused"
    } else if e.contains("timeout") || e.contains("deadline") {
        "timeout"
    } else {
        "_OTHER"
    }
}

/// semconv: credentials in `url.full` must be redacted.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            return format!("{scheme}://REDACTED:REDACTED@{}", &rest[at + 1..]);
        }
    }
    url.to_owned()
}

/// (host, port) of an absolute URL, with the scheme's default port.
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    let auth = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
    let (host, port) = split_host_port(auth);
    let port = port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some((host, port))
}

fn finish(name: String, kind: SpanKind, attributes: Attributes, status: Status, f: SpanFrame, scope: &'static str) -> Span {
    Span {
        trace_id: f.trace_id,
        span_id: f.span_id,
        parent_span_id: f.parent_span_id,
        name,
        kind,
        start_unix_nano: f.start_unix_nano,
        end_unix_nano: f.end_unix_nano,
        attributes,
        status,
        resource: f.resource,
        scope,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> SpanFrame {
        SpanFrame {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            start_unix_nano: 10,
            end_unix_nano: 20,
            resource: Arc::new(Resource::default()),
        }
    }

    #[test]
    fn server_span_named_by_route() {
        let req = ServerRequest {
            method: "GET".into(),
            path: "/users/42".into(),
            pattern: Some("GET /users/{id}".into()),
            host: Some("localhost:8080".into()),
            protocol: Some("HTTP/1.1".into()),
            status_code: Some(503),
            query: Some("a=1".into()),
            ..Default::default()
        };
        let s = server_span(&req, frame(), false);
        assert_eq!(s.name, "GET /users/{id}");
        assert_eq!(s.attr(sc::HTTP_ROUTE), Some(&Value::from("/users/{id}")));
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(8080)));
        assert_eq!(s.attr(sc::NETWORK_PROTOCOL_VERSION), Some(&Value::from("1.1")));
        assert_eq!(s.attr(sc::URL_QUERY), None, "query is opt-in");
        assert!(matches!(s.status, Status::Error(_)));
    }

    #[test]
    fn server_span_without_route_is_method() {
        let req = ServerRequest { method: "POST".into(), path: "/x".into(), status_code: Some(404), ..Default::default() };
        let s = server_span(&req, frame(), true);
        assert_eq!(s.name, "POST");
        assert_eq!(s.status, Status::Unset, "4xx is not a server error");
    }

    #[test]
    fn client_span_attributes() {
        let req = ClientRequest { method: "GET".into(), url: "http://u:p@127.0.0.1:9090/a?b".into(), status_code: Some(404), error: None };
        let s = client_span(&req, frame());
        assert_eq!(s.name, "GET");
        assert_eq!(s.attr(sc::URL_FULL), Some(&Value::from("http://REDACTED:REDACTED@127.0.0.1:9090/a?b")));
        assert_eq!(s.attr(sc::SERVER_ADDRESS), Some(&Value::from("127.0.0.1")));
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(9090)));
        assert!(matches!(s.status, Status::Error(_)));
    }

    #[test]
    fn routes_from_patterns() {
        assert_eq!(route_from_pattern("/a/{b}").as_deref(), Some("/a/{b}"));
        assert_eq!(route_from_pattern("GET example.com/a").as_deref(), Some("/a"));
        assert_eq!(route_from_pattern(""), None);
    }
}
