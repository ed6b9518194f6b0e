//! Probe sites (`gotap build --probes`, docs/probes.md): a binary whose `.note.stapsdt` has gotap
//! probes is traced through them instead of function entries and returns. One uprobe per site,
//! with the USDT semaphore (so the woven code prepares arguments only while traced), one hit per
//! span; the site programs (bpf/gotap.bpf.c, site_*) copy the arguments and the record, and
//! [`emit`] hands them to the same builders as the function probes.
use std::sync::{Arc, OnceLock};

use gotap_binary::usdt::{self, UsdtProbe};
use gotap_binary::GoBinary;
use gotap_spans::sink::SpanSink;
use gotap_spans::Resource;
use gotap_spans::SpanFrame;

use crate::abi::SiteEvent;
use crate::EbpfError;

/// The 5-byte NOP the kernel optimises a uprobe on (a syscall trampoline instead of a trap).
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// How a traced process is probed; its `Display` is what `gotap run` / `attach` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracingPath {
    /// Uprobes on function entries and returns (an ordinary Go binary).
    FunctionProbes,
    /// gotap probe sites. `nop5`: every site starts with the 5-byte NOP; `kernel_optimises`: this
    /// kernel turns a uprobe on a nop5 into a call to a syscall trampoline.
    ProbeSites { nop5: bool, kernel_optimises: bool },
}

impl TracingPath {
    /// Whether hits take the kernel's optimised (no trap) path.
    pub fn optimised(self) -> bool {
        matches!(
            self,
            TracingPath::ProbeSites {
                nop5: true,
                kernel_optimises: true
            }
        )
    }
}

impl std::fmt::Display for TracingPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            TracingPath::FunctionProbes => f.write_str("function entries and returns"),
            TracingPath::ProbeSites {
                nop5: true,
                kernel_optimises: true,
            } => f.write_str("probe sites (nop5, kernel-optimised)"),
            TracingPath::ProbeSites {
                nop5: true,
                kernel_optimises: false,
            } => f.write_str("probe sites (int3: this kernel does not optimise nop5 uprobes)"),
            TracingPath::ProbeSites { nop5: false, .. } => {
                f.write_str("probe sites (int3: the sites do not start with a 5-byte NOP)")
            }
        }
    }
}

/// Whether this kernel optimises uprobes on a nop5 (Linux ≥ 6.18 on x86-64): its uprobe
/// optimiser or the `uprobe` syscall the trampoline enters by is in /proc/kallsyms. Read once.
pub fn kernel_optimises_nop5() -> bool {
    static CACHE: OnceLock<bool> = OnceLock::new();
    *CACHE.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return false;
        }
        let Ok(syms) = std::fs::read_to_string("/proc/kallsyms") else {
            return false;
        };
        // "address type name [module]"
        syms.lines().any(|l| {
            matches!(
                l.split_whitespace().nth(2),
                Some("arch_uprobe_optimize" | "__x64_sys_uprobe")
            )
        })
    })
}

/// One site to attach.
#[derive(Debug, Clone)]
pub struct SiteProbe {
    pub program: &'static str,
    /// `gotap:http_server`.
    pub name: String,
    /// File offset of the site's first instruction.
    pub offset: u64,
    /// File offset of the USDT semaphore (uprobe `ref_ctr_offset`).
    pub semaphore_offset: u64,
    /// The site hands over the span's event in registers (`usdt::SITE_EVENT_PROLOGUE`); else it
    /// is read through its arguments and record (sites built before that ABI).
    pub event: bool,
}

/// Bit of a site uprobe's cookie telling the BPF program the site has the event ABI
/// (`SITE_COOKIE_EVENT` in bpf/types.h); the low 32 bits are the traced process's id.
pub const SITE_COOKIE_EVENT: u64 = 1 << 32;

/// The exit probe of a process traced through batch sites (bpf/gotap.bpf.c, `exit_flush`): the
/// functions every exit of a Go process goes through but SIGKILL's, and the references of the
/// batch buffers it then reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitPlan {
    /// (function, file offset of its entry).
    pub probes: Vec<(&'static str, u64)>,
    /// Link-time address and file offset of the buffers' references
    /// (`usdt::batch_buffer_refs`), at most `abi::EXIT_REFS_MAX`.
    pub refs: Vec<(u64, u64)>,
    /// Position-independent executable: the references move with the load address.
    pub pie: bool,
}

