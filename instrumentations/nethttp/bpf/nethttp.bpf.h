/* net/http's function probes (docs/ebpf.md): server spans from serverHandler.ServeHTTP, client
 * spans from (*Transport).roundTrip, and the cross-process link written by
 * (*persistConn).roundTrip. Included at the end of crates/gotap-ebpf/bpf/gotap.bpf.c, whose
 * helpers and maps it uses; planned by ../ebpf.rs, which fills this library's lib_cfg slots. */
#pragma once

/* This library's lib_cfg slots (get_lib_cfg(ctx, LIB_NETHTTP)->v[...]): struct offsets of the
 * binary's Go version, OFF_ABSENT where the field does not exist. ../ebpf.rs numbers them the same
 * (its `slot` module, checked against this list by a test). */
enum nethttp_slot {
	NH_REQ_METHOD,
	NH_REQ_URL,
	NH_REQ_PROTO,
	NH_REQ_HOST,
	NH_REQ_REMOTE_ADDR,
	NH_REQ_PATTERN,
	NH_URL_SCHEME,
	NH_URL_HOST,
	NH_URL_PATH,
	NH_URL_RAW_QUERY,
	NH_SRESP_STATUS,      /* net/http.response.status */
	NH_SRESP_CONN,        /* net/http.response.conn */
	NH_CONN_RWC,          /* net/http.conn.rwc */
	NH_CONN_BUFR,         /* net/http.conn.bufr */
	NH_BUFIO_BUF,
	NH_BUFIO_R,
	NH_PCONN_CONN,        /* net/http.persistConn.conn */
	NH_RESP_STATUS_CODE,  /* net/http.Response.StatusCode */
	NH_FLAGS,             /* NH_HAS_PATTERN */
	/* struct tcp_offs (read_conn_tuple), in its field order */
	NH_NETCONN_FD,
	NH_NETFD_LADDR,
	NH_NETFD_RADDR,
	NH_TCPADDR_IP,
	NH_TCPADDR_PORT,
	NH_REQ_TLS,           /* net/http.Request.TLS */
	NH_H2RW_RWS,          /* HTTP/2's responseWriter.rws (bundled http2, or internal/http2) */
	NH_H2RWS_STATUS,      /* HTTP/2's responseWriterState.status */
	NH_REQ_HEADER,        /* net/http.Request.Header (a map[string][]string) */
	NH_MAP_KIND,          /* NH_MAP_SWISS, NH_MAP_HMAP, or 0: the header map is not read */
	NH_MAP_O1,            /* swiss: Map.dirPtr;  hmap: hmap.buckets */
	NH_MAP_O2,            /* swiss: Map.dirLen;  hmap: hmap.oldbuckets */
	NH_MAP_O3,            /* swiss: table.groups + groupsReference.data;  hmap: hmap.B */
	NH_MAP_O4,            /* swiss: table.groups + groupsReference.lengthMask;  hmap: hmap.flags */
	NH_SLOTS,
};

/* NH_FLAGS bits */
#define NH_HAS_PATTERN 1 /* net/http.Request.Pattern exists (Go >= 1.23) */

/* NH_MAP_KIND: the runtime's map implementation (../ebpf.rs tells them apart by its functions) */
#define NH_MAP_SWISS 1 /* internal/runtime/maps (Go >= 1.24) */
#define NH_MAP_HMAP 2  /* runtime.hmap (up to Go 1.23) */

_Static_assert(NH_SLOTS <= LIB_CFG_SLOTS, "net/http's slots must fit a lib_cfg");
_Static_assert(NH_TCPADDR_PORT - NH_NETCONN_FD + 1 == sizeof(struct tcp_offs) / sizeof(u64) &&
		       __builtin_offsetof(struct tcp_offs, tcpaddr_port) ==
			       (NH_TCPADDR_PORT - NH_NETCONN_FD) * sizeof(u64),
	       "net/http's TCP slots must lay out struct tcp_offs");

#define NH(lc, s) ((lc)->v[NH_##s])

static __always_inline const struct tcp_offs *nh_tcp(struct lib_cfg *lc)
{
	return (const struct tcp_offs *)&lc->v[NH_NETCONN_FD];
}

/* net/http's own ring records (struct http_event); kinds outside the site events' (types.h). */
#define EV_SERVER 1
#define EV_CLIENT 2

