//! The arena's markdown report: figures as ratios to the baseline of the same run.
use crate::{Results, Strategy, Summary};
use std::fmt::Write;

fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 && x.is_finite() {
        format!("{:.2}×", x / base)
    } else {
        "–".into()
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

pub fn markdown(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# gotap arena report\n");
    let _ = writeln!(
        o,
        "Machine: {} CPUs ({}), Linux {}, load average {:.1} at start (anything else running skews every figure). Services built with {}. {} round(s); in each, every strategy on a fresh stack: first a saturation pass ({} s warm-up, {} s closed loop on {} connections) for all strategies, then a fixed-rate pass ({} s warm-up, {} s at {:.0} req/s, open loop, latency from each request's intended send time). Workload: `GET /orders/{{id}}/details` on the \
         gateway = 1 HTTP call to orders (1 {} query) + 1 gRPC call to catalog. Took {:.0} s.\n",
        r.machine.cpus, r.machine.cpu_model, r.machine.kernel, r.machine.load_avg_start, r.go_version, r.rounds, r.warmup_s, r.saturation_s, r.connections, r.warmup_s, r.fixed_s, r.rate, if r.database == "postgres" { "PostgreSQL" } else { "SQLite" }, r.elapsed_s
    );
    let base = r
        .strategies
        .iter()
        .find(|s| s.strategy == Strategy::Baseline)
        .and_then(|s| s.summary.clone());

    let _ = writeln!(o, "## Overhead (ratio to baseline, same run)\n");
    let _ = writeln!(o, "CPU/req counts the services only; the agent's and the collector's CPU are in the next table.\n");
    let _ = writeln!(o, "| strategy | saturation throughput | p50 | p99 | p99.9 | CPU/req (services) | CPU/req (services + agent) | alloc bytes/req | allocs/req | peak RSS (services) |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for s in &r.strategies {
        match (&s.summary, &base) {
            (Some(x), Some(b)) => {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.name,
                    ratio(x.saturation_rps, b.saturation_rps),
                    ratio(x.p50_us as f64, b.p50_us as f64),
                    ratio(x.p99_us as f64, b.p99_us as f64),
                    ratio(x.p999_us as f64, b.p999_us as f64),
                    ratio(x.target_cpu_us_per_req, b.target_cpu_us_per_req),
                    ratio(
                        x.target_cpu_us_per_req + x.agent_cpu_us_per_req.unwrap_or(0.0),
                        b.target_cpu_us_per_req
                    ),
                    ratio(x.alloc_bytes_per_req, b.alloc_bytes_per_req),
                    ratio(x.alloc_objects_per_req, b.alloc_objects_per_req),
                    ratio(x.target_peak_rss_kib as f64, b.target_peak_rss_kib as f64),
                );
            }
            _ => {
                let why = s.unavailable.as_deref().unwrap_or("no figures");
                let _ = writeln!(o, "| {} | not run: {why} |||||||||", s.name);
            }
        }
    }

    let _ = writeln!(o, "\n## Absolute figures\n");
    let _ = writeln!(o, "| strategy | saturation req/s | p50 | p99 | p99.9 | CPU µs/req services | CPU µs/req collector | CPU µs/req agent | alloc B/req | allocs/req | peak RSS services | peak RSS collector | peak RSS agent | errors |");
    let _ = writeln!(
        o,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in &r.strategies {
        if let Some(x) = &s.summary {
            let Summary {
                saturation_rps,
                p50_us,
                p99_us,
                p999_us,
                target_cpu_us_per_req,
                collector_cpu_us_per_req,
                agent_cpu_us_per_req,
                alloc_bytes_per_req,
                alloc_objects_per_req,
                target_peak_rss_kib,
                collector_peak_rss_kib,
                agent_peak_rss_kib,
                errors,
                ..
            } = x;
            let _ = writeln!(
                o,
                "| {} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {:.1} MiB | {:.1} MiB | {} | {} |",
                s.name,
                saturation_rps,
                ms(*p50_us),
                ms(*p99_us),
                ms(*p999_us),
                target_cpu_us_per_req,
                collector_cpu_us_per_req,
                agent_cpu_us_per_req.map_or("– (no agent)".into(), |a| format!("{a:.0}")),
                alloc_bytes_per_req,
                alloc_objects_per_req,
                *target_peak_rss_kib as f64 / 1024.0,
                *collector_peak_rss_kib as f64 / 1024.0,
                agent_peak_rss_kib.map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
                errors
            );
        }
    }

    let _ = writeln!(o, "\n## Spans: expected vs received at the collector\n");
    let _ = writeln!(
        o,
        "Expected = successful gateway requests × the spans the strategy's own instrumentations should produce for them; \
         reference = successful requests × {} (every hop traced: gateway server, HTTP client, gRPC client; orders server, SQL query; catalog server). \
         *Delivered* shows loss, *coverage* shows what the strategy does not trace. *Probe hits/span*: the `gotap run` strategies' \
         own count (hits ÷ spans exported, from gotap's summary line at exit).\n",
        crate::REFERENCE_SPANS_PER_REQUEST
    );
    let _ = writeln!(o, "| strategy | instruments | expected | received | delivered | coverage of reference | probe hits/span | by service |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for s in &r.strategies {
        match &s.summary {
            Some(x) => {
                let by: std::collections::BTreeMap<&str, u64> = s
                    .runs
                    .iter()
                    .flat_map(|run| run.spans_by_service.iter())
                    .fold(Default::default(), |mut m, (k, v)| {
                        *m.entry(k.as_str()).or_insert(0) += v;
                        m
                    });
                let by = if by.is_empty() {
                    "–".into()
                } else {
                    by.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let inst = s
                    .runs
                    .first()
                    .map(|run| {
                        run.instrumentations
                            .iter()
                            .map(|(svc, i)| {
                                format!(
                                    "{svc}: {}",
                                    if i.is_empty() {
                                        "–".into()
                                    } else {
                                        i.join(", ")
                                    }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                let pct = |a: u64, b: u64| format!("{:.1} %", 100.0 * a as f64 / b.max(1) as f64);
                let delivered = match (x.spans_expected, x.spans_received) {
                    (0, 0) => "ok (none expected)".into(),
                    (0, _) => "unexpected spans".into(),
                    (e, r) if r == e => "100 %".into(),
                    // Two decimals and the count: a loss of 0.01 % must not round to "100 %".
                    (e, r) if r < e => {
                        format!("{:.2} % ({} missing)", 100.0 * r as f64 / e as f64, e - r)
                    }
                    (e, r) => format!(
                        "{:.2} % ({} more than expected)",
                        100.0 * r as f64 / e as f64,
                        r - e
                    ),
                };
                let coverage = if s.strategy == Strategy::Baseline {
                    "–".into()
                } else {
                    pct(x.spans_expected, x.spans_reference)
                };
                let hits = x
                    .probe_hits_per_span
                    .map_or("–".into(), |h| format!("{h:.2}"));
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.name, inst, x.spans_expected, x.spans_received, delivered, coverage, hits, by
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "| {} | – | – | – | not run: {} | | | |",
                    s.name,
                    s.unavailable.as_deref().unwrap_or("no figures")
                );
            }
        }
    }

    for s in r.strategies.iter().filter(|s| s.summary.is_some()) {
        if let Some(n) = s.strategy.coverage_note() {
            let _ = writeln!(o, "\n{}: {n}", s.name);
        }
        // What the agent itself said it left out: explains missing spans without reading logs.
        if let Some(run) = s.runs.first().filter(|run| !run.agent_warnings.is_empty()) {
            let w: Vec<String> = run
                .agent_warnings
                .iter()
                .map(|(svc, w)| format!("{svc}: {}", w.join("; ")))
                .collect();
            let _ = writeln!(
                o,
                "\n{}: `gotap run` warned at attach — {}.",
                s.name,
                w.join(" — ")
            );
        }
    }

    if !r.friction.is_empty() {
        let _ = writeln!(o, "\n## Friction: what the arena had to do\n");
        let _ = writeln!(
            o,
            "| strategy | rebuild | restart | privileges | code changes | how the arena ran it |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for f in &r.friction {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                f.strategy.name(),
                f.rebuild,
                f.restart,
                f.privileges,
                f.code_changes,
                f.how_run
            );
        }
    }

    let _ = writeln!(o, "\n## Peers\n");
    let _ = writeln!(o, "| peer | kind | install | status | detail |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for p in &r.peers {
        let status = match &p.version {
            Some(v) => format!("{} ({v})", p.status),
            None => p.status.clone(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | `{}` | {} | {} |",
            p.name,
            p.kind,
            p.install,
            status,
            p.detail.replace('|', "\\|")
        );
    }

    let _ = writeln!(o, "\n## Build cost\n");
    if r.build_cost.is_empty() {
        let _ = writeln!(
            o,
            "Not measured in this run (`--quick` skips it; `--build-cost` forces it)."
        );
    } else {
        let _ = writeln!(
            o,
            "Per service and strategy: a clean build in an empty GOCACHE (modules already downloaded, so the standard library and every dependency compile), \
             then the same build again with that cache (nothing changed), and the binary's size; ratios to the baseline's `go build` of the same service. \
             `gotap build` also builds its Go source weaver once per toolchain into ~/.cache/gotap (not counted: done before the first timed build).\n"
        );
        let _ = writeln!(o, "| strategy | service | clean build | vs baseline | cached rebuild | vs baseline | binary size | vs baseline |");
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
        for c in &r.build_cost {
            let base = r.build_cost.iter().find(|b| {
                b.strategy == Strategy::Baseline && b.service == c.service && b.failed.is_none()
            });
            if let Some(why) = &c.failed {
                let _ = writeln!(
                    o,
                    "| {} | {} | fails: {} ||||||",
                    c.strategy.name(),
                    c.service,
                    why.replace('|', "\\|")
                );
                continue;
            }
            let size = |b: Option<u64>| {
                b.map_or("–".into(), |s| format!("{:.1} MiB", s as f64 / 1048576.0))
            };
            let _ = writeln!(
                o,
                "| {} | {} | {:.1} s | {} | {:.2} s | {} | {} | {} |",
                c.strategy.name(),
                c.service,
                c.clean_secs,
                base.map_or("–".into(), |b| ratio(c.clean_secs, b.clean_secs)),
                c.cached_secs,
                base.map_or("–".into(), |b| ratio(c.cached_secs, b.cached_secs)),
                size(c.size_bytes),
                base.and_then(|b| Some(ratio(c.size_bytes? as f64, b.size_bytes? as f64)))
                    .unwrap_or_else(|| "–".into()),
            );
        }
    }

    let _ = writeln!(
        o,
        "\n## Builds (robustness: which toolchain builds which service)\n"
    );
    let _ = writeln!(
        o,
        "| toolchain | service | variant | result | build s | size |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for b in &r.builds {
        let res = if b.ok {
            "builds".to_owned()
        } else {
            format!("fails: {}", b.detail.replace('|', "\\|"))
        };
        let size = b
            .size_bytes
            .map_or("–".into(), |s| format!("{:.1} MiB", s as f64 / 1048576.0));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.1} | {} |",
            b.toolchain, b.service, b.variant, res, b.secs, size
        );
    }

    if !r.robustness.is_empty() {
        let _ = writeln!(o, "\n## Robustness: strategy × toolchain × stripped\n");
        let _ = writeln!(
            o,
            "Each cell: fresh stack, 1 s of load on 2 connections, then spans expected vs received. A toolchain that cannot build the services \
             (Go 1.19) is tested on the legacy services instead (go/arena/legacy: the same three, all HTTP, no database; 5 spans per request when every hop is traced).\n"
        );
        let _ = writeln!(o, "| strategy | toolchain | stripped | result | detail |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for x in &r.robustness {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                x.strategy_name(),
                x.toolchain,
                if x.stripped { "yes" } else { "no" },
                if x.works { "works" } else { "fails" },
                x.detail.replace('|', "\\|")
            );
        }
    }

    let _ = writeln!(o, "\n## Per run\n");
    let _ = writeln!(
        o,
        "| round | strategy | sat. req/s | rate | sent | ok | errors | p50 | p99 | p99.9 | max | spans exp/recv | unclean stops |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &r.strategies {
        for x in &s.runs {
            let _ = writeln!(
                o,
                "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} |",
                x.round,
                s.name,
                x.saturation_rps,
                x.rate,
                x.fixed_sent,
                x.fixed_ok,
                x.fixed_errors + x.saturation_errors,
                ms(x.p50_us),
                ms(x.p99_us),
                ms(x.p999_us),
                ms(x.max_us),
                x.spans_expected,
                x.spans_received,
                if x.unclean_stops.is_empty() {
                    "–".into()
                } else {
                    x.unclean_stops.join(", ")
                }
            );
        }
    }
    if !r.charts.is_empty() {
        let _ = writeln!(o, "\n## Charts\n");
        for c in &r.charts {
            let _ = writeln!(o, "![{c}]({c})");
        }
    }
    if let Some(n) = &r.charts_note {
        let _ = writeln!(o, "\n{n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Machine, StrategyResult};

    fn summary(rps: f64, p50: u64, expected: u64, received: u64) -> Summary {
        Summary {
            saturation_rps: rps,
            p50_us: p50,
            p99_us: p50 * 4,
            p999_us: p50 * 8,
            target_cpu_us_per_req: 400.0,
            collector_cpu_us_per_req: 0.0,
            agent_cpu_us_per_req: None,
            target_peak_rss_kib: 1024,
            collector_peak_rss_kib: 1024,
            agent_peak_rss_kib: None,
            alloc_bytes_per_req: 1000.0,
            alloc_objects_per_req: 10.0,
            spans_reference: expected,
            spans_expected: expected,
            spans_received: received,
            errors: 0,
            probe_hits_per_span: None,
        }
    }

    #[test]
    fn ratios_losses_and_missing_strategies_are_all_visible() {
        let st = |strategy, summary, unavailable: Option<&str>| StrategyResult {
            strategy,
            name: strategy.name().into(),
            unavailable: unavailable.map(String::from),
            runs: vec![],
            summary,
            latency_curve: vec![],
        };
        let r = Results {
            started_unix: 0,
            machine: Machine {
                cpus: 2,
                load_avg_start: 0.5,
                kernel: "6.18".into(),
                cpu_model: "x".into(),
            },
            go_version: "go1.26.8".into(),
            rounds: 1,
            warmup_s: 1.0,
            saturation_s: 4.0,
            fixed_s: 6.0,
            connections: 32,
            rate: 500.0,
            strategies: vec![
                st(Strategy::Baseline, Some(summary(4000.0, 2000, 0, 0)), None),
                st(
                    Strategy::Manual,
                    Some(summary(2000.0, 3000, 600, 540)),
                    None,
                ),
                st(Strategy::GotapRun, None, Some("needs root")),
                st(
                    Strategy::GotapProbes,
                    Some(Summary {
                        probe_hits_per_span: Some(1.0),
                        ..summary(3000.0, 2100, 400, 400)
                    }),
                    None,
                ),
            ],
            builds: vec![],
            build_cost: vec![
                crate::BuildCost {
                    strategy: Strategy::Baseline,
                    service: "orders".into(),
                    failed: None,
                    clean_secs: 30.0,
                    cached_secs: 0.2,
                    size_bytes: Some(100),
                },
                crate::BuildCost {
                    strategy: Strategy::GotapBuild,
                    service: "orders".into(),
                    failed: None,
                    clean_secs: 45.0,
                    cached_secs: 0.3,
                    size_bytes: Some(110),
                },
            ],
            robustness: vec![],
            friction: vec![],
            peers: vec![],
            charts: vec![],
            charts_note: None,
            database: "sqlite".into(),
            elapsed_s: 10.0,
        };
        let md = markdown(&r);
        let row = md
            .lines()
            .find(|l| l.starts_with("| manual OTel SDK | 0.50× | 1.50×"))
            .unwrap_or_else(|| panic!("no ratio row in:\n{md}"));
        assert!(row.contains("| 1.00× |"), "{row}");
        assert!(
            md.contains("| 600 | 540 | 90.00 % (60 missing) |"),
            "loss not shown:\n{md}"
        );
        assert!(
            md.contains("| 400 | 400 | 100 % | 100.0 % | 1.00 |"),
            "probe hits per span not shown:\n{md}"
        );
        assert!(md.contains("not run: needs root"));
        assert!(md.contains("load average 0.5"));
        assert!(
            md.contains(
                "| gotap build (compile-time) | orders | 45.0 s | 1.50× | 0.30 s | 1.50× |"
            ),
            "build cost:\n{md}"
        );
    }
}
