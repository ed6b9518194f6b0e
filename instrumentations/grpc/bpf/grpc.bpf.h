/* google.golang.org/grpc function probes (`gotap run` / `gotap attach`; instrumentations/grpc/
 * README.md). Included at the end of crates/gotap-ebpf/bpf/gotap.bpf.c. Finished spans leave as
 * site events of kind EV_SITE_GRPC_SERVER / EV_SITE_GRPC_CLIENT (slots: full method, peer or
 * target, status message; status = code), so `gotap run` and `gotap build --probes` build their
 * spans through one decoder (../decode.rs).
 *
 * Server span, 3 hits:
 *   operateHeaders entry  the HEADERS frame of a new stream: its traceparent field, by stream id;
 *   process*RPC entry     start, parent from the same-host link (else the traceparent); the
 *                         span's context goes into goctx for the handler's goroutine;
 *   writeStatus entry     the status the server sends, on the same goroutine: end (and the link
 *                         looked for again if the span had no parent).
 * Client span, 3 hits:
 *   newAttemptLocked entry      the first attempt: start on the caller's goroutine, parent from
 *                               goctx, the call kept under the clientStream's address (finish may
 *                               run on another goroutine for streams);
 *   after the attempt's NewStream   the stream's id and connection: the same-host link;
 *   (*csAttempt).finish         called by (*clientStream).finish once the RPC is over (which
 *                               itself runs twice for streams), with its error: nil, io.EOF or
 *                               a status error: end. A retried attempt's finish comes while the
 *                               stream is not finished yet and is skipped.
 * Strings are read from the target at the end (the stream and ClientConn are still alive), so the
 * in-flight maps hold pointers, not text. Slots of the lib_cfg: GRPC_* below, filled by
 * instrumentations/grpc/ebpf.rs. */

#define GRPC_G_GOID 0
#define GRPC_STREAM_REG 1      /* process*RPC's stream argument: 0 RDI, 1 R8 (grpc 1.59-1.68) */
#define GRPC_SS_INNER 2        /* ServerStream -> *Stream offset, OFF_ABSENT: no pointer hop */
#define GRPC_STREAM_METHOD 3   /* offset of Stream.method from the (inner) stream */
#define GRPC_STREAM_ID 4       /* offset of Stream.id from the (inner) stream */
#define GRPC_STREAM_ST 5       /* offset of the ServerTransport interface from the outer stream */
#define GRPC_H2S_ADDR 6        /* offset of the peer's net.Addr interface in http2Server */
#define GRPC_TCPADDR_IP 7
#define GRPC_TCPADDR_PORT 8
#define GRPC_STATUS_S 9        /* internal/status.Status.s */
#define GRPC_SPB_CODE 10       /* genproto rpc/status.Status.Code */
#define GRPC_SPB_MESSAGE 11
#define GRPC_CC_TARGET 12      /* ClientConn.target */
#define GRPC_ERROR_S 13        /* internal/status.Error.s */
#define GRPC_FN_STATUS_ERROR 14 /* vaddr of internal/status.(*Error).Error */
#define GRPC_FN_ERRSTRING 15   /* vaddr of errors.(*errorString).Error (io.EOF) */
#define GRPC_FINISH_VADDR 16   /* vaddr of the finish probe: runtime minus it = load bias */
#define GRPC_FRAME_REG 17      /* operateHeaders' frame: 0 RBX (grpc < 1.60), 1 RDI */
#define GRPC_MHF_HF 18         /* MetaHeadersFrame.HeadersFrame (*HeadersFrame) */
#define GRPC_HF_STREAMID 19    /* HeadersFrame.FrameHeader.StreamID */
#define GRPC_MHF_FIELDS 20     /* MetaHeadersFrame.Fields ([]hpack.HeaderField) */
#define GRPC_HFIELD_NAME 21
#define GRPC_HFIELD_VALUE 22
#define GRPC_HFIELD_SIZE 23
#define GRPC_CSA_CS 24         /* csAttempt.cs */
#define GRPC_CS_FINISHED 25    /* clientStream.finished */
#define GRPC_NETCONN_FD 26     /* 26-30: struct tcp_offs (read_conn_tuple) */
#define GRPC_H2S_CONN 31       /* http2Server.conn (net.Conn); OFF_ABSENT: no same-host link */
#define GRPC_CLI_INNER 32      /* client stream -> *Stream offset, OFF_ABSENT: no pointer hop */
#define GRPC_CLI_ID 33         /* offset of Stream.id from the (inner) client stream */
#define GRPC_CLI_CT 34         /* offset of the stream's ct (its *http2Client) */
#define GRPC_CLI_CT_IFACE 35   /* 1: ct is a ClientTransport interface (grpc 1.66-1.68) */
#define GRPC_H2C_CONN 36       /* http2Client.conn (net.Conn); OFF_ABSENT: no same-host link */
#define GRPC_CS_CALLHDR 37     /* clientStream.callHdr (*transport.CallHdr) */
#define GRPC_CALLHDR_METHOD 38 /* CallHdr.Method */
#define GRPC_CS_CC 39          /* clientStream.cc */
#define GRPC_CS_ATTEMPT 40     /* clientStream.attempt (nil before the first attempt) */

