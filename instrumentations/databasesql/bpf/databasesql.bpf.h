/* database/sql function probes for `gotap run` / `gotap attach` (instrumentations/databasesql:
 * README.md there; the plan is ebpf.rs). Included at the end of crates/gotap-ebpf/bpf/gotap.bpf.c.
 *
 * One span per statement database/sql hands to the driver: (*DB).queryDC, execDC and prepareDC
 * (which serve DB, Tx and Conn) and (*Stmt).QueryContext / ExecContext. An entry probe copies the
 * driver's package and the query text into the goroutine's in-flight call; an exit probe (just
 * after the call returns, in its callers) adds the duration, the status and what the error says of
 * itself (its Go type's name, a driver's SQLSTATE, the text of a few standard errors) and hands the
 * call over as an EV_SQL_FP record: the DSN the statement's DB was opened with (raw, parsed in user
 * space by ebpf.rs as gotap build's gotap_dsn.go parses it) and an EV_SITE_SQL site event, which
 * the reader decodes like a `gotap build --probes` site's once the DSN's server is in its slots.
 *
 * The DSN: sql.Open's, recorded by probes on Open and OpenDB (under the connector OpenDB is
 * given, which the DB keeps), or, for a DB opened before gotap attached, read from the DB's
 * connector when it is sql.Open's own dsnConnector (drivers without OpenConnector). */
#pragma once

/* lib_cfg slots (ebpf.rs `slot`). */
#define SQL_G_GOID 0
#define SQL_DC_CI 1        /* database/sql.driverConn.ci */
#define SQL_STMT_QUERY 2   /* database/sql.Stmt.query */
#define SQL_STMT_DB 3      /* database/sql.Stmt.db */
#define SQL_NDRIVERS 4     /* drivers named by itab hash below */
#define SQL_DEFAULT 5      /* the driver of a conn whose type is not listed, or >= SQL_DRIVERS_MAX */
#define SQL_DB_CONNECTOR 6 /* database/sql.DB.connector (a driver.Connector) */
#define SQL_DSN 7          /* database/sql.dsnConnector.dsn */
/* Virtual addresses in the file (SQL_NONE32 unknown); a PIE's load bias is the address an entry
 * probe fires at minus its own. */
#define SQL_ENTRY_QE 56    /* queryDC's entry probe (bits 0-31), execDC's (32-63) */
#define SQL_ENTRY_PD 57    /* prepareDC's entry probe (0-31); (*dsnConnector).Connect (32-63), its itab's fun[0] */
#define SQL_MD_TYPES 58    /* runtime.firstmoduledata.types: where type names are (OFF_ABSENT unknown) */
#define SQL_TYPE_OFFS 59   /* runtime type: Str (0-15), TFlag (16-31); lib/pq Error.Code (32-47), pgconn PgError.Code (48-63) */
#define SQL_ERR_PG 60      /* Error methods (itab fun[0]) of *pq.Error (0-31) and *pgconn.PgError (32-63) */
#define SQL_ERR_TEXT 61    /* of *errors.errorString (0-31) and *fmt.wrapError (32-63) */
#define SQL_ERR_MISC 62    /* of context.deadlineExceededError (0-31); errorString.s (32-47), wrapError.msg (48-63) */
#define SQL_NONE32 0xffffffffULL
#define SQL_NONE16 0xffffULL
#define SQL_NO_BIAS (~0ULL)
#define SQL_HASH0 8        /* SQL_DRIVERS_MAX driver.Conn implementations: type hash (0-31), Begin's file address (32-63) */
#define SQL_LEN0 14        /* their package names' lengths */
#define SQL_NAME0 20       /* their package names, SQL_NAME_SLOTS u64s each */
#define SQL_DRIVERS_MAX 6
#define SQL_NAME_SLOTS 6
#define SQL_DRIVER_CAP (SQL_NAME_SLOTS * 8)
#define SQL_NO_DRIVER 0xff

/* Go's itab (runtime.itab / internal/abi.ITab), as the compiler lays it out: inter, _type, the
 * type's hash, then the methods (fun[0]: the interface's first method, sorted by name). */
#define SQL_ITAB_TYPE 8
#define SQL_ITAB_HASH 16
#define SQL_ITAB_FUN 24
/* runtime type flag: the name has a '*' that is not the type's (tflagExtraStar). */
#define SQL_TFLAG_EXTRA_STAR 2

