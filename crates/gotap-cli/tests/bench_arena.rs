//! `gotap bench`: a small real arena run (real Go services, real collector, real eBPF when root,
//! real `gotap build`) asserting that every strategy that ran delivered the spans it should have to
//! the collector.
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Arena runs share target/arena (built binaries) and both cores: one at a time.
static ARENA: Mutex<()> = Mutex::new(());

fn gotap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gotap"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn small_arena_run_delivers_every_strategys_spans() {
    let _one = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-arena");
    let _ = std::fs::remove_dir_all(&out);
    // Few connections and a low fixed rate: the point is span delivery, not saturation; the SDK's
    // batch queue must not overflow here.
    let o = gotap()
        .args([
            "bench",
            "--quick",
            "--connections",
            "4",
            "--warmup-secs",
            "0.5",
            "--saturation-secs",
            "2",
            "--fixed-secs",
            "2",
            "--rate",
            "100",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run gotap bench");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "gotap bench failed: {stderr}");

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json"))
            .expect("valid JSON");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for png in ["throughput.png", "latency.png", "overhead.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is not a PNG");
    }

    let strategies = results["strategies"].as_array().expect("strategies");
    let mut ran = vec![];
    for s in strategies {
        let key = s["strategy"].as_str().unwrap();
        if let Some(why) = s["unavailable"].as_str() {
            // Never a silent omission: the report says why.
            assert!(
                report.contains(why),
                "{key} is unavailable ({why}) but the report does not say so"
            );
            continue;
        }
        let sum = &s["summary"];
        let (expected, received) = (
            sum["spans_expected"].as_u64().unwrap(),
            sum["spans_received"].as_u64().unwrap(),
        );
        assert_eq!(sum["errors"].as_u64(), Some(0), "{key}: requests failed");
        if key == "gotap-probes" {
            // Its expectation comes from the sites in the binaries: a site the agent skips would
            // fail the count below; say which one first.
            let warned = &s["runs"][0]["agent_warnings"];
            assert!(
                warned.as_object().is_some_and(|w| w.is_empty()),
                "gotap-probes: gotap run did not trace every site: {warned}"
            );
        }
        if key == "orchestrion" {
            // dd-trace-go also traces each connection the SQL pool opens (a few per run).
            assert!(
                received >= expected && received <= expected + expected / 100,
                "{key}: {received} spans reached the collector, {expected} expected"
            );
        } else {
            assert_eq!(
                received, expected,
                "{key}: {received} spans reached the collector, {expected} expected"
            );
        }
        if key != "baseline" {
            assert!(expected > 0, "{key} claims to instrument nothing");
        }
        let run = &s["runs"][0];
        assert!(run["saturation_rps"].as_f64().unwrap() > 0.0);
        assert!(
            run["fixed_ok"].as_u64().unwrap() >= 190,
            "{key}: the fixed-rate phase lost requests: {run}"
        );
        assert!(
            run["target_cpu_us_per_req"].as_f64().unwrap() > 0.0,
            "{key}: no CPU measured"
        );
        assert!(
            run["alloc_bytes_per_req"].as_f64().unwrap() > 0.0,
            "{key}: no allocations measured"
        );
        ran.push(key.to_owned());
    }
    assert!(
        ran.contains(&"baseline".to_owned()) && ran.contains(&"manual".to_owned()),
        "ran: {ran:?}"
    );
    // gotap build needs neither root nor anything outside the repository: it must always run, and
    // deliver the spans of what it wove (at least the net/http server in gateway and orders and
    // the client in gateway: 3 per request).
    assert!(
        ran.contains(&"gotap-build".to_owned()),
        "gotap build did not run: {ran:?}"
    );
    let gb = strategies
        .iter()
        .find(|s| s["strategy"] == "gotap-build")
        .unwrap();
    let run = &gb["runs"][0];
    assert!(
        run["spans_expected"].as_u64().unwrap() >= run["requests_ok"].as_u64().unwrap() * 3,
        "{run}"
    );
    let gw: Vec<&str> = run["instrumentations"]["gateway"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        gw.contains(&"net/http server") && gw.contains(&"net/http client"),
        "{run}"
    );
    assert!(
        run["spans_by_service"]["gateway"].as_u64().unwrap() > 0
            && run["spans_by_service"]["orders"].as_u64().unwrap() > 0,
        "{run}"
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(
            ran.contains(&"gotap-run".to_owned()),
            "gotap run is available as root but did not run: {ran:?}"
        );
        let hits = |key: &str| {
            let s = strategies.iter().find(|s| s["strategy"] == key).unwrap();
            s["summary"]["probe_hits_per_span"]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}: no probe hits per span: {s}"))
        };
        // Function probes: entry + RET sites per span (~3).
        assert!(
            hits("gotap-run") > 2.0,
            "gotap-run: {} hits per span",
            hits("gotap-run")
        );
        // Probe sites: `gotap build --probes` binaries under `gotap run`. Every span its sites
        // should give arrived (checked above against the sites read from the binaries' USDT
        // notes).
        assert!(
            ran.contains(&"gotap-probes".to_owned()),
            "gotap-probes is available as root but did not run: {ran:?}"
        );
        let gp = strategies
            .iter()
            .find(|s| s["strategy"] == "gotap-probes")
            .unwrap();
        let run = &gp["runs"][0];
        let inst = |svc: &str| -> Vec<&str> {
            run["instrumentations"][svc]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect()
        };
        assert!(
            inst("gateway").contains(&"net/http server")
                && inst("gateway").contains(&"net/http client"),
            "{run}"
        );
        assert!(inst("orders").contains(&"net/http server"), "{run}");
        assert!(
            run["spans_expected"].as_u64().unwrap() >= run["requests_ok"].as_u64().unwrap() * 3,
            "{run}"
        );
        // Batch sites: one hit per buffer of spans, so below one per span under load.
        assert!(
            hits("gotap-probes") < 1.0,
            "gotap-probes: {} hits per span",
            hits("gotap-probes")
        );
        assert!(
            report.contains("| gotap build --probes + gotap run |"),
            "no gotap-probes row in the report"
        );
    }
}

