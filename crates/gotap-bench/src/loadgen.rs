//! HTTP load: open loop at a fixed rate (latency measured from each request's *intended* send time,
//! so a stalled server cannot hide its queueing delay — no coordinated omission) and closed loop
//! with N connections (saturation throughput). Runs on its own single-threaded tokio runtime so the
//! generator takes at most one core from the services under test.
use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Per-request timeout; a request that takes longer counts as an error, recorded at this latency.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where each request goes: request number → URI.
pub type Target = Arc<dyn Fn(u64) -> Uri + Send + Sync>;

#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests started.
    pub sent: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Non-2xx answers, transport errors and timeouts.
    pub errors: u64,
    /// Wall time from the first intended send to the last completion.
    pub elapsed: Duration,
    /// Latency in microseconds of every request (errors included).
    pub latency_us: Histogram<u64>,
}

impl LoadResult {
    pub fn ok_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn client(max_idle: usize) -> Client<HttpConnector, Empty<Bytes>> {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(conn)
}

async fn one(c: &Client<HttpConnector, Empty<Bytes>>, uri: Uri) -> bool {
    let fut = async {
        let resp = c.get(uri).await.ok()?;
        let ok = resp.status().is_success();
        resp.into_body().collect().await.ok()?;
        Some(ok)
    };
    matches!(
        tokio::time::timeout(REQUEST_TIMEOUT, fut).await,
        Ok(Some(true))
    )
}

struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
}

impl Tally {
    fn record(&mut self, latency: Duration, ok: bool) {
        let us = (latency.as_micros() as u64).max(1);
        self.hist.saturating_record(us);
        if ok {
            self.ok += 1
        } else {
            self.errors += 1
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")
}

/// Closed loop: `connections` workers each send a request, wait for the answer, repeat, for
/// `duration`. Throughput at saturation is `ok / elapsed`.
pub fn closed_loop(target: Target, connections: usize, duration: Duration) -> Result<LoadResult> {
    runtime()?.block_on(async move {
        let c = client(connections);
        let tally = Arc::new(Mutex::new(Tally {
            hist: histogram(),
            ok: 0,
            errors: 0,
        }));
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = Instant::now();
        let end = start + duration;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..connections {
            let (c, tally, next, target) = (c.clone(), tally.clone(), next.clone(), target.clone());
            set.spawn(async move {
                while Instant::now() < end {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let t0 = Instant::now();
                    let ok = one(&c, target(i)).await;
                    tally.lock().unwrap().record(t0.elapsed(), ok);
                }
            });
        }
        while set.join_next().await.is_some() {}
        let elapsed = start.elapsed();
        let t = Arc::try_unwrap(tally)
            .ok()
            .expect("all workers joined")
            .into_inner()
            .unwrap();
        Ok(LoadResult {
            sent: next.load(std::sync::atomic::Ordering::Relaxed),
            ok: t.ok,
            errors: t.errors,
            elapsed,
            latency_us: t.hist,
        })
    })
}

/// Open loop: request `i` is due at `start + i / rate`; it is sent then (however many are still
/// outstanding) and its latency counts from that due time, so time spent queued behind a slow
/// request — in the server or in this generator — is part of the figure.
pub fn open_loop(target: Target, rate: f64, duration: Duration) -> Result<LoadResult> {
    anyhow::ensure!(rate > 0.0, "the request rate must be positive");
    runtime()?.block_on(async move {
        let c = client(1024);
        let tally = Arc::new(Mutex::new(Tally {
            hist: histogram(),
            ok: 0,
            errors: 0,
        }));
        let total = (rate * duration.as_secs_f64()).round() as u64;
        let period = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        let mut i = 0u64;
        while i < total {
            let due = start + period.mul_f64(i as f64);
            tokio::time::sleep_until(due).await;
            // Send everything that is due (the timer may wake late); each keeps its own due time.
            let now = Instant::now();
            while i < total {
                let due = start + period.mul_f64(i as f64);
                if due > now {
                    break;
                }
                let (c, tally, uri) = (c.clone(), tally.clone(), target(i));
                set.spawn(async move {
                    let ok = one(&c, uri).await;
                    tally.lock().unwrap().record(due.elapsed(), ok);
                });
                i += 1;
            }
            while set.try_join_next().is_some() {}
        }
        while set.join_next().await.is_some() {}
        let elapsed = start.elapsed();
        let t = Arc::try_unwrap(tally)
            .ok()
            .expect("all requests joined")
            .into_inner()
            .unwrap();
        Ok(LoadResult {
            sent: total,
            ok: t.ok,
            errors: t.errors,
            elapsed,
            latency_us: t.hist,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A tiny HTTP/1.1 server answering 200 after `delay`, one thread per connection.
    fn server(delay: Duration) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        std::thread::sleep(delay);
                        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn target(port: u16) -> Target {
        Arc::new(move |_| format!("http://127.0.0.1:{port}/").parse().unwrap())
    }

    #[test]
    fn open_loop_holds_the_rate_and_measures_service_time() {
        let port = server(Duration::from_millis(5));
        let r = open_loop(target(port), 200.0, Duration::from_secs(1)).unwrap();
        assert_eq!(r.sent, 200);
        assert_eq!(r.ok, 200, "errors: {}", r.errors);
        let p50 = r.latency_us.value_at_quantile(0.5);
        assert!(
            (5_000..50_000).contains(&p50),
            "p50 {p50} µs for a 5 ms server"
        );
        assert!(
            r.elapsed < Duration::from_millis(1500),
            "took {:?}",
            r.elapsed
        );
    }

    #[test]
    fn closed_loop_is_bounded_by_connections_over_service_time() {
        // 4 connections × (1 / 20 ms) = at most 200 req/s.
        let port = server(Duration::from_millis(20));
        let r = closed_loop(target(port), 4, Duration::from_secs(1)).unwrap();
        let rps = r.ok_per_sec();
        assert!((100.0..=210.0).contains(&rps), "{rps} req/s");
        assert_eq!(r.errors, 0);
    }

    #[test]
    fn refused_connections_are_errors_not_latency_gaps() {
        let port = gotap_testkit::free_port(); // closed again
        let r = open_loop(target(port), 50.0, Duration::from_millis(200)).unwrap();
        assert_eq!(r.sent, 10);
        assert_eq!(r.errors, 10);
        assert_eq!(r.latency_us.len(), 10);
    }
}