/// `runtime.exit`: the exit_group of `main` returning, `os.Exit` (`log.Fatal`) and a fatal
/// panic; `runtime.dieFromSignal`: a signal whose default action kills (an unhandled SIGTERM).
pub const EXIT_FUNCTIONS: [&str; 2] = ["runtime.exit", "runtime.dieFromSignal"];

#[derive(Debug)]
pub struct SitePlan {
    pub path: std::path::PathBuf,
    pub go_version: String,
    pub build_id: Option<String>,
    pub sites: Vec<SiteProbe>,
    pub instrumentations: Vec<&'static str>,
    pub warnings: Vec<String>,
    pub tracing: TracingPath,
    /// Set when batch sites are used and the binary has their buffers' references (built by a
    /// gotap that has them).
    pub exit: Option<ExitPlan>,
}

/// The probe sites of `bin`, or `None` when it has no gotap probe this agent knows (then it is
/// traced with function probes). A gotap probe whose note breaks the contract (argument spec,
/// missing semaphore) is an error: it was written by a gotap that disagrees with this one.
/// `batch`: attach to a package's batch site instead of its per-span sites where it has one.
pub fn plan(bin: &GoBinary, batch: bool) -> Result<Option<SitePlan>, EbpfError> {
    let probes = usdt::read_probes(bin.data()).map_err(|e| EbpfError::Sites {
        path: bin.path().to_path_buf(),
        why: e.to_string(),
    })?;
    plan_batched(bin, &probes, batch)
}

/// [`plan_from`], then each package's batch site, if `batch`, in place of its per-span sites.
fn plan_batched(
    bin: &GoBinary,
    probes: &[UsdtProbe],
    batch: bool,
) -> Result<Option<SitePlan>, EbpfError> {
    let plan = plan_from(bin, probes)?;
    if !batch {
        return Ok(plan);
    }
    let Some(mut plan) = plan else {
        return Ok(None);
    };
    let fail = |why: String| EbpfError::Sites {
        path: bin.path().to_path_buf(),
        why,
    };
    let mut batched = Vec::new();
    for p in probes.iter().filter(|p| p.provider == usdt::GOTAP_PROVIDER) {
        // Batch sites (docs/probes.md, "Batched sites"): each library's (its sites.rs) replaces
        // the per-span sites of the same package when it is used.
        let Some(&usdt::BatchSite {
            prefix, package, ..
        }) = usdt::batch_sites().find(|b| b.def.name == p.name)
        else {
            continue;
        };
        if normalise(&p.args_raw) != normalise(usdt::GOTAP_BATCH_ARGS) {
            return Err(fail(format!(
                "probe gotap:{} has arguments `{}`, expected `{}`",
                p.name,
                p.args_raw,
                usdt::GOTAP_BATCH_ARGS
            )));
        }
        let Some(semaphore_offset) = p.semaphore_offset.filter(|&o| o != 0) else {
            return Err(fail(format!(
                "probe gotap:{} has no semaphore: its site would never be called",
                p.name
            )));
        };
        let before = plan.sites.len();
        plan.sites
            .retain(|s| !s.name["gotap:".len()..].starts_with(prefix));
        if plan.sites.len() == before {
            continue; // no per-span site of that package: nothing it would replace
        }
        plan.sites.push(SiteProbe {
            program: "site_batch",
            name: format!("gotap:{}", p.name),
            offset: p.offset,
            semaphore_offset,
            event: false,
        });
        batched.push(package);
    }
    plan.exit = exit_plan(bin, &batched);
    if !batched.is_empty() && plan.exit.is_none() {
        plan.warnings.push(
            "no exit probe (the binary's batch buffers have no reference: built by an older gotap?): spans still buffered when it exits are lost; rebuild with `gotap build --probes`".into(),
        );
    }
    Ok(Some(plan))
}

