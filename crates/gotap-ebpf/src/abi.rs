//! `#[repr(C)]` mirrors of bpf/types.h. The size asserts catch a field added on one side only.
#![allow(dead_code)]

pub const OFF_ABSENT: u64 = u64::MAX;
pub const CFG_GOROUTINES: u32 = 1 << 1;

/// `struct proc_cfg`: what every library's programs need of a traced process (a library's own
/// offsets are in its `lib_cfgs` entry).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcCfg {
    pub g_goid: u64,
    pub g_m: u64,
    pub m_curg: u64,
    pub flags: u32,
    pub proc: u32,
}
// SAFETY: plain old data, no padding holes with uninitialised bytes (all fields fill 8-byte slots).
unsafe impl aya::Pod for ProcCfg {}
const _: () = assert!(std::mem::size_of::<ProcCfg>() == 32);

/// `struct tcp_offs` (bpf/gotap.bpf.c): the offsets `read_conn_tuple` reads a net.Conn's TCP 4-tuple
/// with, in the order a library lays them out in five consecutive slots of its `lib_cfg`.
pub const TCP_OFFS: [gotap_binary::offsets::FieldRef; 5] = {
    use gotap_binary::offsets as off;
    [
        off::NET_CONN_FD,
        off::NETFD_LADDR,
        off::NETFD_RADDR,
        off::TCPADDR_IP,
        off::TCPADDR_PORT,
    ]
};

/// Batch buffers per process the exit probe reads (`EXIT_REFS_MAX`).
pub const EXIT_REFS_MAX: usize = 3;

/// `struct exit_refs` (bpf/types.h): runtime addresses of a process's batch buffer references,
/// for the exit probe (`exit_flush`); 0 = none.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitRefs {
    pub refs: [u64; EXIT_REFS_MAX],
}

// SAFETY: plain integers, no padding.
unsafe impl aya::Pod for ExitRefs {}
const _: () = assert!(std::mem::size_of::<ExitRefs>() == 24);

pub const EV_SITE_SERVER: u8 = 3;
pub const EV_SITE_CLIENT: u8 = 4;

/// String slots of a site event (`SITE_STRS`).
pub const SITE_STRS: usize = 8;

/// `struct site_event`: the fixed header of one probe-site hit (one finished span), followed in
/// the record by its strings back to back (`slen[i]` bytes each), see bpf/types.h.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SiteHeader {
    pub kind: u8,
    pub _pad0: [u8; 3],
    pub proc: u32,
    pub status: i64,
    pub duration_ns: i64,
    pub trace_hi: u64,
    pub trace_lo: u64,
    pub span: u64,
    pub parent: u64,
    pub start: i64,
    pub rflags: u64,
    pub slen: [u16; SITE_STRS],
}
const _: () = assert!(std::mem::size_of::<SiteHeader>() == 88);

/// One site event as read from the ring buffer: its header, and its strings borrowed from the
/// record.
#[derive(Clone, Copy)]
pub struct SiteEvent<'a> {
    pub h: SiteHeader,
    strs: [&'a [u8]; SITE_STRS],
    /// Every string byte is ASCII (checked once for the whole record, which is nearly always
    /// the case): each string is then UTF-8 without its own validation.
    ascii: bool,
}

impl<'a> SiteEvent<'a> {
    /// Reads a site record; `None` if it is not one (a kind no library registers, see
    /// `library::site_kind`, or lengths past its end).
    pub fn parse(b: &'a [u8]) -> Option<SiteEvent<'a>> {
        const H: usize = std::mem::size_of::<SiteHeader>();
        if b.len() < H || crate::library::site_kind(b[0]).is_none() {
            return None;
        }
        // SAFETY: SiteHeader is repr(C) plain data valid for any bit pattern; b holds H bytes.
        let h = unsafe { std::ptr::read_unaligned(b.as_ptr() as *const SiteHeader) };
        let mut strs: [&[u8]; SITE_STRS] = [&[]; SITE_STRS];
        let mut off = H;
        for (slot, &n) in strs.iter_mut().zip(&h.slen) {
            let end = off + n as usize;
            *slot = b.get(off..end)?;
            off = end;
        }
        let ascii = b[H..off].is_ascii();
        Some(SiteEvent { h, strs, ascii })
    }

    /// Bytes of the event in its record: header and strings.
    pub fn size(&self) -> usize {
        std::mem::size_of::<SiteHeader>() + self.h.slen.iter().map(|&n| n as usize).sum::<usize>()
    }

    /// String slot `i` (empty past [`SITE_STRS`]).
    pub fn bytes(&self, i: usize) -> &'a [u8] {
        self.strs.get(i).copied().unwrap_or_default()
    }

