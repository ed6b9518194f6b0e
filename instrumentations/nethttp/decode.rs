//! net/http's site events into spans (compiled into gotap-ebpf as
//! `crate::libs::nethttp_decode`, crates/gotap-ebpf/build.rs): the server and client kinds its
//! probe sites emit (`gotap build --probes`, then `gotap run`), handed to the builders the woven
//! runtime's spans follow (`gotap_spans::nethttp`). The event layout and string slots are defined
//! in crates/gotap-ebpf/layout/records.json.
use gotap_spans::nethttp::{self as http, ClientRequestRef, ServerRequestRef};
use gotap_spans::SpanFrame;
use gotap_spans::sink::SpanSink;

use crate::abi::{non_empty, SiteEvent, EV_SITE_CLIENT, EV_SITE_SERVER};
use crate::library::SiteKind;

pub const KINDS: &[SiteKind] = &[
    SiteKind {
        kind: EV_SITE_SERVER,
        decode: server,
    },
    SiteKind {
        kind: EV_SITE_CLIENT,
        decode: client,
    },
];

/// String slots of net/http site events (records.json).
mod slot {
    pub const METHOD: usize = 0;
    pub const PATH: usize = 1; // client: URL
    pub const PATTERN: usize = 2; // client: error text
    pub const HOST: usize = 3;
    pub const REMOTE: usize = 4;
    pub const UA: usize = 5;
    pub const PROTO: usize = 6;
    pub const QUERY: usize = 7;
    pub const CLIENT_ERROR: usize = 2;
}

fn server(ev: &SiteEvent<'_>, frame: &SpanFrame, capture_query: bool, out: &mut dyn SpanSink) {
    let h = &ev.h;
    let remote = ev.str(slot::REMOTE);
    let (client_address, client_port) = match non_empty(&remote) {
        None => (None, None),
        Some(r) => {
            let (h, p) = gotap_spans::host_port(r);
            (Some(h), p)
        }
    };
    let (method, path, pattern) = (
        ev.str(slot::METHOD),
        ev.str(slot::PATH),
        ev.str(slot::PATTERN),
    );
    let (host, ua, proto) = (ev.str(slot::HOST), ev.str(slot::UA), ev.str(slot::PROTO));
    // The query is read only when it is exported.
    let query = if capture_query {
        ev.str(slot::QUERY)
    } else {
        Default::default()
    };
    let req = ServerRequestRef {
        method: method_or_get(&method),
        path: &path,
        query: non_empty(&query),
        pattern: non_empty(&pattern),
        host: non_empty(&host),
        client_address,
        client_port,
        user_agent: non_empty(&ua),
        protocol: non_empty(&proto),
        status_code: server_status(h.status),
        tls: h.rflags & RFLAG_TLS != 0,
    };
    http::server_span_to(&req, frame, capture_query, out);
}

fn client(ev: &SiteEvent<'_>, frame: &SpanFrame, capture_query: bool, out: &mut dyn SpanSink) {
    let h = &ev.h;
    let (method, url, error) = (
        ev.str(slot::METHOD),
        ev.str(slot::PATH),
        ev.str(slot::CLIENT_ERROR),
    );
    let req = ClientRequestRef {
        method: method_or_get(&method),
        url: &url,
        // 0: the round trip failed before a response.
        status_code: u16::try_from(h.status).ok().filter(|&s| s != 0),
        error: non_empty(&error),
    };
    http::client_span_to(&req, frame, capture_query, out);
}

/// Record flag bit 4 of a server site event (probes/gotap_probes.go): the request came
/// over TLS (`Request.TLS != nil`), so `url.scheme` is `https`. Bits 0 and 1 are sampled and
/// remote parent; bit 2 is taken (`REC_PACKED`, the packed strings of older builds, which the BPF
/// program still reads) and bit 3 is `abi::REC_TEXT_CUT`.
pub const RFLAG_TLS: u64 = 16;

/// The status a server site reported: 0 means the handler wrote nothing, and net/http then answers
/// 200 (as the function probes); a negative one (-1) means the fragment could not read the status
/// from the ResponseWriter it was given (a writer it does not know), and the span omits
/// `http.response.status_code` rather than claim 200.
fn server_status(status: i64) -> Option<u16> {
    match status {
        0 => Some(200),
        s => u16::try_from(s).ok(),
    }
}

