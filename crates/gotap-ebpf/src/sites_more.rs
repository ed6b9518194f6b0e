//! The database/sql and grpc probe sites (`gotap build --probes`; go/probes/databasesql and
//! go/probes/grpc, docs/probes.md). Same contract, record and BPF function as the net/http sites
//! (bpf/gotap.bpf.c `site_hit`): the event is a [`SiteEvent`] whose buffers hold other values,
//! handed here to the builders SDK mode's spans follow (`gotap_spans::db`, `gotap_spans::rpc`).
use gotap_spans::db::{self, DbError, DbQuery};
use gotap_spans::http::SpanFrame;
use gotap_spans::rpc::{self, GrpcClientCall, GrpcServerCall};
use gotap_spans::Span;

use crate::abi::{text, SiteEvent};

/// Event kinds (bpf/types.h).
pub const EV_SITE_SQL: u8 = 5;
pub const EV_SITE_GRPC_SERVER: u8 = 6;
pub const EV_SITE_GRPC_CLIENT: u8 = 7;

/// The query text buffer: `path` and the `text` right after it, one 768-byte buffer in BPF.
const SQL_TEXT_CAP: usize = 512 + 256;

/// USDT name, BPF program, instrumentation: the entries sites.rs adds to what it knows.
pub const KNOWN: &[(&str, &str, &str)] = &[
    ("sql_query", "site_sql_query", "database/sql"),
    ("grpc_server", "site_grpc_server", "grpc server"),
    ("grpc_client", "site_grpc_client", "grpc client"),
];

