//! Spans buffered when a woven program calls os.Exit (rules/main.yaml, os-exit-flush): the
//! program crates/gotap-cli/tests/go/exitapp, built by `gotap build` with Go 1.26 and 1.27, makes
//! one request to itself and exits with os.Exit(3) or log.Fatal, the batch delay set to a minute:
//! its server and client spans reach the real collector only if os.Exit flushes them, and the
//! exit status and log.Fatal's message are the program's own. Control: the same program leaving by
//! syscall.Exit (which bypasses os.Exit) delivers nothing.
use gotap_testkit::collector::{Collector, Seen};
use gotap_testkit::Toolchain;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn build(tc: Toolchain) -> PathBuf {
    gotap_testkit::gotap_build_once(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/exitapp"),
        tc,
        &format!("exitapp-woven-{}", tc.label()),
    )
}

/// Runs the program to its end (service name `exit-<how>`), batch delay one minute.
fn run(bin: &Path, col: &Collector, how: &str) -> Output {
    Command::new(bin)
        .env("EXIT", how)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", col.http_port),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("OTEL_SERVICE_NAME", format!("exit-{how}"))
        .output()
        .unwrap()
}

/// (service.name, scope, span name) of the spans of `service`.
fn of_service(spans: Vec<Seen>, service: &str) -> Vec<(String, String, String)> {
    spans
        .into_iter()
        .filter(|s| s.service == service)
        .map(|s| (s.service, s.scope, s.name))
        .collect()
}

/// The spans of service `exit-<how>`, once both (server and client) have arrived.
fn wait_spans_of(col: &Collector, how: &str) -> Vec<(String, String, String)> {
    let service = format!("exit-{how}");
    of_service(
        col.wait_for(Duration::from_secs(20), |spans| {
            spans.iter().filter(|s| s.service == service).count() >= 2
        }),
        &service,
    )
}

fn check(tc: Toolchain) {
    let bin = build(tc);
    let col = Collector::start(&format!("gotap-build-exit-{}", tc.label()));
    let want = |how: &str| {
        let mut v = vec![
            (
                format!("exit-{how}"),
                "gotap/net/http/client".to_owned(),
                "GET".to_owned(),
            ),
            (
                format!("exit-{how}"),
                "gotap/net/http/server".to_owned(),
                "GET /exit/{how}".to_owned(), /* the ServeMux pattern */
            ),
        ];
        v.sort();
        v
    };

    // Control first: without os.Exit nothing flushes, and a minute's batch delay keeps the spans.
    let control = run(&bin, &col, "syscall");
    assert_eq!(
        control.status.code(),
        Some(3),
        "{}: control: {control:?}",
        tc.label()
    );

    let res = run(&bin, &col, "os");
    assert_eq!(
        res.status.code(),
        Some(3),
        "{}: os.Exit(3) must keep its status: {res:?}",
        tc.label()
    );
    let mut got = wait_spans_of(&col, "os");
    got.sort();
    assert_eq!(got, want("os"), "{}: spans buffered at os.Exit", tc.label());

    let res = run(&bin, &col, "fatal");
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}: log.Fatal must exit with status 1: {res:?}",
        tc.label()
    );
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("exitapp: fatal end"),
        "{}: log.Fatal's message: {res:?}",
        tc.label()
    );
    let mut got = wait_spans_of(&col, "fatal");
    got.sort();
    assert_eq!(
        got,
        want("fatal"),
        "{}: spans buffered at log.Fatal",
        tc.label()
    );

    // The control ran before the two runs whose spans arrived, on the same collector pipeline:
    // had it exported anything, it would be there by now.
    let leaked = of_service(col.spans(), "exit-syscall");
    assert!(
        leaked.is_empty(),
        "{}: spans without os.Exit's flush: {leaked:?}",
        tc.label()
    );
    let _ = std::fs::remove_dir_all(&col.dir);
}

#[test]
fn spans_buffered_at_os_exit_are_exported_go126() {
    check(Toolchain::Go126);
}

#[test]
fn spans_buffered_at_os_exit_are_exported_go127() {
    check(Toolchain::Go127);
}