/* event.flags */
#define EVF_HAS_PARENT (1u << 0)
#define EVF_HAS_STATUS (1u << 1)
#define EVF_ERROR (1u << 2)       /* client: round trip returned a non-nil error */
#define EVF_HTTP2 (1u << 3)       /* server: HTTP/2 request, no conn-based data */
#define EVF_TLS (1u << 4)         /* server: Request.TLS != nil (url.scheme https) */

/* event.parent_source */
#define PARENT_NONE 0
#define PARENT_TRACEPARENT 1  /* W3C traceparent header in the request */
#define PARENT_LINK_MAP 2     /* pinned TCP-tuple map written by a traced client */
#define PARENT_GOROUTINE 3    /* client: the calling goroutine's span */

/* One finished span (../ebpf.rs mirrors it as HttpEvent). Server: method, path, query, host (Host
 * header), proto, remote (RemoteAddr), pattern, ua. Client: method, path/query/host/proto(=scheme)
 * from the URL. */
struct http_event {
	u8 kind;
	u8 flags;
	u8 parent_source;
	u8 _pad0;
	u32 proc;
	u64 start_ns;
	u64 end_ns;
	u64 aux;            /* server: the *http.response, read again at RET; not for user space */
	u64 aux2;           /* the *http.Request (server: read again at RET; both: restart check);
			     * not for user space */
	u8 trace_id[16];
	u8 span_id[8];
	u8 parent_id[8];
	u16 status;
	u16 method_len;
	u16 path_len;
	u16 query_len;
	u16 host_len;
	u16 proto_len;
	u16 remote_len;
	u16 pattern_len;
	u16 ua_len;
	u16 _pad1[3];
	char method[METHOD_CAP];
	char path[PATH_CAP];
	char query[QUERY_CAP];
	char host[HOST_CAP];
	char proto[PROTO_CAP];
	char remote[REMOTE_CAP];
	char pattern[PATTERN_CAP];
	char ua[UA_CAP];
};
_Static_assert(sizeof(struct http_event) == 1216, "HttpEvent in ../ebpf.rs has this size");

/* In-flight server requests, entry -> RET. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, struct http_event);
	__uint(max_entries, 4096);
} server_calls SEC(".maps");

/* In-flight client round trips, entry -> RET. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, struct http_event);
	__uint(max_entries, 4096);
} client_calls SEC(".maps");

/* Scratch space too large for the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct http_event);
	__uint(max_entries, 1);
} scratch_event SEC(".maps");

/* A zeroed (up to the strings) scratch event of `kind`, started now. */
static __always_inline struct http_event *new_event(struct proc_cfg *cfg, u8 kind)
{
	u32 zero = 0;
	struct http_event *ev = bpf_map_lookup_elem(&scratch_event, &zero);
	if (!ev)
		return 0;
	__builtin_memset(ev, 0, __builtin_offsetof(struct http_event, method));
	ev->kind = kind;
	ev->proc = cfg->proc;
	ev->start_ns = bpf_ktime_get_ns();
	return ev;
}

/* The in-flight call a return probe ends; a miss (evicted, or begun before attaching) is
 * counted. */
static __always_inline struct http_event *in_flight(void *calls, struct g_key *key)
{
	struct http_event *ev = bpf_map_lookup_elem(calls, key);
	if (!ev)
		count(CNT_RET_NO_ENTRY);
	return ev;
}

static __always_inline void submit(struct http_event *ev)
{
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), wake_flag(sizeof(*ev))))
		count(CNT_RINGBUF_DROPS);
}

/* ---------- header window scan ---------- */

struct scan_ctx {
	struct window *w;
	u32 n;
	u32 line_start_at_0;
	s32 tp_off;
	s32 ua_off;
};

static __always_inline int match_ci(struct window *w, u32 i, const char *pat, int len)
{
	for (int k = 0; k < len; k++) {
		if ((WB(w, i + k) | 0x20) != pat[k])
			return 0;
	}
	return 1;
}

static long scan_line(u32 i, struct scan_ctx *c)
{
	if (i >= c->n || i >= WIN_MAX)
		return 1;
	if (i == 0) {
		if (!c->line_start_at_0)
			return 0;
	} else if (WB(c->w, i - 1) != '\n') {
		return 0;
	}
	u8 ch = WB(c->w, i) | 0x20;
	if (ch == 't' && c->tp_off < 0 && i + 12 <= c->n && match_ci(c->w, i, "traceparent:", 12))
		c->tp_off = i + 12;
	else if (ch == 'u' && c->ua_off < 0 && i + 11 <= c->n && match_ci(c->w, i, "user-agent:", 11))
		c->ua_off = i + 11;
	return 0;
}