    /// String slot `i`, borrowed when it is valid UTF-8 (else lossily decoded). `from_utf8`
    /// first: its validation is several times faster than the lossy decoder's chunk walk, and
    /// this runs for every string of every span.
    pub fn str(&self, i: usize) -> std::borrow::Cow<'a, str> {
        let b = self.bytes(i);
        if self.ascii {
            // SAFETY: ASCII bytes are valid UTF-8 (checked in `parse`).
            return std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(b) });
        }
        match std::str::from_utf8(b) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        }
    }

    /// String slot `i` as an owned `String`.
    pub fn string(&self, i: usize) -> String {
        self.str(i).into_owned()
    }
}

/// Kind of a batch site's record (`EV_SITE_BATCH`): `struct site_batch_head`, then the events.
pub const EV_SITE_BATCH: u8 = 8;
/// A site event's flag: a text slot of it was cut at its cap (`REC_TEXT_CUT`; a library sets it,
/// the agent counts it in [`crate::AgentStats`]).
pub const REC_TEXT_CUT: u64 = 8;
/// A site event's flag: `start` is BPF monotonic time (a library's function probe), see
/// `REC_MONO` in bpf/types.h.
pub const REC_MONO: u64 = 32;
const BATCH_HEAD: usize = 16;

/// A batch site's record: the traced process's id and the events' bytes.
pub fn site_batch(b: &[u8]) -> Option<(u32, &[u8])> {
    if b.len() < BATCH_HEAD || b[0] != EV_SITE_BATCH {
        return None;
    }
    let proc = u32::from_le_bytes(b[4..8].try_into().ok()?);
    let len = u32::from_le_bytes(b[8..12].try_into().ok()?) as usize;
    Some((proc, b.get(BATCH_HEAD..BATCH_HEAD + len)?))
}

/// The site events of a batch, in order. An item is `None` where the bytes are not a site event
/// (a buffer the target was still writing, or not gotap's): nothing after it can be split.
pub struct SiteBatch<'a> {
    rest: &'a [u8],
}

impl<'a> SiteBatch<'a> {
    pub fn new(events: &'a [u8]) -> Self {
        SiteBatch { rest: events }
    }
}

impl<'a> Iterator for SiteBatch<'a> {
    type Item = Option<SiteEvent<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match SiteEvent::parse(self.rest) {
            Some(ev) => {
                self.rest = &self.rest[ev.size()..];
                Some(Some(ev))
            }
            None => {
                self.rest = &[];
                Some(None)
            }
        }
    }
}

/// The record the BPF side writes for `h` and `strs` (tests and benchmarks build events with it).
pub fn encode_site_event(h: &SiteHeader, strs: &[&[u8]]) -> Vec<u8> {
    let mut h = *h;
    for (i, n) in h.slen.iter_mut().enumerate() {
        *n = strs.get(i).map_or(0, |s| s.len() as u16);
    }
    // SAFETY: SiteHeader is repr(C) plain data without padding holes (size asserted above).
    let head = unsafe {
        std::slice::from_raw_parts(
            &h as *const SiteHeader as *const u8,
            std::mem::size_of::<SiteHeader>(),
        )
    };
    let mut out = head.to_vec();
    for s in strs.iter().take(SITE_STRS) {
        out.extend_from_slice(s);
    }
    out
}

