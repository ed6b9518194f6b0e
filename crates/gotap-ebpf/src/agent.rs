//! The loaded BPF object, the processes it traces, and the thread that turns events into spans.
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::{
    UProbeAttachLocation, UProbeAttachPoint, UProbeLink, UProbeLinkId, UProbeScope,
};
use aya::programs::{RawTracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use gotap_spans::sink::{Collect, SpanSink};
use gotap_spans::{semconv, Resource, Span};

use crate::abi::{self, ProcCfg, SiteEvent};
use crate::claim::{self, Claim};
use crate::library::{DecodeCtx, Decoded, LibCfg, LibKey};
use crate::plan::{self, Plan};
use crate::sites::{self, SitePlan, TracingPath};
use crate::usdt::{self, UsdtLink};
use crate::EbpfError;

static BPF_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gotap.bpf.o"));

/// The generic programs (each library's are in its `Library::programs`).
const PROGRAMS: &[&str] = &[
    "newproc1_ret",
    "newproc_runqput",
    "site_batch",
    "exit_flush",
];

/// How long detaching from a process traced through batch sites waits for its last buffer: the
/// woven code's flush delay (10 ms) and a margin.
const BATCH_LINGER: Duration = Duration::from_millis(50);

/// Name of the pinned cross-process link map inside [`AgentOptions::link_map_pin_dir`].
pub const LINK_MAP_NAME: &str = "gotap_links";

#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Export `url.query` on server spans (off by default: queries may hold secrets).
    pub capture_query: bool,
    /// bpffs directory holding the TCP-tuple link map every gotap agent on the host shares.
    /// bpffs is mounted on /sys/fs/bpf if needed.
    pub link_map_pin_dir: PathBuf,
    /// How often the ring buffer is drained (events are submitted without wakeups, except the
    /// one that fills the ring past a quarter — for probe sites, one checked every 32nd hit of a
    /// CPU while it is past that mark —: a burst is drained at once).
    pub poll_interval: Duration,
    /// Attach to a binary's batch sites where it has them (one hit per buffer of spans) rather
    /// than to its per-span sites (one hit per span, no delay): docs/probes.md, "Batched sites".
    pub batch_sites: bool,
    /// At shutdown, leave the closing of the uprobe links to a helper process, so the caller is
    /// done at once rather than after the kernel's per-probe teardown (see
    /// [`close_links_in_background`]). Each process's configuration is removed first either way,
    /// so its probes return at once; the breakpoints and semaphores go within a few seconds.
    /// For a caller that exits right after (the CLI); off, shutdown returns fully detached.
    pub detach_in_background: bool,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            capture_query: false,
            link_map_pin_dir: PathBuf::from("/sys/fs/bpf/gotap"),
            // 100 rather than 20 ms: a third less of gotap's CPU per span at 8000 spans/s (fewer
            // wake-ups, each drain warmer), docs/benchmarks.md; bursts wake the reader early.
            poll_interval: Duration::from_millis(100),
            batch_sites: true,
            detach_in_background: false,
        }
    }
}

/// Counters since [`Agent::load`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentStats {
    /// Events read from the ring buffer.
    pub events: u64,
    /// Spans handed to `on_span`.
    pub spans: u64,
    /// Events lost because the ring buffer was full (counted in BPF).
    pub ringbuf_drops: u64,
    /// Uprobe hits of every gotap program in every traced process (counted in BPF).
    pub probe_hits: u64,
    /// Of those, hits of the goroutine-start hook (one per goroutine the program starts, which
    /// a service with background goroutines pays at any request rate).
    pub goroutine_hits: u64,
    /// Of those, hits of batch sites (one per buffer of spans a woven package hands over).
    pub batch_hits: u64,
    /// Of those, each library's (function probes and per-span probe sites), in the registry's
    /// order, libraries with no hit left out: (its name, e.g. "database/sql", hits).
    pub library_hits: Vec<(&'static str, u64)>,
    /// Ring-buffer records that were not a known event.
    pub undecodable: u64,
    /// Return probes that found no in-flight call (its entry evicted from the LRU map, or the
    /// call began before attaching): that span is lost (counted in BPF).
    pub ret_without_entry: u64,
    /// Server requests whose header block exceeded the raw window with a header not found in it
    /// (traceparent or User-Agent possibly missed; counted in BPF).
    pub header_window_truncated: u64,
    /// Site events with a text slot longer than its cap, exported cut there (`REC_TEXT_CUT`;
    /// counted in BPF, and here for batch sites), e.g. a query text past 4,096 bytes.
    pub text_truncated: u64,
}

impl AgentStats {
    /// Probe hits per exported span (0 when there is no span yet).
    pub fn hits_per_span(&self) -> f64 {
        if self.spans == 0 {
            0.0
        } else {
            self.probe_hits as f64 / self.spans as f64
        }
    }
}

/// What [`Agent::trace_process`] attached.
#[derive(Debug, Clone)]
pub struct TracedProcess {
    pub pid: u32,
    /// The executable analysed (and attached to).
    pub path: PathBuf,
    pub go_version: String,
    pub build_id: Option<String>,
    /// `net/http server`, `net/http client`.
    pub instrumentations: Vec<&'static str>,
    /// Number of uprobes attached (entries + RET sites, or probe sites).
    pub probes: usize,
    /// Function probes, or the binary's probe sites (and whether hits take the kernel's nop5
    /// fast path).
    pub tracing: TracingPath,
    /// Some of the probe sites are batch sites (many spans per hit).
    pub batched: bool,
    /// The exit probe reads the batch buffers when the process exits or dies from a signal
    /// (bpf/gotap.bpf.c, `exit_flush`).
    pub exit_probe: bool,
    /// Features left out for this binary, as sentences.
    pub warnings: Vec<String>,
}

