//! gotap's own export connections, so that their requests are never traced back to gotap.
//!
//! `gotap run` on a program gotap exports to (an OpenTelemetry Collector written in Go, say)
//! would otherwise see every export request as a server span of that program, export it, and so
//! on: one more span per export, for ever. The OTLP exporters connect through a connector that
//! records each connection's local address here while it is open (`net.rs`); the pipeline drops
//! a server span whose peer (`client.address`/`client.port`, or `network.peer.*` for gRPC) is
//! one of them. A TCP peer seen by a server on this host is exactly the client socket's local
//! address, and only one open socket has it, so nothing else matches; a connection is forgotten
//! when it closes, before its port can be reused. Not covered: a collector reached through a
//! proxy or NAT (docker-proxy), which sees the proxy's address instead.
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

static OPEN: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());
/// How many are open: the spans' fast path reads only this.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// An open export connection, registered until dropped.
#[derive(Debug)]
pub struct OwnConnection(Option<SocketAddr>);

impl OwnConnection {
    /// Registers the local address of a connection gotap opened (`None`: unknown, nothing kept).
    pub fn new(local: Option<SocketAddr>) -> OwnConnection {
        let local = local.map(canonical);
        if let Some(a) = local {
            OPEN.lock().unwrap_or_else(|e| e.into_inner()).push(a);
            COUNT.fetch_add(1, Ordering::SeqCst);
        }
        OwnConnection(local)
    }
}

impl Drop for OwnConnection {
    fn drop(&mut self) {
        if let Some(a) = self.0 {
            let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = open.iter().position(|o| *o == a) {
                open.swap_remove(i);
                COUNT.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Whether any export connection is open (nothing to compare otherwise).
pub fn any() -> bool {
    COUNT.load(Ordering::Relaxed) > 0
}

/// Whether `ip`:`port`, a server span's peer, is one of gotap's open export connections.
pub fn is_own(ip: IpAddr, port: u16) -> bool {
    if !any() {
        return false;
    }
    let peer = SocketAddr::new(ip.to_canonical(), port);
    OPEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&peer)
}

/// A server span's peer, gathered from its attributes as they stream by.
#[derive(Debug, Default, Clone, Copy)]
pub struct Peer {
    ip: Option<IpAddr>,
    port: Option<u16>,
}

impl Peer {
    /// Notes `key`'s value if it is a peer address or port attribute.
    pub fn note(&mut self, key: &str, value: &gotap_spans::sink::ValueRef<'_>) {
        use gotap_spans::semconv as sc;
        use gotap_spans::sink::ValueRef;
        match (key, value) {
            (sc::CLIENT_ADDRESS | sc::NETWORK_PEER_ADDRESS, ValueRef::Str(s))
            | (sc::CLIENT_ADDRESS | sc::NETWORK_PEER_ADDRESS, ValueRef::Static(s)) => {
                self.ip = s.trim_start_matches('[').trim_end_matches(']').parse().ok()
            }
            (sc::CLIENT_PORT | sc::NETWORK_PEER_PORT, ValueRef::Int(p)) => {
                self.port = u16::try_from(*p).ok()
            }
            _ => {}
        }
    }

    /// Whether the peer is one of gotap's export connections.
    pub fn is_own(&self) -> bool {
        match (self.ip, self.port) {
            (Some(ip), Some(port)) => is_own(ip, port),
            _ => false,
        }
    }
}

/// Whether `span` is a server span of a request from one of gotap's export connections.
pub fn is_own_span(span: &gotap_spans::Span) -> bool {
    if !any() || span.kind != gotap_spans::SpanKind::Server {
        return false;
    }
    let mut peer = Peer::default();
    for (k, v) in &span.attributes {
        peer.note(k, &v.as_value_ref());
    }
    peer.is_own()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_own_while_open() {
        let a: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let c = OwnConnection::new(Some(a));
        assert!(is_own("127.0.0.1".parse().unwrap(), 40001));
        // A server on an IPv6 socket sees IPv4 peers mapped.
        assert!(is_own("::ffff:127.0.0.1".parse().unwrap(), 40001));
        assert!(!is_own("127.0.0.1".parse().unwrap(), 40002));
        assert!(!is_own("127.0.0.2".parse().unwrap(), 40001));
        let mut p = Peer::default();
        p.note(
            "client.address",
            &gotap_spans::sink::ValueRef::Str("127.0.0.1"),
        );
        p.note("client.port", &gotap_spans::sink::ValueRef::Int(40001));
        assert!(p.is_own());
        drop(c);
        assert!(!is_own("127.0.0.1".parse().unwrap(), 40001));
        assert!(!p.is_own());
    }
}
