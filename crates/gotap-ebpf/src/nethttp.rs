//! net/http: turns the BPF programs' events (bpf/gotap.bpf.c, server_* and client_* programs)
//! into spans through gotap_spans' builders.
use std::sync::Arc;

use gotap_spans::http::{self, ClientRequest, ServerRequest, SpanFrame};
use gotap_spans::{Resource, Span};

use crate::abi::{self, text, HttpEvent};

/// Converts one event. `mono_to_unix` is added to BPF monotonic timestamps.
pub fn to_span(ev: &HttpEvent, resource: Arc<Resource>, capture_query: bool, mono_to_unix: i128) -> Option<Span> {
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
    let method = match text(&ev.method, ev.method_len) {
        m if m.is_empty() => "GET".to_owned(), // Go: an empty Request.Method means GET
        m => m,
    };
    match ev.kind {
        abi::EV_SERVER => {
            let remote = text(&ev.remote, ev.remote_len);
            let (client_address, client_port) = if remote.is_empty() {
                (None, None)
            } else {
                let (h, p) = http::split_host_port(&remote);
                (Some(h), p)
            };
            let req = ServerRequest {
                method,
                path: text(&ev.path, ev.path_len),
                query: Some(text(&ev.query, ev.query_len)).filter(|q| !q.is_empty()),
                pattern: Some(text(&ev.pattern, ev.pattern_len)).filter(|p| !p.is_empty()),
                host: Some(text(&ev.host, ev.host_len)).filter(|h| !h.is_empty()),
                client_address,
                client_port,
                user_agent: Some(text(&ev.ua, ev.ua_len)).filter(|u| !u.is_empty()),
                protocol: Some(text(&ev.proto, ev.proto_len)).filter(|p| !p.is_empty()),
                status_code: status,
            };
            Some(http::server_span(&req, frame, capture_query))
        }
        abi::EV_CLIENT => {
            let scheme = match text(&ev.proto, ev.proto_len) {
                s if s.is_empty() => "http".to_owned(),
                s => s,
            };
            let query = text(&ev.query, ev.query_len);
            let mut url = format!("{scheme}://{}{}", text(&ev.host, ev.host_len), text(&ev.path, ev.path_len));
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query);
            }
            let req = ClientRequest {
                method,
                url,
                status_code: status,
                // The error's text needs its dynamic type's Error method: not readable from BPF.
                error: (ev.flags & abi::EVF_ERROR != 0).then(|| "transport error".to_owned()),
            };
            Some(http::client_span(&req, frame))
        }
        _ => None,
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
        assert_eq!(s.attr(sc::URL_FULL), Some(&Value::from("http://example.com:8080/a/b?x=1")));
        assert_eq!(s.parent_span_id, Some([9; 8]));
        assert_eq!((s.start_unix_nano, s.end_unix_nano), (1_010, 3_010));
        assert!(matches!(s.status, Status::Error(_)), "404 is a client error");
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
        assert_eq!(s.attr(sc::USER_AGENT_ORIGINAL), Some(&Value::from("curl/8")));
    }

    #[test]
    fn unknown_kind_and_wrong_sizes_are_rejected() {
        assert!(to_span(&event(9), Arc::new(Resource::default()), false, 0).is_none());
        assert!(HttpEvent::from_bytes(&[0u8; 100]).is_none());
        assert!(HttpEvent::from_bytes(&[0u8; std::mem::size_of::<HttpEvent>()]).is_some());
    }
}
