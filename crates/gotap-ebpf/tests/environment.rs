//! check_environment names the missing capability. The test re-runs its own binary under
//! `setpriv` with one capability dropped from the bounding set (root's effective set follows it).

const CHILD_ENV: &str = "GOTAP_EBPF_ENV_CHILD";

/// As root: the environment is ready. Also the child half of `missing_capabilities_are_named`:
/// re-run with CHILD_ENV set under reduced capabilities, it prints what check_environment says
/// instead of asserting (the parent asserts on that line).
#[test]
fn ready_as_root_or_report_as_capability_reduced_child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        match gotap_ebpf::check_environment() {
            Ok(()) => println!("RESULT ok"),
            Err(e) => println!("RESULT {e}"),
        }
        return;
    }
    gotap_testkit::require_root();
    gotap_ebpf::check_environment().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn missing_capabilities_are_named() {
    gotap_testkit::require_root();
    let me = std::env::current_exe().unwrap();
    for (drop, name) in [
        ("-bpf", "CAP_BPF"),
        ("-perfmon", "CAP_PERFMON"),
        ("-sys_admin", "CAP_SYS_ADMIN"),
    ] {
        let out = std::process::Command::new("setpriv")
            .args(["--bounding-set", drop, "--inh-caps", drop])
            .arg(&me)
            .args([
                "--exact",
                "ready_as_root_or_report_as_capability_reduced_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .expect("setpriv (util-linux) is installed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
            .unwrap_or_else(|| panic!("child said: {stdout}"));
        assert_eq!(
            line,
            format!("gotap's eBPF strategy needs the {name} capability (run as root)")
        );
    }
}
