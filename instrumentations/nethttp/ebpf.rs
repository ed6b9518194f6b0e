//! net/http's function probes (`gotap run` / `gotap attach` on unmodified binaries): the plan
//! (symbols, struct offsets, probe sites) for the programs of bpf/nethttp.bpf.h, and the decoding
//! of their records (`struct http_event`) into spans through gotap_spans' builders. Compiled
//! into gotap-ebpf as `crate::libs::nethttp` (crates/gotap-ebpf/build.rs).
use std::borrow::Cow;
use std::sync::Arc;

use gotap_binary::offsets::{self as off, FieldRef};
use gotap_binary::GoBinary;
use gotap_spans::nethttp::{self as http, ClientRequestRef, ServerRequestRef};
use gotap_spans::sink::SpanSink;
use gotap_spans::Resource;
use gotap_spans::SpanFrame;

use crate::abi::{non_empty, OFF_ABSENT, TCP_OFFS};
use crate::library::{self, DecodeCtx, Decoded, LibPlan, Library, PlainEvent};
use crate::plan::{self, after_calls_to, entry_site, return_sites, ProbeSite};
use crate::EbpfError;

pub const SERVE_HTTP: &str = "net/http.serverHandler.ServeHTTP";
/// Not `RoundTrip`: since Go 1.22 that is a thin wrapper; `roundTrip` exists in every supported
/// version and is where the transport's work (and errors) happen.
pub const ROUND_TRIP: &str = "net/http.(*Transport).roundTrip";
pub const PCONN_ROUND_TRIP: &str = "net/http.(*persistConn).roundTrip";
/// Go >= 1.27's HTTP/2 server (net/http/internal/http2) reaches `ServeHTTP` only through
/// interface and func-value calls, all followed by RETs: the stream's writer's `handlerDone`,
/// which its runHandler calls once the handler returned (not after a panic), ends the span instead.
pub const H2_HANDLER_DONE: &str = "net/http/internal/http2.(*responseWriter).handlerDone";

pub static LIBRARY: Library = Library::new("net/http", PROGRAMS, plan).with_decode(decode);

const PROGRAMS: &[&str] = &[
    "server_entry",
    "server_ret",
    "server_h2_done",
    "client_entry",
    "client_conn",
    "client_ret",
];

/// The lib_cfg slots, numbered as `enum nethttp_slot` of bpf/nethttp.bpf.h (a test compares).
mod slot {
    pub const REQ_METHOD: usize = 0;
    pub const REQ_URL: usize = 1;
    pub const REQ_PROTO: usize = 2;
    pub const REQ_HOST: usize = 3;
    pub const REQ_REMOTE_ADDR: usize = 4;
    pub const REQ_PATTERN: usize = 5;
    pub const URL_SCHEME: usize = 6;
    pub const URL_HOST: usize = 7;
    pub const URL_PATH: usize = 8;
    pub const URL_RAW_QUERY: usize = 9;
    pub const SRESP_STATUS: usize = 10;
    pub const SRESP_CONN: usize = 11;
    pub const CONN_RWC: usize = 12;
    pub const CONN_BUFR: usize = 13;
    pub const BUFIO_BUF: usize = 14;
    pub const BUFIO_R: usize = 15;
    pub const PCONN_CONN: usize = 16;
    pub const RESP_STATUS_CODE: usize = 17;
    pub const FLAGS: usize = 18;
    /// `struct tcp_offs`: five slots from here, in `abi::TCP_OFFS` order.
    pub const NETCONN_FD: usize = 19;
    /// net/http.Request.TLS (non-nil: the request came over TLS).
    pub const REQ_TLS: usize = 24;
    /// HTTP/2's ResponseWriter (`H2_FIELDS`): writer → its state, the state's status.
    pub const H2RW_RWS: usize = 25;
    pub const H2RWS_STATUS: usize = 26;
    /// net/http.Request.Header, and how to walk that map (`MAP_FIELDS`).
    pub const REQ_HEADER: usize = 27;
    pub const MAP_KIND: usize = 28;
    pub const MAP_O1: usize = 29;
    pub const SLOTS: usize = 33;
}

const _: () = assert!(slot::SLOTS <= crate::library::LIB_CFG_SLOTS);

/// `NH_FLAGS` bit: net/http.Request.Pattern exists (Go >= 1.23).
const HAS_PATTERN: u64 = 1;

