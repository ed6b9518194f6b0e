// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* gotap's uprobe programs for unmodified Go (amd64, register ABI) programs.
 *
 * Rules every handler follows: read user memory only with bpf_probe_read_user, never write it
 * (kernel lockdown refuses bpf_probe_write_user anyway); bounded loops only; on any failed read
 * bail out quietly (the span is lost or lacks the attribute, the target never notices).
 *
 * Go ABIInternal on amd64: integer args/results in RAX, RBX, RCX, RDI, RSI, R8-R11; the current g
 * in R14. We never use uretprobes (Go moves goroutine stacks): "ret" programs sit on the RET
 * instructions, or, when they need no return register, just after the call in each caller; entry
 * programs sit on the stack check's Jcc. User space picks the sites (src/plan.rs): instructions
 * the kernel emulates instead of single-stepping. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include "types.h"
#include "site_kinds.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);
	__type(value, struct proc_cfg);
	__uint(max_entries, 1024);
} cfgs SEC(".maps");

/* Each library's plan for each traced process (struct lib_cfg, types.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lib_key);
	__type(value, struct lib_cfg);
	__uint(max_entries, 4096);
} lib_cfgs SEC(".maps");

/* The span context each goroutine runs in (server span while a handler runs; copied to the
 * goroutines it starts). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, struct span_ctx);
	__uint(max_entries, 65536);
} goctx SEC(".maps");

/* Span ids of server spans that have ended. A goroutine a handler started keeps that handler's
 * context in goctx after the request ends (nothing cheap fires when it exits or goes idle, e.g. a
 * worker pool started by the first request): a client span's entry program ignores an inherited
 * context whose server span is listed here. LRU: after this many later requests the marker is gone and the
 * stale parent is used again (documented limit). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, u64);
	__type(value, u8);
	__uint(max_entries, 65536);
} ended SEC(".maps");

/* Cross-process links: the client span that is writing a request on a TCP connection. Pinned by
 * name (user space gives the directory) so every gotap agent on the host shares it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tuple);
	__type(value, struct link_val);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gotap_links SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, CNT_MAX);
} counters SEC(".maps");

#define WIN_MAX 1024     /* raw request bytes scanned for headers, ending where parsing stopped */
#define WIN_BUF 2048     /* buffer size: any index i + k with i < WIN_MAX, k < 1024 masks in */
#define WIN_MASK (WIN_BUF - 1)
struct window {
	u8 b[WIN_BUF];
};

/* idx & WIN_MASK that clang cannot drop when it "knows" idx is small: the verifier needs the
 * mask on the very register used for the access. */
static __always_inline u64 widx(u64 idx)
{
	asm volatile("%0 &= 2047" : "+r"(idx));
	return idx;
}
#define WB(w, i) ((w)->b[widx(i)])
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct window);
	__uint(max_entries, 1);
} scratch_window SEC(".maps");

/* A traceparent link-map entry older than this is stale (port reuse), not a parent. */
#define LINK_MAX_AGE_NS (10ULL * 1000 * 1000 * 1000)

static __always_inline u64 count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (!c)
		return 0;
	*c += 1;
	return *c;
}

static __always_inline struct proc_cfg *get_cfg(struct pt_regs *ctx)
{
	u32 id = (u32)bpf_get_attach_cookie(ctx);
	count(CNT_PROBE_HITS);
	return bpf_map_lookup_elem(&cfgs, &id);
}

