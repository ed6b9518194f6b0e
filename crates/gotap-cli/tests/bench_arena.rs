//! `gotap bench`: a small real arena run (real Go services, real collector, real eBPF when root)
//! asserting that every strategy that ran delivered the spans it should have to the collector.
use std::path::PathBuf;
use std::process::Command;

fn gotap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gotap"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn small_arena_run_delivers_every_strategys_spans() {
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
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json")).expect("valid JSON");
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
            assert!(report.contains(why), "{key} is unavailable ({why}) but the report does not say so");
            continue;
        }
        let sum = &s["summary"];
        let (expected, received) = (sum["spans_expected"].as_u64().unwrap(), sum["spans_received"].as_u64().unwrap());
        assert_eq!(sum["errors"].as_u64(), Some(0), "{key}: requests failed");
        assert_eq!(received, expected, "{key}: {received} spans reached the collector, {expected} expected");
        if key != "baseline" {
            assert!(expected > 0, "{key} claims to instrument nothing");
        }
        let run = &s["runs"][0];
        assert!(run["saturation_rps"].as_f64().unwrap() > 0.0);
        assert!(run["fixed_ok"].as_u64().unwrap() >= 190, "{key}: the fixed-rate phase lost requests: {run}");
        assert!(run["target_cpu_us_per_req"].as_f64().unwrap() > 0.0, "{key}: no CPU measured");
        assert!(run["alloc_bytes_per_req"].as_f64().unwrap() > 0.0, "{key}: no allocations measured");
        ran.push(key.to_owned());
    }
    assert!(ran.contains(&"baseline".to_owned()) && ran.contains(&"manual".to_owned()), "ran: {ran:?}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(ran.contains(&"gotap-run".to_owned()), "gotap run is available as root but did not run: {ran:?}");
    }
}

#[test]
fn unknown_strategy_is_one_clear_error() {
    let o = gotap().args(["bench", "--strategies", "baseline,nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim(), "gotap: unknown strategy `nope` (known: baseline, manual, gotap-run)");
}