/// The slots holding one struct offset each, and the field.
const SLOT_FIELDS: &[(usize, FieldRef)] = &[
    (slot::REQ_METHOD, off::REQUEST_METHOD),
    (slot::REQ_URL, off::REQUEST_URL),
    (slot::REQ_PROTO, off::REQUEST_PROTO),
    (slot::REQ_HOST, off::REQUEST_HOST),
    (slot::REQ_REMOTE_ADDR, off::REQUEST_REMOTE_ADDR),
    (slot::URL_SCHEME, off::URL_SCHEME),
    (slot::URL_HOST, off::URL_HOST),
    (slot::URL_PATH, off::URL_PATH),
    (slot::URL_RAW_QUERY, off::URL_RAW_QUERY),
    (slot::SRESP_STATUS, off::SERVER_RESPONSE_STATUS),
    (slot::SRESP_CONN, off::SERVER_RESPONSE_CONN),
    (slot::CONN_RWC, off::CONN_RWC),
    (slot::CONN_BUFR, off::CONN_BUFR),
    (slot::BUFIO_BUF, off::BUFIO_READER_BUF),
    (slot::BUFIO_R, off::BUFIO_READER_R),
    (slot::PCONN_CONN, off::PERSIST_CONN_CONN),
    (slot::RESP_STATUS_CODE, off::RESPONSE_STATUS_CODE),
    (slot::REQ_TLS, off::REQUEST_TLS),
    (slot::REQ_HEADER, off::REQUEST_HEADER),
];

/// `NH_MAP_KIND` of bpf/nethttp.bpf.h: the runtime's map implementation, for walking an HTTP/2
/// request's Header (its User-Agent and Traceparent: HTTP/2 has no raw header bytes to scan).
const MAP_SWISS: u64 = 1;
const MAP_HMAP: u64 = 2;
/// Told apart by pclntab's function names (stripped binaries too): hmap's incremental growth
/// (`runtime.evacuate…`, no Swiss table has it) before go1.24 or with GOEXPERIMENT=noswissmap,
/// else the package of the Swiss tables.
const HMAP_FN_PREFIX: &str = "runtime.evacuate";
const SWISS_FN_PREFIX: &str = "internal/runtime/maps.";
/// The map fields read, per kind, in slot order `MAP_O1..`: a pair is added (`table.groups` +
/// `groupsReference.data`). Runtime-internal: DWARF first, else [`MAP_MEASURED`].
const MAP_FIELDS: &[(u64, [&[FieldRef]; 4])] = &[
    (
        MAP_SWISS,
        [
            &[FieldRef::new("internal/runtime/maps.Map", "dirPtr")],
            &[FieldRef::new("internal/runtime/maps.Map", "dirLen")],
            &[
                FieldRef::new("internal/runtime/maps.table", "groups"),
                FieldRef::new("internal/runtime/maps.groupsReference", "data"),
            ],
            &[
                FieldRef::new("internal/runtime/maps.table", "groups"),
                FieldRef::new("internal/runtime/maps.groupsReference", "lengthMask"),
            ],
        ],
    ),
    (
        MAP_HMAP,
        [
            &[FieldRef::new("runtime.hmap", "buckets")],
            &[FieldRef::new("runtime.hmap", "oldbuckets")],
            &[FieldRef::new("runtime.hmap", "B")],
            &[FieldRef::new("runtime.hmap", "flags")],
        ],
    ),
];
/// [`MAP_FIELDS`] per Go minor version, measured from the DWARF of the toolchains gotap is tested
/// with (`map_offsets_match_dwarf` checks each row).
const MAP_MEASURED: &[(&str, u64, [u64; 4])] = &[
    ("go1.19", MAP_HMAP, [16, 24, 9, 8]),
    ("go1.26", MAP_SWISS, [16, 24, 16, 24]),
    ("go1.27", MAP_SWISS, [16, 24, 16, 24]),
];

/// The header map's kind and `MAP_O1..` offsets for `bin`: DWARF first, else the measured row
/// of its version and kind.
fn map_offsets(bin: &GoBinary) -> Option<(u64, [u64; 4])> {
    let has = |prefix: &str| bin.functions().iter().any(|f| f.name.starts_with(prefix));
    let kind = if has(HMAP_FN_PREFIX) {
        MAP_HMAP
    } else if has(SWISS_FN_PREFIX) {
        MAP_SWISS
    } else {
        return None;
    };
    let (_, names) = MAP_FIELDS.iter().find(|(k, _)| *k == kind)?;
    let fields: Vec<FieldRef> = names.iter().flat_map(|f| f.iter().copied()).collect();
    let resolved = off::resolve(bin, &fields);
    let minor = off::GoVersion::parse(bin.go_version()).map(|v| v.minor_label());
    let row = MAP_MEASURED
        .iter()
        .find(|(m, k, _)| Some(*m) == minor.as_deref() && *k == kind)
        .map(|(_, _, r)| *r);
    let mut out = [0u64; 4];
    for (i, parts) in names.iter().enumerate() {
        let dwarf: Option<u64> = parts
            .iter()
            .map(|f| off::offset_of(&resolved, *f).ok())
            .sum();
        out[i] = dwarf.or(row.map(|r| r[i]))?;
    }
    Some((kind, out))
}