static __always_inline u64 read_u64(u64 addr)
{
	u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* The key of the goroutine running now (g in R14). goid 0 means the read failed. */
static __always_inline int cur_g_key(struct pt_regs *ctx, struct proc_cfg *cfg, struct g_key *k)
{
	k->proc = cfg->proc;
	k->_pad = 0;
	k->g = ctx->r14;
	k->goid = read_u64(k->g + cfg->g_goid);
	return k->goid ? 0 : -1;
}

/* Every span handler starts so: the traced process's cfg and the running goroutine's key, or
 * return quietly. */
#define PROLOGUE(ctx, cfg, key)                                                        \
	struct proc_cfg *cfg = get_cfg(ctx);                                           \
	struct g_key key;                                                              \
	if (!cfg || cur_g_key(ctx, cfg, &key))                                         \
		return 0

/* Copies a Go string (ptr, len) found at addr into dst (at most cap bytes); returns the length. */
#define READ_GO_STR(dst, cap, addr)                                                    \
	({                                                                             \
		struct {                                                               \
			u64 ptr;                                                       \
			s64 len;                                                       \
		} s_ = {};                                                             \
		u16 n_ = 0;                                                            \
		if (!bpf_probe_read_user(&s_, sizeof(s_), (void *)(addr)) && s_.len > 0) { \
			u64 l_ = s_.len > (cap) ? (cap) : s_.len;                      \
			if (!bpf_probe_read_user((dst), l_, (void *)s_.ptr))           \
				n_ = l_;                                               \
		}                                                                      \
		n_;                                                                    \
	})

static __always_inline void random_bytes(u8 *dst, int n)
{
	for (int i = 0; i < n; i += 4) {
		u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(dst + i, &r, 4);
	}
}

static __always_inline int nonzero(const u8 *b, int n)
{
	u8 acc = 0;
	for (int i = 0; i < n; i++)
		acc |= b[i];
	return acc != 0;
}

/* The struct offsets read_conn_tuple needs to read a net.Conn's TCP 4-tuple: a library that
 * reads one lays these out in five consecutive slots of its lib_cfg, in this order. */
struct tcp_offs {
	u64 netconn_fd;     /* net.conn.fd (net.TCPConn embeds net.conn first) */
	u64 netfd_laddr;
	u64 netfd_raddr;
	u64 tcpaddr_ip;
	u64 tcpaddr_port;
};

/* net.TCPAddr at addr -> IPv4-mapped 16-byte IP and port. 0 on success. */
static __always_inline int read_tcp_addr(const struct tcp_offs *o, u64 addr, u8 *ip, u16 *port)
{
	struct {
		u64 ptr;
		s64 len;
		s64 cap;
	} sl = {};
	if (!addr || bpf_probe_read_user(&sl, sizeof(sl), (void *)(addr + o->tcpaddr_ip)))
		return -1;
	s64 p = (s64)read_u64(addr + o->tcpaddr_port);
	if (p <= 0 || p > 65535)
		return -1;
	*port = (u16)p;
	if (sl.len == 16) {
		if (bpf_probe_read_user(ip, 16, (void *)sl.ptr))
			return -1;
	} else if (sl.len == 4) {
		__builtin_memset(ip, 0, 10);
		ip[10] = 0xff;
		ip[11] = 0xff;
		if (bpf_probe_read_user(ip + 12, 4, (void *)sl.ptr))
			return -1;
	} else {
		return -1; /* not a TCPAddr (TLS or another net.Conn): no tuple */
	}
	return 0;
}

/* conn_data: data word of a net.Conn interface holding a *net.TCPConn; o: the calling library's
 * offsets (struct tcp_offs, laid out in its lib_cfg slots). */
static __always_inline int read_conn_tuple(const struct tcp_offs *o, u64 conn_data, u8 *lip, u16 *lport,
					   u8 *rip, u16 *rport)
{
	if (!conn_data)
		return -1;
	u64 fd = read_u64(conn_data + o->netconn_fd);
	if (!fd)
		return -1;
	u64 laddr = read_u64(fd + o->netfd_laddr + 8);
	u64 raddr = read_u64(fd + o->netfd_raddr + 8);
	if (read_tcp_addr(o, laddr, lip, lport) || read_tcp_addr(o, raddr, rip, rport))
		return -1;
	return 0;
}

/* The reader drains the ring on a timer (a wakeup per event would cost the traced thread an
 * irq_work and gotap a context switch per span); only the record that fills the ring past a
 * quarter wakes it early, so a burst is drained before it overflows. Races between CPUs cost at
 * most a spare wakeup or one left to the timer. */
#define RING_WAKE_BYTES ((4 << 20) / 4)

static __always_inline u64 wake_flag(u64 size)
{
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < RING_WAKE_BYTES && avail + size >= RING_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP
									  : BPF_RB_NO_WAKEUP;
}

/* Probe sites are cheap enough that the query itself showed in profiles (~10 % of the site
 * program: it reads the positions the other CPU and the reader write). So a site asks only on
 * every SITE_WAKE_EVERY-th hit of its CPU whether the ring is past the mark, and then wakes the
 * reader: a burst overshoots the mark by at most that many events per CPU, and while the reader
 * is behind, a spare wakeup every so many events costs it nothing it would not do anyway. */
#define SITE_WAKE_EVERY 32

static __always_inline u64 site_wake_flag(u64 hits)
{
	if (hits % SITE_WAKE_EVERY)
		return BPF_RB_NO_WAKEUP;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= RING_WAKE_BYTES ? BPF_RB_FORCE_WAKEUP
										  : BPF_RB_NO_WAKEUP;
}

/* ---------- traceparent (a library's header scan finds it in a struct window) ---------- */

static __always_inline int hexval(u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* W3C: lowercase only */
}

static __always_inline u32 skip_spaces(struct window *w, u32 off)
{
	for (int k = 0; k < 4; k++) {
		u8 c = WB(w, off);
		if (c != ' ' && c != '\t')
			break;
		off++;
	}
	return off;
}

/* "00-<32 hex trace>-<16 hex span>-<2 hex flags>" at off. 0 on success. */
static __always_inline int parse_traceparent(struct window *w, u32 off, u32 n, u8 *trace, u8 *span)
{
	off = skip_spaces(w, off);
	if (off + 55 > n)
		return -1;
	int v1 = hexval(WB(w, off)), v2 = hexval(WB(w, off + 1));
	if (v1 < 0 || v2 < 0 || (v1 == 15 && v2 == 15) || WB(w, off + 2) != '-' ||
	    WB(w, off + 35) != '-' || WB(w, off + 52) != '-')
		return -1;
	for (int k = 0; k < 16; k++) {
		int hi = hexval(WB(w, off + 3 + 2 * k));
		int lo = hexval(WB(w, off + 4 + 2 * k));
		if (hi < 0 || lo < 0)
			return -1;
		trace[k] = (hi << 4) | lo;
	}
	for (int k = 0; k < 8; k++) {
		int hi = hexval(WB(w, off + 36 + 2 * k));
		int lo = hexval(WB(w, off + 37 + 2 * k));
		if (hi < 0 || lo < 0)
			return -1;
		span[k] = (hi << 4) | lo;
	}
	if (!nonzero(trace, 16) || !nonzero(span, 8))
		return -1;
	return 0;
}

/* ---------- goroutines ---------- */

/* The new goroutine inherits the span context of the goroutine running the `go` statement.
 * Called on the system stack, so R14 is g0 and the creator is g0.m.curg. */
static __always_inline int inherit(struct pt_regs *ctx, struct proc_cfg *cfg, u64 newg)
{
	u64 m = read_u64(ctx->r14 + cfg->g_m);
	if (!m)
		return 0;
	struct g_key parent = {.proc = cfg->proc};
	parent.g = read_u64(m + cfg->m_curg);
	if (!parent.g)
		return 0;
	parent.goid = read_u64(parent.g + cfg->g_goid);
	struct span_ctx *sc = bpf_map_lookup_elem(&goctx, &parent);
	if (!sc)
		return 0;
	u64 psid;
	__builtin_memcpy(&psid, sc->span_id, 8);
	if (bpf_map_lookup_elem(&ended, &psid))
		return 0;
	struct g_key child = {.proc = cfg->proc, .g = newg};
	child.goid = read_u64(child.g + cfg->g_goid);
	if (!child.g || !child.goid)
		return 0;
	struct span_ctx copy = *sc;
	bpf_map_update_elem(&goctx, &child, &copy, BPF_ANY);
	return 0;
}

/* `CALL runtime.runqput(pp, newg, next)` in runtime.newproc.func1, right after newproc1: RBX is
 * the new g. A CALL is emulated by the kernel, unlike a RET (single-stepped). */
SEC("uprobe")
int newproc_runqput(struct pt_regs *ctx)
{
	struct proc_cfg *cfg = get_cfg(ctx);
	count(CNT_GOROUTINE_HITS);
	if (!cfg || !(cfg->flags & CFG_GOROUTINES))
		return 0;
	return inherit(ctx, cfg, ctx->rbx);
}

/* Fallback: every RET of runtime.newproc1 (RAX = the new g). */
SEC("uprobe")
int newproc1_ret(struct pt_regs *ctx)
{
	struct proc_cfg *cfg = get_cfg(ctx);
	count(CNT_GOROUTINE_HITS);
	if (!cfg || !(cfg->flags & CFG_GOROUTINES))
		return 0;
	return inherit(ctx, cfg, ctx->rax);
}

/* ---------- probe sites (gotap build --probes) ---------- */

/* A site is a Go assembly function (ABI0) whose first instruction is a 5-byte NOP; the woven code
 * calls it once per finished span with everything the span needs (docs/probes.md, "The
 * contract"). The probe sits on the NOP, where RSP points at the return address and argument i
 * at RSP+8+8i. No struct offsets, no per-goroutine state: one hit, a few reads, one event. */
/* What each string argument carries is the kind's (its library's <lib>_site_strings). */
struct site_args {
	u64 method_ptr;
	u64 method_len;
	u64 path_ptr;
	u64 path_len;
	s64 status;
	s64 duration_ns;
	u64 text_ptr;
	u64 text_len;
	u64 record;
};

struct go_str {
	u64 ptr;
	u64 len;
};

/* gotapProbeRecord, 128 bytes. */
struct site_record {
	u64 trace_hi;
	u64 trace_lo;
	u64 span;
	u64 parent;
	s64 start;
	u64 flags;
	struct go_str host;
	struct go_str remote;
	struct go_str ua;
	struct go_str proto;
	struct go_str query;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct site_scratch);
	__uint(max_entries, 1);
} scratch_site SEC(".maps");