/// The exit probe for the batch buffers of `packages` (package numbers), if the binary has their
/// references and the runtime's exit functions.
fn exit_plan(bin: &GoBinary, packages: &[u8]) -> Option<ExitPlan> {
    let mut refs: Vec<(u64, u64)> = usdt::batch_buffer_refs(bin)
        .into_iter()
        .filter(|(pkg, _)| packages.contains(pkg))
        .filter_map(|(_, addr)| Some((addr, bin.vaddr_to_offset(addr)?)))
        .collect();
    refs.truncate(crate::abi::EXIT_REFS_MAX);
    let probes: Vec<(&'static str, u64)> = EXIT_FUNCTIONS
        .iter()
        .filter_map(|name| Some((*name, bin.function(name)?.offset)))
        .filter(|(_, offset)| *offset != 0)
        .collect();
    (!refs.is_empty() && !probes.is_empty()).then(|| ExitPlan {
        probes,
        refs,
        pie: bin.elf().pie,
    })
}

fn plan_from(bin: &GoBinary, probes: &[UsdtProbe]) -> Result<Option<SitePlan>, EbpfError> {
    let path = bin.path().to_path_buf();
    let fail = |why: String| EbpfError::Sites {
        path: path.clone(),
        why,
    };
    let mut sites = Vec::new();
    let mut instrumentations = Vec::new();
    let mut warnings = Vec::new();
    let mut nop5 = true;
    for p in probes
        .iter()
        .filter(|p| p.provider == usdt::GOTAP_PROVIDER)
        .filter(|p| !usdt::batch_sites().any(|b| b.def.name == p.name))
    {
        // The sites this agent knows: every library's (instrumentations/<lib>/sites.rs).
        let Some(&usdt::LibSite {
            program,
            instrumentation: instr,
            ..
        }) = usdt::lib_sites().find(|s| s.def.name == p.name)
        else {
            warnings.push(format!(
                "probe site gotap:{} is not known to this gotap version: not traced",
                p.name
            ));
            continue;
        };
        if bin.goarch() != "amd64" {
            return Err(fail(format!(
                "probe sites are read on amd64 only (GOARCH={})",
                bin.goarch()
            )));
        }
        if normalise(&p.args_raw) != normalise(usdt::GOTAP_ARGS) {
            return Err(fail(format!(
                "probe gotap:{} has arguments `{}`, expected `{}`",
                p.name,
                p.args_raw,
                usdt::GOTAP_ARGS
            )));
        }
        let Some(semaphore_offset) = p.semaphore_offset.filter(|&o| o != 0) else {
            return Err(fail(format!(
                "probe gotap:{} has no semaphore: its site would never be called",
                p.name
            )));
        };
        let start = usize::try_from(p.offset).ok();
        nop5 &= start.and_then(|s| bin.data().get(s..s + 5)) == Some(&NOP5[..]);
        sites.push(SiteProbe {
            program,
            name: format!("gotap:{}", p.name),
            offset: p.offset,
            semaphore_offset,
            event: usdt::site_has_event_abi(bin.data(), p.offset),
        });
        if !instrumentations.contains(&instr) {
            instrumentations.push(instr);
        }
    }
    if sites.is_empty() {
        return Ok(None);
    }
    Ok(Some(SitePlan {
        path,
        go_version: bin.go_version().to_string(),
        build_id: bin
            .elf()
            .go_build_id
            .clone()
            .or_else(|| bin.elf().build_id.clone()),
        sites,
        instrumentations,
        warnings,
        tracing: TracingPath::ProbeSites {
            nop5,
            kernel_optimises: kernel_optimises_nop5(),
        },
        exit: None,
    }))
}

fn normalise(spec: &str) -> String {
    spec.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Converts one site event: ids, start and duration as the woven code made them.
#[cfg(test)] // the agent emits into its sink; tests look at the span
pub fn to_span(
    ev: &SiteEvent<'_>,
    resource: Arc<Resource>,
    capture_query: bool,
) -> Option<gotap_spans::Span> {
    let mut got = None;
    emit(
        ev,
        resource,
        capture_query,
        &mut gotap_spans::sink::Collect::new(|s| got = Some(s)),
    );
    got
}

/// Converts one site event into `out` (`to_span` in tests); `false` for an event it cannot convert.
pub fn emit(
    ev: &SiteEvent<'_>,
    resource: Arc<Resource>,
    capture_query: bool,
    out: &mut dyn SpanSink,
) -> bool {
    let h = &ev.h;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&h.trace_hi.to_be_bytes());
    trace_id[8..].copy_from_slice(&h.trace_lo.to_be_bytes());
    let start = h.start.max(0) as u64;
    let frame = SpanFrame {
        trace_id,
        span_id: h.span.to_be_bytes(),
        parent_span_id: (h.parent != 0).then(|| h.parent.to_be_bytes()),
        start_unix_nano: start,
        end_unix_nano: start.saturating_add(h.duration_ns.max(0) as u64),
        resource,
    };
    // The library whose site kind this is builds the span (instrumentations/<lib>/decode.rs).
    match crate::library::site_kind(h.kind) {
        Some(k) => {
            (k.decode)(ev, &frame, capture_query, out);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi;

    fn header(kind: u8) -> abi::SiteHeader {
        abi::SiteHeader {
            kind,
            trace_hi: 0x0af7651916cd43dd,
            trace_lo: 0x8448eb211c80319c,
            span: 0xb7ad6b7169203331,
            start: 1_000,
            duration_ns: 500,
            ..Default::default()
        }
    }

    #[test]
    fn unknown_kind_and_bad_records_are_rejected() {
        let rec = abi::encode_site_event(&header(9), &[]);
        assert!(SiteEvent::parse(&rec).is_none(), "kind 9");
        assert!(
            SiteEvent::parse(&[0u8; 1216]).is_none(),
            "kind 0: a function-probe event's size, not a site"
        );
        let mut rec = abi::encode_site_event(
            &header(abi::EV_SITE_CLIENT),
            &[b"GET" as &[u8], b"http://h/"],
        );
        assert!(SiteEvent::parse(&rec).is_some());
        rec.pop();
        assert!(
            SiteEvent::parse(&rec).is_none(),
            "strings past the record's end"
        );
        assert!(
            SiteEvent::parse(&rec[..40]).is_none(),
            "shorter than the header"
        );
    }

    fn probe(
        provider: &str,
        name: &str,
        offset: u64,
        args: &str,
        semaphore_offset: Option<u64>,
    ) -> UsdtProbe {
        UsdtProbe {
            provider: provider.into(),
            name: name.into(),
            address: 0,
            offset,
            semaphore: semaphore_offset,
            semaphore_offset,
            args_raw: args.into(),
            args: Vec::new(),
        }
    }

    /// The notes decide: none (or only other providers') → function probes; gotap's → sites,
    /// checked against the contract.
    #[test]
    fn site_plans_follow_the_notes() {
        let path = gotap_testkit::build(
            "testapps",
            "./cmd/usdtsites",
            gotap_testkit::Toolchain::Go126,
            Default::default(),
        );
        let bin = GoBinary::open(&path).unwrap();
        assert!(
            plan(&bin, true).unwrap().is_none(),
            "not annotated: function probes"
        );
        let server = bin.function("main.gotapProbeHTTPServer").unwrap().offset;
        let ordinary = bin.function("main.main").unwrap().offset;
        let args = usdt::GOTAP_ARGS;

        assert!(plan_from(
            &bin,
            &[probe("other", "http_server", server, args, Some(64))]
        )
        .unwrap()
        .is_none());
        assert!(
            plan_from(
                &bin,
                &[probe("gotap", "kafka_produce", server, args, Some(64))]
            )
            .unwrap()
            .is_none(),
            "no known site"
        );

        let p = plan_from(
            &bin,
            &[
                probe("gotap", "http_server", server, args, Some(64)),
                probe("gotap", "kafka_produce", server, args, Some(64)),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.instrumentations, ["net/http server"]);
        assert_eq!(
            (
                p.sites.len(),
                p.sites[0].program,
                p.sites[0].semaphore_offset
            ),
            (1, "site_http_server", 64)
        );
        assert_eq!(
            p.warnings,
            ["probe site gotap:kafka_produce is not known to this gotap version: not traced"]
        );
        // database/sql and grpc sites, each with its package's semaphore.
        let p = plan_from(
            &bin,
            &[
                probe("gotap", "sql_query", server, args, Some(64)),
                probe("gotap", "grpc_client", server, args, Some(72)),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.instrumentations, ["database/sql", "grpc client"]);
        let planned: Vec<(&str, u64)> = p
            .sites
            .iter()
            .map(|s| (s.program, s.semaphore_offset))
            .collect();
        assert_eq!(planned, [("site_sql_query", 64), ("site_grpc_client", 72)]);
        assert_eq!(
            p.tracing,
            TracingPath::ProbeSites {
                nop5: true,
                kernel_optimises: kernel_optimises_nop5()
            }
        );

        let p = plan_from(
            &bin,
            &[probe("gotap", "http_client", ordinary, args, Some(64))],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            p.tracing.to_string(),
            "probe sites (int3: the sites do not start with a 5-byte NOP)"
        );

        let e = plan_from(
            &bin,
            &[probe("gotap", "http_server", server, "8@8(%rsp)", Some(64))],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, format!("{}: cannot trace its probe sites: probe gotap:http_server has arguments `8@8(%rsp)`, expected `{args}`", path.display()));
        let e = plan_from(&bin, &[probe("gotap", "http_server", server, args, None)])
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("probe gotap:http_server has no semaphore: its site would never be called"),
            "{e}"
        );

        // A package's batch site replaces its per-span sites, unless batching is off; a batch
        // site without per-span sites of its package is not attached.
        let batch = usdt::GOTAP_BATCH_ARGS;
        let notes = [
            probe("gotap", "http_server", server, args, Some(64)),
            probe("gotap", "http_client", server, args, Some(64)),
            probe("gotap", "sql_query", server, args, Some(72)),
            probe("gotap", "http_batch", server, batch, Some(80)),
            probe("gotap", "grpc_batch", server, batch, Some(88)),
        ];
        let planned = |batched| {
            let p = plan_batched(&bin, &notes, batched).unwrap().unwrap();
            assert_eq!(
                p.instrumentations,
                ["net/http server", "net/http client", "database/sql"]
            );
            // This binary has no batch buffer reference: batched, it gets no exit probe and says so.
            assert_eq!(p.exit, None);
            if batched {
                assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
                assert!(
                    p.warnings[0].starts_with("no exit probe"),
                    "{:?}",
                    p.warnings
                );
            } else {
                assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            }
            p.sites
                .iter()
                .map(|s| (s.name.clone(), s.program, s.semaphore_offset))
                .collect::<Vec<_>>()
        };
        let s = |n: &str| format!("gotap:{n}");
        assert_eq!(
            planned(true),
            [
                (s("sql_query"), "site_sql_query", 72),
                (s("http_batch"), "site_batch", 80)
            ]
        );
        assert_eq!(
            planned(false),
            [
                (s("http_server"), "site_http_server", 64),
                (s("http_client"), "site_http_client", 64),
                (s("sql_query"), "site_sql_query", 72)
            ]
        );
        let e = plan_batched(
            &bin,
            &[
                probe("gotap", "http_server", server, args, Some(64)),
                probe("gotap", "http_batch", server, args, Some(80)),
            ],
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with(&format!(
                "probe gotap:http_batch has arguments `{args}`, expected `{batch}`"
            )),
            "{e}"
        );
    }

    #[test]
    fn path_messages() {
        let p = |nop5, kernel_optimises| {
            TracingPath::ProbeSites {
                nop5,
                kernel_optimises,
            }
            .to_string()
        };
        assert_eq!(p(true, true), "probe sites (nop5, kernel-optimised)");
        assert_eq!(
            p(true, false),
            "probe sites (int3: this kernel does not optimise nop5 uprobes)"
        );
        assert!(TracingPath::ProbeSites {
            nop5: true,
            kernel_optimises: true
        }
        .optimised());
        assert!(!TracingPath::ProbeSites {
            nop5: false,
            kernel_optimises: true
        }
        .optimised());
    }
}