/* The record handed to the reader (layout/records.json `sql_fp_head`): this head, SQL_DSN_CAP
 * bytes of which dsn_len are the DSN (dsn_full: its length before the cut), then a site event. */
#define EV_SQL_FP 9
#define SQL_DSN_CAP 512
struct sql_fp_head {
	u8 kind;
	u8 _pad;
	u16 dsn_len;
	u32 dsn_full;
};

struct sql_dsn_val {
	u32 len;
	u32 full;
	u8 b[SQL_DSN_CAP];
};
/* What follows the query text: the error's text, type and SQLSTATE (caps of EV_SITE_SQL's slots). */
#define SQL_ERRS_ROOM 1024
#define SQL_ERRS_AT_MOST (64 + TEXT_CAP + 512)

/* One statement in flight on a goroutine: the site event as it will be handed over (header, the
 * driver's package, the query text), and what tells a restart of the probed function (after it
 * grew its stack, the entry probe fires again) from a new call. */
struct sql_call {
	u64 tag;
	u64 bias; /* the process's load bias, SQL_NO_BIAS unknown */
	/* The query text when the entry could not read it (a string literal on a read-only page the
	 * program has not touched yet: BPF cannot fault it in), read again at the exit, once the
	 * driver has read it; qlen 0 when the entry read it. */
	u64 qptr;
	u64 qlen;
	struct sql_fp_head fp;
	u8 dsn[SQL_DSN_CAP];
	struct site_event h;
	u8 data[64 + TEXT_CAP + SQL_ERRS_ROOM];
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

/* The DSN of each connector (its data word) a DB was opened with: (process, connector). An entry
 * of length 0 says the connector is not a dsnConnector and sql.Open's probes did not see it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sql_db_key);
	__type(value, struct sql_dsn_val);
	__uint(max_entries, 1024);
} sql_dsn SEC(".maps");

/* sql.Open's DSN on its goroutine, until Open calls OpenDB with the connector. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct g_key);
	__type(value, struct sql_dsn_val);
	__uint(max_entries, 256);
} sql_open SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, u32);
	__type(value, struct sql_dsn_val);
	__uint(max_entries, 1);
} sql_dsn_scratch SEC(".maps");

/* Each process's load bias, learnt at the entry probes of queryDC, execDC and prepareDC. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 1024);
} sql_bias SEC(".maps");

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

/* The driver of a *driverConn, from its driver.Conn's itab: the concrete type's hash (the same in
 * the file and in memory, PIE or not), or its first method's address less the load bias (the
 * file address of the type's Begin), whichever the plan found for each driver type (slot halves,
 * SQL_NONE32 / 0 unknown). */
static __always_inline u32 sql_driver_of_dc(struct lib_cfg *c, u64 dc, u64 bias)
{
	u64 itab = read_u64(dc + c->v[SQL_DC_CI]);
	if (!itab)
		return sql_default_driver(c);
	u32 hash = 0;
	bpf_probe_read_user(&hash, sizeof(hash), (void *)(itab + SQL_ITAB_HASH));
	u64 begin = SQL_NONE32;
	if (bias != SQL_NO_BIAS)
		begin = read_u64(itab + SQL_ITAB_FUN) - bias;
	u64 n = c->v[SQL_NDRIVERS];
#pragma unroll
	for (int i = 0; i < SQL_DRIVERS_MAX; i++) {
		u64 v = c->v[SQL_HASH0 + i];
		if (i >= n)
			break;
		if (hash && (u32)v == hash)
			return i;
		if ((v >> 32) != SQL_NONE32 && begin == (v >> 32))
			return i;
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

/* The DSN of a dsnConnector (sql.Open's connector for a driver without OpenConnector), checked by
 * its itab's first method, into the map under k; 0 if it is not one (remembered as such). */
static __always_inline struct sql_dsn_val *sql_dsn_read(struct lib_cfg *c, struct sql_db_key *k,
							 u64 itab, u64 bias)
{
	u64 want = c->v[SQL_ENTRY_PD] >> 32;
	if (bias == SQL_NO_BIAS || want == SQL_NONE32 || c->v[SQL_DSN] == OFF_ABSENT || !itab)
		return 0;
	u32 zero = 0;
	struct sql_dsn_val *v = bpf_map_lookup_elem(&sql_dsn_scratch, &zero);
	if (!v)
		return 0;
	v->len = 0;
	v->full = 0;
	if (read_u64(itab + SQL_ITAB_FUN) - bias == want) {
		struct {
			u64 ptr;
			u64 len;
		} d = {};
		if (bpf_probe_read_user(&d, sizeof(d), (void *)(k->db + c->v[SQL_DSN])))
			return 0;
		u64 n = d.len > SQL_DSN_CAP ? SQL_DSN_CAP : d.len;
		if (n && bpf_probe_read_user(v->b, n, (void *)d.ptr))
			return 0;
		v->len = n;
		v->full = d.len > 0xffffffff ? 0xffffffff : d.len;
	}
	bpf_map_update_elem(&sql_dsn, k, v, BPF_ANY);
	return v->len ? bpf_map_lookup_elem(&sql_dsn, k) : 0;
}

/* Copies the DSN of db's connector into the call (none: dsn_len 0). */
static __always_inline void sql_dsn_of(struct lib_cfg *c, struct sql_call *s, u32 proc, u64 db)
{
	s->fp.kind = EV_SQL_FP;
	s->fp._pad = 0;
	s->fp.dsn_len = 0;
	s->fp.dsn_full = 0;
	struct {
		u64 itab;
		u64 data;
	} conn = {};
	if (!db || bpf_probe_read_user(&conn, sizeof(conn), (void *)(db + c->v[SQL_DB_CONNECTOR])) ||
	    !conn.data)
		return;
	struct sql_db_key k = {.proc = proc, .db = conn.data};
	struct sql_dsn_val *v = bpf_map_lookup_elem(&sql_dsn, &k);
	if (!v)
		v = sql_dsn_read(c, &k, conn.itab, s->bias);
	if (!v || !v->len)
		return;
	bpf_probe_read_kernel(s->dsn, SQL_DSN_CAP, v->b);
	s->fp.dsn_len = v->len > SQL_DSN_CAP ? SQL_DSN_CAP : v->len;
	s->fp.dsn_full = v->full;
}

/* Starts the goroutine's in-flight statement: ids (parent: the goroutine's span, e.g. the HTTP
 * request it serves), the driver's package, the query text, the DB's DSN. */
static __always_inline int sql_begin(struct lib_cfg *c, struct g_key *key, u64 tag, u32 driver,
				     u64 qptr, u64 qlen, u64 db, u64 bias)
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
	s->bias = bias;
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
	if (n > TEXT_CAP) {
		n = TEXT_CAP;
		s->h.rflags |= REC_TEXT_CUT;
		count(CNT_TEXT_TRUNCATED);
	}
	u64 o = dlen;
	/* The verifier needs the bounds on the very registers used for the access. */
	asm volatile("%0 &= 63" : "+r"(o));
	s->qptr = qptr;
	s->qlen = 0;
	if (n == 0 || bpf_probe_read_user(&s->data[o], n, (void *)qptr)) {
		s->qlen = n;
		n = 0;
	}
	s->h.slen[1] = n;
	sql_dsn_of(c, s, key->proc, db);
	bpf_map_update_elem(&sql_calls, key, s, BPF_ANY);
	return 0;
}

/* The process's load bias from an entry probe at file address `vaddr` (its low 32 bits known). */
static __always_inline u64 sql_learn_bias(struct pt_regs *ctx, u32 proc, u64 vaddr)
{
	if (vaddr == SQL_NONE32)
		return SQL_NO_BIAS;
	u64 bias = ctx->rip - vaddr;
	u64 *known = bpf_map_lookup_elem(&sql_bias, &proc);
	if (!known || *known != bias)
		bpf_map_update_elem(&sql_bias, &proc, &bias, BPF_ANY);
	return bias;
}

/* (*DB).queryDC, execDC, prepareDC: the driver from the conn, remembered for the DB's Stmts. The
 * caller got c (get_lib_cfg counts the probe hit: once per program run). */
static __always_inline int sql_dc_entry(struct pt_regs *ctx, struct lib_cfg *c, u64 db, u64 dc,
					u64 qptr, u64 qlen, u64 vaddr)
{
	struct g_key key;
	if (sql_key(ctx, c, &key))
		return 0;
	u64 bias = sql_learn_bias(ctx, key.proc, vaddr);
	u32 driver = sql_driver_of_dc(c, dc, bias);
	if (driver < SQL_DRIVERS_MAX && db) {
		struct sql_db_key dk = {.proc = key.proc, .db = db};
		u32 *known = bpf_map_lookup_elem(&sql_db_driver, &dk);
		if (!known || *known != driver)
			bpf_map_update_elem(&sql_db_driver, &dk, &driver, BPF_ANY);
	}
	return sql_begin(c, &key, qptr, driver, qptr, qlen, db, bias);
}

/* func (db *DB) queryDC(ctx, txctx context.Context, dc *driverConn, releaseConn func(error),
 * query string, args []any) (*Rows, error): RAX=db, R8=dc, R10/R11=query. */
SEC("uprobe")
int sql_query_entry(struct pt_regs *ctx)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	if (!c)
		return 0;
	return sql_dc_entry(ctx, c, ctx->rax, ctx->r8, ctx->r10, ctx->r11, c->v[SQL_ENTRY_QE] & SQL_NONE32);
}

/* func (db *DB) execDC(ctx context.Context, dc *driverConn, release func(error), query string,
 * args []any) (res Result, err error): RAX=db, RDI=dc, R8/R9=query. */
SEC("uprobe")
int sql_exec_entry(struct pt_regs *ctx)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	if (!c)
		return 0;
	return sql_dc_entry(ctx, c, ctx->rax, ctx->rdi, ctx->r8, ctx->r9, c->v[SQL_ENTRY_QE] >> 32);
}