/* Appends at most cap bytes of the Go string (ptr, len) at data offset off as string slot i;
 * returns the offset after it. A failed read leaves the slot empty. */
static __always_inline u32 site_put(struct site_scratch *s, u32 off, int i, u64 ptr, u64 len, u64 cap)
{
	u64 n = len;
	s->h.slen[i] = 0;
	if (n == 0)
		return off;
	if (n > cap)
		n = cap;
	u64 o = off;
	/* The verifier needs the bound on the very register used for the access. */
	asm volatile("%0 &= 8191" : "+r"(o));
	if (bpf_probe_read_user(&s->data[o], n, (void *)ptr))
		return off;
	s->h.slen[i] = n;
	return off + n;
}

/* A site event whose strings fit SITE_STACK_DATA (most spans) is assembled on the
 * BPF stack: reading user memory into a map value makes the kernel's hardened-usercopy check look
 * the destination up among vmalloc areas (per-CPU map memory is vmalloc'd), which cost about a
 * fifth of the site program in profiles; a destination on the stack is checked against the stack
 * bounds only. Returns -1 when the event is larger (the caller uses the scratch map). Not inlined:
 * its 456 bytes of stack and the scratch path's locals each get their own frame. */
#define SITE_STACK_DATA 368

static __noinline int site_event_stack(struct pt_regs *ctx, u32 kind, u32 proc, u64 hits)
{
	struct {
		struct site_event h;
		u8 data[SITE_STACK_DATA];
	} e;
	u64 n = ctx->rdx;
	if (n < SITE_EVENT_HEAD || n > SITE_EVENT_HEAD + SITE_STACK_DATA)
		return -1;
	if (bpf_probe_read_user(&e.h.status, n, (void *)ctx->rsi)) {
		count(CNT_READ_FAILS);
		return 0;
	}
	u64 sum = 0;
	for (int i = 0; i < SITE_STRS; i++)
		sum += e.h.slen[i];
	if (sum != n - SITE_EVENT_HEAD) {
		count(CNT_READ_FAILS);
		return 0;
	}
	*(u32 *)&e.h = kind; /* kind and its padding */
	e.h.proc = proc;
	if (e.h.rflags & REC_TEXT_CUT)
		count(CNT_TEXT_TRUNCATED);
	u64 size = sizeof(e.h) - SITE_EVENT_HEAD + n;
	if (size > sizeof(e))
		return 0;
	if (bpf_ringbuf_output(&events, &e, size, site_wake_flag(hits)))
		count(CNT_RINGBUF_DROPS);
	return 0;
}

