//! The function-probe side of a library folder (instrumentations/<name>/ebpf.rs, see
//! docs/architecture.md): what the generic planner, loader and ring reader need to know of it,
//! and nothing they would have to know about the library itself.
use std::sync::Arc;

use gotap_binary::offsets::FieldOffset;
use gotap_binary::GoBinary;
use gotap_spans::sink::SpanSink;
use gotap_spans::Resource;
use gotap_spans::SpanFrame;

use crate::abi::{SiteEvent, OFF_ABSENT};
use crate::plan::ProbeSite;
use crate::EbpfError;

/// `LIB_CFG_SLOTS` of bpf/types.h: the u64s of one library's per-process configuration.
pub const LIB_CFG_SLOTS: usize = 64;

/// One library's function probes. Its BPF programs live in `bpf/<name>.bpf.h` of its folder and
/// are compiled into the one object with every other library's.
///
/// FIELD ADDED AFTER 8063165: `decode` (a library whose BPF emits only site events sets it to
/// `None`). Build the value with [`Library::new`] (and [`Library::with_decode`]) rather than a
/// struct literal, so that a field added later has its default there:
/// `pub static LIBRARY: Library = Library::new("database/sql", PROGRAMS, plan);`
pub struct Library {
    /// What `gotap inspect` and the exit summary call it, e.g. "database/sql".
    pub name: &'static str,
    /// Its BPF programs (`SEC("uprobe")` functions), loaded with the object.
    pub programs: &'static [&'static str],
    /// Plans its probes for one binary. Leaves `plan.sites` empty when the binary does not use
    /// the library; fails only when it does and cannot be traced correctly.
    pub plan: fn(&GoBinary, &mut LibPlan) -> Result<(), EbpfError>,
    /// Turns the library's own ring records (kinds that are not site events, bpf/types.h) into
    /// spans; `None` when its BPF emits site events only, which the generic reader decodes.
    pub decode: Option<Decoder>,
}

impl Library {
    /// A library whose BPF emits site events only.
    pub const fn new(
        name: &'static str,
        programs: &'static [&'static str],
        plan: fn(&GoBinary, &mut LibPlan) -> Result<(), EbpfError>,
    ) -> Library {
        Library {
            name,
            programs,
            plan,
            decode: None,
        }
    }

    /// The library also writes records of its own, which `decode` turns into spans.
    pub const fn with_decode(mut self, decode: Decoder) -> Library {
        self.decode = Some(decode);
        self
    }
}

/// One site event kind of a library (instrumentations/<name>/decode.rs): its number (`EV_SITE_*`
/// of crates/gotap-ebpf/layout/records.json, whence build.rs generates the C defines) and what
/// builds its span. Probe sites and the function probes that emit site events share it, so both
/// strategies build the same span from the same event.
#[derive(Clone, Copy)]
pub struct SiteKind {
    pub kind: u8,
    pub decode: SiteDecoder,
}

/// Builds the span of one site event into the sink, in `frame` (ids, times, resource), the query
/// string exported only if `capture_query`.
pub type SiteDecoder = fn(&SiteEvent<'_>, &SpanFrame, bool, &mut dyn SpanSink);

/// The registered site kind `kind`, if a library has it.
pub fn site_kind(kind: u8) -> Option<&'static SiteKind> {
    crate::libs::SITE_KINDS
        .iter()
        .flat_map(|k| k.iter())
        .find(|k| k.kind == kind)
}

/// A library's decoder for one ring record (the bytes where they lie in the ring): `None` when
/// the record is not one of the library's (the reader tries the next library), else what became
/// of it. Spans go into the sink.
pub type Decoder = fn(&[u8], &mut DecodeCtx<'_>, &mut dyn SpanSink) -> Option<Decoded>;

/// What a [`Decoder`] did with a record of its library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// One span went into the sink.
    Span,
    /// The library's kind, but no span could be built from it.
    Undecodable,
    /// The record's process is no longer traced (its resource is gone): dropped.
    UnknownProcess,
}

/// What a [`Decoder`] may use besides the record: the agent's options, the clock offset, and the
/// resources of the traced processes (looked up once per process per drain of the ring).
pub struct DecodeCtx<'a> {
    /// Export `url.query` (`AgentOptions::capture_query`).
    pub capture_query: bool,
    /// Added to BPF monotonic timestamps (`bpf_ktime_get_ns`) to make them Unix time.
    pub mono_to_unix: i128,
    resource_of: &'a mut dyn FnMut(u32) -> Option<Arc<Resource>>,
}