#[test]
fn unknown_strategy_is_one_clear_error() {
    let o = gotap()
        .args(["bench", "--strategies", "baseline,nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim(), "gotap: unknown strategy `nope` (known: baseline, manual, gotap-run, gotap-build, gotap-probes, orchestrion)");
}

#[test]
fn go119_matrix_cells_run_the_legacy_services() {
    let _one = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-matrix");
    let _ = std::fs::remove_dir_all(&out);
    let o = gotap()
        .args([
            "bench",
            "--quick",
            "--matrix",
            "--toolchains",
            "go1.19",
            "--strategies",
            "baseline,gotap-run,gotap-build,gotap-probes",
        ])
        .args([
            "--connections",
            "2",
            "--warmup-secs",
            "0.2",
            "--saturation-secs",
            "0.5",
            "--fixed-secs",
            "0.5",
            "--rate",
            "20",
            "--no-charts",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run gotap bench");
    assert!(
        o.status.success(),
        "gotap bench failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();

    // The real services cannot build with Go 1.19; the legacy ones can.
    let builds = r["builds"].as_array().unwrap();
    let build = |service: &str, variant: &str| {
        builds
            .iter()
            .find(|b| {
                b["toolchain"] == "go1.19" && b["service"] == service && b["variant"] == variant
            })
            .unwrap_or_else(|| panic!("no {service} {variant} build"))
    };
    assert_eq!(build("gateway", "plain")["ok"], false);
    for svc in ["catalog (legacy)", "orders (legacy)", "gateway (legacy)"] {
        assert_eq!(build(svc, "plain")["ok"], true, "{}", build(svc, "plain"));
    }

    let cell = |strategy: &str, stripped: bool| {
        r["robustness"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["strategy"] == strategy && c["toolchain"] == "go1.19" && c["stripped"] == stripped
            })
            .unwrap_or_else(|| panic!("no go1.19 cell for {strategy}"))
            .clone()
    };
    // gotap build refuses Go < 1.23 with its own sentence, and the cell shows it.
    let gb = cell("gotap-build", false);
    assert_eq!(gb["works"], false);
    assert!(
        gb["detail"]
            .as_str()
            .unwrap()
            .contains("gotap build needs Go 1.23 or newer"),
        "{gb}"
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // So does `gotap build --probes` (a strategy that needs root to trace, so only then in the matrix).
        for stripped in [false, true] {
            let gp = cell("gotap-probes", stripped);
            assert_eq!(gp["works"], false);
            assert!(
                gp["detail"]
                    .as_str()
                    .unwrap()
                    .contains("gotap build --probes needs Go 1.23 or newer"),
                "{gp}"
            );
        }
        for stripped in [false, true] {
            let c = cell("gotap-run", stripped);
            assert_eq!(c["works"], true, "{c}");
            assert!(c["detail"].as_str().unwrap().contains("legacy"), "{c}");
            // All-HTTP legacy stack: gateway server + 2 client calls, orders server, catalog server.
            assert_eq!(
                c["spans_expected"].as_u64().unwrap(),
                c["requests_ok"].as_u64().unwrap() * 5,
                "{c}"
            );
        }
        // The run toolchain's --probes builds, stripped too: sites found from the notes, spans delivered.
        let run_tc = r["go_version"].as_str().unwrap();
        for stripped in [false, true] {
            let c = r["robustness"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| {
                    c["strategy"] == "gotap-probes"
                        && c["toolchain"] == run_tc
                        && c["stripped"] == stripped
                })
                .unwrap();
            assert_eq!(c["works"], true, "{c}");
        }
    }
}