struct ua_ctx {
	struct window *w;
	u32 start;
	u32 n;
	u32 len;
};

static long ua_len_cb(u32 k, struct ua_ctx *c)
{
	u32 i = c->start + k;
	if (i >= c->n)
		return 1;
	u8 ch = WB(c->w, i);
	if (ch == '\r' || ch == '\n')
		return 1;
	c->len = k + 1;
	return 0;
}

/* Reads the raw request bytes just before bufio.Reader.r (the end of the header block of the
 * request being served) and takes traceparent (into ev as parent) and User-Agent from them. */
static __always_inline void scan_headers(struct lib_cfg *lc, u64 conn, struct http_event *ev,
					 int want_parent)
{
	u32 zero = 0;
	struct window *w = bpf_map_lookup_elem(&scratch_window, &zero);
	if (!w)
		return;
	u64 bufr = read_u64(conn + NH(lc, CONN_BUFR));
	if (!bufr)
		return;
	u64 buf = read_u64(bufr + NH(lc, BUFIO_BUF));
	s64 r = (s64)read_u64(bufr + NH(lc, BUFIO_R));
	if (!buf || r <= 0)
		return;
	u32 n = r > WIN_MAX ? WIN_MAX : (u32)r;
	u64 start = buf + (u64)r - n;
	if (bpf_probe_read_user(w->b, n & (WIN_MAX * 2 - 1), (void *)start))
		return;
	struct scan_ctx sc = {.w = w, .n = n, .line_start_at_0 = (n == (u64)r), .tp_off = -1, .ua_off = -1};
	bpf_loop(WIN_MAX, scan_line, &sc, 0);
	/* More header bytes than the window before the parse point, and a header not found: it may
	 * have been cut off. */
	if (n < r && (sc.tp_off < 0 || sc.ua_off < 0))
		count(CNT_WINDOW_TRUNCATED);
	if (want_parent && sc.tp_off >= 0 &&
	    !parse_traceparent(w, sc.tp_off, n, ev->trace_id, ev->parent_id)) {
		ev->flags |= EVF_HAS_PARENT;
		ev->parent_source = PARENT_TRACEPARENT;
	}
	if (sc.ua_off >= 0) {
		struct ua_ctx uc = {.w = w, .start = skip_spaces(w, sc.ua_off), .n = n};
		bpf_loop(UA_CAP, ua_len_cb, &uc, 0);
		u32 len = uc.len > UA_CAP - 1 ? UA_CAP - 1 : uc.len;
		len &= UA_CAP - 1; /* for the verifier: clang may test a copy of len */
		if (len > 0 && uc.start < WIN_MAX &&
		    !bpf_probe_read_user(ev->ua, len, (void *)(start + uc.start)))
			ev->ua_len = len;
	}
}

/* ---------- HTTP/2 request headers: Request.Header, a Go map ----------
 *
 * HTTP/2 requests have no raw header bytes to scan (HPACK-decoded on the connection's goroutine,
 * kept only in Request.Header), so server_entry reads that map[string][]string: every slot of
 * every group (Swiss tables) or bucket (hmap), comparing keys with the canonical names the h2
 * servers store ("User-Agent", "Traceparent"). The map cannot be looked up (its hash is seeded
 * per map), only walked; a request has few headers. Slot layouts follow from the key and element
 * types on amd64 (string: 16 bytes, []string: 24):
 * - Swiss group: ctrl word (byte i < 0x80: slot i full), then 8 slots of {key, elem} (40 bytes);
 * - hmap bucket: tophash[8] (>= 5: full, not evacuated), keys[8], elems[8], overflow pointer. */
#define H2_MAX_GROUPS 32 /* a power of two: the "&= 31" masks below */
#define SWISS_GROUP_SIZE (8 + 8 * 40)
#define HMAP_BUCKET_SIZE (8 + 8 * 16 + 8 * 24 + 8)
#define HMAP_OVERFLOW (8 + 8 * 16 + 8 * 24)

struct h2_hdr_scan {
	u64 groups[H2_MAX_GROUPS];
	u32 n;
	u32 kind;
	u64 ua_ptr;
	u64 ua_len;
	u64 tp_ptr;
	u64 tp_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct h2_hdr_scan);
	__uint(max_entries, 1);
} scratch_h2 SEC(".maps");