/// BPF programs the agent loads for these sites.
pub const PROGRAMS: &[&str] = &["site_sql_query", "site_grpc_server", "site_grpc_client"];

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The query text: `path_len` bytes from the start of `path`, continuing into `text`.
fn sql_text(ev: &SiteEvent) -> String {
    let n = (ev.path_len as usize).min(SQL_TEXT_CAP);
    let mut b = Vec::with_capacity(n);
    b.extend_from_slice(&ev.path[..n.min(ev.path.len())]);
    if n > ev.path.len() {
        b.extend_from_slice(&ev.text[..n - ev.path.len()]);
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// What the sql_query site saw (the query as the application passed it, cut at 768 bytes).
pub fn db_query(ev: &SiteEvent) -> DbQuery {
    let error = (ev.status != 0).then(|| DbError {
        type_name: text(&ev.query, ev.query_len),
        message: text(&ev.ua, ev.ua_len),
        status_code: opt(text(&ev.proto, ev.proto_len)),
    });
    DbQuery { driver_package: text(&ev.host, ev.host_len), query: sql_text(ev), error }
}

pub fn grpc_server_call(ev: &SiteEvent) -> GrpcServerCall {
    GrpcServerCall {
        full_method: text(&ev.path, ev.path_len),
        peer: opt(text(&ev.remote, ev.remote_len)),
        status_code: u32::try_from(ev.status).ok(),
        status_message: opt(text(&ev.text, ev.text_len)),
    }
}

pub fn grpc_client_call(ev: &SiteEvent) -> GrpcClientCall {
    GrpcClientCall {
        full_method: text(&ev.path, ev.path_len),
        target: text(&ev.host, ev.host_len),
        status_code: u32::try_from(ev.status).ok(),
        status_message: opt(text(&ev.text, ev.text_len)),
    }
}

/// The span of a database/sql or grpc site event; `None` for other kinds.
pub fn to_span(ev: &SiteEvent, frame: SpanFrame) -> Option<Span> {
    match ev.kind {
        EV_SITE_SQL => Some(db::client_span(&db_query(ev), frame)),
        EV_SITE_GRPC_SERVER => Some(rpc::server_span(&grpc_server_call(ev), frame)),
        EV_SITE_GRPC_CLIENT => Some(rpc::client_span(&grpc_client_call(ev), frame)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gotap_spans::{semconv as sc, Resource, SpanKind, Status, Value};
    use std::sync::Arc;

    fn event(kind: u8) -> SiteEvent {
        // SAFETY: SiteEvent is plain data; all-zero is a valid value.
        let mut ev: SiteEvent = unsafe { std::mem::zeroed() };
        ev.kind = kind;
        ev
    }

    fn set(buf: &mut [u8], len: &mut u16, s: &str) {
        buf[..s.len()].copy_from_slice(s.as_bytes());
        *len = s.len() as u16;
    }

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

    #[test]
    fn sql_event_is_the_sdk_span() {
        let mut ev = event(EV_SITE_SQL);
        set(&mut ev.host, &mut ev.host_len, "modernc.org/sqlite");
        set(&mut ev.path, &mut ev.path_len, "SELECT total FROM orders WHERE id = 42");
        let s = to_span(&ev, frame()).unwrap();
        let want = db::client_span(
            &DbQuery { driver_package: "modernc.org/sqlite".into(), query: "SELECT total FROM orders WHERE id = 42".into(), error: None },
            frame(),
        );
        assert_eq!((s.name.as_str(), s.kind, &s.attributes, &s.status), (want.name.as_str(), SpanKind::Client, &want.attributes, &Status::Unset));
        assert_eq!(s.attr(db::DB_QUERY_TEXT), Some(&Value::from("SELECT total FROM orders WHERE id = ?")));
        assert_eq!(s.parent_span_id, Some([3; 8]));
    }

    #[test]
    fn sql_error_carries_type_and_sqlstate() {
        let mut ev = event(EV_SITE_SQL);
        ev.status = 1;
        set(&mut ev.host, &mut ev.host_len, "github.com/jackc/pgx/v5/stdlib");
        set(&mut ev.path, &mut ev.path_len, "SELECT * FROM nope");
        set(&mut ev.ua, &mut ev.ua_len, "ERROR: relation \"nope\" does not exist (SQLSTATE 42P01)");
        set(&mut ev.query, &mut ev.query_len, "*pgconn.PgError");
        set(&mut ev.proto, &mut ev.proto_len, "42P01");
        let s = to_span(&ev, frame()).unwrap();
        assert_eq!(s.status, Status::Error("ERROR: relation \"nope\" does not exist (SQLSTATE 42P01)".into()));
        assert_eq!(s.attr(db::DB_RESPONSE_STATUS_CODE), Some(&Value::from("42P01")));
        assert_eq!(s.attr(sc::ERROR_TYPE), Some(&Value::from("42P01")));
        assert_eq!(s.attr(db::DB_SYSTEM_NAME), Some(&Value::from("postgresql")));
        // Without SQLSTATE: the Go type.
        ev.proto_len = 0;
        let s = to_span(&ev, frame()).unwrap();
        assert_eq!((s.attr(sc::ERROR_TYPE), s.attr(db::DB_RESPONSE_STATUS_CODE)), (Some(&Value::from("*pgconn.PgError")), None));
    }

    #[test]
    fn long_query_continues_into_the_next_buffer() {
        let q = format!("SELECT {} FROM t", "a, ".repeat(200)); // 611 bytes: past `path`
        let mut ev = event(EV_SITE_SQL);
        ev.path.copy_from_slice(&q.as_bytes()[..512]);
        ev.text[..q.len() - 512].copy_from_slice(&q.as_bytes()[512..]);
        ev.path_len = q.len() as u16;
        assert_eq!(db_query(&ev).query, q);
        ev.path_len = u16::MAX; // never past the buffer
        assert_eq!(db_query(&ev).query.len(), SQL_TEXT_CAP);
    }

    #[test]
    fn grpc_events_are_the_sdk_spans() {
        let mut ev = event(EV_SITE_GRPC_SERVER);
        set(&mut ev.path, &mut ev.path_len, "/arena.catalog.v1.Catalog/GetProduct");
        set(&mut ev.remote, &mut ev.remote_len, "127.0.0.1:41000");
        ev.status = 5;
        set(&mut ev.text, &mut ev.text_len, "no product 9");
        let s = to_span(&ev, frame()).unwrap();
        let want = rpc::server_span(
            &GrpcServerCall {
                full_method: "/arena.catalog.v1.Catalog/GetProduct".into(),
                peer: Some("127.0.0.1:41000".into()),
                status_code: Some(5),
                status_message: Some("no product 9".into()),
            },
            frame(),
        );
        assert_eq!((&s.name, s.kind, &s.attributes, &s.status), (&want.name, SpanKind::Server, &want.attributes, &Status::Unset));

        let mut ev = event(EV_SITE_GRPC_CLIENT);
        set(&mut ev.path, &mut ev.path_len, "/arena.catalog.v1.Catalog/GetProduct");
        set(&mut ev.host, &mut ev.host_len, "dns:///127.0.0.1:50051");
        ev.status = 5;
        set(&mut ev.text, &mut ev.text_len, "no product 9");
        let s = to_span(&ev, frame()).unwrap();
        assert_eq!((s.kind, &s.status), (SpanKind::Client, &Status::Error("no product 9".into())));
        assert_eq!(s.attr(sc::SERVER_ADDRESS), Some(&Value::from("127.0.0.1")));
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(50051)));
        assert_eq!(s.attr(rpc::RPC_GRPC_STATUS_CODE), Some(&Value::Int(5)));
        assert!(to_span(&event(3), frame()).is_none(), "net/http kinds are sites.rs's");
    }
}
