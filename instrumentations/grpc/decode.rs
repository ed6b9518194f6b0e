//! grpc's site events into spans (compiled into gotap-ebpf as `crate::libs::grpc_decode`,
//! crates/gotap-ebpf/build.rs): the server and client kinds its probe sites emit (`gotap build
//! --probes`, then `gotap run`) and its function probes emit too (bpf/grpc.bpf.h), handed to the
//! builders the woven runtime's spans follow (`gotap_spans::grpc`). The event layout and string
//! slots are defined in crates/gotap-ebpf/layout/records.json.
use gotap_spans::grpc::{self as rpc, GrpcClientCall, GrpcServerCall};

use crate::abi::SiteEvent;
use crate::library::SiteKind;

/// Event kinds (records.json).
pub const EV_SITE_GRPC_SERVER: u8 = 6;
pub const EV_SITE_GRPC_CLIENT: u8 = 7;

pub const KINDS: &[SiteKind] = &[
    SiteKind {
        kind: EV_SITE_GRPC_SERVER,
        decode: |ev, frame, _, out| rpc::server_span_into(&grpc_server_call(ev), frame, out),
    },
    SiteKind {
        kind: EV_SITE_GRPC_CLIENT,
        decode: |ev, frame, _, out| rpc::client_span_into(&grpc_client_call(ev), frame, out),
    },
];

/// String slots (records.json).
mod slot {
    pub const GRPC_METHOD: usize = 0;
    pub const GRPC_PEER: usize = 1; // client: target
    pub const GRPC_MESSAGE: usize = 2;
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub fn grpc_server_call(ev: &SiteEvent<'_>) -> GrpcServerCall {
    GrpcServerCall {
        full_method: ev.string(slot::GRPC_METHOD),
        peer: opt(ev.string(slot::GRPC_PEER)),
        status_code: u32::try_from(ev.h.status).ok(),
        status_message: opt(ev.string(slot::GRPC_MESSAGE)),
    }
}

pub fn grpc_client_call(ev: &SiteEvent<'_>) -> GrpcClientCall {
    GrpcClientCall {
        full_method: ev.string(slot::GRPC_METHOD),
        target: ev.string(slot::GRPC_PEER),
        status_code: u32::try_from(ev.h.status).ok(),
        status_message: opt(ev.string(slot::GRPC_MESSAGE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{encode_site_event, SiteHeader};
    use gotap_spans::SpanFrame;
    use gotap_spans::{semconv as sc, Resource, SpanKind, Status, Value};
    use std::sync::Arc;

    fn frame() -> SpanFrame {
        SpanFrame {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            start_unix_nano: 10,
            end_unix_nano: 20,
            resource: Arc::new(Resource::default()),
        }
    }

    /// The span the agent builds from a site record of `kind` with `status` and these strings.
    fn span(kind: u8, status: i64, strs: &[&str]) -> gotap_spans::Span {
        let strs: Vec<&[u8]> = strs.iter().map(|s| s.as_bytes()).collect();
        let rec = encode_site_event(
            &SiteHeader {
                kind,
                status,
                ..Default::default()
            },
            &strs,
        );
        crate::sites::to_span(
            &SiteEvent::parse(&rec).unwrap(),
            Arc::new(Resource::default()),
            false,
        )
        .unwrap()
    }

    #[test]
    fn grpc_events_are_the_sdk_spans() {
        let s = span(
            EV_SITE_GRPC_SERVER,
            5,
            &[
                "/arena.catalog.v1.Catalog/GetProduct",
                "127.0.0.1:41000",
                "no product 9",
            ],
        );
        let want = rpc::server_span(
            &GrpcServerCall {
                full_method: "/arena.catalog.v1.Catalog/GetProduct".into(),
                peer: Some("127.0.0.1:41000".into()),
                status_code: Some(5),
                status_message: Some("no product 9".into()),
            },
            frame(),
        );
        assert_eq!(
            (&s.name, s.kind, &s.attributes, &s.status),
            (
                &want.name,
                SpanKind::Server,
                &want.attributes,
                &Status::Unset
            )
        );

        let s = span(
            EV_SITE_GRPC_CLIENT,
            5,
            &[
                "/arena.catalog.v1.Catalog/GetProduct",
                "dns:///127.0.0.1:50051",
                "no product 9",
            ],
        );
        assert_eq!(
            (s.kind, &s.status),
            (SpanKind::Client, &Status::Error("no product 9".into()))
        );
        assert_eq!(s.attr(sc::SERVER_ADDRESS), Some(&Value::from("127.0.0.1")));
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(50051)));
        assert_eq!(s.attr(rpc::RPC_GRPC_STATUS_CODE), Some(&Value::Int(5)));
    }
}