/* The libraries' parts of site_event_scratch, generated by build.rs at the end of libs.bpf.h (so
 * defined after this file's code, inlined here): site_strings copies the string slots of a site
 * read through its arguments and record (each library's <lib>_site_strings: the data length, or
 * -1 for a kind that is not its own; -1 from all of them drops the hit); site_text_cut tells
 * whether a packed site's text slot was longer than its cap (each library's <lib>_site_text_cut,
 * for kinds with a text slot cut at TEXT_CAP). */
static __always_inline int site_strings(u32 kind, struct site_scratch *s, const struct site_args *a,
					const struct site_record *r, u32 off);
static __always_inline int site_text_cut(u32 kind, const struct site_args *a);

static __noinline int site_event_scratch(struct pt_regs *ctx, u32 kind, u64 cookie, u64 hits)
{
	u32 proc = (u32)cookie;
	u32 zero = 0;
	struct site_scratch *s = bpf_map_lookup_elem(&scratch_site, &zero);
	if (!s)
		return 0;
	u32 off = 0;
	if (cookie & SITE_COOKIE_EVENT) {
		/* The woven code built the whole event (docs/probes.md, "The site event") and the
		 * site's prologue put its address in RSI and its length in RDX: one read of user
		 * memory per span, straight into place behind kind and proc. */
		u64 n = ctx->rdx;
		if (n < SITE_EVENT_HEAD || n > SITE_EVENT_HEAD + PACKED_CAP ||
		    bpf_probe_read_user(&s->h.status, n, (void *)ctx->rsi)) {
			count(CNT_READ_FAILS);
			return 0;
		}
		n -= SITE_EVENT_HEAD;
		u64 sum = 0;
		for (int i = 0; i < SITE_STRS; i++)
			sum += s->h.slen[i];
		if (sum != n) {
			count(CNT_READ_FAILS);
			return 0;
		}
		s->h.kind = kind;
		s->h.proc = proc;
		if (s->h.rflags & REC_TEXT_CUT)
			count(CNT_TEXT_TRUNCATED);
		off = n;
		goto out;
	}
	struct site_args a;
	if (bpf_probe_read_user(&a, sizeof(a), (void *)(ctx->rsp + 8))) {
		count(CNT_READ_FAILS);
		return 0;
	}
	struct site_record r;
	if (!a.record || bpf_probe_read_user(&r, sizeof(r), (void *)a.record)) {
		count(CNT_READ_FAILS);
		return 0;
	}
	s->h.kind = kind;
	s->h.proc = proc;
	s->h.status = a.status;
	s->h.duration_ns = a.duration_ns;
	s->h.trace_hi = r.trace_hi;
	s->h.trace_lo = r.trace_lo;
	s->h.span = r.span;
	s->h.parent = r.parent;
	s->h.start = r.start;
	s->h.rflags = r.flags;
	if (r.flags & REC_PACKED) {
		/* The woven code packed the strings, capped, into one buffer that the record's last
		 * string field points at: u16 lengths, then the bytes. One read instead of one per
		 * string. */
		if (site_text_cut(kind, &a))
			count(CNT_TEXT_TRUNCATED);
		u64 n = r.query.len;
		if (n < sizeof(s->h.slen) || n > sizeof(s->h.slen) + PACKED_CAP ||
		    bpf_probe_read_user(&s->h.slen, n, (void *)r.query.ptr)) {
			count(CNT_READ_FAILS);
			return 0;
		}
		n -= sizeof(s->h.slen);
		u64 sum = 0;
		for (int i = 0; i < SITE_STRS; i++)
			sum += s->h.slen[i];
		if (sum != n) {
			count(CNT_READ_FAILS);
			return 0;
		}
		off = n;
	} else {
		/* The kind's library copies its string slots (its <lib>_site_strings). */
		int got = site_strings(kind, s, &a, &r, off);
		if (got < 0)
			return 0;
		off = got;
	}
out:;
	u64 n = off;
	asm volatile("%0 &= 8191" : "+r"(n));
	/* Copied out without a wakeup unless the ring is past the mark (site_wake_flag). */
	if (bpf_ringbuf_output(&events, s, sizeof(s->h) + n, site_wake_flag(hits)))
		count(CNT_RINGBUF_DROPS);
	return 0;
}