struct Traced {
    id: u32,
    links: Vec<(&'static str, UProbeLinkId)>,
    /// Probe-site uprobes (created here, with the USDT semaphore; aya does not own them).
    usdt: Vec<UsdtLink>,
    info: TracedProcess,
    dev_ino: FileId,
    /// The batch buffers' references (link-time address, file offset) and whether they move
    /// with the load address, until they are in the `exit_refs` map ([`Agent::arm_exit_probe`]).
    exit: Option<(Vec<(u64, u64)>, bool)>,
    /// This agent's claim on the process (one gotap per process, src/claim.rs), released with it.
    _claim: Claim,
}

#[derive(Default)]
struct Shared {
    resources: Mutex<HashMap<u32, Arc<Resource>>>,
    events: AtomicU64,
    spans: AtomicU64,
    undecodable: AtomicU64,
    /// Text slots cut at their cap in batched events (the BPF side counts the others).
    text_truncated: AtomicU64,
}

/// One loaded BPF object; traces any number of processes, each with its own offsets.
pub struct Agent {
    ebpf: Ebpf,
    shared: Arc<Shared>,
    traced: HashMap<u32, Traced>,
    next_id: u32,
    wake: Arc<Wait>,
    reader: Option<JoinHandle<()>>,
    batch_sites: bool,
    detach_in_background: bool,
    /// The exit tracepoint (`exit_flush_tp`: spans buffered by a process that is killed),
    /// attached with the first process that has an exit probe; `None` until then.
    exit_tp: Option<Result<(), String>>,
}

/// `PROC_PID_INIT_INO`: the inode of the initial PID namespace (include/linux/proc_ns.h).
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;

impl Agent {
    /// Loads the BPF programs (not attached yet) and starts the thread that drains the ring buffer
    /// every `opts.poll_interval` and calls `on_span` for each finished span.
    pub fn load(
        opts: AgentOptions,
        on_span: impl FnMut(Span) + Send + 'static,
    ) -> Result<Agent, EbpfError> {
        Self::load_into(opts, Collect::new(on_span))
    }

    /// [`Agent::load`] with the spans built into a sink (`gotap_export::SpanSender::sink`
    /// encodes them for OTLP without building a [`Span`]); the sink's `idle` is called after each
    /// drain of the ring, and it is dropped when the reader stops.
    pub fn load_into(
        opts: AgentOptions,
        sink: impl SpanSink + Send + 'static,
    ) -> Result<Agent, EbpfError> {
        crate::env::check_environment()?;
        crate::env::prepare_pin_dir(&opts.link_map_pin_dir)?;
        let pin = opts.link_map_pin_dir.join(LINK_MAP_NAME);
        // The exit tracepoint keys processes by pid as gotap sees them: in the initial namespace
        // that is the kernel's own tgid (ino 0 tells the program so), elsewhere it asks the kernel
        // for the pid in gotap's namespace.
        let (ns_dev, ns_ino) = match std::fs::metadata("/proc/self/ns/pid") {
            Ok(m) if m.ino() != INIT_PID_NS_INO => (m.dev(), m.ino()),
            _ => (0u64, 0u64),
        };
        let load = || {
            EbpfLoader::new()
                .map_pin_path(LINK_MAP_NAME, pin.as_path())
                .override_global("gotap_pidns_dev", &ns_dev, true)
                .override_global("gotap_pidns_ino", &ns_ino, true)
                .load(BPF_OBJ)
        };
        // Two gotaps starting at once may both find the shared link map unpinned and both pin
        // it: the second pin fails with EEXIST, and a second try opens the first one's map.
        let mut ebpf = load()
            .or_else(|e| {
                if chain(&e).contains("exists") {
                    load()
                } else {
                    Err(e)
                }
            })
            .map_err(|e| EbpfError::Load(chain(&e)))?;
        let lib_programs = crate::libs::LIBRARIES
            .iter()
            .flat_map(|(_, lib)| lib.programs.iter());
        // Every library's probe-site programs (instrumentations/<lib>/sites.rs).
        let site_programs = gotap_binary::usdt::lib_sites().map(|s| &s.program);
        for name in PROGRAMS.iter().chain(site_programs).chain(lib_programs) {
            let prog: &mut UProbe = ebpf
                .program_mut(name)
                .ok_or_else(|| EbpfError::Load(format!("program {name} missing from the object")))?
                .try_into()
                .map_err(|e| EbpfError::Load(format!("{name}: {}", chain(&e))))?;
            prog.load()
                .map_err(|e| EbpfError::Load(format!("{name}: {}", chain(&e))))?;
        }
        let ring = RingBuf::try_from(
            ebpf.take_map("events")
                .ok_or_else(|| EbpfError::Load("map events missing".into()))?,
        )
        .map_err(|e| EbpfError::Load(format!("events: {}", chain(&e))))?;
        let shared = Arc::new(Shared::default());
        let wake = Arc::new(
            Wait::new(ring.as_raw_fd())
                .map_err(|e| EbpfError::Load(format!("cannot wait on the ring buffer: {e}")))?,
        );
        let reader = {
            let (shared, wait) = (shared.clone(), wake.clone());
            let mono_to_unix = mono_to_unix_offset();
            std::thread::Builder::new()
                .name("gotap-ebpf-reader".into())
                .spawn(move || {
                    read_loop(
                        ring,
                        shared,
                        &wait,
                        opts.capture_query,
                        opts.poll_interval,
                        mono_to_unix,
                        sink,
                    )
                })
                .map_err(|e| EbpfError::Load(format!("cannot start the reader thread: {e}")))?
        };
        Ok(Agent {
            ebpf,
            shared,
            traced: HashMap::new(),
            next_id: 1,
            wake,
            reader: Some(reader),
            batch_sites: opts.batch_sites,
            detach_in_background: opts.detach_in_background,
            exit_tp: None,
        })
    }

    /// Traces a running process: analyses its executable through /proc/PID/exe, attaches entry and
    /// RET-site uprobes filtered to that pid, and tags its spans with `resource`.
    ///
    /// The executable's device and inode are taken before the analysis and checked again after
    /// the attach, so probes are never left on a binary other than the one analysed (a process
    /// that exec'd meanwhile): that fails with [`EbpfError::BinaryChanged`].
    pub fn trace_process(
        &mut self,
        pid: u32,
        resource: Resource,
    ) -> Result<TracedProcess, EbpfError> {
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let no_process = |e: std::io::Error| EbpfError::NoProcess {
            pid,
            why: e.to_string(),
        };
        // Analyse and attach through one open descriptor: every probe then lands on the very inode
        // that was analysed, even if the process execs or the path is replaced meanwhile
        // (beyla#2350: stale offsets on another binary crash the target).
        let file = std::fs::File::open(&exe).map_err(no_process)?;
        let before = file_id(&file).map_err(no_process)?;
        let claim = self.claim(pid)?;
        let pinned = fd_path(&file);
        // Errors and reports name the file, not the descriptor.
        let shown = std::fs::read_link(&exe).unwrap_or(exe.clone());
        let mut plan = analyse(&pinned, self.batch_sites).map_err(|e| named(e, &shown))?;
        plan.set_path(shown);
        // Probe sites another tracer already enabled (one this agent's claim cannot see: a gotap
        // in another PID namespace, bpftrace): their semaphores are above 0 before we attach.
        if let Analysed::Sites(_, semaphores) = &plan {
            sites_in_use(pid, before, semaphores)?;
        }
        let info = self.attach(pid, &pinned, plan, resource, before, claim)?;
        // Same inode still run by the process, and not rewritten in place while we analysed it.
        let exe_now = std::fs::metadata(&exe).map(|m| (m.dev(), m.ino())).ok();
        if file_id(&file).ok() != Some(before) || exe_now != Some((before.0, before.1)) {
            let _ = self.untrace_process(pid);
            return Err(EbpfError::BinaryChanged { pid });
        }
        self.arm_exit_probe(pid, true);
        Ok(info)
    }