static __always_inline void h2_add(struct h2_hdr_scan *h, u64 group)
{
	u64 n = h->n;
	if (group && n < H2_MAX_GROUPS) {
		h->n = n + 1;
		/* masked on the register used for the access (clang would drop a plain mask) */
		asm volatile("%0 &= 31" : "+r"(n));
		h->groups[n] = group;
	}
}

/* bpf_loop contexts (on the stack, as bpf_loop requires): one callback per Swiss table or hmap
 * bucket keeps the verifier's work to one pass over each body. */
struct h2_collect_ctx {
	struct h2_hdr_scan *h;
	u64 dir;      /* swiss: the directory; hmap: the buckets */
	u64 old;      /* hmap: the old buckets (0: not growing) */
	s64 dir_len;  /* swiss */
	u64 prev;     /* swiss: the previous table (a table covers consecutive entries) */
	u64 o_data;   /* swiss: table.groups.data */
	u64 o_mask;   /* swiss: table.groups.lengthMask */
	u32 nb;       /* hmap: buckets */
	u32 nb_old;   /* hmap: old buckets */
};

static long swiss_table(u32 t, struct h2_collect_ctx *c)
{
	if (t >= c->dir_len)
		return 1;
	u64 tab = read_u64(c->dir + 8 * (u64)t);
	if (!tab || tab == c->prev)
		return 0;
	c->prev = tab;
	u64 data = read_u64(tab + c->o_data);
	u64 mask = read_u64(tab + c->o_mask);
	for (int g = 0; g < H2_MAX_GROUPS; g++) {
		if (g > mask || c->h->n >= H2_MAX_GROUPS)
			break;
		h2_add(c->h, data + (u64)g * SWISS_GROUP_SIZE);
	}
	return c->h->n >= H2_MAX_GROUPS;
}

static long hmap_bucket(u32 i, struct h2_collect_ctx *c)
{
	u32 pass = i / H2_MAX_GROUPS, b = i % H2_MAX_GROUPS;
	if (b >= (pass ? c->nb_old : c->nb))
		return 0;
	u64 bk = (pass ? c->old : c->dir) + (u64)b * HMAP_BUCKET_SIZE;
	for (int k = 0; k < 4 && bk; k++) {
		h2_add(c->h, bk);
		bk = read_u64(bk + HMAP_OVERFLOW);
	}
	return c->h->n >= H2_MAX_GROUPS;
}

/* The groups (buckets) of the map at m into h->groups. */
static __always_inline void h2_collect(struct lib_cfg *lc, u64 m, struct h2_hdr_scan *h)
{
	struct h2_collect_ctx c = {.h = h};
	if (NH(lc, MAP_KIND) == NH_MAP_SWISS) {
		c.dir = read_u64(m + NH(lc, MAP_O1));
		c.dir_len = (s64)read_u64(m + NH(lc, MAP_O2));
		if (c.dir_len == 0) { /* a small map: dirPtr is its one group */
			h2_add(h, c.dir);
			return;
		}
		c.o_data = NH(lc, MAP_O3);
		c.o_mask = NH(lc, MAP_O4);
		bpf_loop(8, swiss_table, &c, 0);
		return;
	}
	/* hmap: 2^B buckets and their overflow chains; while growing, the old buckets' entries not
	 * yet moved (their tophash says so) are live too: half as many buckets, unless growing in
	 * place (sameSizeGrow, flag 8). */
	u8 b = 0, flags = 0;
	bpf_probe_read_user(&b, 1, (void *)(m + NH(lc, MAP_O3)));
	bpf_probe_read_user(&flags, 1, (void *)(m + NH(lc, MAP_O4)));
	if (b > 5)
		b = 5;
	c.dir = read_u64(m + NH(lc, MAP_O1));
	c.old = read_u64(m + NH(lc, MAP_O2));
	c.nb = c.dir ? 1u << b : 0;
	c.nb_old = !c.old ? 0 : (b && !(flags & 8)) ? 1u << (b - 1) : 1u << b;
	bpf_loop(2 * H2_MAX_GROUPS, hmap_bucket, &c, 0);
}

struct h2_loop {
	struct h2_hdr_scan *h; /* bpf_loop's context must be on the stack */
};

