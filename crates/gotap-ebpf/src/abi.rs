//! `#[repr(C)]` mirrors of bpf/types.h. The size asserts catch a field added on one side only.
#![allow(dead_code)]

pub const OFF_ABSENT: u64 = u64::MAX;
pub const CFG_HAS_PATTERN: u32 = 1 << 0;
pub const CFG_GOROUTINES: u32 = 1 << 1;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcCfg {
    pub g_goid: u64,
    pub g_m: u64,
    pub m_curg: u64,
    pub req_method: u64,
    pub req_url: u64,
    pub req_proto: u64,
    pub req_host: u64,
    pub req_remote_addr: u64,
    pub req_pattern: u64,
    pub url_scheme: u64,
    pub url_host: u64,
    pub url_path: u64,
    pub url_raw_query: u64,
    pub sresp_status: u64,
    pub sresp_conn: u64,
    pub conn_rwc: u64,
    pub conn_bufr: u64,
    pub bufio_buf: u64,
    pub bufio_r: u64,
    pub netconn_fd: u64,
    pub netfd_laddr: u64,
    pub netfd_raddr: u64,
    pub tcpaddr_ip: u64,
    pub tcpaddr_port: u64,
    pub pconn_conn: u64,
    pub resp_status_code: u64,
    pub flags: u32,
    pub proc: u32,
}
// SAFETY: plain old data, no padding holes with uninitialised bytes (all fields fill 8-byte slots).
unsafe impl aya::Pod for ProcCfg {}
const _: () = assert!(std::mem::size_of::<ProcCfg>() == 216);

pub const EV_SERVER: u8 = 1;
pub const EV_CLIENT: u8 = 2;
pub const EVF_HAS_PARENT: u8 = 1 << 0;
pub const EVF_HAS_STATUS: u8 = 1 << 1;
pub const EVF_ERROR: u8 = 1 << 2;
pub const EVF_HTTP2: u8 = 1 << 3;

pub const PARENT_NONE: u8 = 0;
pub const PARENT_TRACEPARENT: u8 = 1;
pub const PARENT_LINK_MAP: u8 = 2;
pub const PARENT_GOROUTINE: u8 = 3;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpEvent {
    pub kind: u8,
    pub flags: u8,
    pub parent_source: u8,
    pub _pad0: u8,
    pub proc: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub aux: u64,
    pub aux2: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: [u8; 8],
    pub status: u16,
    pub method_len: u16,
    pub path_len: u16,
    pub query_len: u16,
    pub host_len: u16,
    pub proto_len: u16,
    pub remote_len: u16,
    pub pattern_len: u16,
    pub ua_len: u16,
    pub _pad1: [u16; 3],
    pub method: [u8; 16],
    pub path: [u8; 256],
    pub query: [u8; 256],
    pub host: [u8; 128],
    pub proto: [u8; 16],
    pub remote: [u8; 64],
    pub pattern: [u8; 128],
    pub ua: [u8; 256],
}
const _: () = assert!(std::mem::size_of::<HttpEvent>() == 1216);

impl HttpEvent {
    /// Copies an event out of ring-buffer bytes; `None` if the record has another size.
    pub fn from_bytes(b: &[u8]) -> Option<HttpEvent> {
        if b.len() != std::mem::size_of::<HttpEvent>() {
            return None;
        }
        // SAFETY: HttpEvent is repr(C) plain data valid for any bit pattern, and the length matches.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const HttpEvent) })
    }
}

pub const EV_SITE_SERVER: u8 = 3;
pub const EV_SITE_CLIENT: u8 = 4;
/// Site event kinds are 3 (`EV_SITE_SERVER`) to this one (`EV_SITE_GRPC_CLIENT`).
pub const EV_SITE_LAST: u8 = 7;

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
    /// Reads a site record; `None` if it is not one (kind, or lengths past its end).
    pub fn parse(b: &'a [u8]) -> Option<SiteEvent<'a>> {
        const H: usize = std::mem::size_of::<SiteHeader>();
        if b.len() < H || !(EV_SITE_SERVER..=EV_SITE_LAST).contains(&b[0]) {
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

/// A string field of an event: `len` bytes of `buf`, lossily decoded.
pub fn text(buf: &[u8], len: u16) -> String {
    let n = (len as usize).min(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub const CNT_RINGBUF_DROPS: u32 = 0;
pub const CNT_PROBE_HITS: u32 = 1;
pub const CNT_RET_NO_ENTRY: u32 = 3;
pub const CNT_WINDOW_TRUNCATED: u32 = 4;
pub const CNT_SQL_TRUNCATED: u32 = 5;