static __always_inline int site_hit(struct pt_regs *ctx, u8 kind)
{
	u64 cookie = bpf_get_attach_cookie(ctx);
	u64 hits = count(CNT_PROBE_HITS);
	count(CNT_KIND_HITS + kind);
	if ((cookie & SITE_COOKIE_EVENT) && site_event_stack(ctx, kind, (u32)cookie, hits) >= 0)
		return 0;
	return site_event_scratch(ctx, kind, cookie, hits);
}

/* ---------- batched sites ---------- */

struct site_batch_scratch {
	struct site_batch_head h;
	u8 data[GOTAP_BATCH_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct site_batch_scratch);
	__uint(max_entries, 1);
} scratch_batch SEC(".maps");

/* Copies n bytes of events at user address src into one batch record of process proc. */
static __always_inline int emit_batch(u32 proc, u64 src, u64 n, u64 flags)
{
	if (n == 0)
		return 0;
	if (n > GOTAP_BATCH_CAP) {
		count(CNT_READ_FAILS);
		return 0;
	}
	u32 zero = 0;
	struct site_batch_scratch *s = bpf_map_lookup_elem(&scratch_batch, &zero);
	if (!s)
		return 0;
	if (bpf_probe_read_user(s->data, n, (void *)src)) {
		count(CNT_READ_FAILS);
		return 0;
	}
	*(u32 *)&s->h = EV_SITE_BATCH; /* kind and its padding */
	s->h.proc = proc;
	s->h.len = n;
	s->h._pad1 = 0;
	u64 size = sizeof(s->h) + n;
	if (bpf_ringbuf_output(&events, s, size, flags ? flags : wake_flag(size)))
		count(CNT_RINGBUF_DROPS);
	return 0;
}