static long h2_slot(u32 i, struct h2_loop *l)
{
	struct h2_hdr_scan *h = l->h;
	if (i / 8 >= h->n)
		return 1;
	u64 gi = i / 8;
	asm volatile("%0 &= 31" : "+r"(gi));
	u64 g = h->groups[gi];
	u32 s = i % 8;
	u8 ctrl = 0;
	if (bpf_probe_read_user(&ctrl, 1, (void *)(g + s)))
		return 0;
	u64 key, elem;
	if (h->kind == NH_MAP_SWISS) {
		if (ctrl & 0x80)
			return 0;
		key = g + 8 + s * 40;
		elem = key + 16;
	} else {
		if (ctrl < 5)
			return 0;
		key = g + 8 + s * 16;
		elem = g + 8 + 8 * 16 + s * 24;
	}
	struct go_string { u64 ptr; s64 len; } k = {};
	if (bpf_probe_read_user(&k, sizeof(k), (void *)key))
		return 0;
	const char *want;
	if (k.len == 10 && !h->ua_ptr)
		want = "User-Agent";
	else if (k.len == 11 && !h->tp_ptr)
		want = "Traceparent";
	else
		return 0;
	char name[11] = {};
	if (bpf_probe_read_user(name, k.len == 10 ? 10 : 11, (void *)k.ptr))
		return 0;
	for (int c = 0; c < 11; c++) {
		if (c < k.len && name[c] != want[c])
			return 0;
	}
	/* the first value: elem is a []string */
	u64 vals = read_u64(elem);
	s64 nvals = (s64)read_u64(elem + 8);
	struct go_string v = {};
	if (!vals || nvals < 1 || bpf_probe_read_user(&v, sizeof(v), (void *)vals))
		return 0;
	if (k.len == 10) {
		h->ua_ptr = v.ptr;
		h->ua_len = v.len;
	} else {
		h->tp_ptr = v.ptr;
		h->tp_len = v.len;
	}
	return h->ua_ptr && h->tp_ptr;
}

/* User-Agent into ev, and Traceparent as parent unless want_parent is 0, from Request.Header. */
static __always_inline void h2_headers(struct lib_cfg *lc, u64 req, struct http_event *ev,
				       int want_parent)
{
	if (!NH(lc, MAP_KIND) || NH(lc, REQ_HEADER) == OFF_ABSENT)
		return;
	u32 zero = 0;
	struct h2_hdr_scan *h = bpf_map_lookup_elem(&scratch_h2, &zero);
	if (!h)
		return;
	h->n = 0;
	h->kind = NH(lc, MAP_KIND);
	h->ua_ptr = h->ua_len = h->tp_ptr = h->tp_len = 0;
	u64 m = read_u64(req + NH(lc, REQ_HEADER));
	if (!m)
		return;
	h2_collect(lc, m, h);
	struct h2_loop l = {.h = h};
	bpf_loop(H2_MAX_GROUPS * 8, h2_slot, &l, 0);
	if (h->ua_ptr && h->ua_len > 0) {
		u32 len = h->ua_len > UA_CAP - 1 ? UA_CAP - 1 : (u32)h->ua_len;
		len &= UA_CAP - 1;
		if (len > 0 && !bpf_probe_read_user(ev->ua, len, (void *)h->ua_ptr))
			ev->ua_len = len;
	}
	if (want_parent && h->tp_ptr && h->tp_len >= 55 && h->tp_len < 128) {
		struct window *w = bpf_map_lookup_elem(&scratch_window, &zero);
		u32 n = (u32)h->tp_len & 127;
		if (w && !bpf_probe_read_user(w->b, n, (void *)h->tp_ptr) &&
		    !parse_traceparent(w, 0, n, ev->trace_id, ev->parent_id)) {
			ev->flags |= EVF_HAS_PARENT;
			ev->parent_source = PARENT_TRACEPARENT;
		}
	}
}

/* ---------- net/http server ---------- */

/* net/http.serverHandler.ServeHTTP(sh, rw ResponseWriter, req *Request): RAX=sh, RBX/RCX=rw,
 * RDI=req. */
