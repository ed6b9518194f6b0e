//! Traces one running Go process for a while and prints span counts and probe statistics (used
//! to measure overhead, see docs/ebpf.md). Usage: `trace PID SECONDS [--print]`.
use std::time::Duration;

use gotap_ebpf::{Agent, AgentOptions};
use gotap_spans::Resource;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(pid), Some(secs)) = (
        args.get(1).and_then(|a| a.parse().ok()),
        args.get(2).and_then(|a| a.parse().ok()),
    ) else {
        eprintln!("usage: trace PID SECONDS [--print]");
        std::process::exit(2);
    };
    let print = args.iter().any(|a| a == "--print");
    let run = || -> Result<(), gotap_ebpf::EbpfError> {
        let mut agent = Agent::load(AgentOptions::default(), move |s| {
            if print {
                println!(
                    "{} {:?} trace={} parent={:?}",
                    s.name,
                    s.kind,
                    gotap_spans::ids::hex(&s.trace_id),
                    s.parent_span_id.map(|p| gotap_spans::ids::hex(&p))
                );
            }
        })?;
        let t = agent.trace_process(pid, Resource::default())?;
        eprintln!(
            "traced {} ({}): {} probes {:?}",
            t.path.display(),
            t.go_version,
            t.probes,
            t.warnings
        );
        std::thread::sleep(Duration::from_secs(secs));
        let s = agent.shutdown();
        eprintln!("{s:?} hits/span={:.2}", s.hits_per_span());
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
