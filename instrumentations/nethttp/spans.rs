//! net/http's server and client spans (compiled into gotap-spans as `gotap_spans::nethttp`,
//! crates/gotap-spans/build.rs). HTTP server and client spans. Every strategy describes a request with these structs and gets
//! the span from [`server_span`] / [`client_span`], so names and attributes never diverge. A
//! strategy that reads the strings from a buffer passes them borrowed ([`ServerRequestRef`],
//! [`server_span_ref`]…): the span is the same, and only the strings it exports are allocated.
use crate::sink::{collect_one, decimal, SpanSink, StatusRef, ValueRef};
use crate::{byte_pos, byte_rpos, host_port, semconv as sc, Span, SpanFrame, SpanKind};
use std::borrow::Cow;

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
    /// None when the strategy could not read the status the handler wrote (rather than guess 200).
    pub status_code: Option<u16>,
    /// Served over TLS (Go's `Request.TLS != nil`): `url.scheme` is `https`.
    pub tls: bool,
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

/// [`ServerRequest`] with borrowed strings, for [`server_span_ref`]: a strategy that reads them
/// from a buffer (the eBPF agent's ring-buffer events) builds the span without allocating each
/// one first; the span then owns only the strings it exports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerRequestRef<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub pattern: Option<&'a str>,
    pub host: Option<&'a str>,
    pub client_address: Option<&'a str>,
    pub client_port: Option<u16>,
    pub user_agent: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub status_code: Option<u16>,
    pub tls: bool,
}

impl ServerRequest {
    pub fn borrowed(&self) -> ServerRequestRef<'_> {
        ServerRequestRef {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            pattern: self.pattern.as_deref(),
            host: self.host.as_deref(),
            client_address: self.client_address.as_deref(),
            client_port: self.client_port,
            user_agent: self.user_agent.as_deref(),
            protocol: self.protocol.as_deref(),
            status_code: self.status_code,
            tls: self.tls,
        }
    }
}

/// [`ClientRequest`] with borrowed strings, for [`client_span_ref`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientRequestRef<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
}

impl ClientRequest {
    pub fn borrowed(&self) -> ClientRequestRef<'_> {
        ClientRequestRef {
            method: &self.method,
            url: &self.url,
            status_code: self.status_code,
            error: self.error.as_deref(),
        }
    }
}

const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// semconv: unknown methods are reported as `_OTHER` (with the original kept aside).
fn normalize_method<S: SpanSink + ?Sized>(m: &str, out: &mut S) -> &'static str {
    match KNOWN_METHODS.iter().find(|k| **k == m) {
        Some(k) => k,
        None => {
            out.attr(sc::HTTP_REQUEST_METHOD_ORIGINAL, ValueRef::Str(m));
            "_OTHER"
        }
    }
}

/// `GET /users/{id}` → `/users/{id}`; strips a method and a host from a ServeMux pattern.
pub fn route_from_pattern(pattern: &str) -> Option<String> {
    route_of(pattern).map(str::to_owned)
}

// The parsers below search ASCII delimiters byte by byte: `str`'s char and substring searchers
// (a memcmp per candidate, a two-way searcher built per call) were a fifth of the eBPF reader's
// time per span. Slicing at an ASCII byte keeps UTF-8 boundaries.

fn route_of(pattern: &str) -> Option<&str> {
    let p = pattern.trim();
    if p.is_empty() {
        return None;
    }
    let p = match byte_pos(p, b' ') {
        Some(i) => p[i + 1..].trim_start(),
        None => p,
    };
    byte_pos(p, b'/').map(|i| &p[i..])
}

/// `scheme://rest` → (scheme, rest), at the first `://`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let b = url.as_bytes();
    let i = (0..b.len().saturating_sub(2))
        .find(|&i| b[i] == b':' && b[i + 1] == b'/' && b[i + 2] == b'/')?;
    Some((&url[..i], &url[i + 3..]))
}

/// `HTTP/1.1` → `1.1` (every leading `HTTP/` removed, as `trim_start_matches`).
fn protocol_version(p: &str) -> &str {
    let mut p = p.trim();
    while let Some(rest) = p.strip_prefix("HTTP/") {
        p = rest;
    }
    p
}