/* Each batch package's gotapProbeBatch (USDT gotap:*_batch, the libraries' sites.rs): the
 * events of many spans in one hit, copied whole into one record (one read of user memory); the
 * reader splits them. Cookie: the traced process's id. */
SEC("uprobe")
int site_batch(struct pt_regs *ctx)
{
	u32 proc = (u32)bpf_get_attach_cookie(ctx);
	count(CNT_PROBE_HITS);
	count(CNT_BATCH_HITS);
	return emit_batch(proc, ctx->rsi, ctx->rdx, 0);
}

/* Runtime addresses of a traced process's batch buffer references (go/probes/shared/
 * gotap_batch.go, gotapBatchRef: the buffer's address), by the process's id; 0 = none. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);
	__type(value, struct exit_refs);
	__uint(max_entries, 4096);
} exit_refs SEC(".maps");

/* Reads the batch buffers of traced process proc (n at offset 0, events at 8) and hands them over
 * as batch records, woken at once: the process is going. */
static __always_inline void flush_exit(u32 proc)
{
	struct exit_refs *found = bpf_map_lookup_elem(&exit_refs, &proc);
	if (!found)
		return;
	struct exit_refs r = *found;
	/* Once per process: a dying process can pass here twice (dieFromSignal raises the signal
	 * into its own handler first, then exits; the exit tracepoint follows every exit), and
	 * threads can exit at once; only the caller whose delete succeeds reads the buffers, which
	 * would otherwise be handed over twice. */
	if (bpf_map_delete_elem(&exit_refs, &proc))
		return;
	/* Not counted in CNT_PROBE_HITS: that figure is the per-span cost (hits per span). */
#pragma unroll
	for (int i = 0; i < EXIT_REFS_MAX; i++) {
		u64 ref = r.ref[i], buf = 0, n = 0;
		if (!ref)
			continue;
		if (bpf_probe_read_user(&buf, sizeof(buf), (void *)ref) || !buf ||
		    bpf_probe_read_user(&n, sizeof(n), (void *)buf)) {
			count(CNT_READ_FAILS);
			continue;
		}
		emit_batch(proc, buf + 8, n, BPF_RB_FORCE_WAKEUP);
	}
}