    /// For `gotap run`: traces process `pid` that will exec `path` (it is stopped before its
    /// exec). Analyses `path` itself and attaches to that file with a pid filter; uprobes attached
    /// this way keep firing after the exec (the filter follows the task's memory map).
    /// Call [`Agent::confirm_exec`] once the child has exec'd to check it runs that very file.
    pub fn trace_executable(
        &mut self,
        path: &Path,
        pid: u32,
        resource: Resource,
    ) -> Result<TracedProcess, EbpfError> {
        let path = std::fs::canonicalize(path).map_err(|e| {
            EbpfError::Binary(gotap_binary::Error::Io {
                path: path.to_path_buf(),
                err: e,
            })
        })?;
        let io = |e| {
            EbpfError::Binary(gotap_binary::Error::Io {
                path: path.clone(),
                err: e,
            })
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        let before = file_id(&file).map_err(io)?;
        // A process not yet exec'd has no other tracer; the claim tells a later one it has.
        let claim = self.claim(pid)?;
        let pinned = fd_path(&file);
        let mut plan = analyse(&pinned, self.batch_sites).map_err(|e| named(e, &path))?;
        plan.set_path(path.clone());
        let info = self.attach(pid, &pinned, plan, resource, before, claim)?;
        if file_id(&file).ok() != Some(before) {
            let _ = self.untrace_process(pid);
            return Err(EbpfError::BinaryChanged { pid });
        }
        self.arm_exit_probe(pid, false);
        Ok(info)
    }

    /// Checks that traced process `pid` now runs the file its probes were attached to (after a
    /// [`Agent::trace_executable`] and the exec); untraces it and fails otherwise.
    pub fn confirm_exec(&mut self, pid: u32) -> Result<(), EbpfError> {
        let t = self.traced.get(&pid).ok_or(EbpfError::NotTraced { pid })?;
        let now = std::fs::File::open(format!("/proc/{pid}/exe"))
            .and_then(|f| file_id(&f))
            .map_err(|e| EbpfError::NoProcess {
                pid,
                why: e.to_string(),
            })?;
        if now != t.dev_ino {
            let _ = self.untrace_process(pid);
            return Err(EbpfError::BinaryChanged { pid });
        }
        self.arm_exit_probe(pid, true);
        Ok(())
    }

    /// Claims `pid` for this agent (src/claim.rs): refused when this agent or another gotap
    /// traces it already.
    fn claim(&self, pid: u32) -> Result<Claim, EbpfError> {
        if self.traced.contains_key(&pid) {
            return Err(EbpfError::AlreadyTraced { pid });
        }
        claim::claim(pid)
    }

    fn attach(
        &mut self,
        pid: u32,
        target: &Path,
        plan: Analysed,
        mut resource: Resource,
        dev_ino: FileId,
        claim: Claim,
    ) -> Result<TracedProcess, EbpfError> {
        let nz_pid = NonZeroU32::new(pid).ok_or(EbpfError::NoProcess {
            pid,
            why: "pid 0".into(),
        })?;
        let id = self.next_id;
        self.next_id += 1;
        let mut info = plan.info(pid);
        fill_resource(&mut resource, pid, &info.go_version);
        self.shared
            .resources
            .lock()
            .unwrap()
            .insert(id, Arc::new(resource));
        let mut traced = Traced {
            id,
            links: Vec::new(),
            usdt: Vec::new(),
            info: info.clone(),
            dev_ino,
            exit: None,
            _claim: claim,
        };
        let attached = match &plan {
            Analysed::Functions(plan) => self.attach_functions(&mut traced, target, plan, nz_pid),
            Analysed::Sites(plan, _) => self.attach_sites(&mut traced, target, plan, pid),
        };
        if let Err(e) = attached {
            self.detach_links(&mut traced);
            self.forget(id, pid);
            self.shared.resources.lock().unwrap().remove(&id);
            return Err(e);
        }
        if traced.exit.is_some() {
            if let Err(why) = self.exit_tracepoint() {
                let w = format!(
                    "spans it buffers when it is killed (SIGKILL, OOM kill) are lost: {why}"
                );
                info.warnings.push(w.clone());
                traced.info.warnings.push(w);
            }
        }
        tracing::debug!(pid, probes = info.probes, tracing = %info.tracing, "attached");
        self.traced.insert(pid, traced);
        Ok(info)
    }

    fn attach_functions(
        &mut self,
        traced: &mut Traced,
        target: &Path,
        plan: &Plan,
        pid: NonZeroU32,
    ) -> Result<(), EbpfError> {
        let mut cfg: ProcCfg = plan.cfg;
        cfg.proc = traced.id;
        {
            let mut cfgs: BpfHashMap<_, u32, ProcCfg> =
                BpfHashMap::try_from(self.ebpf.map_mut("cfgs").expect("cfgs is in the object"))
                    .map_err(|e| EbpfError::Map {
                        map: "cfgs",
                        why: chain(&e),
                    })?;
            cfgs.insert(traced.id, cfg, 0).map_err(|e| EbpfError::Map {
                map: "cfgs",
                why: chain(&e),
            })?;
        }
        if !plan.libs.is_empty() {
            let mut lib_cfgs: BpfHashMap<_, LibKey, LibCfg> = BpfHashMap::try_from(
                self.ebpf
                    .map_mut("lib_cfgs")
                    .expect("lib_cfgs is in the object"),
            )
            .map_err(|e| EbpfError::Map {
                map: "lib_cfgs",
                why: chain(&e),
            })?;
            for (lib, v) in &plan.libs {
                let key = LibKey {
                    proc: traced.id,
                    lib: *lib,
                };
                lib_cfgs
                    .insert(key, LibCfg { v: *v }, 0)
                    .map_err(|e| EbpfError::Map {
                        map: "lib_cfgs",
                        why: chain(&e),
                    })?;
            }
        }
        for site in &plan.sites {
            let prog: &mut UProbe = self
                .ebpf
                .program_mut(site.program)
                .expect("loaded in Agent::load")
                .try_into()
                .expect("a uprobe");
            let point = UProbeAttachPoint {
                location: UProbeAttachLocation::AbsoluteOffset(site.offset),
                cookie: Some(traced.id as u64),
            };
            let link = prog
                .attach(point, target, UProbeScope::OneProcess(pid))
                .map_err(|e| EbpfError::Attach {
                    function: site.function.to_string(),
                    path: plan.path.clone(),
                    why: chain(&e),
                })?;
            traced.links.push((site.program, link));
        }
        Ok(())
    }

    /// One uprobe per probe site, created with the USDT semaphore's offset so the kernel counts
    /// this tracer in the process's semaphore (and uncounts it when the uprobe is closed).
    fn attach_sites(
        &mut self,
        traced: &mut Traced,
        target: &Path,
        plan: &SitePlan,
        pid: u32,
    ) -> Result<(), EbpfError> {
        if !usdt::kernel_has_ref_ctr() {
            return Err(EbpfError::Sites {
                path: plan.path.clone(),
                why: "this kernel cannot maintain USDT semaphores (uprobe ref_ctr_offset, Linux 4.20 or later), and the sites are called only while theirs is non-zero".into(),
            });
        }
        for (i, site) in plan.sites.iter().enumerate() {
            let prog: &UProbe = self
                .ebpf
                .program(site.program)
                .expect("loaded in Agent::load")
                .try_into()
                .expect("a uprobe");
            let attach_err = |why: String| EbpfError::Attach {
                function: site.name.clone(),
                path: plan.path.clone(),
                why,
            };
            let fd = prog.fd().map_err(|e| attach_err(chain(&e)))?;
            // Only the last uprobe of a semaphore carries it: the woven code starts calling its
            // sites once every one of them is probed (a probe created under a busy kernel can take
            // 100 ms, while the others' sites would already be called unseen).
            let last = !plan.sites[i + 1..]
                .iter()
                .any(|s| s.semaphore_offset == site.semaphore_offset);
            let ref_ctr = if last { site.semaphore_offset } else { 0 };
            let link = usdt::attach(
                fd.as_fd(),
                target,
                site.offset,
                ref_ctr,
                pid,
                traced.id as u64
                    | if site.event {
                        sites::SITE_COOKIE_EVENT
                    } else {
                        0
                    },
            )
            .map_err(|e| attach_err(e.to_string()))?;
            traced.usdt.push(link);
        }
        if let Some(exit) = &plan.exit {
            let prog: &UProbe = self
                .ebpf
                .program("exit_flush")
                .expect("loaded in Agent::load")
                .try_into()
                .expect("a uprobe");
            for (function, offset) in &exit.probes {
                let attach_err = |why: String| EbpfError::Attach {
                    function: function.to_string(),
                    path: plan.path.clone(),
                    why,
                };
                let fd = prog.fd().map_err(|e| attach_err(chain(&e)))?;
                let link = usdt::attach(fd.as_fd(), target, *offset, 0, pid, traced.id as u64)
                    .map_err(|e| attach_err(e.to_string()))?;
                traced.usdt.push(link);
            }
            traced.exit = Some((exit.refs.clone(), exit.pie));
        }
        Ok(())
    }

    /// Attaches the exit tracepoint once (bpf/gotap.bpf.c, `exit_flush_tp`): it reads the batch
    /// buffers of a process that dies without running any code of its own (SIGKILL, OOM kill).
    fn exit_tracepoint(&mut self) -> Result<(), String> {
        if let Some(done) = &self.exit_tp {
            return done.clone();
        }
        let attached = self
            .ebpf
            .program_mut("exit_flush_tp")
            .ok_or_else(|| "exit_flush_tp missing from the object".to_string())
            .and_then(|p| <&mut RawTracePoint>::try_from(p).map_err(|e| chain(&e)))
            .and_then(|p| {
                p.load().map_err(|e| chain(&e))?;
                p.attach("sched_process_exit").map_err(|e| chain(&e))
            })
            .map(|_link| ()) // owned by the program: attached while the agent lives
            .map_err(|e| {
                format!("no exit tracepoint on this kernel (sched_process_exit with group_dead, called while the process's memory is still there): {e}")
            });
        self.exit_tp = Some(attached.clone());
        attached
    }

    /// Tells the exit probe where process `pid`'s batch buffers are: their references' link-time
    /// addresses, or for a position-independent executable where the process maps them (known
    /// once it has exec'd). Called by [`Agent::trace_executable`] (before the exec: a fixed-address
    /// executable is armed there, before its first instruction), [`Agent::confirm_exec`] and
    /// [`Agent::trace_process`] (`last`: no later chance). Until then the probe finds no entry
    /// and reads nothing. A failure only costs the spans buffered at exit: logged, not returned.
    fn arm_exit_probe(&mut self, pid: u32, last: bool) {
        let Some(t) = self.traced.get_mut(&pid) else {
            return;
        };
        let Some((refs, pie)) = t.exit.take() else {
            return;
        };
        let mut value = abi::ExitRefs::default();
        for (slot, &(vaddr, offset)) in value.refs.iter_mut().zip(&refs) {
            *slot = if pie {
                match mapped_address(pid, t.dev_ino, offset) {
                    Some(a) => a,
                    None if !last => {
                        t.exit = Some((refs, pie)); // not exec'd yet: armed by confirm_exec
                        return;
                    }
                    None => {
                        tracing::warn!(pid, "the executable's data is not mapped: spans buffered when it exits are not read");
                        return;
                    }
                }
            } else {
                vaddr
            };
        }
        let id = t.id;
        let inserted = self
            .ebpf
            .map_mut("exit_refs")
            .ok_or_else(|| "no exit_refs map".to_string())
            .and_then(|m| BpfHashMap::<_, u32, abi::ExitRefs>::try_from(m).map_err(|e| chain(&e)))
            .and_then(|mut m| m.insert(id, value, 0).map_err(|e| chain(&e)));
        if let Err(why) = inserted {
            tracing::warn!(pid, %why, "exit probe not armed: spans buffered when it exits are not read");
            return;
        }
        if matches!(self.exit_tp, Some(Ok(()))) {
            let by_pid = self
                .ebpf
                .map_mut("exit_pids")
                .ok_or_else(|| "no exit_pids map".to_string())
                .and_then(|m| BpfHashMap::<_, u32, u32>::try_from(m).map_err(|e| chain(&e)))
                .and_then(|mut m| m.insert(pid, id, 0).map_err(|e| chain(&e)));
            if let Err(why) = by_pid {
                tracing::warn!(pid, %why, "exit tracepoint not armed: spans buffered when it is killed are not read");
            }
        }
    }

    fn detach_links(&mut self, t: &mut Traced) {
        let links = self.take_links(t);
        close_links(links);
    }

    /// Takes the links out of aya's programs (and the probe-site links out of `t`), so they can
    /// be closed all at once by [`close_links`].
    fn take_links(&mut self, t: &mut Traced) -> Vec<AnyLink> {
        let mut out = Vec::with_capacity(t.links.len() + t.usdt.len());
        for (name, link) in t.links.drain(..) {
            if let Some(p) = self.ebpf.program_mut(name) {
                let p: Result<&mut UProbe, _> = p.try_into();
                if let Ok(link) = p.and_then(|p| p.take_link(link)) {
                    out.push(AnyLink::Function(link));
                }
            }
        }
        out.extend(t.usdt.drain(..).map(AnyLink::Site));
        out
    }

    /// Detaches every traced process in one batch (see [`close_links`], and
    /// [`AgentOptions::detach_in_background`]). Each process's configuration is removed first.
    fn detach_all(&mut self) {
        let mut links = Vec::new();
        let traced: Vec<Traced> = self.traced.drain().map(|(_, t)| t).collect();
        for mut t in traced {
            links.extend(self.take_links(&mut t));
            self.forget(t.id, t.info.pid);
        }
        if self.detach_in_background {
            close_links_in_background(links);
        } else {
            close_links(links);
        }
    }

    /// How long to let the traced processes run before a signal that may end them: their
    /// batch buffers' delay and a margin when one is traced through batch sites, else zero
    /// (`gotap run` forwards Ctrl-C after it, so the last spans are not lost with the process).
    pub fn batch_linger(&self) -> Duration {
        if self.traced.values().any(|t| t.info.batched) {
            BATCH_LINGER
        } else {
            Duration::ZERO
        }
    }

    /// Spans a live process traced through batch sites still holds in its buffer reach the
    /// site within the buffer's delay (10 ms, go/probes/shared/gotap_batch.go): detaching waits
    /// that long, with a margin for the target's scheduling, rather than lose them.
    fn linger_for_batches(&self, pids: &[u32]) {
        let live_batched = pids.iter().any(|pid| {
            self.traced.get(pid).is_some_and(|t| t.info.batched)
                && Path::new(&format!("/proc/{pid}")).exists()
        });
        if live_batched {
            std::thread::sleep(BATCH_LINGER);
        }
    }

    fn forget(&mut self, id: u32, pid: u32) {
        if let Some(m) = self.ebpf.map_mut("cfgs") {
            if let Ok(mut cfgs) = BpfHashMap::<_, u32, ProcCfg>::try_from(m) {
                let _ = cfgs.remove(&id);
            }
        }
        if let Some(m) = self.ebpf.map_mut("lib_cfgs") {
            if let Ok(mut lib_cfgs) = BpfHashMap::<_, LibKey, LibCfg>::try_from(m) {
                for (lib, _) in crate::libs::LIBRARIES {
                    let _ = lib_cfgs.remove(&LibKey {
                        proc: id,
                        lib: *lib,
                    });
                }
            }
        }
        if let Some(m) = self.ebpf.map_mut("exit_refs") {
            if let Ok(mut refs) = BpfHashMap::<_, u32, abi::ExitRefs>::try_from(m) {
                let _ = refs.remove(&id);
            }
        }
        if let Some(m) = self.ebpf.map_mut("exit_pids") {
            if let Ok(mut pids) = BpfHashMap::<_, u32, u32>::try_from(m) {
                let _ = pids.remove(&pid);
            }
        }
    }

    /// Detaches the probes of `pid`. Spans already in the ring buffer are still delivered.
    pub fn untrace_process(&mut self, pid: u32) -> Result<(), EbpfError> {
        self.linger_for_batches(&[pid]);
        let mut t = self
            .traced
            .remove(&pid)
            .ok_or(EbpfError::NotTraced { pid })?;
        self.detach_links(&mut t);
        self.forget(t.id, pid);
        Ok(())
    }

    /// Processes traced now.
    pub fn traced(&self) -> Vec<TracedProcess> {
        self.traced.values().map(|t| t.info.clone()).collect()
    }

    pub fn stats(&self) -> AgentStats {
        let counters = self
            .ebpf
            .map("counters")
            .and_then(|m| PerCpuArray::<_, u64>::try_from(m).ok());
        let counter = |idx: u32| -> u64 {
            counters
                .as_ref()
                .and_then(|a| a.get(&idx, 0).ok())
                .map(|v| v.iter().sum())
                .unwrap_or(0)
        };
        // Each library's hits: its function probes' (by id) and its site kinds' (by kind).
        let mut library_hits: Vec<(u32, &'static str, u64)> = Vec::new();
        let mut add = |id: u32, name: &'static str, n: u64| {
            if n == 0 {
                return;
            }
            match library_hits.iter_mut().find(|(i, _, _)| *i == id) {
                Some(e) => e.2 += n,
                None => library_hits.push((id, name, n)),
            }
        };
        for (id, lib) in crate::libs::LIBRARIES {
            if *id < abi::CNT_LIB_MAX {
                add(*id, lib.name, counter(abi::CNT_LIB_HITS + id));
            }
        }
        for (id, folder, kinds) in crate::libs::SITE_KIND_LIBS {
            let name = crate::libs::LIBRARIES
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, l)| l.name)
                .unwrap_or(folder);
            for k in kinds.iter() {
                add(*id, name, counter(abi::CNT_KIND_HITS + k.kind as u32));
            }
        }
        library_hits.sort_by_key(|(id, _, _)| *id);
        AgentStats {
            batch_hits: counter(abi::CNT_BATCH_HITS),
            library_hits: library_hits.into_iter().map(|(_, n, h)| (n, h)).collect(),
            events: self.shared.events.load(Ordering::Relaxed),
            spans: self.shared.spans.load(Ordering::Relaxed),
            ringbuf_drops: counter(abi::CNT_RINGBUF_DROPS),
            probe_hits: counter(abi::CNT_PROBE_HITS),
            goroutine_hits: counter(abi::CNT_GOROUTINE_HITS),
            undecodable: self.shared.undecodable.load(Ordering::Relaxed),
            ret_without_entry: counter(abi::CNT_RET_NO_ENTRY),
            header_window_truncated: counter(abi::CNT_WINDOW_TRUNCATED),
            text_truncated: counter(abi::CNT_TEXT_TRUNCATED)
                + self.shared.text_truncated.load(Ordering::Relaxed),
        }
    }