/* func (db *DB) prepareDC(ctx context.Context, dc *driverConn, release func(error),
 * cg stmtConnGrabber, query string) (*Stmt, error): RAX=db, RDI=dc, R10/R11=query. */
SEC("uprobe")
int sql_prepare_entry(struct pt_regs *ctx)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	if (!c)
		return 0;
	return sql_dc_entry(ctx, c, ctx->rax, ctx->rdi, ctx->r10, ctx->r11, c->v[SQL_ENTRY_PD] & SQL_NONE32);
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
	u64 *bias = bpf_map_lookup_elem(&sql_bias, &key.proc);
	return sql_begin(c, &key, s, driver, q.ptr, q.len, dk.db, bias ? *bias : SQL_NO_BIAS);
}

/* func Open(driverName, dataSourceName string) (*DB, error): RCX/RDI=dataSourceName, kept on the
 * goroutine until Open hands its connector to OpenDB. */
SEC("uprobe")
int sql_open_entry(struct pt_regs *ctx)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	struct g_key key;
	if (!c || sql_key(ctx, c, &key))
		return 0;
	u32 zero = 0;
	struct sql_dsn_val *v = bpf_map_lookup_elem(&sql_dsn_scratch, &zero);
	if (!v)
		return 0;
	u64 len = ctx->rdi;
	u64 n = len > SQL_DSN_CAP ? SQL_DSN_CAP : len;
	if (n && bpf_probe_read_user(v->b, n, (void *)ctx->rcx))
		return 0;
	v->len = n;
	v->full = len > 0xffffffff ? 0xffffffff : len;
	bpf_map_update_elem(&sql_open, &key, v, BPF_ANY);
	return 0;
}

