/* database/sql function probes for `gotap run` / `gotap attach` (instrumentations/databasesql:
 * README.md there; the plan is ebpf.rs). Included at the end of crates/gotap-ebpf/bpf/gotap.bpf.c.
 *
 * One span per statement database/sql hands to the driver: (*DB).queryDC, execDC and prepareDC
 * (which serve DB, Tx and Conn) and (*Stmt).QueryContext / ExecContext. An entry probe copies the
 * driver's package and the query text into the goroutine's in-flight call; an exit probe (just
 * after the call returns, in its callers) adds the duration and the status and hands the call over
 * as an EV_SITE_SQL site event (slots: driver package, query text; the rest empty), which the
 * reader decodes like a `gotap build --probes` site's. */
#pragma once

/* lib_cfg slots (ebpf.rs `slot`). */
#define SQL_G_GOID 0
#define SQL_DC_CI 1        /* database/sql.driverConn.ci */
#define SQL_STMT_QUERY 2   /* database/sql.Stmt.query */
#define SQL_STMT_DB 3      /* database/sql.Stmt.db */
#define SQL_NDRIVERS 4     /* drivers named by itab hash below */
#define SQL_DEFAULT 5      /* the driver of a conn whose type is not listed, or >= SQL_DRIVERS_MAX */
#define SQL_HASH0 8        /* SQL_DRIVERS_MAX type hashes of driver.Conn implementations */
#define SQL_LEN0 14        /* their package names' lengths */
#define SQL_NAME0 20       /* their package names, SQL_NAME_SLOTS u64s each */
#define SQL_DRIVERS_MAX 6
#define SQL_NAME_SLOTS 6
#define SQL_DRIVER_CAP (SQL_NAME_SLOTS * 8)
#define SQL_NO_DRIVER 0xff

/* Go's itab (runtime.itab / internal/abi.ITab): inter, _type, then the type's hash. */
#define SQL_ITAB_HASH 16

/* One statement in flight on a goroutine: the site event as it will be handed over (header, the
 * driver's package, the query text), and what tells a restart of the probed function (after it
 * grew its stack, the entry probe fires again) from a new call. */
struct sql_call {
	u64 tag;
	struct site_event h;
	u8 data[64 + SQL_TEXT_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, struct sql_call);
	__uint(max_entries, 2048);
} sql_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct sql_call);
	__uint(max_entries, 1);
} sql_scratch SEC(".maps");

/* The driver each *DB's connections were seen to have, for its prepared statements (a *Stmt
 * reaches its connection only inside the call). */
struct sql_db_key {
	u32 proc;
	u32 _pad;
	u64 db;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sql_db_key);
	__type(value, u32);
	__uint(max_entries, 4096);
} sql_db_driver SEC(".maps");

static __always_inline int sql_key(struct pt_regs *ctx, struct lib_cfg *c, struct g_key *k)
{
	k->proc = (u32)bpf_get_attach_cookie(ctx);
	k->_pad = 0;
	k->g = ctx->r14;
	k->goid = read_u64(k->g + c->v[SQL_G_GOID]);
	return k->goid ? 0 : -1;
}

static __always_inline u32 sql_default_driver(struct lib_cfg *c)
{
	return c->v[SQL_DEFAULT] < SQL_DRIVERS_MAX ? (u32)c->v[SQL_DEFAULT] : SQL_NO_DRIVER;
}

/* The driver of a *driverConn: its driver.Conn's itab carries the concrete type's hash, the same
 * in the file and in memory (PIE or not), which the plan listed for each driver type it found. */
static __always_inline u32 sql_driver_of_dc(struct lib_cfg *c, u64 dc)
{
	u64 itab = read_u64(dc + c->v[SQL_DC_CI]);
	u32 hash = 0;
	if (itab && !bpf_probe_read_user(&hash, sizeof(hash), (void *)(itab + SQL_ITAB_HASH))) {
		u64 n = c->v[SQL_NDRIVERS];
#pragma unroll
		for (int i = 0; i < SQL_DRIVERS_MAX; i++) {
			if (i < n && (u32)c->v[SQL_HASH0 + i] == hash)
				return i;
		}
	}
	return sql_default_driver(c);
}