    /// Detaches every probe, delivers what is left in the ring buffer, stops the reader thread.
    pub fn shutdown(mut self) -> AgentStats {
        let batched: Vec<u32> = self.traced.keys().copied().collect();
        self.linger_for_batches(&batched);
        self.detach_all();
        self.stop_reader();
        self.stats()
    }

    fn stop_reader(&mut self) {
        self.wake.stop();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Without this, dropping `ebpf` would close the links one after the other.
        self.detach_all();
        self.stop_reader();
    }
}

/// Closes uprobe links from several threads at once. Closing one destroys its perf-event uprobe:
/// under the kernel's global `event_mutex`, that includes `tracepoint_synchronize_unregister`
/// (RCU-tasks-trace + RCU grace periods), ~80 ms per probe on the dev VM, which stays serial; the
/// rest of the teardown overlaps. Measured for 24 probes: 2.5–5.2 s one after the other, 2.0–2.4 s
/// this way. Batching the grace periods needs uprobe-multi links (kernel ≥ 6.6), which aya 0.14
/// cannot create (it loads uprobe programs without the BPF_TRACE_UPROBE_MULTI attach type).
fn close_links(links: Vec<AnyLink>) {
    const THREADS: usize = 16;
    if links.len() <= 1 {
        return drop(links);
    }
    let mut groups: Vec<Vec<AnyLink>> = (0..THREADS.min(links.len())).map(|_| Vec::new()).collect();
    let n = groups.len();
    for (i, link) in links.into_iter().enumerate() {
        groups[i % n].push(link);
    }
    std::thread::scope(|s| {
        for group in groups {
            // If the thread cannot start, the closure (and its links) is dropped here: closed serially.
            let _ = std::thread::Builder::new()
                .name("gotap-detach".into())
                .spawn_scoped(s, move || drop(group));
        }
    });
}

