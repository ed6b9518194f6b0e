//! database/sql's site events into spans (compiled into gotap-ebpf as
//! `crate::libs::databasesql_decode`, crates/gotap-ebpf/build.rs): the sql_query kind its probe
//! sites emit (`gotap build --probes`, then `gotap run`) and its function probes' records carry
//! (ebpf.rs, `EV_SQL_FP`), handed to the builders the woven runtime's spans follow
//! (`gotap_spans::databasesql`). The event layout and string slots are defined in
//! crates/gotap-ebpf/layout/records.json.
use gotap_spans::databasesql::{self as db, DbError, DbQuery, DbServer};

use crate::abi::SiteEvent;
use crate::library::SiteKind;

/// Event kinds (records.json).
pub const EV_SITE_SQL: u8 = 5;

pub const KINDS: &[SiteKind] = &[SiteKind {
    kind: EV_SITE_SQL,
    decode: |ev, frame, _, out| db::client_span_into(&db_query(ev), &db_server(ev), frame, out),
}];

/// String slots (records.json). sql_query: the site's arguments, then the record's strings.
mod slot {
    pub const SQL_DRIVER: usize = 0;
    pub const SQL_TEXT: usize = 1;
    pub const SQL_ERROR: usize = 2;
    pub const SQL_ERROR_TYPE: usize = 3;
    pub const SQL_STATE: usize = 4;
    pub const SQL_SERVER_ADDRESS: usize = 5;
    pub const SQL_SERVER_PORT: usize = 6;
    pub const SQL_NAMESPACE: usize = 7;
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// What the sql_query site saw (the query as the application passed it, cut at 4,096 bytes).
pub fn db_query(ev: &SiteEvent<'_>) -> DbQuery {
    let error = (ev.h.status != 0).then(|| DbError {
        type_name: ev.string(slot::SQL_ERROR_TYPE),
        message: ev.string(slot::SQL_ERROR),
        status_code: opt(ev.string(slot::SQL_STATE)),
    });
    DbQuery {
        driver_package: ev.string(slot::SQL_DRIVER),
        query: ev.string(slot::SQL_TEXT),
        error,
    }
}

/// The database the sql_query site's connection goes to (from the DSN given to sql.Open).
pub fn db_server(ev: &SiteEvent<'_>) -> DbServer {
    DbServer {
        address: opt(ev.string(slot::SQL_SERVER_ADDRESS)),
        port: ev
            .str(slot::SQL_SERVER_PORT)
            .parse()
            .ok()
            .filter(|&p| p > 0),
        namespace: opt(ev.string(slot::SQL_NAMESPACE)),
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

    /// The span the registered decoder of the event's kind builds (`crate::library::site_kind`,
    /// as `crate::sites::emit` dispatches), in `frame`.
    fn to_span(ev: &SiteEvent<'_>, frame: SpanFrame) -> Option<gotap_spans::Span> {
        let k = crate::library::site_kind(ev.h.kind)?;
        let mut got = None;
        (k.decode)(
            ev,
            &frame,
            false,
            &mut gotap_spans::sink::Collect::new(|s| got = Some(s)),
        );
        got
    }

    /// The span of a site record of `kind` with `status` and these string slots.
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
        to_span(&SiteEvent::parse(&rec).unwrap(), frame()).unwrap()
    }

    #[test]
    fn sql_event_is_the_sdk_span() {
        let s = span(
            EV_SITE_SQL,
            0,
            &[
                "modernc.org/sqlite",
                "SELECT total FROM orders WHERE id = 42",
            ],
        );
        let want = db::client_span(
            &DbQuery {
                driver_package: "modernc.org/sqlite".into(),
                query: "SELECT total FROM orders WHERE id = 42".into(),
                error: None,
            },
            frame(),
        );
        assert_eq!(
            (s.name.as_str(), s.kind, &s.attributes, &s.status),
            (
                want.name.as_str(),
                SpanKind::Client,
                &want.attributes,
                &Status::Unset
            )
        );
        assert_eq!(
            s.attr(db::DB_QUERY_TEXT),
            Some(&Value::from("SELECT total FROM orders WHERE id = ?"))
        );
        assert_eq!(s.parent_span_id, Some([3; 8]));
        assert_eq!(
            (
                s.attr(sc::SERVER_ADDRESS),
                s.attr(sc::SERVER_PORT),
                s.attr(db::DB_NAMESPACE)
            ),
            (None, None, None),
            "unknown: omitted"
        );
    }

    /// server.address, server.port and db.namespace from the record's s3-s5, in SDK mode's order.
    #[test]
    fn sql_server_and_namespace() {
        let q = "SELECT name FROM users WHERE id = $1";
        let s = span(
            EV_SITE_SQL,
            0,
            &[
                "github.com/jackc/pgx/v5/stdlib",
                q,
                "",
                "",
                "",
                "db.internal",
                "5432",
                "shop",
            ],
        );
        let keys: Vec<&str> = s.attributes.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                db::DB_SYSTEM_NAME,
                db::DB_QUERY_TEXT,
                db::DB_OPERATION_NAME,
                db::DB_COLLECTION_NAME,
                db::DB_NAMESPACE,
                sc::SERVER_ADDRESS,
                sc::SERVER_PORT
            ]
        );
        assert_eq!(
            s.attr(sc::SERVER_ADDRESS),
            Some(&Value::from("db.internal"))
        );
        assert_eq!(s.attr(sc::SERVER_PORT), Some(&Value::Int(5432)));
        assert_eq!(s.attr(db::DB_NAMESPACE), Some(&Value::from("shop")));
        // Unknown port: "" (or anything not a port) leaves server.port out; no address, no port.
        for port in ["", "0", "x", "70000"] {
            let s = span(
                EV_SITE_SQL,
                0,
                &["github.com/lib/pq", q, "", "", "", "10.0.0.7", port, ""],
            );
            assert_eq!(
                (s.attr(sc::SERVER_ADDRESS), s.attr(sc::SERVER_PORT)),
                (Some(&Value::from("10.0.0.7")), None),
                "port {port:?}"
            );
            assert_eq!(s.attr(db::DB_NAMESPACE), None);
        }
        let s = span(
            EV_SITE_SQL,
            0,
            &["modernc.org/sqlite", q, "", "", "", "", "5432", "main"],
        );
        assert_eq!(
            (
                s.attr(sc::SERVER_ADDRESS),
                s.attr(sc::SERVER_PORT),
                s.attr(db::DB_NAMESPACE)
            ),
            (None, None, Some(&Value::from("main")))
        );
    }

    #[test]
    fn sql_error_carries_type_and_sqlstate() {
        let err = "ERROR: relation \"nope\" does not exist (SQLSTATE 42P01)";
        let s = span(
            EV_SITE_SQL,
            1,
            &[
                "github.com/jackc/pgx/v5/stdlib",
                "SELECT * FROM nope",
                err,
                "*pgconn.PgError",
                "42P01",
            ],
        );
        // Quoted runs of a driver's message may hold values (bound parameters too): scrubbed.
        assert_eq!(
            s.status,
            Status::Error("ERROR: relation \"?\" does not exist (SQLSTATE 42P01)".into())
        );
        assert_eq!(
            s.attr(db::DB_RESPONSE_STATUS_CODE),
            Some(&Value::from("42P01"))
        );
        assert_eq!(s.attr(sc::ERROR_TYPE), Some(&Value::from("42P01")));
        assert_eq!(s.attr(db::DB_SYSTEM_NAME), Some(&Value::from("postgresql")));
        // Without SQLSTATE: the Go type.
        let s = span(
            EV_SITE_SQL,
            1,
            &[
                "github.com/jackc/pgx/v5/stdlib",
                "SELECT * FROM nope",
                err,
                "*pgconn.PgError",
                "",
            ],
        );
        assert_eq!(
            (s.attr(sc::ERROR_TYPE), s.attr(db::DB_RESPONSE_STATUS_CODE)),
            (Some(&Value::from("*pgconn.PgError")), None)
        );
    }

    #[test]
    fn long_query_is_kept_whole() {
        let q = format!("SELECT {} FROM t", "a, ".repeat(1200)); // 3,612 bytes: past the old 768-byte cut
        let rec = encode_site_event(
            &SiteHeader {
                kind: EV_SITE_SQL,
                ..Default::default()
            },
            &[b"x", q.as_bytes()],
        );
        assert_eq!(db_query(&SiteEvent::parse(&rec).unwrap()).query, q);
    }
}