/* The spans a process still buffers when it exits: on runtime.exit (main returned, os.Exit,
 * log.Fatal, an unrecovered panic) and runtime.dieFromSignal (a signal's default action, e.g. a
 * SIGTERM the program does not handle). Cookie: the traced process's id. */
SEC("uprobe")
int exit_flush(struct pt_regs *ctx)
{
	flush_exit((u32)bpf_get_attach_cookie(ctx));
	return 0;
}

/* Traced processes with armed exit_refs, by their thread group id in gotap's PID namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);
	__type(value, u32); /* the traced process's id */
	__uint(max_entries, 4096);
} exit_pids SEC(".maps");

/* gotap's PID namespace (st_dev, st_ino of /proc/self/ns/pid), set at load; ino 0: the initial
 * namespace, whose pids are the kernel's own (the usual case, and the one that also sees the
 * processes of containers). */
volatile const u64 gotap_pidns_dev = 0;
volatile const u64 gotap_pidns_ino = 0;

/* Every other way to die, SIGKILL and the kernel's OOM killer above all, runs no code of the
 * process: the scheduler's exit tracepoint, raw (args[0] the task, args[1] group_dead), fires in
 * each exiting thread before its address space is released on kernels that pass group_dead
 * (attaching fails on older ones, whose tracepoint comes after). The last thread of the group
 * reads the buffers; the address space lives as long as it does. A process that already went
 * through exit_flush has no exit_refs entry left. */
SEC("raw_tracepoint/sched_process_exit")
int exit_flush_tp(struct bpf_raw_tracepoint_args *ctx)
{
	if (!ctx->args[1])
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (gotap_pidns_ino) {
		struct bpf_pidns_info ns = {};
		if (bpf_get_ns_current_pid_tgid(gotap_pidns_dev, gotap_pidns_ino, &ns, sizeof(ns)))
			return 0; /* lives in another namespace than gotap: not one of ours */
		tgid = ns.tgid;
	}
	u32 *proc = bpf_map_lookup_elem(&exit_pids, &tgid);
	if (!proc)
		return 0;
	u32 p = *proc;
	bpf_map_delete_elem(&exit_pids, &tgid);
	flush_exit(p);
	return 0;
}

/* A library's plan for the process of this uprobe (its attach cookie), or NULL. Counts the hit. */
static __always_inline __attribute__((unused)) struct lib_cfg *get_lib_cfg(struct pt_regs *ctx, u32 lib)
{
	struct lib_key k = {.proc = (u32)bpf_get_attach_cookie(ctx), .lib = lib};
	count(CNT_PROBE_HITS);
	count(CNT_LIB_HITS + (lib < CNT_LIB_MAX ? lib : 0));
	return bpf_map_lookup_elem(&lib_cfgs, &k);
}

/* The process's generic cfg, for a library's handler that counted its hit with get_lib_cfg. */
static __always_inline struct proc_cfg *proc_cfg_of(struct pt_regs *ctx)
{
	u32 id = (u32)bpf_get_attach_cookie(ctx);
	return bpf_map_lookup_elem(&cfgs, &id);
}

/* PROLOGUE for a library's span handler: its lib_cfg `lc` (one hit counted), the process's generic
 * cfg and the running goroutine's key, or return quietly. */
#define LIB_PROLOGUE(ctx, lib, lc, cfg, key)                                           \
	struct lib_cfg *lc = get_lib_cfg(ctx, lib);                                    \
	struct proc_cfg *cfg = lc ? proc_cfg_of(ctx) : 0;                              \
	struct g_key key;                                                              \
	if (!cfg || cur_g_key(ctx, cfg, &key))                                         \
		return 0

/* The libraries of instrumentations/registry.txt (generated by build.rs): their programs use
 * everything above. */
#include "libs.bpf.h"
