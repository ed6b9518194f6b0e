//! net/http: turns the BPF programs' events (bpf/gotap.bpf.c, server_* and client_* programs)
//! into spans through gotap_spans' builders.
use std::borrow::Cow;
use std::sync::Arc;

use gotap_spans::http::{self, ClientRequestRef, ServerRequestRef, SpanFrame};
use gotap_spans::sink::SpanSink;
use gotap_spans::Resource;

use crate::abi::{self, HttpEvent};

/// A string field of an event, borrowed from it: `len` bytes of `buf` (clamped), decoded lossily
/// only if they are not UTF-8 (the common case costs a validation, no copy).
pub(crate) fn field(buf: &[u8], len: u16) -> Cow<'_, str> {
    let b = &buf[..(len as usize).min(buf.len())];
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `Some(s)` unless empty.
pub(crate) fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// Converts one event. `mono_to_unix` is added to BPF monotonic timestamps.
#[cfg(test)] // the agent emits into its sink; tests look at the span
pub fn to_span(
    ev: &HttpEvent,
    resource: Arc<Resource>,
    capture_query: bool,
    mono_to_unix: i128,
) -> Option<gotap_spans::Span> {
    let mut got = None;
    emit(
        ev,
        resource,
        capture_query,
        mono_to_unix,
        &mut gotap_spans::sink::Collect::new(|s| got = Some(s)),
    );
    got
}