SEC("uprobe")
int server_entry(struct pt_regs *ctx)
{
	LIB_PROLOGUE(ctx, LIB_NETHTTP, lc, cfg, key);
	u64 rw = ctx->rcx, req = ctx->rdi;
	/* Same request already in flight on this goroutine: ServeHTTP restarted after growing its
	 * stack (the probe sits before the stack check). The first pass consumed the one-use link
	 * entry and made the ids: keep them. */
	struct http_event *prev = bpf_map_lookup_elem(&server_calls, &key);
	if (prev && prev->aux2 == req)
		return 0;
	struct http_event *ev = new_event(cfg, EV_SERVER);
	if (!ev)
		return 0;
	ev->aux = rw;
	ev->aux2 = req;
	ev->method_len = READ_GO_STR(ev->method, METHOD_CAP, req + NH(lc, REQ_METHOD));
	ev->proto_len = READ_GO_STR(ev->proto, PROTO_CAP, req + NH(lc, REQ_PROTO));
	ev->host_len = READ_GO_STR(ev->host, HOST_CAP, req + NH(lc, REQ_HOST));
	ev->remote_len = READ_GO_STR(ev->remote, REMOTE_CAP, req + NH(lc, REQ_REMOTE_ADDR));
	u64 url = read_u64(req + NH(lc, REQ_URL));
	if (url) {
		ev->path_len = READ_GO_STR(ev->path, PATH_CAP, url + NH(lc, URL_PATH));
		ev->query_len = READ_GO_STR(ev->query, QUERY_CAP, url + NH(lc, URL_RAW_QUERY));
	}
	/* HTTP/2: rw is not a *http.response, its connection data is elsewhere. */
	if (ev->proto_len >= 6 && ev->proto[5] == '2')
		ev->flags |= EVF_HTTP2;
	/* Set by net/http's HTTP/1 and HTTP/2 servers alike for a request read over TLS. */
	if (NH(lc, REQ_TLS) != OFF_ABSENT && read_u64(req + NH(lc, REQ_TLS)))
		ev->flags |= EVF_TLS;

	if (!(ev->flags & EVF_HTTP2)) {
		u64 conn = read_u64(rw + NH(lc, SRESP_CONN));
		if (conn) {
			/* A traced client on this host registered this connection: most specific parent. */
			struct tuple t = {};
			u64 rwc = read_u64(conn + NH(lc, CONN_RWC) + 8);
			if (!read_conn_tuple(nh_tcp(lc), rwc, t.dst_ip, &t.dst_port, t.src_ip, &t.src_port)) {
				struct link_val *lv = bpf_map_lookup_elem(&gotap_links, &t);
				if (lv && ev->start_ns - lv->written_ns < LINK_MAX_AGE_NS) {
					__builtin_memcpy(ev->trace_id, lv->trace_id, 16);
					__builtin_memcpy(ev->parent_id, lv->span_id, 8);
					ev->flags |= EVF_HAS_PARENT;
					ev->parent_source = PARENT_LINK_MAP;
				}
				if (lv)
					bpf_map_delete_elem(&gotap_links, &t); /* one request, one use */
			}
			scan_headers(lc, conn, ev, !(ev->flags & EVF_HAS_PARENT));
		}
	} else {
		h2_headers(lc, req, ev, 1);
	}
	if (!(ev->flags & EVF_HAS_PARENT))
		random_bytes(ev->trace_id, 16);
	random_bytes(ev->span_id, 8);

	struct span_ctx sctx;
	__builtin_memcpy(sctx.trace_id, ev->trace_id, 16);
	__builtin_memcpy(sctx.span_id, ev->span_id, 8);
	bpf_map_update_elem(&goctx, &key, &sctx, BPF_ANY);
	bpf_map_update_elem(&server_calls, &key, ev, BPF_ANY);
	return 0;
}