/// Closes uprobe links without making the caller wait for the kernel's per-probe grace periods
/// (see [`close_links`]): a forked helper takes a reference to every link, the caller drops its
/// own (cheap while another reference exists), and the helper then closes them and exits. The
/// helper closes every other descriptor at once (it must not hold the caller's sockets, pipes or
/// maps open), and waits for a pipe to close before its own closes, so that the last reference,
/// and with it the slow teardown, is always the helper's. Falls back to [`close_links`] if the
/// fork fails.
fn close_links_in_background(links: Vec<AnyLink>) {
    if links.is_empty() {
        return;
    }
    // Everything the child needs is computed here: after fork it may only make system calls.
    let keep = link_fds();
    let mut pipe = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return close_links(links);
    }
    let (r, w) = (pipe[0], pipe[1]);
    let max_fd = keep.iter().copied().max().unwrap_or(0).max(r).max(w);
    let max_fd = max_fd.max(open_fd_max());
    // SAFETY: the child only makes async-signal-safe system calls (close, read, _exit) on data
    // prepared before the fork, and never returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"gotap-detach".as_ptr());
            for fd in 0..=max_fd {
                if fd != r && !keep.contains(&fd) {
                    libc::close(fd);
                }
            }
            let mut b = 0u8;
            // EOF once the parent has dropped its links (or died).
            while libc::read(r, (&mut b as *mut u8).cast(), 1) < 0 {}
            for &fd in &keep {
                libc::close(fd);
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our own pipe ends.
    unsafe { libc::close(r) };
    if pid < 0 {
        unsafe { libc::close(w) };
        return close_links(links);
    }
    drop(links);
    unsafe { libc::close(w) };
}

