//! The eBPF strategy: traces unmodified Go programs with uprobes on function entries and
//! returns (never uretprobes), BPF programs in C (bpf/), loaded with aya. Produces
//! [`gotap_spans::Span`]s through gotap_spans' builders.
//!
//! Use:
//! ```no_run
//! # use gotap_ebpf::*;
//! check_environment()?;                          // one sentence if privileges/kernel are missing
//! let mut agent = Agent::load(AgentOptions::default(), |span| println!("{}", span.name))?;
//! agent.trace_process(1234, gotap_spans::Resource::default())?;   // a running process
//! // gotap run: child stopped before exec →
//! // agent.trace_executable(path, child_pid, resource)?; release it; agent.confirm_exec(child_pid)?;
//! let stats = agent.shutdown();                  // detach, drain, stop
//! # Ok::<(), EbpfError>(())
//! ```
//!
//! One [`Agent`] = one loaded BPF object serving any number of processes: each traced process
//! gets an id, passed to its uprobes as the attach cookie, that keys its runtime offsets in the
//! `cfgs` map and each library's configuration in `lib_cfgs`. Probes sit on instructions the
//! kernel emulates (the stack check's Jcc rather than the entry, a direct CALL after the call
//! rather than RETs) where possible: single-stepping a probed instruction is what makes a uprobe
//! hit expensive. Instrumented (see docs/ebpf.md for
//! probes, hits per span, costs and limits; each library's function probes live in its folder,
//! instrumentations/<name>/ebpf.rs and bpf/<name>.bpf.h, see [`library`]):
//! - net/http server (`serverHandler.ServeHTTP` entry + return): method, path, query, Host,
//!   proto, RemoteAddr, route (`Request.Pattern`, Go ≥ 1.23), User-Agent and incoming
//!   `traceparent` from the raw request bytes, status;
//! - net/http client (`(*Transport).roundTrip` entry + RETs): method, URL, status or error;
//! - goroutines (`runtime.newproc`'s `CALL runqput` after `newproc1`): a goroutine inherits its
//!   creator's span context;
//! - cross-process links: `(*persistConn).roundTrip` stores the client span under the TCP
//!   4-tuple in a map pinned in bpffs ([`AgentOptions::link_map_pin_dir`]) that servers traced
//!   by any gotap agent on the host look up.
//!
//!
//! A binary built with `gotap build --probes` (gotap USDT notes) is traced through its probe
//! sites instead (src/sites.rs, docs/probes.md): one uprobe per site, with the USDT semaphore
//! (src/usdt.rs), one hit per span, no struct offsets; [`TracedProcess::tracing`] says which path.
//!
//! Not in scope: process discovery, export (crate gotap-export), CLI.

mod abi;
mod agent;
mod claim;
mod env;
mod error;
pub mod library;
pub mod libs;
pub mod plan;
mod sites;
mod usdt;

pub use agent::{Agent, AgentOptions, AgentStats, TracedProcess, LINK_MAP_NAME};
pub use env::check_environment;
pub use error::EbpfError;
pub use sites::{kernel_optimises_nop5, TracingPath};

// helper threads own agents: keep them Send.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Agent>();
};