impl<'a> DecodeCtx<'a> {
    pub fn new(
        capture_query: bool,
        mono_to_unix: i128,
        resource_of: &'a mut dyn FnMut(u32) -> Option<Arc<Resource>>,
    ) -> DecodeCtx<'a> {
        DecodeCtx {
            capture_query,
            mono_to_unix,
            resource_of,
        }
    }

    /// The resource of traced process `proc` (the id in the record), `None` once it is untraced.
    pub fn resource(&mut self, proc: u32) -> Option<Arc<Resource>> {
        (self.resource_of)(proc)
    }
}

/// A record type that is `repr(C)` plain data, valid for any bit pattern.
///
/// # Safety
/// Implement it only for such types.
pub unsafe trait PlainEvent: Copy {}

/// The record a ring-buffer item holds, read where it lies (copying a large event per span
/// showed in the reader's profile). The ring's record stays reserved until its item is dropped,
/// and the BPF side never writes a record after submitting it. `None` if the size or alignment
/// is off.
pub fn in_place<T: PlainEvent>(b: &[u8]) -> Option<&T> {
    if b.len() != std::mem::size_of::<T>()
        || b.as_ptr().align_offset(std::mem::align_of::<T>()) != 0
    {
        return None;
    }
    // SAFETY: T is repr(C) plain data valid for any bit pattern (PlainEvent); size and alignment
    // match, and the borrow of `b` keeps the bytes alive and unchanged.
    Some(unsafe { &*(b.as_ptr() as *const T) })
}

/// A copy of the record in `b`, whatever its alignment; `None` if the size is off.
pub fn copied<T: PlainEvent>(b: &[u8]) -> Option<T> {
    if b.len() != std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: T is repr(C) plain data valid for any bit pattern, and the length matches.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const T) })
}

/// What a library's planner produces for one binary.
#[derive(Debug, Clone)]
pub struct LibPlan {
    pub sites: Vec<ProbeSite>,
    /// Stored for the process under (process id, library id) in the `lib_cfgs` map; the
    /// library's C reads it with `get_lib_cfg(ctx, LIB_<NAME>)`. Unused slots are `OFF_ABSENT`.
    pub cfg: [u64; LIB_CFG_SLOTS],
    /// Lines for `gotap inspect` / the exit summary, e.g. "database/sql".
    pub instrumentations: Vec<&'static str>,
    pub warnings: Vec<String>,
    /// The library starts client spans that take their parent from the goroutine's span context
    /// (`goctx`): goroutines must then inherit their creator's context, which costs a probe hit
    /// at every goroutine start (bpf/gotap.bpf.c, `newproc_runqput`). Attached when any planned
    /// library asks for it.
    pub wants_goroutines: bool,
    /// The library starts spans that become their goroutine's span context (server spans, whose
    /// handler runs on that goroutine). Without such a library `goctx` stays empty, so the
    /// goroutine hook would cost a hit per goroutine start for nothing: it is attached only when
    /// some planned library fills the context and some planned library wants it.
    pub fills_goroutines: bool,
    /// The struct offsets the plan resolved (`gotap_binary::offsets::resolve`): the planner
    /// names those from an unverified offset table row in one warning for the binary.
    pub offsets: Vec<FieldOffset>,
}

impl Default for LibPlan {
    fn default() -> Self {
        LibPlan {
            sites: Vec::new(),
            cfg: [OFF_ABSENT; LIB_CFG_SLOTS],
            instrumentations: Vec::new(),
            warnings: Vec::new(),
            wants_goroutines: false,
            fills_goroutines: false,
            offsets: Vec::new(),
        }
    }
}

/// The `lib_cfgs` map's key (`struct lib_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LibKey {
    pub proc: u32,
    pub lib: u32,
}
// SAFETY: repr(C) plain data, no padding.
unsafe impl aya::Pod for LibKey {}

/// The `lib_cfgs` map's value (`struct lib_cfg`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LibCfg {
    pub v: [u64; LIB_CFG_SLOTS],
}
// SAFETY: repr(C) plain data.
unsafe impl aya::Pod for LibCfg {}