/* func OpenDB(c driver.Connector) *DB: RAX/RBX=c. Called by Open (the goroutine has its DSN) or by
 * the application with a connector of its own (no DSN). */
SEC("uprobe")
int sql_opendb_entry(struct pt_regs *ctx)
{
	struct lib_cfg *c = get_lib_cfg(ctx, LIB_DATABASESQL);
	struct g_key key;
	if (!c || sql_key(ctx, c, &key))
		return 0;
	struct sql_dsn_val *v = bpf_map_lookup_elem(&sql_open, &key);
	if (!v)
		return 0;
	struct sql_db_key k = {.proc = key.proc, .db = ctx->rbx};
	if (k.db && v->len)
		bpf_map_update_elem(&sql_dsn, &k, v, BPF_ANY);
	bpf_map_delete_elem(&sql_open, &key);
	return 0;
}

/* Appends string slot i (at most cap bytes of user memory) at o, which follows the query text. */
static __always_inline u64 sql_put(struct sql_call *s, u64 o, int i, u64 ptr, u64 len, u64 cap)
{
	s->h.slen[i] = 0;
	u64 n = len > cap ? cap : len;
	if (!n || !ptr)
		return o;
	asm volatile("%0 &= 8191" : "+r"(o));
	if (o > SQL_ERRS_AT_MOST)
		return o;
	if (bpf_probe_read_user(&s->data[o], n, (void *)ptr))
		return o;
	s->h.slen[i] = n;
	return o + n;
}

/* A Go string (pointer, length) at addr. */
static __always_inline void sql_go_str(u64 addr, u64 *ptr, u64 *len)
{
	struct {
		u64 ptr;
		u64 len;
	} v = {};
	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	*ptr = v.ptr;
	*len = v.len;
}