/// HTTP/2's ResponseWriter, one field per slot, under its two names: net/http's bundled http2
/// (`http2responseWriter`, up to go1.26) and net/http/internal/http2 (go1.27, whose
/// `http2ResponseWriter{*http2.ResponseWriter}` is one pointer, so the interface's data word is
/// that `*responseWriter` as before). The writer holds only `rws`; the state's `status` is what
/// the handler passed to WriteHeader (0 while it wrote nothing). Runtime-internal types the stdlib
/// table's reflect oracle cannot reach: DWARF first, else [`H2_MEASURED`].
const H2_FIELDS: &[(usize, [FieldRef; 2])] = &[
    (
        slot::H2RW_RWS,
        [
            FieldRef::new("net/http.http2responseWriter", "rws"),
            FieldRef::new("net/http/internal/http2.responseWriter", "rws"),
        ],
    ),
    (
        slot::H2RWS_STATUS,
        [
            FieldRef::new("net/http.http2responseWriterState", "status"),
            FieldRef::new("net/http/internal/http2.responseWriterState", "status"),
        ],
    ),
];
/// [`H2_FIELDS`] per Go minor version, measured from the DWARF of the toolchains gotap is tested
/// with (`h2_offsets_match_dwarf` checks each row). Another version without DWARF: no HTTP/2
/// status, with a warning.
const H2_MEASURED: &[(&str, [u64; 2])] = &[
    ("go1.19", [0, 80]),
    ("go1.26", [0, 72]),
    ("go1.27", [0, 240]),
];

/// The offsets of [`H2_FIELDS`] for `bin`, in that order: DWARF first, else the measured row.
fn h2_offsets(bin: &GoBinary) -> Option<Vec<u64>> {
    let fields: Vec<FieldRef> = H2_FIELDS.iter().flat_map(|(_, f)| *f).collect();
    let resolved = off::resolve(bin, &fields);
    let minor = off::GoVersion::parse(bin.go_version()).map(|v| v.minor_label());
    let row = H2_MEASURED
        .iter()
        .find(|(m, _)| Some(*m) == minor.as_deref())
        .map(|(_, r)| *r);
    H2_FIELDS
        .iter()
        .enumerate()
        .map(|(i, (_, names))| {
            names
                .iter()
                .find_map(|f| off::offset_of(&resolved, *f).ok())
                .or(row.map(|r| r[i]))
        })
        .collect()
}

/// Fields every probe needs (server and client share the Request/URL ones).
const SERVER_FIELDS: &[FieldRef] = &[
    off::G_GOID,
    off::REQUEST_METHOD,
    off::REQUEST_URL,
    off::REQUEST_PROTO,
    off::REQUEST_HOST,
    off::REQUEST_REMOTE_ADDR,
    off::URL_PATH,
    off::URL_RAW_QUERY,
    off::SERVER_RESPONSE_STATUS,
    off::SERVER_RESPONSE_CONN,
    off::CONN_RWC,
    off::CONN_BUFR,
    off::BUFIO_READER_BUF,
    off::BUFIO_READER_R,
    off::NET_CONN_FD,
    off::NETFD_LADDR,
    off::NETFD_RADDR,
    off::TCPADDR_IP,
    off::TCPADDR_PORT,
];
const CLIENT_FIELDS: &[FieldRef] = &[
    off::G_GOID,
    off::REQUEST_METHOD,
    off::REQUEST_URL,
    off::URL_SCHEME,
    off::URL_HOST,
    off::URL_PATH,
    off::URL_RAW_QUERY,
    off::RESPONSE_STATUS_CODE,
    off::PERSIST_CONN_CONN,
    off::NET_CONN_FD,
    off::NETFD_LADDR,
    off::NETFD_RADDR,
    off::TCPADDR_IP,
    off::TCPADDR_PORT,
];

