//! Measures what a probe-site span costs the traced program: runs examples/sitebench (built with
//! `go` from PATH or $GO), annotated with gotap's notes, for 3 s untraced, 4 s traced by an
//! [`Agent`] (through the sites), 3 s detached, and prints its per-second ns/span lines with the
//! agent's counters. Used for docs/probes.md's figures. Run as root:
//! `cargo run -p gotap-ebpf --example site_cost [-- --force] [--int3]`. `--force`: the program
//! calls its sites even untraced; `--int3`: the sites' nop5 is replaced by five 1-byte NOPs,
//! which the kernel does not optimise (the trap path, as on a kernel before 6.18).
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use gotap_binary::usdt::{self, SiteDef};
use gotap_ebpf::{Agent, AgentOptions};

fn main() {
    let force = std::env::args().any(|a| a == "--force");
    let int3 = std::env::args().any(|a| a == "--int3");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sitebench");
    let bin = std::env::temp_dir().join(format!("gotap-sitebench-{}", std::process::id()));
    let go = std::env::var("GO").unwrap_or_else(|_| "go".into());
    let ok = Command::new(&go)
        .current_dir(&src)
        .args(["build", "-o"])
        .arg(&bin)
        .env("GOTOOLCHAIN", "local")
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "go build of {} failed",
        src.display()
    );
    let sites = [
        SiteDef {
            name: "http_server",
            function: "main.gotapProbeHTTPServer",
            ..usdt::GOTAP_SITES[0]
        },
        SiteDef {
            name: "http_client",
            function: "main.gotapProbeHTTPClient",
            ..usdt::GOTAP_SITES[1]
        },
    ];
    usdt::annotate(&bin, &sites, Some(usdt::GOTAP_SEMAPHORE_MARKER))
        .unwrap_or_else(|e| panic!("{e}"));
    if int3 {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&bin).unwrap();
        for p in usdt::read_probes(&std::fs::read(&bin).unwrap()).unwrap() {
            f.write_all_at(&[0x90; 5], p.offset).unwrap();
        }
    }

    let mut cmd = Command::new(&bin);
    cmd.args(["-seconds", "10"]).stdout(Stdio::piped());
    if force {
        cmd.arg("-force");
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    assert_eq!(lines.next().as_deref(), Some("sitebench ready"));
    for l in lines.by_ref().take(3) {
        println!("untraced  {l}");
    }
    let mut agent = Agent::load(AgentOptions::default(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let t = agent
        .trace_process(child.id(), Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    println!("attached: {} probes on {}", t.probes, t.tracing);
    for l in lines.by_ref().take(4) {
        println!("traced    {l}");
    }
    let stats = agent.shutdown();
    println!(
        "detached: {stats:?} ({:.2} hits per span)",
        stats.hits_per_span()
    );
    for l in lines {
        println!("detached  {l}");
    }
    let _ = child.wait();
    let _ = std::fs::remove_file(&bin);
}