/* The failed call's error (itab, and its data word when the exit site has it), as gotap build's
 * sqlErrorType sees it: slot 2 its text when that is a field or a constant of a standard error
 * (errors.New, fmt.Errorf with %w, context.DeadlineExceeded: "context canceled" and "context
 * deadline exceeded" are told by it), slot 3 its dynamic type's name (%T), slot 4 the SQLSTATE of
 * lib/pq's and pgconn's errors. Returns the bytes written at o. */
static __always_inline u64 sql_err(struct lib_cfg *c, struct sql_call *s, u64 itab, u64 data, u64 o)
{
	u64 bias = s->bias;
	if (bias == SQL_NO_BIAS)
		return 0;
	u64 start = o;
	u64 fun = read_u64(itab + SQL_ITAB_FUN) - bias;
	u64 offs = c->v[SQL_TYPE_OFFS];
	u64 txt = c->v[SQL_ERR_TEXT], misc = c->v[SQL_ERR_MISC], pg = c->v[SQL_ERR_PG];

	/* slot 2: the text */
	u64 field = SQL_NONE16;
	if (fun == (txt & SQL_NONE32) && fun != SQL_NONE32)
		field = (misc >> 32) & SQL_NONE16;
	else if (fun == (txt >> 32) && fun != SQL_NONE32)
		field = misc >> 48;
	s->h.slen[2] = 0;
	if (field != SQL_NONE16 && data) {
		u64 p = 0, n = 0;
		sql_go_str(data + field, &p, &n);
		o = sql_put(s, o, 2, p, n, ERROR_CAP);
	} else if (fun == (misc & SQL_NONE32) && fun != SQL_NONE32) {
		u64 q = o;
		asm volatile("%0 &= 8191" : "+r"(q));
		if (q <= SQL_ERRS_AT_MOST) {
			__builtin_memcpy(&s->data[q], "context deadline exceeded", 25);
			s->h.slen[2] = 25;
			o += 25;
		}
	}

	/* slot 3: %T, the name of the type the itab is for */
	s->h.slen[3] = 0;
	u64 typ = read_u64(itab + SQL_ITAB_TYPE);
	u64 str_off = offs & SQL_NONE16, tflag_off = (offs >> 16) & SQL_NONE16;
	if (typ && c->v[SQL_MD_TYPES] != OFF_ABSENT && str_off != SQL_NONE16 && tflag_off != SQL_NONE16) {
		u64 types = read_u64(c->v[SQL_MD_TYPES] + bias);
		s32 nameoff = 0;
		u8 tflag = 0;
		u8 hdr[3] = {};
		if (types && !bpf_probe_read_user(&nameoff, sizeof(nameoff), (void *)(typ + str_off)) &&
		    !bpf_probe_read_user(&tflag, sizeof(tflag), (void *)(typ + tflag_off)) &&
		    nameoff > 0) {
			/* runtime.name: a flags byte, the length as a uvarint, the bytes */
			u64 name = types + (u64)nameoff;
			if (!bpf_probe_read_user(hdr, sizeof(hdr), (void *)name)) {
				u64 n, p;
				if (hdr[1] < 0x80) {
					n = hdr[1];
					p = name + 2;
				} else {
					n = (hdr[1] & 0x7f) | ((u64)(hdr[2] & 0x7f) << 7);
					p = name + 3;
				}
				if ((tflag & SQL_TFLAG_EXTRA_STAR) && n > 0) {
					p++;
					n--;
				}
				o = sql_put(s, o, 3, p, n, QUERY_CAP);
			}
		}
	}

	/* slot 4: SQLSTATE */
	u64 code = SQL_NONE16;
	if (fun == (pg & SQL_NONE32) && fun != SQL_NONE32)
		code = (offs >> 32) & SQL_NONE16;
	else if (fun == (pg >> 32) && fun != SQL_NONE32)
		code = offs >> 48;
	s->h.slen[4] = 0;
	if (code != SQL_NONE16 && data) {
		u64 p = 0, n = 0;
		sql_go_str(data + code, &p, &n);
		o = sql_put(s, o, 4, p, n, PROTO_CAP);
	}
	return o - start;
}

/* The call returned (the first branch, call or return after it in each caller; the plan checked
 * that the error's itab register, and its data register where given, are untouched until there):
 * the span is complete. */
