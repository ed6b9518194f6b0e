//! grpc's spans (compiled into gotap-spans as `gotap_spans::grpc`, crates/gotap-spans/build.rs).
//! gRPC server and client spans (OpenTelemetry RPC semantic conventions). Every strategy describes
//! a call with [`GrpcServerCall`] / [`GrpcClientCall`] and gets the span from [`server_span`] /
//! [`client_span`]; the compile-time runtime (instrumentations/grpc/runtime/grpc.go) mirrors these rules line by line.
use crate::{host_port, split_host_port, SpanFrame};
use crate::sink::{collect_one, SpanSink, StatusRef, ValueRef};
use crate::{semconv as sc, Span, SpanKind};

pub const RPC_SYSTEM: &str = "rpc.system";
pub const RPC_SERVICE: &str = "rpc.service";
pub const RPC_METHOD: &str = "rpc.method";
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

pub const SERVER_SCOPE: &str = "gotap/grpc/server";
pub const CLIENT_SCOPE: &str = "gotap/grpc/client";

/// What a strategy saw of one RPC a gRPC server handled.
#[derive(Debug, Clone, Default)]
pub struct GrpcServerCall {
    /// As on the wire: `/package.Service/Method`.
    pub full_method: String,
    /// The client's address (`ip:port`), if known.
    pub peer: Option<String>,
    /// gRPC status code (0 = OK), once the RPC finished.
    pub status_code: Option<u32>,
    /// The status message (the span's error description).
    pub status_message: Option<String>,
}

/// What a strategy saw of one RPC a gRPC client made.
#[derive(Debug, Clone, Default)]
pub struct GrpcClientCall {
    pub full_method: String,
    /// The ClientConn's target (`host:port`, `dns:///host:port`, `unix:///path`…).
    pub target: String,
    pub status_code: Option<u32>,
    pub status_message: Option<String>,
}

/// `/pkg.Service/Method` → (span name `pkg.Service/Method`, Some((service, method))). A name
/// without a service part is kept as the span name (`grpc` if empty), with no service/method.
pub fn split_full_method(full: &str) -> (String, Option<(String, String)>) {
    let name = full.strip_prefix('/').unwrap_or(full);
    match name.rfind('/') {
        Some(i) if i > 0 && i < name.len() - 1 => (
            name.to_owned(),
            Some((name[..i].to_owned(), name[i + 1..].to_owned())),
        ),
        _ if name.is_empty() => ("grpc".to_owned(), None),
        _ => (name.to_owned(), None),
    }
}

/// The server a ClientConn target names: (host, port). None for unix sockets and empty targets.
pub fn target_address(target: &str) -> Option<(String, Option<u16>)> {
    let endpoint = if let Some(i) = target.find("://") {
        if matches!(&target[..i], "unix" | "unix-abstract") {
            return None;
        }
        let rest = &target[i + 3..];
        // After the (usually empty) authority: dns://8.8.8.8/host:port → host:port.
        rest.find('/').map_or(rest, |j| &rest[j + 1..])
    } else if target.starts_with("unix:") || target.starts_with("unix-abstract:") {
        return None;
    } else {
        target
    };
    if endpoint.is_empty() {
        return None;
    }
    Some(split_host_port(endpoint))
}

/// semconv: on the server, only these codes are errors — UNKNOWN, DEADLINE_EXCEEDED,
/// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. On the client, every non-OK code is.
pub fn is_server_error(code: u32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Begins the span with what both sides share: `rpc.system`, `rpc.service`, `rpc.method`.
/// Returns the span's name.
fn begin<S: SpanSink + ?Sized>(
    full_method: &str,
    f: &SpanFrame,
    scope: &'static str,
    out: &mut S,
) -> String {
    let (name, parts) = split_full_method(full_method);
    out.begin(f, scope);
    out.attr(RPC_SYSTEM, ValueRef::Static("grpc"));
    if let Some((service, method)) = parts {
        out.attr(RPC_SERVICE, ValueRef::Str(&service));
        out.attr(RPC_METHOD, ValueRef::Str(&method));
    }
    name
}

fn status_of<'a, S: SpanSink + ?Sized>(
    code: Option<u32>,
    message: &'a Option<String>,
    error: fn(u32) -> bool,
    out: &mut S,
) -> StatusRef<'a> {
    let Some(code) = code else {
        return StatusRef::Unset;
    };
    out.attr(RPC_GRPC_STATUS_CODE, ValueRef::Int(code as i64));
    if error(code) {
        StatusRef::Error(message.as_deref().unwrap_or_default())
    } else {
        StatusRef::Unset
    }
}

pub fn server_span(call: &GrpcServerCall, frame: SpanFrame) -> Span {
    collect_one(|out| server_span_into(call, &frame, out))
}

/// [`server_span`] into a sink (see [`crate::sink`]).
pub fn server_span_into<S: SpanSink + ?Sized>(call: &GrpcServerCall, f: &SpanFrame, out: &mut S) {
    let name = begin(&call.full_method, f, SERVER_SCOPE, out);
    if let Some(p) = call.peer.as_deref().filter(|p| !p.is_empty()) {
        let (host, port) = host_port(p);
        out.attr(sc::NETWORK_PEER_ADDRESS, ValueRef::Str(host));
        if let Some(port) = port {
            out.attr(sc::NETWORK_PEER_PORT, ValueRef::Int(port as i64));
        }
    }
    let status = status_of(call.status_code, &call.status_message, is_server_error, out);
    out.end(&[&name], SpanKind::Server, status)
}