/// [`protocol_version`] as an attribute value, a constant for the versions servers speak.
fn protocol_version_value(p: &str) -> ValueRef<'_> {
    match protocol_version(p) {
        "1.1" => ValueRef::Static("1.1"),
        "1.0" => ValueRef::Static("1.0"),
        // Go's Request.Proto for HTTP/2 is "HTTP/2.0"; semconv spells the version "2".
        "2" | "2.0" => ValueRef::Static("2"),
        "3" => ValueRef::Static("3"),
        v => ValueRef::Str(v),
    }
}

pub const SERVER_SCOPE: &str = "gotap/net/http/server";
pub const CLIENT_SCOPE: &str = "gotap/net/http/client";

pub fn server_span(req: &ServerRequest, frame: SpanFrame, capture_query: bool) -> Span {
    server_span_ref(&req.borrowed(), frame, capture_query)
}

/// [`server_span`] from borrowed strings (identical span).
pub fn server_span_ref(req: &ServerRequestRef<'_>, frame: SpanFrame, capture_query: bool) -> Span {
    collect_one(|out| server_span_to(req, &frame, capture_query, out))
}

/// [`server_span`] into a sink (see [`crate::sink`]).
pub fn server_span_to<S: SpanSink + ?Sized>(
    req: &ServerRequestRef<'_>,
    frame: &SpanFrame,
    capture_query: bool,
    out: &mut S,
) {
    out.begin(frame, SERVER_SCOPE);
    let method = normalize_method(req.method, out);
    out.attr(sc::HTTP_REQUEST_METHOD, ValueRef::Static(method));
    out.attr(sc::URL_PATH, ValueRef::Str(req.path));
    out.attr(
        sc::URL_SCHEME,
        ValueRef::Static(if req.tls { "https" } else { "http" }),
    );
    if capture_query {
        if let Some(q) = req.query.filter(|q| !q.is_empty()) {
            out.attr(sc::URL_QUERY, ValueRef::Str(q));
        }
    }
    let route = req.pattern.and_then(route_of);
    if let Some(r) = route {
        out.attr(sc::HTTP_ROUTE, ValueRef::Str(r));
    }
    if let Some(h) = req.host.filter(|h| !h.is_empty()) {
        let (host, port) = host_port(h);
        out.attr(sc::SERVER_ADDRESS, ValueRef::Str(host));
        if let Some(p) = port {
            out.attr(sc::SERVER_PORT, ValueRef::Int(p as i64));
        }
    }
    if let Some(c) = req.client_address.filter(|c| !c.is_empty()) {
        out.attr(sc::CLIENT_ADDRESS, ValueRef::Str(c));
        if let Some(p) = req.client_port {
            out.attr(sc::CLIENT_PORT, ValueRef::Int(p as i64));
        }
    }
    if let Some(ua) = req.user_agent.filter(|u| !u.is_empty()) {
        out.attr(sc::USER_AGENT_ORIGINAL, ValueRef::Str(ua));
    }
    if let Some(p) = req.protocol.filter(|p| !p.is_empty()) {
        out.attr(sc::NETWORK_PROTOCOL_VERSION, protocol_version_value(p));
    }
    let mut status = StatusRef::Unset;
    let mut digits = [0u8; 20];
    if let Some(code) = req.status_code {
        out.attr(sc::HTTP_RESPONSE_STATUS_CODE, ValueRef::Int(code as i64));
        // semconv: only 5xx is an error on the server side.
        if code >= 500 {
            status = StatusRef::Error("");
            out.attr(
                sc::ERROR_TYPE,
                ValueRef::Str(decimal(code as u64, &mut digits)),
            );
        }
    }
    match route {
        Some(r) if method != "_OTHER" => out.end(&[method, " ", r], SpanKind::Server, status),
        _ if method == "_OTHER" => out.end(&["HTTP"], SpanKind::Server, status),
        _ => out.end(&[method], SpanKind::Server, status),
    }
}

/// The CLIENT span of one round trip, query values in `url.full` redacted (see
/// [`client_span_to`]).
pub fn client_span(req: &ClientRequest, frame: SpanFrame) -> Span {
    client_span_ref(&req.borrowed(), frame)
}