/* Ends the in-flight server span of this goroutine: status, pattern, submit. */
static __always_inline int server_end(struct pt_regs *ctx, int count_miss)
{
	LIB_PROLOGUE(ctx, LIB_NETHTTP, lc, cfg, key);
	struct http_event *ev = count_miss ? in_flight(&server_calls, &key)
					   : bpf_map_lookup_elem(&server_calls, &key);
	if (!ev)
		return 0;
	ev->end_ns = bpf_ktime_get_ns();
	if (!(ev->flags & EVF_HTTP2)) {
		s64 status = (s64)read_u64(ev->aux + NH(lc, SRESP_STATUS));
		/* 0: the handler wrote nothing; net/http then answers 200. */
		ev->status = status == 0 ? 200 : (u16)status;
		ev->flags |= EVF_HAS_STATUS;
	} else if (NH(lc, H2RWS_STATUS) != OFF_ABSENT &&
		   !(ev->method_len == 3 && ev->method[0] == 'P' && ev->method[1] == 'R' &&
		     ev->method[2] == 'I')) {
		/* HTTP/2's ResponseWriter (*http2responseWriter) -> rws -> status, what the handler
		 * passed to WriteHeader (Write without it sets 200); its state is returned to a pool
		 * only after ServeHTTP, in the stream's runHandler. Not for the HTTP/1 server's "PRI *
		 * HTTP/2.0" preface handed to an h2c handler: that rw is a *response. */
		u64 rws = read_u64(ev->aux + NH(lc, H2RW_RWS));
		s64 status = rws ? (s64)read_u64(rws + NH(lc, H2RWS_STATUS)) : -1;
		if (status == 0 || (status >= 100 && status <= 999)) {
			ev->status = status == 0 ? 200 : (u16)status;
			ev->flags |= EVF_HAS_STATUS;
		}
	}
	/* ServeMux sets Request.Pattern below serverHandler.ServeHTTP: read it on the way out. */
	if (NH(lc, FLAGS) & NH_HAS_PATTERN)
		ev->pattern_len = READ_GO_STR(ev->pattern, PATTERN_CAP, ev->aux2 + NH(lc, REQ_PATTERN));
	ev->aux = 0;
	ev->aux2 = 0;
	u64 sid;
	__builtin_memcpy(&sid, ev->span_id, 8);
	u8 one = 1;
	bpf_map_update_elem(&ended, &sid, &one, BPF_ANY);
	submit(ev);
	bpf_map_delete_elem(&server_calls, &key);
	bpf_map_delete_elem(&goctx, &key);
	return 0;
}

/* ServeHTTP returned: in each caller, the first branch/call after the call (or ServeHTTP's RETs).
 * Uses no register but R14: the response and request were saved at entry. */
SEC("uprobe")
int server_ret(struct pt_regs *ctx)
{
	return server_end(ctx, 1);
}

/* Go >= 1.27's HTTP/2 stream writer's handlerDone entry (its stack check's Jcc), on the handler's
 * goroutine after ServeHTTP returned: no direct call of ServeHTTP to put server_ret after. Quiet
 * on a miss: an HTTP/2 request served by ServeHTTP's other callers has been ended there, and a
 * restart after stack growth fires the probe again. */
SEC("uprobe")
int server_h2_done(struct pt_regs *ctx)
{
	return server_end(ctx, 0);
}

/* ---------- net/http client ---------- */

/* net/http.(*Transport).roundTrip(t, req *Request) (*Response, error): RAX=t, RBX=req. */
SEC("uprobe")
int client_entry(struct pt_regs *ctx)
{
	LIB_PROLOGUE(ctx, LIB_NETHTTP, lc, cfg, key);
	u64 req = ctx->rbx;
	/* Restarted after a stack growth (see server_entry): keep the first pass's ids. */
	struct http_event *prev = bpf_map_lookup_elem(&client_calls, &key);
	if (prev && prev->aux2 == req)
		return 0;
	struct http_event *ev = new_event(cfg, EV_CLIENT);
	if (!ev)
		return 0;
	ev->aux2 = req;
	ev->method_len = READ_GO_STR(ev->method, METHOD_CAP, req + NH(lc, REQ_METHOD));
	u64 url = read_u64(req + NH(lc, REQ_URL));
	if (url) {
		ev->proto_len = READ_GO_STR(ev->proto, PROTO_CAP, url + NH(lc, URL_SCHEME));
		ev->host_len = READ_GO_STR(ev->host, HOST_CAP, url + NH(lc, URL_HOST));
		ev->path_len = READ_GO_STR(ev->path, PATH_CAP, url + NH(lc, URL_PATH));
		ev->query_len = READ_GO_STR(ev->query, QUERY_CAP, url + NH(lc, URL_RAW_QUERY));
	}
	struct span_ctx *parent = bpf_map_lookup_elem(&goctx, &key);
	if (parent) {
		/* Inherited from a handler whose request is over: not a parent any more. */
		u64 psid;
		__builtin_memcpy(&psid, parent->span_id, 8);
		if (bpf_map_lookup_elem(&ended, &psid)) {
			bpf_map_delete_elem(&goctx, &key);
			parent = 0;
		}
	}
	if (parent) {
		__builtin_memcpy(ev->trace_id, parent->trace_id, 16);
		__builtin_memcpy(ev->parent_id, parent->span_id, 8);
		ev->flags |= EVF_HAS_PARENT;
		ev->parent_source = PARENT_GOROUTINE;
	} else {
		random_bytes(ev->trace_id, 16);
	}
	random_bytes(ev->span_id, 8);
	bpf_map_update_elem(&client_calls, &key, ev, BPF_ANY);
	return 0;
}