/// Converts one event into `out` (`to_span` in tests); `false` for an event of no known kind.
pub fn emit<S: SpanSink + ?Sized>(
    ev: &HttpEvent,
    resource: Arc<Resource>,
    capture_query: bool,
    mono_to_unix: i128,
    out: &mut S,
) -> bool {
    let unix = |ns: u64| (ns as i128 + mono_to_unix).max(0) as u64;
    let frame = SpanFrame {
        trace_id: ev.trace_id,
        span_id: ev.span_id,
        parent_span_id: (ev.flags & abi::EVF_HAS_PARENT != 0).then_some(ev.parent_id),
        start_unix_nano: unix(ev.start_ns),
        end_unix_nano: unix(ev.end_ns),
        resource,
    };
    let status = (ev.flags & abi::EVF_HAS_STATUS != 0).then_some(ev.status);
    let method = field(&ev.method, ev.method_len);
    let method = match &*method {
        "" => "GET", // Go: an empty Request.Method means GET
        m => m,
    };
    match ev.kind {
        abi::EV_SERVER => {
            let remote = field(&ev.remote, ev.remote_len);
            let (client_address, client_port) = match non_empty(&remote) {
                None => (None, None),
                Some(r) => {
                    let (h, p) = http::host_port(r);
                    (Some(h), p)
                }
            };
            let (path, query, pattern) = (
                field(&ev.path, ev.path_len),
                field(&ev.query, ev.query_len),
                field(&ev.pattern, ev.pattern_len),
            );
            let (host, ua, proto) = (
                field(&ev.host, ev.host_len),
                field(&ev.ua, ev.ua_len),
                field(&ev.proto, ev.proto_len),
            );
            let req = ServerRequestRef {
                method,
                path: &path,
                query: non_empty(&query),
                pattern: non_empty(&pattern),
                host: non_empty(&host),
                client_address,
                client_port,
                user_agent: non_empty(&ua),
                protocol: non_empty(&proto),
                status_code: status,
                // The function probes do not read Request.TLS (no offset for it yet): HTTPS
                // requests are reported as url.scheme "http" by this strategy.
                tls: false,
            };
            http::server_span_to(&req, &frame, capture_query, out);
            true
        }
        abi::EV_CLIENT => {
            let scheme = field(&ev.proto, ev.proto_len);
            let scheme = non_empty(&scheme).unwrap_or("http");
            let (host, path, query) = (
                field(&ev.host, ev.host_len),
                field(&ev.path, ev.path_len),
                field(&ev.query, ev.query_len),
            );
            let mut url =
                String::with_capacity(scheme.len() + 3 + host.len() + path.len() + 1 + query.len());
            url.push_str(scheme);
            url.push_str("://");
            url.push_str(&host);
            url.push_str(&path);
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query);
            }
            let req = ClientRequestRef {
                method,
                url: &url,
                status_code: status,
                // The error's text needs its dynamic type's Error method: not readable from BPF.
                error: (ev.flags & abi::EVF_ERROR != 0).then_some("transport error"),
            };
            http::client_span_to(&req, &frame, capture_query, out);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gotap_spans::{semconv as sc, SpanKind, Status, Value};

    fn event(kind: u8) -> HttpEvent {
        // SAFETY: HttpEvent is plain data; all-zero is a valid value.
        let mut ev: HttpEvent = unsafe { std::mem::zeroed() };
        ev.kind = kind;
        ev.start_ns = 1_000;
        ev.end_ns = 3_000;
        ev.trace_id = [7; 16];
        ev.span_id = [8; 8];
        ev
    }

    fn set(buf: &mut [u8], len: &mut u16, s: &str) {
        buf[..s.len()].copy_from_slice(s.as_bytes());
        *len = s.len() as u16;
    }

    #[test]
    fn client_event_rebuilds_the_url() {
        let mut ev = event(abi::EV_CLIENT);
        set(&mut ev.host, &mut ev.host_len, "example.com:8080");
        set(&mut ev.path, &mut ev.path_len, "/a/b");
        set(&mut ev.query, &mut ev.query_len, "x=1");
        ev.flags = abi::EVF_HAS_PARENT | abi::EVF_HAS_STATUS;
        ev.parent_id = [9; 8];
        ev.status = 404;
        let s = to_span(&ev, Arc::new(Resource::default()), false, 10).unwrap();
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.name, "GET", "empty Method means GET");
        assert_eq!(
            s.attr(sc::URL_FULL),
            Some(&Value::from("http://example.com:8080/a/b?x=REDACTED")),
            "query values are redacted by default"
        );
        let captured = to_span(&ev, Arc::new(Resource::default()), true, 10).unwrap();
        assert_eq!(
            captured.attr(sc::URL_FULL),
            Some(&Value::from("http://example.com:8080/a/b?x=1")),
            "--capture-query keeps them"
        );
        assert_eq!(s.parent_span_id, Some([9; 8]));
        assert_eq!((s.start_unix_nano, s.end_unix_nano), (1_010, 3_010));
        assert!(
            matches!(s.status, Status::Error(_)),
            "404 is a client error"
        );
    }

    #[test]
    fn client_error_and_no_parent() {
        let mut ev = event(abi::EV_CLIENT);
        set(&mut ev.method, &mut ev.method_len, "POST");
        set(&mut ev.proto, &mut ev.proto_len, "https");
        set(&mut ev.host, &mut ev.host_len, "h");
        ev.flags = abi::EVF_ERROR;
        let s = to_span(&ev, Arc::new(Resource::default()), false, 0).unwrap();
        assert_eq!(s.name, "POST");
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.attr(sc::URL_FULL), Some(&Value::from("https://h")));
        assert_eq!(s.status, Status::Error("transport error".into()));
    }

    #[test]
    fn server_event_fields() {
        let mut ev = event(abi::EV_SERVER);
        set(&mut ev.method, &mut ev.method_len, "GET");
        set(&mut ev.path, &mut ev.path_len, "/users/1");
        set(&mut ev.pattern, &mut ev.pattern_len, "GET /users/{id}");
        set(&mut ev.remote, &mut ev.remote_len, "[::1]:5555");
        set(&mut ev.ua, &mut ev.ua_len, "curl/8");
        ev.flags = abi::EVF_HAS_STATUS;
        ev.status = 200;
        let s = to_span(&ev, Arc::new(Resource::default()), false, 0).unwrap();
        assert_eq!(s.name, "GET /users/{id}");
        assert_eq!(s.attr(sc::CLIENT_ADDRESS), Some(&Value::from("::1")));
        assert_eq!(s.attr(sc::CLIENT_PORT), Some(&Value::Int(5555)));
        assert_eq!(
            s.attr(sc::USER_AGENT_ORIGINAL),
            Some(&Value::from("curl/8"))
        );
    }

    #[test]
    fn unknown_kind_and_wrong_sizes_are_rejected() {
        assert!(to_span(&event(9), Arc::new(Resource::default()), false, 0).is_none());
        assert!(HttpEvent::from_bytes(&[0u8; 100]).is_none());
        assert!(HttpEvent::from_bytes(&[0u8; std::mem::size_of::<HttpEvent>()]).is_some());
    }
}