#define GRPC_MAX_HFIELDS 24    /* header fields of a HEADERS frame searched for traceparent */

/* A call in flight. Server: key_ptr = the stream, aux = its transport, sid = its HTTP/2 stream
 * id (kept to look for the same-host link again at the end); client: key_ptr = the clientStream,
 * aux = the ClientConn, str = method. */
struct grpc_call {
	u64 key_ptr;
	u64 aux;
	u64 sid;
	u64 start_ns;
	u64 trace_hi;
	u64 trace_lo;
	u64 span;
	u64 parent;
	u64 rflags;
	u64 str_ptr;
	u64 str_len;
};

struct grpc_ptr_key {
	u32 proc;
	u32 _pad;
	u64 ptr;
};

struct grpc_tp_key {
	u32 proc;
	u32 stream_id;
	u64 transport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, struct grpc_call);
	__uint(max_entries, 8192);
} grpc_srv_calls SEC(".maps");

/* The clientStream whose attempt this goroutine is starting (newAttemptLocked -> the site after
 * the attempt's NewStream, on the same goroutine). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, u64);
	__uint(max_entries, 8192);
} grpc_cli_attempt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct grpc_ptr_key);
	__type(value, struct grpc_call);
	__uint(max_entries, 16384);
} grpc_cli_calls SEC(".maps");

/* traceparent of streams whose HEADERS were read but whose handler has not started. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct grpc_tp_key);
	__type(value, struct span_ctx);
	__uint(max_entries, 8192);
} grpc_tp SEC(".maps");

static __always_inline int grpc_g_key(struct pt_regs *ctx, struct lib_key *lk, struct lib_cfg *lc,
				      struct g_key *k)
{
	k->proc = lk->proc;
	k->_pad = 0;
	k->g = ctx->r14;
	k->goid = read_u64(k->g + lc->v[GRPC_G_GOID]);
	return k->goid ? 0 : -1;
}

/* get_lib_cfg plus the running goroutine's key, or return quietly. */
#define GRPC_PROLOGUE(ctx, lc, key)                                                    \
	struct lib_key lk_ = {.proc = (u32)bpf_get_attach_cookie(ctx), .lib = LIB_GRPC}; \
	struct lib_cfg *lc = get_lib_cfg(ctx, LIB_GRPC);                              \
	struct g_key key;                                                              \
	if (!lc || grpc_g_key(ctx, &lk_, lc, &key))                                    \
	return 0