/// Go: an empty Request.Method means GET.
fn method_or_get(m: &str) -> &str {
    if m.is_empty() {
        "GET"
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi;
    use crate::sites::to_span;
    use gotap_spans::{semconv as sc, Resource, SpanKind, Status, Value};
    use std::sync::Arc;

    fn header(kind: u8) -> abi::SiteHeader {
        abi::SiteHeader {
            kind,
            trace_hi: 0x0af7651916cd43dd,
            trace_lo: 0x8448eb211c80319c,
            span: 0xb7ad6b7169203331,
            start: 1_000,
            duration_ns: 500,
            ..Default::default()
        }
    }

    fn span(h: &abi::SiteHeader, strs: &[&str], capture_query: bool) -> Option<gotap_spans::Span> {
        let strs: Vec<&[u8]> = strs.iter().map(|s| s.as_bytes()).collect();
        let rec = abi::encode_site_event(h, &strs);
        to_span(
            &SiteEvent::parse(&rec).unwrap(),
            Arc::new(Resource::default()),
            capture_query,
        )
    }

    #[test]
    fn ids_are_big_endian_and_end_is_start_plus_duration() {
        let mut h = header(abi::EV_SITE_SERVER);
        h.parent = 0x00f067aa0ba902b7;
        h.status = 404;
        let s = span(&h, &[], false).unwrap();
        assert_eq!(
            gotap_spans::ids::hex(&s.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(gotap_spans::ids::hex(&s.span_id), "b7ad6b7169203331");
        assert_eq!(
            s.parent_span_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!((s.start_unix_nano, s.end_unix_nano), (1_000, 1_500));
        assert_eq!(s.name, "GET", "no pattern, empty method");
        assert_eq!(s.status, Status::Unset, "404 is not a server error");
        h.parent = 0;
        assert_eq!(
            span(&h, &[], false).unwrap().parent_span_id,
            None,
            "0 = root"
        );
    }

    /// Every slot of a server event lands in its attribute: the same span as the owned builder.
    #[test]
    fn server_slots_are_the_request() {
        let h = header(abi::EV_SITE_SERVER);
        let strs = [
            "PUT",
            "/users/42",
            "PUT /users/{id}",
            "example.com:8080",
            "10.0.0.1:5555",
            "curl/8",
            "HTTP/1.1",
            "a=1",
        ];
        for capture_query in [false, true] {
            let s = span(&h, &strs, capture_query).unwrap();
            let req = http::ServerRequest {
                method: "PUT".into(),
                path: "/users/42".into(),
                query: Some("a=1".into()),
                pattern: Some("PUT /users/{id}".into()),
                host: Some("example.com:8080".into()),
                client_address: Some("10.0.0.1".into()),
                client_port: Some(5555),
                user_agent: Some("curl/8".into()),
                protocol: Some("HTTP/1.1".into()),
                status_code: Some(200),
                tls: false,
            };
            let want = http::server_span(&req, s_frame(&s), capture_query);
            assert_eq!(s, want);
        }
    }

    fn s_frame(s: &gotap_spans::Span) -> SpanFrame {
        SpanFrame {
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            start_unix_nano: s.start_unix_nano,
            end_unix_nano: s.end_unix_nano,
            resource: s.resource.clone(),
        }
    }

    /// HTTP/2 and HTTPS: the TLS flag makes url.scheme https, a real 503 is an error, and a
    /// status the fragment could not read (-1) is left out instead of reported as 200.
    #[test]
    fn server_tls_flag_and_unknown_status() {
        let mut h = header(abi::EV_SITE_SERVER);
        h.rflags = 1 | RFLAG_TLS;
        h.status = 503;
        let strs = ["GET", "/x", "", "h:8443", "", "", "HTTP/2.0", ""];
        let s = span(&h, &strs, false).unwrap();
        assert_eq!(s.attr(sc::URL_SCHEME), Some(&Value::from("https")));
        assert_eq!(
            s.attr(sc::HTTP_RESPONSE_STATUS_CODE),
            Some(&Value::Int(503))
        );
        assert_eq!(
            s.attr(sc::NETWORK_PROTOCOL_VERSION),
            Some(&Value::from("2"))
        );
        assert!(matches!(s.status, Status::Error(_)));
        h.rflags = 1;
        h.status = -1;
        let s = span(&h, &strs, false).unwrap();
        assert_eq!(s.attr(sc::URL_SCHEME), Some(&Value::from("http")));
        assert_eq!(s.attr(sc::HTTP_RESPONSE_STATUS_CODE), None);
        assert_eq!(s.status, Status::Unset);
        h.status = 0;
        let s = span(&h, &strs, false).unwrap();
        assert_eq!(
            s.attr(sc::HTTP_RESPONSE_STATUS_CODE),
            Some(&Value::Int(200))
        );
    }

    #[test]
    fn client_error_text_and_status() {
        let mut h = header(abi::EV_SITE_CLIENT);
        let err = "dial tcp 127.0.0.1:9: connect: connection refused";
        let s = span(&h, &["POST", "http://127.0.0.1:9/orders?id=7", err], false).unwrap();
        assert_eq!((s.kind, s.name.as_str()), (SpanKind::Client, "POST"));
        assert_eq!(
            s.attr(sc::URL_FULL),
            Some(&Value::from("http://127.0.0.1:9/orders?id=REDACTED")),
            "query values are redacted by default"
        );
        let captured = span(&h, &["POST", "http://127.0.0.1:9/orders?id=7", err], true).unwrap();
        assert_eq!(
            captured.attr(sc::URL_FULL),
            Some(&Value::from("http://127.0.0.1:9/orders?id=7")),
            "--capture-query keeps them"
        );
        assert_eq!(
            s.attr(sc::HTTP_RESPONSE_STATUS_CODE),
            None,
            "status 0: no response"
        );
        assert_eq!(s.status, Status::Error(err.into()));
        h.status = 200;
        let ok = span(&h, &["POST", "http://127.0.0.1:9/orders?id=7"], false).unwrap();
        assert_eq!(
            (ok.attr(sc::HTTP_RESPONSE_STATUS_CODE), &ok.status),
            (Some(&Value::Int(200)), &Status::Unset)
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let h = header(abi::EV_SITE_SERVER);
        let rec = abi::encode_site_event(&h, &[b"GET", b"/a\xffb"]);
        let s = to_span(
            &SiteEvent::parse(&rec).unwrap(),
            Arc::new(Resource::default()),
            false,
        )
        .unwrap();
        assert_eq!(s.attr(sc::URL_PATH), Some(&Value::from("/a\u{fffd}b")));
    }
}