/// [`client_span`] from borrowed strings (identical span).
pub fn client_span_ref(req: &ClientRequestRef<'_>, frame: SpanFrame) -> Span {
    collect_one(|out| client_span_to(req, &frame, false, out))
}

/// [`client_span`] into a sink (see [`crate::sink`]). `url.full` never carries credentials, and
/// its query keeps only its keys (`?apikey=REDACTED`) unless `capture_query` (the server span's
/// switch for `url.query`: a query string may carry secrets either way).
pub fn client_span_to<S: SpanSink + ?Sized>(
    req: &ClientRequestRef<'_>,
    frame: &SpanFrame,
    capture_query: bool,
    out: &mut S,
) {
    out.begin(frame, CLIENT_SCOPE);
    let method = normalize_method(req.method, out);
    out.attr(sc::HTTP_REQUEST_METHOD, ValueRef::Static(method));
    let url = redact_url(req.url);
    let redacted;
    let url: &str = if capture_query {
        &url
    } else {
        redacted = redact_query(&url);
        &redacted
    };
    out.attr(sc::URL_FULL, ValueRef::Str(url));
    if let Some((host, port)) = url_authority(req.url) {
        out.attr(sc::SERVER_ADDRESS, ValueRef::Str(host));
        out.attr(sc::SERVER_PORT, ValueRef::Int(port as i64));
    }
    let mut status = StatusRef::Unset;
    let mut digits = [0u8; 20];
    if let Some(code) = req.status_code {
        out.attr(sc::HTTP_RESPONSE_STATUS_CODE, ValueRef::Int(code as i64));
        // semconv: 4xx and 5xx are errors on the client side.
        if code >= 400 {
            status = StatusRef::Error("");
            out.attr(
                sc::ERROR_TYPE,
                ValueRef::Str(decimal(code as u64, &mut digits)),
            );
        }
    }
    if let Some(e) = req.error {
        status = StatusRef::Error(e);
        out.attr(sc::ERROR_TYPE, ValueRef::Static(error_type(e)));
    }
    let name = if method == "_OTHER" { "HTTP" } else { method };
    out.end(&[name], SpanKind::Client, status)
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
fn redact_url(url: &str) -> Cow<'_, str> {
    if let Some((scheme, rest)) = split_scheme(url) {
        let auth_end = byte_pos(rest, b'/').unwrap_or(rest.len());
        if let Some(at) = byte_rpos(&rest[..auth_end], b'@') {
            return Cow::Owned(format!("{scheme}://REDACTED:REDACTED@{}", &rest[at + 1..]));
        }
    }
    Cow::Borrowed(url)
}

/// semconv: the values of a query in `url.full` may be secrets (`?apikey=…`): each `key=value`
/// of the query (up to a `#`) becomes `key=REDACTED`; a key without `=` is kept.
pub fn redact_query(url: &str) -> Cow<'_, str> {
    let Some(q) = byte_pos(url, b'?') else {
        return Cow::Borrowed(url);
    };
    let end = byte_pos(&url[q..], b'#').map_or(url.len(), |h| q + h);
    let query = &url[q + 1..end];
    if !query.contains('=') {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(&url[..=q]);
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match byte_pos(pair, b'=') {
            Some(eq) => {
                out.push_str(&pair[..=eq]);
                out.push_str("REDACTED");
            }
            None => out.push_str(pair),
        }
    }
    out.push_str(&url[end..]);
    Cow::Owned(out)
}

/// (host, port) of an absolute URL, with the scheme's default port.
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    url_authority(url).map(|(h, p)| (h.to_owned(), p))
}