fn plan(bin: &GoBinary, lp: &mut LibPlan) -> Result<(), EbpfError> {
    let server = bin.function(SERVE_HTTP);
    let client = bin.function(ROUND_TRIP);
    if server.is_none() && client.is_none() {
        return Ok(());
    }
    let mut wanted: Vec<FieldRef> =
        vec![off::REQUEST_PATTERN, off::REQUEST_TLS, off::REQUEST_HEADER];
    wanted.extend_from_slice(SERVER_FIELDS);
    wanted.extend_from_slice(CLIENT_FIELDS);
    wanted.sort();
    wanted.dedup();
    let resolved = off::resolve(bin, &wanted);
    let need = |f: FieldRef| plan::offset(bin, &resolved, f);
    lp.cfg[slot::FLAGS] = 0;

    if let Some(f) = server {
        for field in SERVER_FIELDS {
            need(*field)?;
        }
        lp.sites
            .push(entry_site(bin, "server_entry", SERVE_HTTP, f));
        // server_ret reads nothing from registers but g: it can sit in the callers, just after
        // the call returns, on an instruction the kernel emulates (RETs are single-stepped).
        match after_calls_to(bin, f, "net/http.") {
            Some(offsets) => {
                for offset in offsets {
                    lp.sites.push(ProbeSite {
                        program: "server_ret",
                        function: SERVE_HTTP,
                        offset,
                    });
                }
            }
            None => lp
                .sites
                .extend(return_sites(bin, "server_ret", SERVE_HTTP, f)?),
        }
        if let Some(done) = bin.function(H2_HANDLER_DONE) {
            lp.sites
                .push(entry_site(bin, "server_h2_done", H2_HANDLER_DONE, done));
        }
        lp.instrumentations.push("net/http server");
        lp.fills_goroutines = true;
        // Go < 1.23 has no Request.Pattern: no route, spans are named by method alone.
        if let Ok(o) = need(off::REQUEST_PATTERN) {
            lp.cfg[slot::REQ_PATTERN] = o;
            lp.cfg[slot::FLAGS] |= HAS_PATTERN;
        }
        if need(off::REQUEST_TLS).is_err() {
            lp.warnings.push(format!(
                "offset of {} not available for {}: HTTPS server spans say url.scheme http",
                off::REQUEST_TLS,
                bin.go_version()
            ));
        }
        match h2_offsets(bin) {
            Some(o) => {
                for (&(s, _), o) in H2_FIELDS.iter().zip(o) {
                    lp.cfg[s] = o;
                }
            }
            None => {
                for &(s, _) in H2_FIELDS {
                    lp.cfg[s] = OFF_ABSENT;
                }
                lp.warnings.push(format!(
                    "HTTP/2 response writer layout unknown for {} (no DWARF, no measured row): HTTP/2 server spans have no status",
                    bin.go_version()
                ));
            }
        }
        match map_offsets(bin) {
            Some((kind, o)) => {
                lp.cfg[slot::MAP_KIND] = kind;
                lp.cfg[slot::MAP_O1..slot::MAP_O1 + 4].copy_from_slice(&o);
            }
            None => {
                lp.cfg[slot::MAP_KIND] = 0;
                lp.warnings.push(format!(
                    "map layout unknown for {} (no DWARF, no measured row): HTTP/2 server spans have no user_agent.original and no traceparent parent",
                    bin.go_version()
                ));
            }
        }
    }
    if let Some(f) = client {
        for field in CLIENT_FIELDS {
            need(*field)?;
        }
        lp.sites
            .push(entry_site(bin, "client_entry", ROUND_TRIP, f));
        lp.sites
            .extend(return_sites(bin, "client_ret", ROUND_TRIP, f)?);
        lp.instrumentations.push("net/http client");
        match bin.function(PCONN_ROUND_TRIP) {
            Some(pc) => lp
                .sites
                .push(entry_site(bin, "client_conn", PCONN_ROUND_TRIP, pc)),
            None => lp.warnings.push(format!(
                "{PCONN_ROUND_TRIP} not found: outgoing requests are not linked to traced servers"
            )),
        }
        // A client span started in a goroutine a handler created takes the handler's span as
        // parent.
        lp.wants_goroutines = true;
    }
    let o = |f| need(f).unwrap_or(OFF_ABSENT);
    for &(s, f) in SLOT_FIELDS {
        lp.cfg[s] = o(f);
    }
    for (i, &f) in TCP_OFFS.iter().enumerate() {
        lp.cfg[slot::NETCONN_FD + i] = o(f);
    }
    lp.offsets = resolved;
    Ok(())
}

// ---------- the records: struct http_event of bpf/nethttp.bpf.h ----------

pub const EV_SERVER: u8 = 1;
pub const EV_CLIENT: u8 = 2;
pub const EVF_HAS_PARENT: u8 = 1 << 0;
pub const EVF_HAS_STATUS: u8 = 1 << 1;
pub const EVF_ERROR: u8 = 1 << 2;
pub const EVF_HTTP2: u8 = 1 << 3;
pub const EVF_TLS: u8 = 1 << 4;