/* Byte comparison clang cannot turn into a memcmp call (BPF has no libc). */
static __always_inline int grpc_eq(const char *a, const char *b, int n)
{
	u8 diff = 0;
	for (int i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* sel ? a : b of two registers already read: the verifier refuses a context pointer moved by a
 * computed offset, which clang would make of `sel ? ctx->rdi : ctx->rbx`. */
static __always_inline u64 grpc_pick(u64 sel, u64 a, u64 b)
{
	asm volatile("" : "+r"(a), "+r"(b));
	return sel ? a : b;
}

static __always_inline u64 be_u64(const u8 *b)
{
	u64 v;
	__builtin_memcpy(&v, b, 8);
	return __builtin_bswap64(v);
}

static __always_inline void put_be_u64(u8 *b, u64 v)
{
	v = __builtin_bswap64(v);
	__builtin_memcpy(b, &v, 8);
}

static __always_inline u64 grpc_rand64(void)
{
	u64 v = ((u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	return v ? v : 1;
}

/* The context a span runs in, for goctx. */
static __always_inline void grpc_set_goctx(struct g_key *key, struct grpc_call *c)
{
	struct span_ctx sc;
	put_be_u64(sc.trace_id, c->trace_hi);
	put_be_u64(sc.trace_id + 8, c->trace_lo);
	put_be_u64(sc.span_id, c->span);
	bpf_map_update_elem(&goctx, key, &sc, BPF_ANY);
}

/* The stream whose fields (method, id) the Stream struct holds: the ServerStream itself, or the
 * *Stream it embeds (grpc 1.69-1.7x). */
static __always_inline u64 grpc_inner_stream(struct lib_cfg *lc, u64 stream)
{
	u64 hop = lc->v[GRPC_SS_INNER];
	return hop == OFF_ABSENT ? stream : read_u64(stream + hop);
}

/* ---------- same-host link ----------
 * gotap_links (gotap.bpf.c, pinned, shared by every agent on the host) under the TCP 4-tuple as
 * the client sees it, with the HTTP/2 stream id in the tuple's spare word: net/http's HTTP/1.1
 * entries leave it 0, HTTP/2 stream ids are never 0, so the two never meet. */

static __always_inline const struct tcp_offs *grpc_tcp(struct lib_cfg *lc)
{
	return (const struct tcp_offs *)&lc->v[GRPC_NETCONN_FD];
}

/* Server side: the client span a traced client on this host wrote for stream sid of this
 * transport's connection becomes the parent (one use). 1 when it did. */
static __always_inline int grpc_link_take(struct lib_cfg *lc, u64 transport, u32 sid, struct grpc_call *c)
{
	if (!sid || !transport || lc->v[GRPC_H2S_CONN] == OFF_ABSENT)
		return 0;
	u64 conn = read_u64(transport + lc->v[GRPC_H2S_CONN] + 8);
	struct tuple t = {};
	if (read_conn_tuple(grpc_tcp(lc), conn, t.dst_ip, &t.dst_port, t.src_ip, &t.src_port))
		return 0;
	t._pad = sid;
	struct link_val *lv = bpf_map_lookup_elem(&gotap_links, &t);
	if (!lv)
		return 0;
	int fresh = bpf_ktime_get_ns() - lv->written_ns < LINK_MAX_AGE_NS;
	if (fresh) {
		c->trace_hi = be_u64(lv->trace_id);
		c->trace_lo = be_u64(lv->trace_id + 8);
		c->parent = be_u64(lv->span_id);
		c->rflags |= 2; /* remote parent */
	}
	bpf_map_delete_elem(&gotap_links, &t);
	return fresh;
}

/* ---------- incoming traceparent ---------- */

/* (*http2Server).operateHeaders(t, [ctx,] frame *http2.MetaHeadersFrame, ...): the request
 * headers of a new stream, before its handler goroutine exists. */
SEC("uprobe")
int grpc_headers(struct pt_regs *ctx)
{
	struct lib_cfg *lc = get_lib_cfg(ctx, LIB_GRPC);
	if (!lc)
		return 0;
	u64 t = ctx->rax;
	u64 frame = grpc_pick(lc->v[GRPC_FRAME_REG], ctx->rdi, ctx->rbx);
	struct {
		u64 ptr;
		s64 len;
		s64 cap;
	} fields = {};
	if (!frame || bpf_probe_read_user(&fields, sizeof(fields), (void *)(frame + lc->v[GRPC_MHF_FIELDS])))
		return 0;
	u64 hf = read_u64(frame + lc->v[GRPC_MHF_HF]);
	u32 sid = 0;
	if (!hf || bpf_probe_read_user(&sid, sizeof(sid), (void *)(hf + lc->v[GRPC_HF_STREAMID])) || !sid)
		return 0;
	u64 size = lc->v[GRPC_HFIELD_SIZE];
	if (size == 0 || size > 256)
		return 0;
	for (int i = 0; i < GRPC_MAX_HFIELDS; i++) {
		if (i >= fields.len)
			break;
		u64 f = fields.ptr + i * size;
		struct go_str name = {};
		if (bpf_probe_read_user(&name, sizeof(name), (void *)(f + lc->v[GRPC_HFIELD_NAME])))
			return 0;
		if (name.len != 11)
			continue;
		char n[11];
		if (bpf_probe_read_user(n, sizeof(n), (void *)name.ptr))
			return 0;
		if (!grpc_eq(n, "traceparent", 11))
			continue;
		struct go_str val = {};
		if (bpf_probe_read_user(&val, sizeof(val), (void *)(f + lc->v[GRPC_HFIELD_VALUE])))
			return 0;
		u32 zero = 0;
		struct window *w = bpf_map_lookup_elem(&scratch_window, &zero);
		if (!w || val.len < 55 || val.len > 128)
			return 0;
		if (bpf_probe_read_user(w->b, 55, (void *)val.ptr))
			return 0;
		struct span_ctx sc = {};
		if (parse_traceparent(w, 0, 55, sc.trace_id, sc.span_id))
			return 0;
		struct grpc_tp_key k = {.proc = (u32)bpf_get_attach_cookie(ctx), .stream_id = sid, .transport = t};
		bpf_map_update_elem(&grpc_tp, &k, &sc, BPF_ANY);
		return 0;
	}
	return 0;
}

/* ---------- server ---------- */

/* (*Server).processUnaryRPC / processStreamingRPC / processRPC(s, [t,] [ctx,] stream, ...). */
SEC("uprobe")
int grpc_server_start(struct pt_regs *ctx)
{
	GRPC_PROLOGUE(ctx, lc, key);
	u64 stream = grpc_pick(lc->v[GRPC_STREAM_REG], ctx->r8, ctx->rdi);
	if (!stream)
		return 0;
	/* Restarted after growing its stack (the probe sits before the stack check): keep the
	 * first pass's ids. */
	struct grpc_call *prev = bpf_map_lookup_elem(&grpc_srv_calls, &key);
	if (prev && prev->key_ptr == stream)
		return 0;
	struct grpc_call c = {.key_ptr = stream, .start_ns = bpf_ktime_get_ns(), .rflags = 1 | REC_MONO};
	u64 transport = read_u64(stream + lc->v[GRPC_STREAM_ST] + 8);
	c.aux = transport;
	u64 inner = grpc_inner_stream(lc, stream);
	u32 sid = 0;
	if (inner && transport &&
	    !bpf_probe_read_user(&sid, sizeof(sid), (void *)(inner + lc->v[GRPC_STREAM_ID]))) {
		c.sid = sid;
		/* Parent: a traced client on this host (it names the exact client span that opened
		 * this stream), else the stream's traceparent metadata (as net/http ranks them). */
		int linked = grpc_link_take(lc, transport, sid, &c);
		struct grpc_tp_key k = {.proc = key.proc, .stream_id = sid, .transport = transport};
		struct span_ctx *p = bpf_map_lookup_elem(&grpc_tp, &k);
		if (p) {
			if (!linked) {
				c.trace_hi = be_u64(p->trace_id);
				c.trace_lo = be_u64(p->trace_id + 8);
				c.parent = be_u64(p->span_id);
				c.rflags |= 2; /* remote parent */
			}
			bpf_map_delete_elem(&grpc_tp, &k);
		}
	}
	if (!c.parent) {
		c.trace_hi = grpc_rand64();
		c.trace_lo = grpc_rand64();
	}
	c.span = grpc_rand64();
	grpc_set_goctx(&key, &c);
	bpf_map_update_elem(&grpc_srv_calls, &key, &c, BPF_ANY);
	return 0;
}

/* Appends n decimal digits of v (n from the caller's bound) at s->data[off]. */
static __always_inline u32 grpc_put_dec(struct site_scratch *s, u32 off, u32 v)
{
	char d[5];
	int n = 0;
	for (int i = 0; i < 5; i++) {
		d[i] = '0' + v % 10;
		v /= 10;
		n++;
		if (!v)
			break;
	}
	for (int i = 4; i >= 0; i--) {
		if (i >= n)
			continue;
		u64 o = off;
		asm volatile("%0 &= 8191" : "+r"(o));
		s->data[o] = d[i];
		off++;
	}
	return off;
}

/* The peer's "a.b.c.d:port" (IPv4 only) as string slot 1; returns the offset after it. */
static __always_inline u32 grpc_put_peer(struct lib_cfg *lc, struct site_scratch *s, u32 off, u64 transport)
{
	s->h.slen[1] = 0;
	if (!transport || lc->v[GRPC_H2S_ADDR] == OFF_ABSENT)
		return off;
	u64 addr = read_u64(transport + lc->v[GRPC_H2S_ADDR] + 8);
	struct {
		u64 ptr;
		s64 len;
		s64 cap;
	} sl = {};
	if (!addr || bpf_probe_read_user(&sl, sizeof(sl), (void *)(addr + lc->v[GRPC_TCPADDR_IP])))
		return off;
	s64 port = (s64)read_u64(addr + lc->v[GRPC_TCPADDR_PORT]);
	if (port <= 0 || port > 65535)
		return off;
	u8 ip[4];
	if (sl.len == 4) {
		if (bpf_probe_read_user(ip, 4, (void *)sl.ptr))
			return off;
	} else if (sl.len == 16) {
		u8 ip16[16];
		if (bpf_probe_read_user(ip16, 16, (void *)sl.ptr))
			return off;
		for (int i = 0; i < 10; i++)
			if (ip16[i])
				return off; /* IPv6: not formatted here */
		if (ip16[10] != 0xff || ip16[11] != 0xff)
			return off;
		__builtin_memcpy(ip, ip16 + 12, 4);
	} else {
		return off;
	}
	u32 start = off;
	for (int i = 0; i < 4; i++) {
		off = grpc_put_dec(s, off, ip[i]);
		u64 o = off;
		asm volatile("%0 &= 8191" : "+r"(o));
		s->data[o] = i < 3 ? '.' : ':';
		off++;
	}
	off = grpc_put_dec(s, off, (u32)port);
	s->h.slen[1] = off - start;
	return off;
}

/* A *status.Status (internal/status) -> code and message (slot 2). */
static __always_inline u32 grpc_put_status(struct lib_cfg *lc, struct site_scratch *s, u32 off, u64 st)
{
	s->h.status = 0;
	s->h.slen[2] = 0;
	if (!st)
		return off;
	u64 spb = read_u64(st + lc->v[GRPC_STATUS_S]);
	if (!spb)
		return off; /* nil proto: OK */
	s32 code = 0;
	if (bpf_probe_read_user(&code, sizeof(code), (void *)(spb + lc->v[GRPC_SPB_CODE])))
		return off;
	s->h.status = code;
	struct go_str m = {};
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(spb + lc->v[GRPC_SPB_MESSAGE])))
		return off;
	return site_put(s, off, 2, m.ptr, m.len, ERROR_CAP);
}

static __always_inline struct site_scratch *grpc_event(struct grpc_call *c, u8 kind, u32 proc)
{
	u32 zero = 0;
	struct site_scratch *s = bpf_map_lookup_elem(&scratch_site, &zero);
	if (!s)
		return 0;
	s->h.kind = kind;
	s->h.proc = proc;
	s->h.duration_ns = bpf_ktime_get_ns() - c->start_ns;
	s->h.trace_hi = c->trace_hi;
	s->h.trace_lo = c->trace_lo;
	s->h.span = c->span;
	s->h.parent = c->parent;
	s->h.start = c->start_ns;
	s->h.rflags = c->rflags;
	for (int i = 3; i < SITE_STRS; i++)
		s->h.slen[i] = 0;
	return s;
}

static __always_inline void grpc_submit(struct site_scratch *s, u32 off)
{
	u64 n = off;
	asm volatile("%0 &= 8191" : "+r"(n));
	u64 size = sizeof(s->h) + n;
	if (bpf_ringbuf_output(&events, s, size, wake_flag(size)))
		count(CNT_RINGBUF_DROPS);
}

/* (*http2Server).WriteStatus / writeStatus(t, s *Stream|*ServerStream, st *status.Status): the
 * handler returned; process*RPC writes its status on the same goroutine. */
SEC("uprobe")
int grpc_server_status(struct pt_regs *ctx)
{
	GRPC_PROLOGUE(ctx, lc, key);
	struct grpc_call *c = bpf_map_lookup_elem(&grpc_srv_calls, &key);
	/* No call: a status written outside process*RPC (unknown method, …), which has no span. */
	if (!c || c->key_ptr != ctx->rbx)
		return 0;
	/* No parent at the start: the client's link may have been written after the server read
	 * the stream's HEADERS (the client writes it when NewStream returns, the frame may be on the
	 * wire by then). The handler has read the request the client sent after it: look again. */
	if (!c->parent)
		grpc_link_take(lc, c->aux, (u32)c->sid, c);
	struct site_scratch *s = grpc_event(c, EV_SITE_GRPC_SERVER, key.proc);
	if (!s)
		return 0;
	u64 inner = grpc_inner_stream(lc, c->key_ptr);
	struct go_str m = {};
	u32 off = 0;
	s->h.slen[0] = 0;
	if (inner && !bpf_probe_read_user(&m, sizeof(m), (void *)(inner + lc->v[GRPC_STREAM_METHOD])))
		off = site_put(s, off, 0, m.ptr, m.len, URL_CAP);
	off = grpc_put_peer(lc, s, off, c->aux);
	off = grpc_put_status(lc, s, off, ctx->rcx);
	u64 sid = c->span;
	sid = __builtin_bswap64(sid); /* goctx holds span ids as bytes */
	u8 one = 1;
	bpf_map_update_elem(&ended, &sid, &one, BPF_ANY);
	grpc_submit(s, off);
	bpf_map_delete_elem(&grpc_srv_calls, &key);
	bpf_map_delete_elem(&goctx, &key);
	return 0;
}

/* ---------- client ---------- */

/* (*clientStream).newAttemptLocked(cs, isTransparent): RAX=cs, on the goroutine that then runs
 * the attempt's NewStream. The first attempt (cs.attempt still nil) starts the span, on the
 * caller's goroutine (newClientStreamWithParams -> withRetry), parent from goctx; a retry's
 * attempt finds the span there and only marks its stream for the link. */
SEC("uprobe")
int grpc_client_start(struct pt_regs *ctx)
{
	GRPC_PROLOGUE(ctx, lc, key);
	u64 cs = ctx->rax;
	if (!cs)
		return 0;
	struct grpc_ptr_key k = {.proc = key.proc, .ptr = cs};
	if (read_u64(cs + lc->v[GRPC_CS_ATTEMPT])) {
		if (bpf_map_lookup_elem(&grpc_cli_calls, &k))
			bpf_map_update_elem(&grpc_cli_attempt, &key, &cs, BPF_ANY);
		return 0;
	}
	u64 hdr = read_u64(cs + lc->v[GRPC_CS_CALLHDR]);
	struct go_str m = {};
	if (!hdr || bpf_probe_read_user(&m, sizeof(m), (void *)(hdr + lc->v[GRPC_CALLHDR_METHOD])))
		return 0;
	/* The application's own OTLP exports are not traced (as in gotap build). */
	if (m.len >= 31) {
		char p[31];
		if (!bpf_probe_read_user(p, sizeof(p), (void *)m.ptr) &&
		    grpc_eq(p, "/opentelemetry.proto.collector.", 31))
			return 0;
	}
	struct grpc_call c = {.key_ptr = cs, .aux = read_u64(cs + lc->v[GRPC_CS_CC]),
			      .start_ns = bpf_ktime_get_ns(), .rflags = 1 | REC_MONO,
			      .str_ptr = m.ptr, .str_len = m.len};
	struct span_ctx *parent = bpf_map_lookup_elem(&goctx, &key);
	if (parent) {
		/* Inherited from a span that has ended: not a parent any more (client_entry). */
		u64 psid;
		__builtin_memcpy(&psid, parent->span_id, 8);
		if (bpf_map_lookup_elem(&ended, &psid)) {
			bpf_map_delete_elem(&goctx, &key);
			parent = 0;
		}
	}
	if (parent) {
		c.trace_hi = be_u64(parent->trace_id);
		c.trace_lo = be_u64(parent->trace_id + 8);
		c.parent = be_u64(parent->span_id);
	} else {
		c.trace_hi = grpc_rand64();
		c.trace_lo = grpc_rand64();
	}
	c.span = grpc_rand64();
	bpf_map_update_elem(&grpc_cli_calls, &k, &c, BPF_ANY);
	bpf_map_update_elem(&grpc_cli_attempt, &key, &cs, BPF_ANY);
	return 0;
}

/* (*csAttempt).newStream, the Jcc after its `s, err := a.transport.NewStream(...)`: RAX=s (the
 * transport stream), RBX=err's itab. The stream has its id (assigned under the transport's
 * control-buffer lock, before its HEADERS are queued): write the link under the connection's
 * tuple and that id, for the server's lookup. */
SEC("uprobe")
int grpc_client_stream(struct pt_regs *ctx)
{
	GRPC_PROLOGUE(ctx, lc, key);
	u64 *csp = bpf_map_lookup_elem(&grpc_cli_attempt, &key);
	if (!csp)
		return 0;
	struct grpc_ptr_key k = {.proc = key.proc, .ptr = *csp};
	bpf_map_delete_elem(&grpc_cli_attempt, &key);
	u64 st = ctx->rax;
	if (ctx->rbx || !st || lc->v[GRPC_H2C_CONN] == OFF_ABSENT)
		return 0; /* failed: a retry's newAttemptLocked marks the next one */
	struct grpc_call *c = bpf_map_lookup_elem(&grpc_cli_calls, &k);
	if (!c)
		return 0;
	u64 hop = lc->v[GRPC_CLI_INNER];
	u64 inner = hop == OFF_ABSENT ? st : read_u64(st + hop);
	u32 sid = 0;
	if (!inner || bpf_probe_read_user(&sid, sizeof(sid), (void *)(inner + lc->v[GRPC_CLI_ID])) || !sid)
		return 0;
	u64 ct = read_u64(st + lc->v[GRPC_CLI_CT] + (lc->v[GRPC_CLI_CT_IFACE] ? 8 : 0));
	if (!ct)
		return 0;
	u64 conn = read_u64(ct + lc->v[GRPC_H2C_CONN] + 8);
	struct tuple t = {};
	if (read_conn_tuple(grpc_tcp(lc), conn, t.src_ip, &t.src_port, t.dst_ip, &t.dst_port))
		return 0;
	t._pad = sid;
	struct link_val lv = {};
	put_be_u64(lv.trace_id, c->trace_hi);
	put_be_u64(lv.trace_id + 8, c->trace_lo);
	put_be_u64(lv.span_id, c->span);
	lv.written_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&gotap_links, &t, &lv, BPF_ANY);
	return 0;
}

/* (*csAttempt).finish(a, err error): RAX=a, RBX/RCX=err. */
SEC("uprobe")
int grpc_client_finish(struct pt_regs *ctx)
{
	struct lib_cfg *lc = get_lib_cfg(ctx, LIB_GRPC);
	if (!lc)
		return 0;
	u64 cs = read_u64(ctx->rax + lc->v[GRPC_CSA_CS]);
	u8 finished = 0;
	if (!cs || bpf_probe_read_user(&finished, 1, (void *)(cs + lc->v[GRPC_CS_FINISHED])) || !finished)
		return 0;
	struct grpc_ptr_key k = {.proc = (u32)bpf_get_attach_cookie(ctx), .ptr = cs};
	struct grpc_call *c = bpf_map_lookup_elem(&grpc_cli_calls, &k);
	if (!c)
		return 0;
	struct site_scratch *s = grpc_event(c, EV_SITE_GRPC_CLIENT, k.proc);
	if (!s)
		return 0;
	u32 off = site_put(s, 0, 0, c->str_ptr, c->str_len, URL_CAP);
	struct go_str target = {};
	s->h.slen[1] = 0;
	if (!bpf_probe_read_user(&target, sizeof(target), (void *)(c->aux + lc->v[GRPC_CC_TARGET])))
		off = site_put(s, off, 1, target.ptr, target.len, HOST_CAP);
	s->h.status = 0;
	s->h.slen[2] = 0;
	u64 itab = ctx->rbx, data = ctx->rcx;
	if (itab && data) {
		/* The error's type, told by the first method of its itab (Error) against the
		 * functions the planner found, moved by the load bias (PIE): the uprobe's address
		 * minus the planned site's, rounded down to a page. */
		u64 fn = read_u64(itab + 24);
		u64 bias = (ctx->rip - lc->v[GRPC_FINISH_VADDR]) & ~0xfffULL;
		if (fn && fn == lc->v[GRPC_FN_STATUS_ERROR] + bias) {
			off = grpc_put_status(lc, s, off, read_u64(data + lc->v[GRPC_ERROR_S]));
		} else {
			struct go_str e = {};
			int eof = 0;
			if (fn == lc->v[GRPC_FN_ERRSTRING] + bias &&
			    !bpf_probe_read_user(&e, sizeof(e), (void *)data) && e.len == 3) {
				char t[3];
				eof = !bpf_probe_read_user(t, 3, (void *)e.ptr) && t[0] == 'E' &&
				      t[1] == 'O' && t[2] == 'F';
			}
			if (!eof)
				s->h.status = 2; /* Unknown: what status.FromError makes of it */
		}
	}
	grpc_submit(s, off);
	bpf_map_delete_elem(&grpc_cli_calls, &k);
	return 0;
}

/* The string slots of this library's site kinds for a site read through its arguments and record
 * (gotap.bpf.c's site_event_scratch, via the site_strings build.rs generates): the data length
 * after off, or -1 for another library's kind. */
static __always_inline int grpc_site_strings(u32 kind, struct site_scratch *s, const struct site_args *a,
					     const struct site_record *r, u32 off)
{
	if (kind == EV_SITE_GRPC_SERVER || kind == EV_SITE_GRPC_CLIENT) {
		off = site_put(s, off, 0, a->method_ptr, a->method_len, URL_CAP);
		/* server: peer; client: target */
		off = site_put(s, off, 1, a->path_ptr, a->path_len, kind == EV_SITE_GRPC_SERVER ? REMOTE_CAP : HOST_CAP);
		off = site_put(s, off, 2, a->text_ptr, a->text_len, ERROR_CAP);
		s->h.slen[3] = s->h.slen[4] = s->h.slen[5] = s->h.slen[6] = s->h.slen[7] = 0;
		return off;
	}
	return -1;
}

/* Probe sites of `gotap build --probes` (../sites.rs names these programs): site_hit of
 * gotap.bpf.c reads the site event; its kind tells the reader which decoder builds the span.
 *
 * google.golang.org/grpc.gotapProbeGRPCServer (USDT gotap:grpc_server). */
SEC("uprobe")
int site_grpc_server(struct pt_regs *ctx)
{
	return site_hit(ctx, EV_SITE_GRPC_SERVER);
}

/* google.golang.org/grpc.gotapProbeGRPCClient (USDT gotap:grpc_client). */
SEC("uprobe")
int site_grpc_client(struct pt_regs *ctx)
{
	return site_hit(ctx, EV_SITE_GRPC_CLIENT);
}
