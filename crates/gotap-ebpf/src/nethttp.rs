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