/// This process's descriptors that are BPF links or perf events (the uprobes).
fn link_fds() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let t = target.to_string_lossy();
            (t == "anon_inode:bpf_link" || t == "anon_inode:[perf_event]").then_some(fd)
        })
        .collect()
}

/// The highest descriptor open now.
fn open_fd_max() -> i32 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(1024)
}

/// A uprobe to close: aya's (function probes) or ours (probe sites). Dropping it detaches.
enum AnyLink {
    Function(#[allow(dead_code)] UProbeLink),
    Site(#[allow(dead_code)] UsdtLink),
}

/// What a binary is traced through: its function entries and returns, or its probe sites.
/// (One per attach, short-lived: the size difference does not matter.)
#[allow(clippy::large_enum_variant)]
enum Analysed {
    Functions(Plan),
    /// The plan, and every gotap semaphore of the binary (site name, file offset), those of
    /// sites left out of the plan included (another tracer may use the per-span sites).
    Sites(SitePlan, Vec<(String, u64)>),
}

/// Probe sites when the binary has gotap's USDT probes, else the function-probe plan.
fn analyse(path: &Path, batch_sites: bool) -> Result<Analysed, EbpfError> {
    let bin = gotap_binary::GoBinary::open(path)?;
    if gotap_binary::instrumentations::built_with(&bin)
        == gotap_binary::instrumentations::BuiltWith::Woven
    {
        // One strategy per binary: its woven spans and our uprobe spans would both be exported,
        // unlinked, and its own OTLP export would show up as client spans.
        return Err(EbpfError::AlreadyWoven {
            path: path.to_path_buf(),
        });
    }
    match sites::plan(&bin, batch_sites)? {
        Some(p) => {
            let mut semaphores: Vec<(String, u64)> = Vec::new();
            for probe in gotap_binary::usdt::read_probes(bin.data()).unwrap_or_default() {
                let Some(off) = probe.semaphore_offset.filter(|&o| o != 0) else {
                    continue;
                };
                if probe.provider == gotap_binary::usdt::GOTAP_PROVIDER
                    && !semaphores.iter().any(|(_, o)| *o == off)
                {
                    semaphores.push((format!("{}:{}", probe.provider, probe.name), off));
                }
            }
            Ok(Analysed::Sites(p, semaphores))
        }
        None => Ok(Analysed::Functions(plan::plan(&bin)?)),
    }
}

impl Analysed {
    fn set_path(&mut self, p: PathBuf) {
        match self {
            Analysed::Functions(plan) => plan.path = p,
            Analysed::Sites(plan, _) => plan.path = p,
        }
    }

    fn info(&self, pid: u32) -> TracedProcess {
        match self {
            Analysed::Functions(plan) => TracedProcess {
                pid,
                path: plan.path.clone(),
                go_version: plan.go_version.clone(),
                build_id: plan.build_id.clone(),
                instrumentations: plan.instrumentations.clone(),
                probes: plan.sites.len(),
                tracing: TracingPath::FunctionProbes,
                batched: false,
                exit_probe: false,
                warnings: plan.warnings.clone(),
            },
            Analysed::Sites(plan, _) => TracedProcess {
                pid,
                path: plan.path.clone(),
                go_version: plan.go_version.clone(),
                build_id: plan.build_id.clone(),
                instrumentations: plan.instrumentations.clone(),
                probes: plan.sites.len(),
                tracing: plan.tracing,
                batched: plan.sites.iter().any(|s| s.program == "site_batch"),
                exit_probe: plan.exit.is_some(),
                warnings: plan.warnings.clone(),
            },
        }
    }
}

fn fill_resource(r: &mut Resource, pid: u32, go_version: &str) {
    if r.get(semconv::PROCESS_PID).is_none() {
        r.set(semconv::PROCESS_PID, pid as i64);
    }
    if r.get(semconv::PROCESS_RUNTIME_NAME).is_none() {
        r.set(semconv::PROCESS_RUNTIME_NAME, "go");
    }
    // As the runtime reports it (runtime.Version(), "go1.26.8"), which semconv asks for and the
    // woven runtime's spans carry: one telemetry, one spelling.
    if r.get(semconv::PROCESS_RUNTIME_VERSION).is_none() {
        r.set(semconv::PROCESS_RUNTIME_VERSION, go_version);
    }
}

fn read_loop(
    mut ring: RingBuf<MapData>,
    shared: Arc<Shared>,
    wait: &Wait,
    capture_query: bool,
    interval: Duration,
    mono_to_unix: i128,
    mut sink: impl SpanSink,
) {
    loop {
        // Read the flag first: after it is seen, one more full drain delivers everything.
        let last = wait.stopped.load(Ordering::SeqCst);
        let mut drained = 0usize;
        // The resource of the last process seen, so that a drain takes the lock and hashes once
        // per process rather than once per event (both showed in the reader's profile).
        // Resources are inserted before their process's probes exist and are never replaced.
        let mut cached: Option<(u32, Arc<Resource>)> = None;
        let mut resource_of = |proc: u32| -> Option<Arc<Resource>> {
            match &cached {
                Some((p, r)) if *p == proc => Some(r.clone()),
                _ => {
                    let r = shared.resources.lock().unwrap().get(&proc).cloned()?;
                    cached = Some((proc, r.clone()));
                    Some(r)
                }
            }
        };
        while let Some(item) = ring.next() {
            shared.events.fetch_add(1, Ordering::Relaxed);
            drained += item.len();
            // A batch site's record: many site events of one process (docs/probes.md).
            if let Some((proc, events)) = abi::site_batch(&item) {
                let resource = resource_of(proc);
                let (mut built, mut bad) = (0u64, 0u64);
                for ev in abi::SiteBatch::new(events) {
                    let Some(mut ev) = ev else {
                        bad += 1; // the rest of the buffer cannot be split
                        break;
                    };
                    ev.h.proc = proc;
                    if ev.h.rflags & abi::REC_TEXT_CUT != 0 {
                        shared.text_truncated.fetch_add(1, Ordering::Relaxed);
                    }
                    match &resource {
                        Some(r) if sites::emit(&ev, r.clone(), capture_query, &mut sink) => {
                            built += 1
                        }
                        _ => bad += 1,
                    }
                }
                shared.spans.fetch_add(built, Ordering::Relaxed);
                shared.undecodable.fetch_add(bad, Ordering::Relaxed);
                continue;
            }
            // Site events (variable size) and function-probe events tell apart by their kind byte.
            if let Some(mut ev) = SiteEvent::parse(&item) {
                // A library's function probe: the start is BPF monotonic time.
                if ev.h.rflags & abi::REC_MONO != 0 {
                    ev.h.start = (ev.h.start as i128 + mono_to_unix) as i64;
                }
                let built = resource_of(ev.h.proc)
                    .is_some_and(|r| sites::emit(&ev, r, capture_query, &mut sink));
                let counter = if built {
                    &shared.spans
                } else {
                    &shared.undecodable
                };
                counter.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Any other kind is a library's own record: the first library that claims it decodes it.
            let mut cx = DecodeCtx::new(capture_query, mono_to_unix, &mut resource_of);
            let decoded = crate::libs::LIBRARIES
                .iter()
                .filter_map(|(_, lib)| lib.decode)
                .find_map(|decode| decode(&item[..], &mut cx, &mut sink));
            match decoded {
                Some(Decoded::Span) => {
                    shared.spans.fetch_add(1, Ordering::Relaxed);
                }
                Some(Decoded::UnknownProcess) => {}
                Some(Decoded::Undecodable) | None => {
                    shared.undecodable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if last {
            return;
        }
        sink.idle();
        // Events come without wakeups: the ring is drained on a timer, or early when a record
        // fills it past a quarter (bpf/gotap.bpf.c, wake_flag / site_wake_flag) or the agent stops. A drain that
        // found it over a quarter full also shortens the next wait until the rate drops.
        let pause = if drained > RING_BYTES / 4 {
            interval / 8
        } else {
            interval
        };
        wait.wait(pause);
    }
}

/// Size of the `events` ring buffer (bpf/gotap.bpf.c).
const RING_BYTES: usize = 4 << 20;

/// The reader's sleep between drains: an epoll set with the ring buffer, edge-triggered (woken
/// only by a record submitted with a wakeup, not by data sitting in the ring), and an eventfd
/// that [`Wait::stop`] makes readable for good.
struct Wait {
    epoll: OwnedFd,
    stop: OwnedFd,
    /// Set by [`Wait::stop`]: after seeing it, the reader drains once more and returns.
    stopped: AtomicBool,
}

impl Wait {
    fn new(ring: RawFd) -> std::io::Result<Wait> {
        // SAFETY: plain syscalls; each returned fd is checked and owned right away.
        unsafe {
            let epoll = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if epoll < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let epoll = OwnedFd::from_raw_fd(epoll);
            let stop = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if stop < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let stop = OwnedFd::from_raw_fd(stop);
            for (fd, events) in [
                (ring, libc::EPOLLIN | libc::EPOLLET),
                (stop.as_raw_fd(), libc::EPOLLIN),
            ] {
                let mut ev = libc::epoll_event {
                    events: events as u32,
                    u64: fd as u64,
                };
                if libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(Wait {
                epoll,
                stop,
                stopped: AtomicBool::new(false),
            })
        }
    }

    /// Returns after `timeout`, or earlier on a ring wakeup or a stop.
    fn wait(&self, timeout: Duration) {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: the buffer holds 2 events, as passed. An error (EINTR) only ends the wait early.
        unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 2, ms) };
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a u64 we own to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What identifies an executable's content: device, inode, size and modification time (a rewrite
/// in place keeps the inode but not the other two).
type FileId = (u64, u64, u64, i64, i64);

fn file_id(f: &std::fs::File) -> std::io::Result<FileId> {
    let m = f.metadata()?;
    Ok((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// `e` with the descriptor path analysis was given replaced by the file the user knows
/// (`/proc/self/fd/N` means nothing to them).
fn named(e: EbpfError, shown: &Path) -> EbpfError {
    use gotap_binary::Error as B;
    let p = shown.to_path_buf();
    match e {
        EbpfError::Binary(b) => EbpfError::Binary(match b {
            B::Io { err, .. } => B::Io { path: p, err },
            B::NotElf(_) => B::NotElf(p),
            B::NotGo(_) => B::NotGo(p),
            B::Corrupt { what, .. } => B::Corrupt { path: p, what },
            B::UnsupportedArch { arch, what, .. } => B::UnsupportedArch {
                path: p,
                arch,
                what,
            },
            B::UnsupportedGoVersion { version, why, .. } => B::UnsupportedGoVersion {
                path: p,
                version,
                why,
            },
            other => other,
        }),
        EbpfError::NothingToInstrument { .. } => EbpfError::NothingToInstrument { path: p },
        EbpfError::AlreadyWoven { .. } => EbpfError::AlreadyWoven { path: p },
        EbpfError::UnsupportedGoVersion { version, why, .. } => EbpfError::UnsupportedGoVersion {
            path: p,
            version,
            why,
        },
        EbpfError::OffsetUnavailable {
            version,
            field,
            why,
            ..
        } => EbpfError::OffsetUnavailable {
            path: p,
            version,
            field,
            why,
        },
        EbpfError::Sites { why, .. } => EbpfError::Sites { path: p, why },
        other => other,
    }
}

/// A path naming exactly this open file (resolved by the kernel when the uprobe is created).
fn fd_path(f: &std::fs::File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

/// Unix time minus monotonic time, in ns: bpf_ktime_get_ns() + this = Unix epoch ns.
fn mono_to_unix_offset() -> i128 {
    let now = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    };
    let (m1, r, m2) = (
        now(libc::CLOCK_MONOTONIC),
        now(libc::CLOCK_REALTIME),
        now(libc::CLOCK_MONOTONIC),
    );
    r - (m1 + m2) / 2
}

/// An error and its sources on one line (aya's top-level messages alone are vague). A verifier
/// log is cut to its last lines, which say why the program was refused.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = one_line(&e.to_string());
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&one_line(&c.to_string()));
        cur = c.source();
    }
    s
}

fn one_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.len() {
        0 => String::new(),
        1..=4 => lines.join("; "),
        n => format!("{} … {}", lines[0], lines[n - 3..].join("; ")),
    }
}

/// How long a semaphore found above 0 is watched before refusing: a gotap that just detached
/// leaves its uprobes, and their semaphore counts, to a helper that closes them within seconds.
const SITES_IN_USE_WAIT: Duration = Duration::from_secs(5);

/// Fails when one of the binary's USDT semaphores stays above 0 in process `pid` (only the
/// kernel changes them, one per uprobe created with it): another tracer has enabled those sites.
/// Read through /proc/PID/mem, never written. A semaphore that cannot be located or read is not
/// a refusal: the claim still guards against another gotap of this namespace.
fn sites_in_use(pid: u32, exe: FileId, semaphores: &[(String, u64)]) -> Result<(), EbpfError> {
    use std::os::unix::fs::FileExt;
    let Ok(mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return Ok(());
    };
    let read = |offset: u64| -> Option<u16> {
        let addr = mapped_address(pid, exe, offset)?;
        let mut b = [0u8; 2];
        mem.read_exact_at(&mut b, addr).ok()?;
        Some(u16::from_le_bytes(b))
    };
    let deadline = std::time::Instant::now() + SITES_IN_USE_WAIT;
    for (site, offset) in semaphores {
        loop {
            match read(*offset) {
                Some(value) if value > 0 => {
                    if std::time::Instant::now() >= deadline {
                        return Err(EbpfError::SitesInUse {
                            pid,
                            site: site.clone(),
                            value,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// Where process `pid` maps byte `offset` of its executable (device and inode `exe`): the
/// file-backed mapping of the executable that covers it, from /proc/PID/maps.
fn mapped_address(pid: u32, exe: FileId, offset: u64) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|line| {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let (start, end) = f.next()?.split_once('-')?;
        let (start, end) = (
            u64::from_str_radix(start, 16).ok()?,
            u64::from_str_radix(end, 16).ok()?,
        );
        let _perms = f.next()?;
        let at = u64::from_str_radix(f.next()?, 16).ok()?;
        let _dev = f.next()?;
        let inode: u64 = f.next()?.parse().ok()?;
        (inode == exe.1 && offset >= at && offset - at < end - start).then(|| start + (offset - at))
    })
}