/// `Some(s)` unless empty.
pub fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// A string field of an event: `len` bytes of `buf`, lossily decoded.
pub fn text(buf: &[u8], len: u16) -> String {
    let n = (len as usize).min(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub const CNT_RINGBUF_DROPS: u32 = 0;
pub const CNT_PROBE_HITS: u32 = 1;
pub const CNT_RET_NO_ENTRY: u32 = 3;
pub const CNT_WINDOW_TRUNCATED: u32 = 4;
pub const CNT_TEXT_TRUNCATED: u32 = 5;
pub const CNT_GOROUTINE_HITS: u32 = 6;
pub const CNT_BATCH_HITS: u32 = 7;
pub const CNT_LIB_HITS: u32 = 16;
pub const CNT_LIB_MAX: u32 = 16;
pub const CNT_KIND_HITS: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u8, span: u64, strs: &[&[u8]]) -> Vec<u8> {
        let h = SiteHeader {
            kind,
            span,
            ..Default::default()
        };
        encode_site_event(&h, strs)
    }

    /// A site event is any kind a library registers (crate::libs::SITE_KINDS), and only those:
    /// not the function-probe events, nor a batch, nor a library's own record kinds.
    #[test]
    fn parse_accepts_the_registered_site_kinds() {
        let registered: Vec<u8> = crate::libs::SITE_KINDS
            .iter()
            .flat_map(|k| k.iter().map(|k| k.kind))
            .collect();
        for kind in [EV_SITE_SERVER, EV_SITE_CLIENT] {
            assert!(registered.contains(&kind), "kind {kind} is registered");
        }
        for kind in 0..=u8::MAX {
            let rec = event(kind, 1, &[b"x"]);
            assert_eq!(
                SiteEvent::parse(&rec).is_some(),
                registered.contains(&kind),
                "kind {kind}"
            );
        }
        assert!(!registered.contains(&EV_SITE_BATCH));
    }

    #[test]
    fn batch_records_split_into_their_events() {
        let mut events = event(EV_SITE_SERVER, 1, &[b"GET", b"/a"]);
        events.extend(event(EV_SITE_CLIENT, 2, &[b"POST", b"http://x/y", b""]));
        events.extend(event(EV_SITE_SERVER, 3, &[b"PUT", b"/c"]));
        let mut rec = vec![EV_SITE_BATCH, 0, 0, 0];
        rec.extend(7u32.to_le_bytes());
        rec.extend((events.len() as u32).to_le_bytes());
        rec.extend([0; 4]);
        rec.extend(&events);
        let (proc, body) = site_batch(&rec).unwrap();
        assert_eq!((proc, body.len()), (7, events.len()));
        let got: Vec<_> = SiteBatch::new(body).map(|e| e.unwrap()).collect();
        assert_eq!(
            got.iter().map(|e| (e.h.kind, e.h.span)).collect::<Vec<_>>(),
            [
                (EV_SITE_SERVER, 1),
                (EV_SITE_CLIENT, 2),
                (EV_SITE_SERVER, 3)
            ]
        );
        assert_eq!(got[1].string(1), "http://x/y");
        assert_eq!(got[2].string(1), "/c");
        // A length past the record, another kind: not a batch.
        rec[8] = rec[8].wrapping_add(1);
        assert!(site_batch(&rec).is_none());
        assert!(site_batch(&events).is_none());
        // Bytes that are not an event end the split.
        let mut bad = event(EV_SITE_SERVER, 1, &[b"GET"]);
        bad.extend([0xee; 100]);
        let got: Vec<_> = SiteBatch::new(&bad).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_some() && got[1].is_none());
        // An event whose lengths run past the end.
        let cut = event(EV_SITE_SERVER, 1, &[b"GET", b"/long/path"]);
        assert!(matches!(
            SiteBatch::new(&cut[..cut.len() - 1]).collect::<Vec<_>>()[..],
            [None]
        ));
    }
}