pub const PARENT_NONE: u8 = 0;
pub const PARENT_TRACEPARENT: u8 = 1;
pub const PARENT_LINK_MAP: u8 = 2;
pub const PARENT_GOROUTINE: u8 = 3;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpEvent {
    pub kind: u8,
    pub flags: u8,
    pub parent_source: u8,
    pub _pad0: u8,
    pub proc: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub aux: u64,
    pub aux2: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: [u8; 8],
    pub status: u16,
    pub method_len: u16,
    pub path_len: u16,
    pub query_len: u16,
    pub host_len: u16,
    pub proto_len: u16,
    pub remote_len: u16,
    pub pattern_len: u16,
    pub ua_len: u16,
    pub _pad1: [u16; 3],
    pub method: [u8; 16],
    pub path: [u8; 256],
    pub query: [u8; 256],
    pub host: [u8; 128],
    pub proto: [u8; 16],
    pub remote: [u8; 64],
    pub pattern: [u8; 128],
    pub ua: [u8; 256],
}
const _: () = assert!(std::mem::size_of::<HttpEvent>() == 1216);
// SAFETY: repr(C) integers and byte arrays only: valid for any bit pattern.
unsafe impl PlainEvent for HttpEvent {}

/// [`Library::decode`]: net/http's records, read where they lie in the ring when aligned.
fn decode(b: &[u8], cx: &mut DecodeCtx<'_>, out: &mut dyn SpanSink) -> Option<Decoded> {
    if !matches!(b.first(), Some(&EV_SERVER) | Some(&EV_CLIENT)) {
        return None;
    }
    let copy;
    let ev = match library::in_place::<HttpEvent>(b) {
        Some(ev) => ev,
        None => match library::copied::<HttpEvent>(b) {
            Some(ev) => {
                copy = ev;
                &copy
            }
            None => return Some(Decoded::Undecodable),
        },
    };
    let Some(resource) = cx.resource(ev.proc) else {
        return Some(Decoded::UnknownProcess);
    };
    Some(
        if emit(ev, resource, cx.capture_query, cx.mono_to_unix, out) {
            Decoded::Span
        } else {
            Decoded::Undecodable
        },
    )
}