pub fn client_span(call: &GrpcClientCall, frame: SpanFrame) -> Span {
    collect_one(|out| client_span_into(call, &frame, out))
}

/// [`client_span`] into a sink (see [`crate::sink`]).
pub fn client_span_into<S: SpanSink + ?Sized>(call: &GrpcClientCall, f: &SpanFrame, out: &mut S) {
    let name = begin(&call.full_method, f, CLIENT_SCOPE, out);
    if let Some((host, port)) = target_address(&call.target) {
        out.attr(sc::SERVER_ADDRESS, ValueRef::Str(&host));
        if let Some(port) = port {
            out.attr(sc::SERVER_PORT, ValueRef::Int(port as i64));
        }
    }
    let status = status_of(call.status_code, &call.status_message, |c| c != 0, out);
    out.end(&[&name], SpanKind::Client, status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::{Status, Value};
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
    fn server_span_named_by_full_method() {
        let call = GrpcServerCall {
            full_method: "/arena.catalog.v1.Catalog/GetProduct".into(),
            peer: Some("127.0.0.1:51234".into()),
            status_code: Some(0),
            status_message: None,
        };
        let s = server_span(&call, frame());
        assert_eq!(s.name, "arena.catalog.v1.Catalog/GetProduct");
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.scope, SERVER_SCOPE);
        assert_eq!(s.attr(RPC_SYSTEM), Some(&Value::from("grpc")));
        assert_eq!(
            s.attr(RPC_SERVICE),
            Some(&Value::from("arena.catalog.v1.Catalog"))
        );
        assert_eq!(s.attr(RPC_METHOD), Some(&Value::from("GetProduct")));
        assert_eq!(s.attr(RPC_GRPC_STATUS_CODE), Some(&Value::Int(0)));
        assert_eq!(
            s.attr(sc::NETWORK_PEER_ADDRESS),
            Some(&Value::from("127.0.0.1"))
        );
        assert_eq!(s.attr(sc::NETWORK_PEER_PORT), Some(&Value::Int(51234)));
        assert_eq!(s.status, Status::Unset);
    }

    #[test]
    fn server_errors_follow_semconv() {
        let with = |code| {
            let call = GrpcServerCall {
                full_method: "/a.S/M".into(),
                status_code: Some(code),
                status_message: Some("boom".into()),
                ..Default::default()
            };
            server_span(&call, frame()).status
        };
        // NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED…: the client's problem, not the server's.
        for code in [1, 3, 5, 6, 7, 8, 9, 10, 11, 16] {
            assert_eq!(with(code), Status::Unset, "code {code}");
        }
        for code in [2, 4, 12, 13, 14, 15] {
            assert_eq!(with(code), Status::Error("boom".into()), "code {code}");
        }
    }

    #[test]
    fn client_span_errors_on_every_non_ok_code() {
        let call = GrpcClientCall {
            full_method: "/arena.catalog.v1.Catalog/GetProduct".into(),
            target: "dns:///catalog.local:50051".into(),
            status_code: Some(5),
            status_message: Some("product 9 not found".into()),
        };
        let s = client_span(&call, frame());
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(
            s.attr(sc::SERVER_ADDRESS),
            Some(&Value::from("catalog.local"))
        );
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(50051)));
        assert_eq!(s.attr(RPC_GRPC_STATUS_CODE), Some(&Value::Int(5)));
        assert_eq!(s.status, Status::Error("product 9 not found".into()));
        let ok = client_span(
            &GrpcClientCall {
                status_code: Some(0),
                ..call
            },
            frame(),
        );
        assert_eq!(ok.status, Status::Unset);
    }

    #[test]
    fn full_methods_and_targets() {
        assert_eq!(
            split_full_method("/a.b.S/M"),
            ("a.b.S/M".into(), Some(("a.b.S".into(), "M".into())))
        );
        assert_eq!(split_full_method("nomethod"), ("nomethod".into(), None));
        assert_eq!(split_full_method("/S/"), ("S/".into(), None));
        assert_eq!(split_full_method(""), ("grpc".into(), None));
        assert_eq!(
            target_address("127.0.0.1:50051"),
            Some(("127.0.0.1".into(), Some(50051)))
        );
        assert_eq!(
            target_address("passthrough:///[::1]:443"),
            Some(("::1".into(), Some(443)))
        );
        assert_eq!(
            target_address("dns://8.8.8.8/svc.example:80"),
            Some(("svc.example".into(), Some(80)))
        );
        assert_eq!(
            target_address("dns:///svc.example"),
            Some(("svc.example".into(), None))
        );
        assert_eq!(target_address("unix:///tmp/s.sock"), None);
        assert_eq!(target_address("unix:/tmp/s.sock"), None);
        assert_eq!(target_address(""), None);
    }
}