static __always_inline int sql_end(struct pt_regs *ctx, u64 err_itab, u64 err_data)
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
	if (l1 > TEXT_CAP)
		l1 = TEXT_CAP;
	if (l1 == 0 && call->qlen) {
		u64 q = call->qlen;
		if (q > TEXT_CAP)
			q = TEXT_CAP;
		u64 o = l0;
		asm volatile("%0 &= 63" : "+r"(o));
		if (q && !bpf_probe_read_user(&call->data[o], q, (void *)call->qptr)) {
			call->h.slen[1] = q;
			l1 = q;
		}
	}
	u64 e = 0;
	if (err_itab)
		e = sql_err(c, call, err_itab, err_data, l0 + l1);
	else
		call->h.slen[2] = call->h.slen[3] = call->h.slen[4] = 0;
	call->h.slen[5] = call->h.slen[6] = call->h.slen[7] = 0;
	if (e > 512)
		e = 512;
	u64 n = sizeof(call->fp) + SQL_DSN_CAP + sizeof(call->h) + l0 + l1 + e;
	if (bpf_ringbuf_output(&events, &call->fp, n, wake_flag(n)))
		count(CNT_RINGBUF_DROPS);
	bpf_map_delete_elem(&sql_calls, &key);
	return 0;
}

/* One exit program per register the error's itab can be in at the exit site (the plan follows
 * it through the callers' register moves), and one per pair of consecutive argument registers
 * (Go's register ABI) when its data word is still next to it. */
#define SQL_EXIT(reg)                                                                  \
	SEC("uprobe")                                                                  \
	int sql_exit_##reg(struct pt_regs *ctx)                                        \
	{                                                                              \
		return sql_end(ctx, ctx->reg, 0);                                      \
	}
#define SQL_EXIT2(reg, dreg)                                                           \
	SEC("uprobe")                                                                  \
	int sql_exit_##reg##_##dreg(struct pt_regs *ctx)                               \
	{                                                                              \
		return sql_end(ctx, ctx->reg, ctx->dreg);                              \
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
SQL_EXIT2(rax, rbx)
SQL_EXIT2(rbx, rcx)
SQL_EXIT2(rcx, rdi)
SQL_EXIT2(rdi, rsi)
SQL_EXIT2(rsi, r8)
SQL_EXIT2(r8, r9)
SQL_EXIT2(r9, r10)
SQL_EXIT2(r10, r11)

/* The string slots of this library's site kind for a site read through its arguments and record
 * (gotap.bpf.c's site_event_scratch, via the site_strings build.rs generates): the data length
 * after off, or -1 for another library's kind. The query text is cut at TEXT_CAP (counted). */
static __always_inline int databasesql_site_strings(u32 kind, struct site_scratch *s, const struct site_args *a,
						    const struct site_record *r, u32 off)
{
	if (kind == EV_SITE_SQL) {
		off = site_put(s, off, 0, a->method_ptr, a->method_len, HOST_CAP);
		off = site_put(s, off, 1, a->path_ptr, a->path_len, TEXT_CAP);
		if (a->path_len > TEXT_CAP)
			count(CNT_TEXT_TRUNCATED);
		off = site_put(s, off, 2, a->text_ptr, a->text_len, ERROR_CAP);
		off = site_put(s, off, 3, r->host.ptr, r->host.len, QUERY_CAP);
		off = site_put(s, off, 4, r->remote.ptr, r->remote.len, PROTO_CAP);
		off = site_put(s, off, 5, r->ua.ptr, r->ua.len, UA_CAP);
		off = site_put(s, off, 6, r->proto.ptr, r->proto.len, PROTO_CAP);
		off = site_put(s, off, 7, r->query.ptr, r->query.len, PATTERN_CAP);
		return off;
	}
	return -1;
}

/* A packed site of this library's kind whose query text (argument slot path) was longer than
 * TEXT_CAP: the woven code cut it there (gotap.bpf.c's site_event_scratch counts it, via the
 * site_text_cut build.rs generates). */
static __always_inline int databasesql_site_text_cut(u32 kind, const struct site_args *a)
{
	return kind == EV_SITE_SQL && a->path_len > TEXT_CAP;
}

/* Probe sites of `gotap build --probes` (../sites.rs names this program): site_hit of
 * gotap.bpf.c reads the site event; its kind tells the reader which decoder builds the span.
 *
 * database/sql.gotapProbeSQLQuery (USDT gotap:sql_query). */
SEC("uprobe")
int site_sql_query(struct pt_regs *ctx)
{
	return site_hit(ctx, EV_SITE_SQL);
}
