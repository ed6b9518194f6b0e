//! What the OTLP/HTTP exporter puts on the wire (path, content type, headers, protobuf body) and
//! how it treats the spec's status codes, against a minimal HTTP server on loopback.
mod common;

use common::*;
use gotap_export::{ExportConfig, Overrides, Pipeline, Protocol};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves one request per status in `statuses`, in order, reporting each request.
fn serve(statuses: Vec<u16>) -> (u16, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter().peekable();
        while statuses.peek().is_some() {
            let Ok((conn, _)) = l.accept() else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut w = conn;
            // Keep-alive: several requests may come on one connection.
            while let Some(&st) = statuses.peek() {
                let mut request_line = String::new();
                if r.read_line(&mut request_line).unwrap_or(0) == 0 {
                    break;
                }
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                w.write_all(format!("HTTP/1.1 {st} X\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .unwrap();
                tx.send(Seen {
                    request_line: request_line.trim_end().to_owned(),
                    headers,
                    body,
                })
                .unwrap();
                statuses.next();
            }
        }
    });
    (port, rx)
}

fn pipeline(port: u16) -> Pipeline {
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://127.0.0.1:{port}/base/")),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("authorization=Bearer%20t0k,x-tenant=a".into()),
        _ => None,
    };
    let mut cfg = ExportConfig::from_lookup(env, &Overrides::default()).unwrap();
    cfg.batch.initial_backoff = Duration::from_millis(20);
    assert_eq!(
        cfg.otlp.as_ref().unwrap().protocol,
        Protocol::HttpProtobuf,
        "spec default"
    );
    Pipeline::start(&cfg).unwrap()
}

#[test]
fn request_shape_and_headers() {
    let (port, seen) = serve(vec![200]);
    let p = pipeline(port);
    let spans = sample_spans(&resource(), 5);
    for s in &spans {
        p.sender().send(s.clone());
    }
    let stats = p.shutdown();
    assert_eq!(
        stats.exporter("otlp-http").unwrap().exported,
        spans.len() as u64,
        "{stats:?}"
    );
    let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(req.request_line, "POST /base/v1/traces HTTP/1.1");
    let h = |k: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("content-type"), Some("application/x-protobuf"));
    assert_eq!(h("authorization"), Some("Bearer t0k"));
    assert_eq!(h("x-tenant"), Some("a"));
    let decoded = ExportTraceServiceRequest::decode(&req.body[..]).unwrap();
    assert_eq!(decoded, gotap_export::otlp::to_request(&spans));
}

#[test]
fn retryable_status_is_retried_and_client_errors_drop() {
    // 503 then 200: the batch arrives on the second attempt. Then 400: dropped, not retried.
    let (port, seen) = serve(vec![503, 200, 400]);
    let p = pipeline(port);
    let spans = sample_spans(&resource(), 6);
    for s in &spans {
        p.sender().send(s.clone());
    }
    assert!(seen.recv_timeout(Duration::from_secs(5)).is_ok());
    assert!(seen.recv_timeout(Duration::from_secs(5)).is_ok());
    for s in &spans {
        p.sender().send(s.clone());
    }
    assert!(seen.recv_timeout(Duration::from_secs(5)).is_ok());
    let stats = p.shutdown();
    let e = stats.exporter("otlp-http").unwrap();
    assert_eq!(
        (e.exported, e.dropped_export_failed),
        (spans.len() as u64, spans.len() as u64),
        "{stats:?}"
    );
    assert!(seen.try_recv().is_err(), "the 400 batch was not retried");
}