/// [`url_host_port`] without copying the host.
fn url_authority(url: &str) -> Option<(&str, u16)> {
    let (scheme, rest) = split_scheme(url)?;
    let auth_end = rest
        .bytes()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    let auth = byte_rpos(auth, b'@').map_or(auth, |i| &auth[i + 1..]);
    let (host, port) = host_port(auth);
    let port = port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{split_host_port, Attributes, Resource, Status, Value};
    use std::sync::Arc;

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
        assert_eq!(
            s.attr(sc::NETWORK_PROTOCOL_VERSION),
            Some(&Value::from("1.1"))
        );
        assert_eq!(s.attr(sc::URL_QUERY), None, "query is opt-in");
        assert!(matches!(s.status, Status::Error(_)));
    }

    #[test]
    fn server_span_without_route_is_method() {
        let req = ServerRequest {
            method: "POST".into(),
            path: "/x".into(),
            status_code: Some(404),
            ..Default::default()
        };
        let s = server_span(&req, frame(), true);
        assert_eq!(s.name, "POST");
        assert_eq!(s.status, Status::Unset, "4xx is not a server error");
    }

    /// Query values are redacted in `url.full` unless the query is captured, keys kept.
    #[test]
    fn client_query_values_redacted() {
        let url = |u: &str, capture: bool| {
            let req = ClientRequest {
                method: "GET".into(),
                url: u.into(),
                status_code: Some(200),
                error: None,
            };
            let s = collect_one(|out| client_span_to(&req.borrowed(), &frame(), capture, out));
            match s.attr(sc::URL_FULL) {
                Some(Value::Str(v)) => v.to_string(),
                v => panic!("url.full {v:?}"),
            }
        };
        for (u, want) in [
            (
                "http://h:1/p?apikey=s3cret&x=1",
                "http://h:1/p?apikey=REDACTED&x=REDACTED",
            ),
            (
                "http://h/p?flag&k=&z=a=b",
                "http://h/p?flag&k=REDACTED&z=REDACTED",
            ),
            ("http://h/p?k=v#frag", "http://h/p?k=REDACTED#frag"),
            ("http://h/p?flag", "http://h/p?flag"),
            ("http://h/p", "http://h/p"),
            (
                "http://u:pw@h/p?token=t",
                "http://REDACTED:REDACTED@h/p?token=REDACTED",
            ),
        ] {
            assert_eq!(url(u, false), want, "{u}");
        }
        assert_eq!(
            url("http://h:1/p?apikey=s3cret&x=1", true),
            "http://h:1/p?apikey=s3cret&x=1"
        );
        assert_eq!(
            url("http://u:pw@h/p?token=t", true),
            "http://REDACTED:REDACTED@h/p?token=t",
            "credentials go even with the query captured"
        );
    }

    #[test]
    fn client_span_attributes() {
        let req = ClientRequest {
            method: "GET".into(),
            url: "http://u:p@127.0.0.1:9090/a?b".into(),
            status_code: Some(404),
            error: None,
        };
        let s = client_span(&req, frame());
        assert_eq!(s.name, "GET");
        assert_eq!(
            s.attr(sc::URL_FULL),
            Some(&Value::from("http://REDACTED:REDACTED@127.0.0.1:9090/a?b"))
        );
        assert_eq!(s.attr(sc::SERVER_ADDRESS), Some(&Value::from("127.0.0.1")));
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(9090)));
        assert!(matches!(s.status, Status::Error(_)));
    }

    /// The byte-level parsers give what the `str` searches they replaced gave.
    #[test]
    fn parsers_match_str_searches() {
        fn old_route(p: &str) -> Option<String> {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            let p = match p.split_once(' ') {
                Some((_, rest)) => rest.trim_start(),
                None => p,
            };
            p.find('/').map(|i| p[i..].to_owned())
        }
        fn old_split(hp: &str) -> (String, Option<u16>) {
            if let Some(rest) = hp.strip_prefix('[') {
                if let Some((h, tail)) = rest.split_once(']') {
                    return (
                        h.to_owned(),
                        tail.strip_prefix(':').and_then(|p| p.parse().ok()),
                    );
                }
            }
            match hp.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_owned(), p.parse().ok()),
                _ => (hp.to_owned(), None),
            }
        }
        fn old_url(url: &str) -> Option<(String, u16)> {
            let (scheme, rest) = url.split_once("://")?;
            let auth = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            let (host, port) = old_split(auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth));
            Some((
                host,
                port.or(match scheme {
                    "http" => Some(80),
                    "https" => Some(443),
                    _ => None,
                })?,
            ))
        }
        fn old_redact(url: &str) -> String {
            if let Some((scheme, rest)) = url.split_once("://") {
                let auth_end = rest.find('/').unwrap_or(rest.len());
                if let Some(at) = rest[..auth_end].rfind('@') {
                    return format!("{scheme}://REDACTED:REDACTED@{}", &rest[at + 1..]);
                }
            }
            url.to_owned()
        }
        let inputs = [
            "",
            " ",
            ":",
            "::",
            "://",
            "a://",
            "[",
            "]",
            "[]",
            "[::1]",
            "[::1]:80",
            "[::1]x",
            "[::1]:",
            "[é]:1",
            "::1",
            "h:",
            "h:99999",
            "h:8080",
            "é:1",
            "GET /a/{b}",
            "  GET   example.com/a ",
            "GET",
            "/x",
            "x/ /y",
            "http://u:p@h:1/a?b#c",
            "https://h",
            "https://h?x",
            "ftp://h/p",
            "http://@h",
            "http://a@b@c:2/",
            "http://[::1]:9/x",
            "http:/h",
            "h://x://y",
            "http://h/p@q",
            "https://é/",
            "1.1",
            "HTTP/1.1",
            "HTTP/HTTP/2",
            " HTTP/1.0 ",
        ];
        for i in inputs {
            assert_eq!(route_from_pattern(i), old_route(i), "route {i:?}");
            assert_eq!(split_host_port(i), old_split(i), "host:port {i:?}");
            assert_eq!(url_host_port(i), old_url(i), "url {i:?}");
            assert_eq!(redact_url(i), old_redact(i), "redact {i:?}");
            assert_eq!(
                protocol_version(i),
                i.trim().trim_start_matches("HTTP/"),
                "protocol {i:?}"
            );
        }
    }

    /// Every attribute, in order, for an unusual request (owned and borrowed builders agree).
    #[test]
    fn server_span_all_attributes() {
        let req = ServerRequest {
            method: "PURGE".into(),
            path: "/c".into(),
            query: Some("k=v".into()),
            pattern: Some("/c".into()),
            host: Some("[::1]:8443".into()),
            client_address: Some("10.0.0.1".into()),
            client_port: Some(5),
            user_agent: Some("ua".into()),
            protocol: Some("HTTP/2.0".into()),
            status_code: Some(500),
            tls: true,
        };
        let s = server_span(&req, frame(), true);
        let want: Attributes = vec![
            (sc::HTTP_REQUEST_METHOD_ORIGINAL, Value::from("PURGE")),
            (sc::HTTP_REQUEST_METHOD, Value::from("_OTHER")),
            (sc::URL_PATH, Value::from("/c")),
            (sc::URL_SCHEME, Value::from("https")),
            (sc::URL_QUERY, Value::from("k=v")),
            (sc::HTTP_ROUTE, Value::from("/c")),
            (sc::SERVER_ADDRESS, Value::from("::1")),
            (sc::SERVER_PORT, Value::Int(8443)),
            (sc::CLIENT_ADDRESS, Value::from("10.0.0.1")),
            (sc::CLIENT_PORT, Value::Int(5)),
            (sc::USER_AGENT_ORIGINAL, Value::from("ua")),
            (sc::NETWORK_PROTOCOL_VERSION, Value::from("2")),
            (sc::HTTP_RESPONSE_STATUS_CODE, Value::Int(500)),
            (sc::ERROR_TYPE, Value::from("500")),
        ];
        assert_eq!(
            (s.name.as_str(), &s.attributes, &s.status),
            ("HTTP", &want, &Status::Error(String::new()))
        );
        assert_eq!(server_span_ref(&req.borrowed(), frame(), true), s);
        let c = ClientRequest {
            method: "GET".into(),
            url: "https://h/x".into(),
            status_code: None,
            error: Some("i/o timeout".into()),
        };
        let cs = client_span(&c, frame());
        assert_eq!(cs.attr(sc::ERROR_TYPE), Some(&Value::from("timeout")));
        assert_eq!(cs.attr(sc::SERVER_PORT), Some(&Value::Int(443)));
        assert_eq!(client_span_ref(&c.borrowed(), frame()), cs);
    }

    #[test]
    fn routes_from_patterns() {
        assert_eq!(route_from_pattern("/a/{b}").as_deref(), Some("/a/{b}"));
        assert_eq!(
            route_from_pattern("GET example.com/a").as_deref(),
            Some("/a")
        );
        assert_eq!(route_from_pattern(""), None);
    }
}