/// A string field of an event, borrowed from it: `len` bytes of `buf` (clamped), decoded lossily
/// only if they are not UTF-8 (the common case costs a validation, no copy).
fn field(buf: &[u8], len: u16) -> Cow<'_, str> {
    let b = &buf[..(len as usize).min(buf.len())];
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
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
        parent_span_id: (ev.flags & EVF_HAS_PARENT != 0).then_some(ev.parent_id),
        start_unix_nano: unix(ev.start_ns),
        end_unix_nano: unix(ev.end_ns),
        resource,
    };
    let status = (ev.flags & EVF_HAS_STATUS != 0).then_some(ev.status);
    let method = field(&ev.method, ev.method_len);
    let method = match &*method {
        "" => "GET", // Go: an empty Request.Method means GET
        m => m,
    };
    match ev.kind {
        EV_SERVER => {
            let remote = field(&ev.remote, ev.remote_len);
            let (client_address, client_port) = match non_empty(&remote) {
                None => (None, None),
                Some(r) => {
                    let (h, p) = gotap_spans::host_port(r);
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
                // Request.TLS != nil, read at ServeHTTP's entry.
                tls: ev.flags & EVF_TLS != 0,
            };
            http::server_span_to(&req, &frame, capture_query, out);
            true
        }
        EV_CLIENT => {
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
                error: (ev.flags & EVF_ERROR != 0).then_some("transport error"),
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
    use gotap_testkit::{Variant, ALL_TOOLCHAINS};

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
        let mut ev = event(EV_CLIENT);
        set(&mut ev.host, &mut ev.host_len, "example.com:8080");
        set(&mut ev.path, &mut ev.path_len, "/a/b");
        set(&mut ev.query, &mut ev.query_len, "x=1");
        ev.flags = EVF_HAS_PARENT | EVF_HAS_STATUS;
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
        let mut ev = event(EV_CLIENT);
        set(&mut ev.method, &mut ev.method_len, "POST");
        set(&mut ev.proto, &mut ev.proto_len, "https");
        set(&mut ev.host, &mut ev.host_len, "h");
        ev.flags = EVF_ERROR;
        let s = to_span(&ev, Arc::new(Resource::default()), false, 0).unwrap();
        assert_eq!(s.name, "POST");
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.attr(sc::URL_FULL), Some(&Value::from("https://h")));
        assert_eq!(s.status, Status::Error("transport error".into()));
    }

    #[test]
    fn server_event_fields() {
        let mut ev = event(EV_SERVER);
        set(&mut ev.method, &mut ev.method_len, "GET");
        set(&mut ev.path, &mut ev.path_len, "/users/1");
        set(&mut ev.pattern, &mut ev.pattern_len, "GET /users/{id}");
        set(&mut ev.remote, &mut ev.remote_len, "[::1]:5555");
        set(&mut ev.ua, &mut ev.ua_len, "curl/8");
        ev.flags = EVF_HAS_STATUS;
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
        assert!(library::copied::<HttpEvent>(&[0u8; 100]).is_none());
        assert!(library::copied::<HttpEvent>(&[0u8; std::mem::size_of::<HttpEvent>()]).is_some());
    }

    fn bytes(ev: &HttpEvent) -> Vec<u8> {
        // SAFETY: HttpEvent is repr(C) plain data without padding holes (size asserted).
        unsafe {
            std::slice::from_raw_parts(
                ev as *const HttpEvent as *const u8,
                std::mem::size_of::<HttpEvent>(),
            )
        }
        .to_vec()
    }

    /// The reader's hook: records of other kinds are not this library's; an unaligned record is
    /// copied; a process no longer traced drops the record; a wrong size is undecodable.
    #[test]
    fn decode_claims_its_records_only() {
        let mut ev = event(EV_SERVER);
        set(&mut ev.method, &mut ev.method_len, "GET");
        ev.proc = 7;
        let rec = bytes(&ev);
        let mut spans = Vec::new();
        let mut resource_of = |proc: u32| (proc == 7).then(|| Arc::new(Resource::default()));
        let mut cx = DecodeCtx::new(false, 0, &mut resource_of);
        let mut sink = gotap_spans::sink::Collect::new(|s| spans.push(s));
        assert_eq!(decode(&rec, &mut cx, &mut sink), Some(Decoded::Span));
        let mut unaligned = vec![0u8];
        unaligned.extend(&rec);
        assert_eq!(
            decode(&unaligned[1..], &mut cx, &mut sink),
            Some(Decoded::Span)
        );
        assert_eq!(decode(&[3u8; 88], &mut cx, &mut sink), None);
        assert_eq!(decode(&[], &mut cx, &mut sink), None);
        assert_eq!(
            decode(&rec[..100], &mut cx, &mut sink),
            Some(Decoded::Undecodable)
        );
        ev.proc = 8;
        assert_eq!(
            decode(&bytes(&ev), &mut cx, &mut sink),
            Some(Decoded::UnknownProcess)
        );
        drop(sink);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].kind, SpanKind::Server);
    }

    /// The slot numbers and flag here are those of bpf/nethttp.bpf.h.
    #[test]
    fn slots_match_the_c_header() {
        let h = include_str!("bpf/nethttp.bpf.h");
        let body = h
            .split_once("enum nethttp_slot {")
            .and_then(|(_, rest)| rest.split_once("};"))
            .expect("enum nethttp_slot in bpf/nethttp.bpf.h")
            .0;
        let names: Vec<&str> = body
            .lines()
            .map(|l| l.split("/*").next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .map(|l| l.trim_end_matches(',').trim())
            .collect();
        let rust = [
            ("NH_REQ_METHOD", slot::REQ_METHOD),
            ("NH_REQ_URL", slot::REQ_URL),
            ("NH_REQ_PROTO", slot::REQ_PROTO),
            ("NH_REQ_HOST", slot::REQ_HOST),
            ("NH_REQ_REMOTE_ADDR", slot::REQ_REMOTE_ADDR),
            ("NH_REQ_PATTERN", slot::REQ_PATTERN),
            ("NH_URL_SCHEME", slot::URL_SCHEME),
            ("NH_URL_HOST", slot::URL_HOST),
            ("NH_URL_PATH", slot::URL_PATH),
            ("NH_URL_RAW_QUERY", slot::URL_RAW_QUERY),
            ("NH_SRESP_STATUS", slot::SRESP_STATUS),
            ("NH_SRESP_CONN", slot::SRESP_CONN),
            ("NH_CONN_RWC", slot::CONN_RWC),
            ("NH_CONN_BUFR", slot::CONN_BUFR),
            ("NH_BUFIO_BUF", slot::BUFIO_BUF),
            ("NH_BUFIO_R", slot::BUFIO_R),
            ("NH_PCONN_CONN", slot::PCONN_CONN),
            ("NH_RESP_STATUS_CODE", slot::RESP_STATUS_CODE),
            ("NH_FLAGS", slot::FLAGS),
            ("NH_NETCONN_FD", slot::NETCONN_FD),
            ("NH_NETFD_LADDR", slot::NETCONN_FD + 1),
            ("NH_NETFD_RADDR", slot::NETCONN_FD + 2),
            ("NH_TCPADDR_IP", slot::NETCONN_FD + 3),
            ("NH_TCPADDR_PORT", slot::NETCONN_FD + 4),
            ("NH_REQ_TLS", slot::REQ_TLS),
            ("NH_H2RW_RWS", slot::H2RW_RWS),
            ("NH_H2RWS_STATUS", slot::H2RWS_STATUS),
            ("NH_REQ_HEADER", slot::REQ_HEADER),
            ("NH_MAP_KIND", slot::MAP_KIND),
            ("NH_MAP_O1", slot::MAP_O1),
            ("NH_MAP_O2", slot::MAP_O1 + 1),
            ("NH_MAP_O3", slot::MAP_O1 + 2),
            ("NH_MAP_O4", slot::MAP_O1 + 3),
            ("NH_SLOTS", slot::SLOTS),
        ];
        assert_eq!(names.len(), rust.len(), "{names:?}");
        for (i, (name, value)) in rust.iter().enumerate() {
            assert_eq!((names[i], i), (*name, *value), "slot {i}");
        }
        assert_eq!(TCP_OFFS.len(), slot::REQ_TLS - slot::NETCONN_FD);
        let flag = h
            .lines()
            .find_map(|l| l.strip_prefix("#define NH_HAS_PATTERN "))
            .and_then(|v| v.split_whitespace().next())
            .expect("NH_HAS_PATTERN");
        assert_eq!(flag.parse::<u64>().unwrap(), HAS_PATTERN);
        for (name, v) in [("NH_MAP_SWISS", MAP_SWISS), ("NH_MAP_HMAP", MAP_HMAP)] {
            let c = h
                .lines()
                .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or_else(|| panic!("{name}"));
            assert_eq!(c.parse::<u64>().unwrap(), v, "{name}");
        }
        for (kind, c) in [(EV_SERVER, "EV_SERVER"), (EV_CLIENT, "EV_CLIENT")] {
            let v = h
                .lines()
                .find_map(|l| l.strip_prefix(&format!("#define {c} ")))
                .unwrap_or_else(|| panic!("{c}"));
            assert_eq!(v.trim().parse::<u8>().unwrap(), kind, "{c}");
        }
    }

    /// Each measured HTTP/2 row is what the DWARF of its toolchain's build says, and a stripped
    /// build of each gets the same offsets from the row.
    #[test]
    fn h2_offsets_match_dwarf() {
        for tc in ALL_TOOLCHAINS {
            let path =
                gotap_testkit::build("../crates/gotap-ebpf/tests/go", ".", tc, Variant::default());
            let bin = GoBinary::open(&path).unwrap();
            let fields: Vec<FieldRef> = H2_FIELDS.iter().flat_map(|(_, f)| *f).collect();
            let resolved = off::resolve(&bin, &fields);
            let dwarf: Vec<u64> = H2_FIELDS
                .iter()
                .map(|(_, names)| {
                    names
                        .iter()
                        .find_map(|f| {
                            resolved.iter().find_map(|r| {
                                (r.strukt == f.strukt
                                    && r.field == f.field
                                    && r.source == Some(off::OffsetSource::Dwarf))
                                .then_some(r.offset)
                                .flatten()
                            })
                        })
                        .unwrap_or_else(|| panic!("{tc:?}: {names:?} not in the DWARF"))
                })
                .collect();
            let minor = off::GoVersion::parse(bin.go_version())
                .unwrap()
                .minor_label();
            let row = H2_MEASURED.iter().find(|(m, _)| *m == minor);
            assert_eq!(
                row.map(|(_, r)| r.to_vec()),
                Some(dwarf.clone()),
                "{tc:?} {minor}"
            );
            let stripped = gotap_testkit::build(
                "../crates/gotap-ebpf/tests/go",
                ".",
                tc,
                Variant {
                    stripped: true,
                    pie: true,
                },
            );
            assert_eq!(
                h2_offsets(&GoBinary::open(&stripped).unwrap()),
                Some(dwarf),
                "{tc:?} stripped"
            );
        }
    }

    /// Each measured map row is what the DWARF of its toolchain's build says; a stripped build
    /// gets the same from the row.
    #[test]
    fn map_offsets_match_dwarf() {
        for tc in ALL_TOOLCHAINS {
            let path =
                gotap_testkit::build("../crates/gotap-ebpf/tests/go", ".", tc, Variant::default());
            let bin = GoBinary::open(&path).unwrap();
            let (kind, got) = map_offsets(&bin).expect("a known map implementation");
            let (_, names) = MAP_FIELDS.iter().find(|(k, _)| *k == kind).unwrap();
            let fields: Vec<FieldRef> = names.iter().flat_map(|f| f.iter().copied()).collect();
            let resolved = off::resolve(&bin, &fields);
            for f in &fields {
                let r = resolved
                    .iter()
                    .find(|r| r.strukt == f.strukt && r.field == f.field)
                    .unwrap();
                assert_eq!(
                    r.source,
                    Some(off::OffsetSource::Dwarf),
                    "{tc:?} {f}: {r:?}"
                );
            }
            let minor = off::GoVersion::parse(bin.go_version())
                .unwrap()
                .minor_label();
            let row = MAP_MEASURED.iter().find(|(m, _, _)| *m == minor);
            assert_eq!(
                row.map(|(_, k, r)| (*k, *r)),
                Some((kind, got)),
                "{tc:?} {minor}"
            );
            let stripped = gotap_testkit::build(
                "../crates/gotap-ebpf/tests/go",
                ".",
                tc,
                Variant {
                    stripped: true,
                    pie: true,
                },
            );
            assert_eq!(
                map_offsets(&GoBinary::open(&stripped).unwrap()),
                Some((kind, got)),
                "{tc:?} stripped"
            );
        }
    }

    /// Every supported Go version gets the cheap sites: entries on the stack check's Jcc, the
    /// goroutine hook on `CALL runqput`.
    #[test]
    fn cheap_probe_sites_in_every_toolchain() {
        for tc in ALL_TOOLCHAINS {
            for variant in [
                Variant::default(),
                Variant {
                    stripped: true,
                    pie: true,
                },
            ] {
                let path = gotap_testkit::build("../crates/gotap-ebpf/tests/go", ".", tc, variant);
                let (bin, plan) = plan::analyse(&path).unwrap();
                let label = format!("{} {}", tc.label(), variant.label());
                for (prog, func) in [
                    ("server_entry", SERVE_HTTP),
                    ("client_entry", ROUND_TRIP),
                    ("client_conn", PCONN_ROUND_TRIP),
                ] {
                    let f = bin.function(func).unwrap();
                    let site = plan.sites.iter().find(|s| s.program == prog).unwrap();
                    assert!(
                        site.offset > f.offset && site.offset < f.offset + 16,
                        "{label} {prog}: {site:?} vs {f:?}"
                    );
                    let vaddr = f.entry + (site.offset - f.offset);
                    let code = bin.read_vaddr(vaddr, 8).unwrap();
                    let insn = iced_x86::Decoder::with_ip(64, code, vaddr, 0).decode();
                    assert!(
                        insn.is_jcc_short_or_near(),
                        "{label} {prog}: {:?}",
                        insn.mnemonic()
                    );
                }
                assert!(
                    plan.sites.iter().any(|s| s.program == "newproc_runqput"),
                    "{label}"
                );
                // Go >= 1.27's HTTP/2 streams end at handlerDone's entry, on its Jcc too.
                let done = plan.sites.iter().find(|s| s.program == "server_h2_done");
                assert_eq!(done.is_some(), tc.label() >= "go1.27", "{label}");
                if let Some(site) = done {
                    let f = bin.function(H2_HANDLER_DONE).unwrap();
                    let vaddr = f.entry + (site.offset - f.offset);
                    let insn = iced_x86::Decoder::with_ip(
                        64,
                        bin.read_vaddr(vaddr, 16).unwrap(),
                        vaddr,
                        0,
                    )
                    .decode();
                    assert!(
                        insn.is_jcc_short_or_near(),
                        "{label}: {:?}",
                        insn.mnemonic()
                    );
                }
                // server_ret: in the callers, one site after the call in (*conn).serve, emulated.
                let serve = bin.function("net/http.(*conn).serve").unwrap();
                let in_serve: Vec<_> = plan
                    .sites
                    .iter()
                    .filter(|s| {
                        s.program == "server_ret"
                            && s.offset >= serve.offset
                            && s.offset < serve.offset + serve.size
                    })
                    .collect();
                assert_eq!(in_serve.len(), 1, "{label}");
                let vaddr = serve.entry + (in_serve[0].offset - serve.offset);
                let insn =
                    iced_x86::Decoder::with_ip(64, bin.read_vaddr(vaddr, 16).unwrap(), vaddr, 0)
                        .decode();
                assert!(
                    insn.is_call_near() || insn.is_jcc_short_or_near(),
                    "{label}: {:?}",
                    insn.mnemonic()
                );
                let sh = bin.function(SERVE_HTTP).unwrap();
                assert!(
                    !plan.sites.iter().any(|s| s.program == "server_ret"
                        && s.offset >= sh.offset
                        && s.offset < sh.offset + sh.size),
                    "{label}"
                );
                assert!(
                    !plan.sites.iter().any(|s| s.program == "newproc1_ret"),
                    "{label}"
                );
                assert!(plan.warnings.is_empty(), "{label}: {:?}", plan.warnings);
                // The plan's net/http configuration: pattern flag by Go version, the TCP slots.
                let (_, cfg) = plan
                    .libs
                    .iter()
                    .find(|(id, _)| *id == crate::libs::ids::NETHTTP)
                    .expect("net/http's lib_cfg");
                let has_pattern = tc.label() >= "go1.23";
                assert_eq!(cfg[slot::FLAGS] & HAS_PATTERN != 0, has_pattern, "{label}");
                assert_eq!(cfg[slot::REQ_PATTERN] != OFF_ABSENT, has_pattern, "{label}");
                // The TCP slots, Request.TLS and HTTP/2's writer: known in every measured version.
                assert!(
                    cfg[slot::NETCONN_FD..slot::SLOTS]
                        .iter()
                        .all(|&o| o != OFF_ABSENT),
                    "{label}"
                );
            }
        }
    }
}