/* net/http.(*persistConn).roundTrip(pc, req *transportRequest) entry: same goroutine as the
 * Transport.roundTrip that picked this connection, just before the request is written on it. */
SEC("uprobe")
int client_conn(struct pt_regs *ctx)
{
	LIB_PROLOGUE(ctx, LIB_NETHTTP, lc, cfg, key);
	struct http_event *ev = bpf_map_lookup_elem(&client_calls, &key);
	if (!ev)
		return 0;
	u64 pc = ctx->rax;
	u64 conn = read_u64(pc + NH(lc, PCONN_CONN) + 8);
	struct tuple t = {};
	if (read_conn_tuple(nh_tcp(lc), conn, t.src_ip, &t.src_port, t.dst_ip, &t.dst_port))
		return 0;
	struct link_val lv = {};
	__builtin_memcpy(lv.trace_id, ev->trace_id, 16);
	__builtin_memcpy(lv.span_id, ev->span_id, 8);
	lv.written_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&gotap_links, &t, &lv, BPF_ANY);
	return 0;
}

/* Every RET of (*Transport).roundTrip: RAX=*Response, RBX/RCX=error. */
SEC("uprobe")
int client_ret(struct pt_regs *ctx)
{
	LIB_PROLOGUE(ctx, LIB_NETHTTP, lc, cfg, key);
	struct http_event *ev = in_flight(&client_calls, &key);
	if (!ev)
		return 0;
	ev->end_ns = bpf_ktime_get_ns();
	ev->aux2 = 0;
	u64 resp = ctx->rax;
	if (ctx->rbx) {
		ev->flags |= EVF_ERROR;
	} else if (resp) {
		ev->status = (u16)read_u64(resp + NH(lc, RESP_STATUS_CODE));
		ev->flags |= EVF_HAS_STATUS;
	}
	submit(ev);
	bpf_map_delete_elem(&client_calls, &key);
	return 0;
}

/* The string slots of this library's site kinds for a site read through its arguments and record
 * (gotap.bpf.c's site_event_scratch, via the site_strings build.rs generates): the data length
 * after off, or -1 for another library's kind. */
static __always_inline int nethttp_site_strings(u32 kind, struct site_scratch *s, const struct site_args *a,
						const struct site_record *r, u32 off)
{
	if (kind == EV_SITE_SERVER) {
		off = site_put(s, off, 0, a->method_ptr, a->method_len, METHOD_CAP);
		off = site_put(s, off, 1, a->path_ptr, a->path_len, PATH_CAP);
		off = site_put(s, off, 2, a->text_ptr, a->text_len, PATTERN_CAP); /* the pattern */
		off = site_put(s, off, 3, r->host.ptr, r->host.len, HOST_CAP);
		off = site_put(s, off, 4, r->remote.ptr, r->remote.len, REMOTE_CAP);
		/* Same cap as the function probes' header scan (one byte short of the buffer). */
		off = site_put(s, off, 5, r->ua.ptr, r->ua.len, UA_CAP - 1);
		off = site_put(s, off, 6, r->proto.ptr, r->proto.len, PROTO_CAP);
		off = site_put(s, off, 7, r->query.ptr, r->query.len, QUERY_CAP);
		return off;
	}
	if (kind == EV_SITE_CLIENT) {
		off = site_put(s, off, 0, a->method_ptr, a->method_len, METHOD_CAP);
		off = site_put(s, off, 1, a->path_ptr, a->path_len, URL_CAP);     /* the URL */
		off = site_put(s, off, 2, a->text_ptr, a->text_len, ERROR_CAP);   /* the error text */
		s->h.slen[3] = s->h.slen[4] = s->h.slen[5] = s->h.slen[6] = s->h.slen[7] = 0;
		return off;
	}
	return -1;
}

/* Probe sites of `gotap build --probes` (../sites.rs names these programs): site_hit of
 * gotap.bpf.c reads the site event; its kind tells the reader which decoder builds the span.
 *
 * net/http.gotapProbeHTTPServer (USDT gotap:http_server). Cookie: the traced
 * process's id, and SITE_COOKIE_EVENT. */
SEC("uprobe")
int site_http_server(struct pt_regs *ctx)
{
	return site_hit(ctx, EV_SITE_SERVER);
}

/* net/http.gotapProbeHTTPClient (USDT gotap:http_client). */
SEC("uprobe")
int site_http_client(struct pt_regs *ctx)
{
	return site_hit(ctx, EV_SITE_CLIENT);
}
