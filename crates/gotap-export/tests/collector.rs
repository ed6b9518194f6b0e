//! End-to-end against a real OpenTelemetry Collector (go/collector): spans exported over OTLP/gRPC
//! and OTLP/HTTP arrive intact, gotap's own JSON lines file matches the collector's file output,
//! and a collector that is down or comes up late is handled without blocking producers.
mod common;

use common::*;
use gotap_export::{BatchConfig, ExportConfig, OtlpConfig, Overrides, Pipeline, Protocol};
use std::time::{Duration, Instant};

fn config(
    protocol: Protocol,
    endpoint: &str,
    json_file: Option<std::path::PathBuf>,
) -> ExportConfig {
    // Through the same parsing users get: flags as overrides, no environment.
    let o = Overrides {
        otlp_endpoint: Some(endpoint.into()),
        otlp_protocol: Some(protocol),
        otlp_headers: vec![("x-gotap-test".into(), "1".into())],
        console: Some(false),
        json_file,
        service_name: None,
    };
    ExportConfig::from_lookup(|_| None, &o).unwrap()
}

fn export_and_compare(protocol: Protocol, name: &str) {
    let dir = scratch(name);
    let col = Collector::start(&dir);
    let port = if protocol == Protocol::Grpc {
        col.grpc_port
    } else {
        col.http_port
    };
    let ours = dir.join("gotap.jsonl");
    let cfg = config(
        protocol,
        &format!("http://127.0.0.1:{port}"),
        Some(ours.clone()),
    );
    let otlp_name = if protocol == Protocol::Grpc {
        "otlp-grpc"
    } else {
        "otlp-http"
    };

    let res = resource();
    let mut spans = sample_spans(&res, 1);
    spans.extend(sample_spans(&res, 2));
    let pipeline = Pipeline::start(&cfg).unwrap();
    let tx = pipeline.sender();
    for s in &spans {
        assert!(tx.send(s.clone()));
    }
    let stats = pipeline.shutdown();
    assert_eq!(stats.dropped_queue_full, 0);
    for e in ["file", otlp_name] {
        let e = stats
            .exporter(e)
            .unwrap_or_else(|| panic!("no {e} stats in {stats:?}"));
        assert_eq!(
            (e.exported, e.dropped_export_failed),
            (spans.len() as u64, 0),
            "{stats:?}\ncollector log:\n{}",
            col.log()
        );
    }

    let theirs = col.requests(spans.len());
    assert_spans_match(&theirs, &spans);
    let mine = read_json_lines(&ours);
    assert_spans_match(&mine, &spans);
    // Same batches went to both exporters, so the files must agree line for line.
    assert_eq!(mine.len(), theirs.len());
    for (m, t) in mine.iter().zip(&theirs) {
        assert_eq!(
            normalize(m),
            normalize(t),
            "gotap's JSON line differs from the collector's:\n gotap:     {m}\n collector: {t}"
        );
    }
    drop(col);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn grpc_export_reaches_the_collector_and_file_shapes_match() {
    export_and_compare(Protocol::Grpc, "grpc");
}

#[test]
fn http_export_reaches_the_collector_and_file_shapes_match() {
    export_and_compare(Protocol::HttpProtobuf, "http");
}

#[test]
fn collector_down_never_blocks_and_counts_drops() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let closed = gotap_testkit::free_port(); // nothing listens there
        let mut cfg = config(protocol, &format!("http://127.0.0.1:{closed}"), None);
        cfg.batch = BatchConfig {
            max_queue_size: 64,
            max_export_batch_size: 16,
            max_buffered_spans: 100,
            shutdown_timeout: Duration::from_millis(800),
            ..cfg.batch
        };
        let pipeline = Pipeline::start(&cfg).unwrap();
        let tx = pipeline.sender();
        let res = resource();
        let spans = sample_spans(&res, 3);
        let n = 5000;
        let mut slowest = Duration::ZERO;
        let t = Instant::now();
        for i in 0..n {
            let one = Instant::now();
            tx.send(spans[i % spans.len()].clone());
            slowest = slowest.max(one.elapsed());
        }
        let sending = t.elapsed();
        assert!(
            slowest < Duration::from_millis(300), // a blocked send waits out retries: seconds
            "{protocol:?}: one send took {slowest:?}"
        );
        assert!(
            sending < Duration::from_secs(2),
            "{protocol:?}: {n} sends took {sending:?}"
        );
        std::thread::sleep(Duration::from_millis(300)); // let a few retries fail

        let t = Instant::now();
        let stats = pipeline.shutdown();
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(800 + 1000),
            "{protocol:?}: shutdown took {took:?}"
        );
        let e = &stats.exporters[0];
        assert_eq!(e.exported, 0, "{stats:?}");
        assert_eq!(e.pending, 0);
        assert!(e.dropped_export_failed > 0, "{stats:?}");
        assert_eq!(
            stats.dropped_queue_full + e.dropped_export_failed,
            n as u64,
            "every span accounted for: {stats:?}"
        );
    }
}

#[test]
fn spans_sent_while_the_collector_is_down_arrive_when_it_comes_up() {
    let dir = scratch("late");
    let (grpc_port, http_port) = (gotap_testkit::free_port(), gotap_testkit::free_port());
    let mut cfg = config(
        Protocol::HttpProtobuf,
        &format!("http://127.0.0.1:{http_port}"),
        None,
    );
    cfg.batch.max_backoff = Duration::from_millis(300);
    cfg.batch.shutdown_timeout = Duration::from_secs(10);
    let pipeline = Pipeline::start(&cfg).unwrap();
    let tx = pipeline.sender();
    let spans = sample_spans(&resource(), 4);
    for s in &spans {
        tx.send(s.clone());
    }
    std::thread::sleep(Duration::from_millis(700)); // the first exports fail
    let col = Collector::start_on(&dir, grpc_port, http_port);
    let theirs = col.requests(spans.len());
    assert_spans_match(&theirs, &spans);
    let stats = pipeline.shutdown();
    assert_eq!(stats.exporters[0].exported, spans.len() as u64, "{stats:?}");
    assert_eq!(stats.exporters[0].dropped_export_failed, 0, "{stats:?}");
    drop(col);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn otlp_config_is_usable_directly() {
    // The OtlpConfig a CLI would build by hand is accepted as is (no parsing involved).
    let rt = std::sync::Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
    let cfg = OtlpConfig {
        protocol: Protocol::Grpc,
        endpoint: "http://127.0.0.1:1".into(),
        headers: vec![("bad header".into(), "x".into())],
        timeout: Duration::from_secs(1),
    };
    let err = gotap_export::GrpcExporter::new(rt.clone(), &cfg)
        .err()
        .expect("invalid header name is refused");
    assert!(err.to_string().contains("bad header"), "{err}");
    let err = gotap_export::HttpExporter::new(
        rt,
        &OtlpConfig {
            protocol: Protocol::HttpProtobuf,
            ..cfg
        },
    )
    .err()
    .expect("invalid header name is refused");
    assert!(err.to_string().contains("bad header"), "{err}");
}