/* A lib_cfg index the verifier sees bounded (clang drops range checks it proves redundant). */
static __always_inline u64 sql_slot(u64 i)
{
	asm volatile("%0 &= 63" : "+r"(i));
	return i;
}

static __always_inline u64 sql_be_id(const u8 *b)
{
	u64 v;
	__builtin_memcpy(&v, b, 8);
	return __builtin_bswap64(v);
}

/* Starts the goroutine's in-flight statement: ids (parent: the goroutine's span, e.g. the HTTP
 * request it serves), the driver's package, the query text. */
static __always_inline int sql_begin(struct lib_cfg *c, struct g_key *key, u64 tag, u32 driver,
				     u64 qptr, u64 qlen)
{
	struct sql_call *prev = bpf_map_lookup_elem(&sql_calls, key);
	if (prev && prev->tag == tag)
		return 0;
	u32 zero = 0;
	struct sql_call *s = bpf_map_lookup_elem(&sql_scratch, &zero);
	if (!s)
		return 0;
	__builtin_memset(&s->h, 0, sizeof(s->h));
	s->tag = tag;
	s->h.kind = EV_SITE_SQL;
	s->h.proc = key->proc;
	s->h.start = bpf_ktime_get_ns();
	s->h.rflags = 1 | REC_MONO;

	struct span_ctx *parent = bpf_map_lookup_elem(&goctx, key);
	if (parent) {
		/* Inherited from a handler whose request is over: not a parent any more. */
		u64 psid;
		__builtin_memcpy(&psid, parent->span_id, 8);
		if (bpf_map_lookup_elem(&ended, &psid)) {
			bpf_map_delete_elem(&goctx, key);
			parent = 0;
		}
	}
	if (parent) {
		s->h.trace_hi = sql_be_id(parent->trace_id);
		s->h.trace_lo = sql_be_id(parent->trace_id + 8);
		s->h.parent = sql_be_id(parent->span_id);
	} else {
		s->h.trace_hi = ((u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
		s->h.trace_lo = ((u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32() | 1;
	}
	s->h.span = ((u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32() | 1;

	u64 dlen = 0;
	if (driver < SQL_DRIVERS_MAX) {
		dlen = c->v[sql_slot(SQL_LEN0 + driver)];
		if (dlen > SQL_DRIVER_CAP)
			dlen = SQL_DRIVER_CAP;
#pragma unroll
		for (int j = 0; j < SQL_NAME_SLOTS; j++)
			((u64 *)s->data)[j] = c->v[sql_slot(SQL_NAME0 + driver * SQL_NAME_SLOTS + j)];
	}
	s->h.slen[0] = dlen;
	u64 n = qlen;
	if (n > SQL_TEXT_CAP) {
		n = SQL_TEXT_CAP;
		s->h.rflags |= REC_SQL_CUT;
		count(CNT_SQL_TRUNCATED);
	}
	u64 o = dlen;
	/* The verifier needs the bounds on the very registers used for the access. */
	asm volatile("%0 &= 63" : "+r"(o));
	if (n == 0 || bpf_probe_read_user(&s->data[o], n, (void *)qptr))
		n = 0;
	s->h.slen[1] = n;
	bpf_map_update_elem(&sql_calls, key, s, BPF_ANY);
	return 0;
}

/* (*DB).queryDC, execDC, prepareDC: the driver from the conn, remembered for the DB's Stmts. */
static __always_inline int sql_dc_entry(struct pt_regs *ctx, u64 db, u64 dc, u64 qptr, u64 qlen)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	struct g_key key;
	if (!c || sql_key(ctx, c, &key))
		return 0;
	u32 driver = sql_driver_of_dc(c, dc);
	if (driver < SQL_DRIVERS_MAX && db) {
		struct sql_db_key dk = {.proc = key.proc, .db = db};
		u32 *known = bpf_map_lookup_elem(&sql_db_driver, &dk);
		if (!known || *known != driver)
			bpf_map_update_elem(&sql_db_driver, &dk, &driver, BPF_ANY);
	}
	return sql_begin(c, &key, qptr, driver, qptr, qlen);
}

/* func (db *DB) queryDC(ctx, txctx context.Context, dc *driverConn, releaseConn func(error),
 * query string, args []any) (*Rows, error): RAX=db, R8=dc, R10/R11=query. */
SEC("uprobe")
int sql_query_entry(struct pt_regs *ctx)
{
	return sql_dc_entry(ctx, ctx->rax, ctx->r8, ctx->r10, ctx->r11);
}

/* func (db *DB) execDC(ctx context.Context, dc *driverConn, release func(error), query string,
 * args []any) (res Result, err error): RAX=db, RDI=dc, R8/R9=query. */
SEC("uprobe")
int sql_exec_entry(struct pt_regs *ctx)
{
	return sql_dc_entry(ctx, ctx->rax, ctx->rdi, ctx->r8, ctx->r9);
}

/* func (db *DB) prepareDC(ctx context.Context, dc *driverConn, release func(error),
 * cg stmtConnGrabber, query string) (*Stmt, error): RAX=db, RDI=dc, R10/R11=query. */
SEC("uprobe")
int sql_prepare_entry(struct pt_regs *ctx)
{
	return sql_dc_entry(ctx, ctx->rax, ctx->rdi, ctx->r10, ctx->r11);
}

/* func (s *Stmt) QueryContext / ExecContext(ctx context.Context, args ...any): RAX=s. The text is
 * the prepared one; the driver, the one its DB's prepare saw. */
SEC("uprobe")
int sql_stmt_entry(struct pt_regs *ctx)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	struct g_key key;
	if (!c || sql_key(ctx, c, &key))
		return 0;
	u64 s = ctx->rax;
	struct {
		u64 ptr;
		u64 len;
	} q = {};
	if (!s || bpf_probe_read_user(&q, sizeof(q), (void *)(s + c->v[SQL_STMT_QUERY])))
		return 0;
	struct sql_db_key dk = {.proc = key.proc, .db = read_u64(s + c->v[SQL_STMT_DB])};
	u32 *known = bpf_map_lookup_elem(&sql_db_driver, &dk);
	u32 driver = known ? *known : sql_default_driver(c);
	return sql_begin(c, &key, s, driver, q.ptr, q.len);
}

/* The call returned (the first branch, call or return after it in each caller; the plan checked
 * that the error's itab register is untouched until there): the span is complete. */
static __always_inline int sql_end(struct pt_regs *ctx, u64 err_itab)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	struct g_key key;
	if (!c || sql_key(ctx, c, &key))
		return 0;
	struct sql_call *call = bpf_map_lookup_elem(&sql_calls, &key);
	if (!call) {
		count(CNT_RET_NO_ENTRY);
		return 0;
	}
	call->h.duration_ns = bpf_ktime_get_ns() - call->h.start;
	call->h.status = err_itab ? 1 : 0;
	u64 l0 = call->h.slen[0] & 63;
	u64 l1 = call->h.slen[1];
	if (l1 > SQL_TEXT_CAP)
		l1 = SQL_TEXT_CAP;
	u64 n = sizeof(call->h) + l0 + l1;
	if (bpf_ringbuf_output(&events, &call->h, n, wake_flag(n)))
		count(CNT_RINGBUF_DROPS);
	bpf_map_delete_elem(&sql_calls, &key);
	return 0;
}

/* One exit program per register the error's itab can be in at the exit site (the plan follows
 * it through the callers' register moves). */
#define SQL_EXIT(reg)                                                                  \
	SEC("uprobe")                                                                  \
	int sql_exit_##reg(struct pt_regs *ctx)                                        \
	{                                                                              \
		return sql_end(ctx, ctx->reg);                                         \
	}
SQL_EXIT(rax)
SQL_EXIT(rbx)
SQL_EXIT(rcx)
SQL_EXIT(rdx)
SQL_EXIT(rdi)
SQL_EXIT(rsi)
SQL_EXIT(r8)
SQL_EXIT(r9)
SQL_EXIT(r10)
SQL_EXIT(r11)
