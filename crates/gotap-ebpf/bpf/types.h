/* Structures shared between the BPF programs and user space (src/abi.rs mirrors them with
 * #[repr(C)] and size asserts). Keep every field naturally aligned. */
#pragma once
#include <linux/types.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;
typedef __s32 s32;

/* Offset value meaning "this field does not exist in this Go version". */
#define OFF_ABSENT ((u64)-1)

/* cfg.flags */
#define CFG_GOROUTINES (1u << 1)     /* runtime.m.curg is known: propagate context on `go` */

/* Per traced process configuration: what every library's programs need, the runtime's offsets
 * for that binary's Go version (a library's own offsets are in its struct lib_cfg). Keyed by the
 * uprobe attach cookie (one id per traced process), so one loaded object serves many processes
 * whatever their pid namespace. */
struct proc_cfg {
	u64 g_goid;
	u64 g_m;
	u64 m_curg;
	u32 flags;
	u32 proc;           /* the id user space gave this process (== cookie) */
};

/* Function-probe plans of the libraries in instrumentations/ (docs/architecture.md): each
 * library's plan fills LIB_CFG_SLOTS u64s for a process (struct offsets, flags: the library's
 * own numbering), stored under (process id, library id; LIB_<NAME> in libs.bpf.h). */
#define LIB_CFG_SLOTS 64
struct lib_key {
	u32 proc;
	u32 lib;
};
struct lib_cfg {
	u64 v[LIB_CFG_SLOTS];
};

/* Key of per-goroutine state: g structs are reused, goids are not. */
struct g_key {
	u32 proc;
	u32 _pad;
	u64 g;
	u64 goid;
};

/* The span context a goroutine currently runs in. */
struct span_ctx {
	u8 trace_id[16];
	u8 span_id[8];
};

/* TCP 4-tuple as the client sees it (src = client). IPv4 is stored IPv4-mapped. */
struct tuple {
	u8 src_ip[16];
	u8 dst_ip[16];
	u16 src_port;
	u16 dst_port;
	u32 _pad;
};

/* Value of the pinned link map: the client span that wrote a request on that connection. */
struct link_val {
	u8 trace_id[16];
	u8 span_id[8];
	u64 written_ns; /* bpf_ktime_get_ns() when the client started writing */
};

/* Record kinds of the events ring: the site events and batches below (3 to 8). Other kinds are
 * a library's own records (its bpf/<name>.bpf.h and the `decode` of its ebpf.rs). */

/* String caps, shared by the probe sites and the function probes that fill the same fields. */
#define METHOD_CAP 16
#define PATH_CAP 256
#define QUERY_CAP 256
#define HOST_CAP 128
#define PROTO_CAP 16
#define REMOTE_CAP 64
#define PATTERN_CAP 128
#define UA_CAP 256

/* Per-CPU counters (array indices). */
#define CNT_RINGBUF_DROPS 0
#define CNT_PROBE_HITS 1
#define CNT_READ_FAILS 2
#define CNT_RET_NO_ENTRY 3      /* a RET/after-call probe found no in-flight entry (evicted, or attached mid-call) */
#define CNT_WINDOW_TRUNCATED 4  /* header block longer than the raw window and a header not found in it */
#define CNT_SQL_TRUNCATED 5     /* a sql_query site's query text was longer than SQL_TEXT_CAP (cut there) */
#define CNT_GOROUTINE_HITS 6   /* hits of the goroutine-start hook (part of CNT_PROBE_HITS) */
#define CNT_MAX 8

/* ---------- probe sites (docs/probes.md, "The contract") ---------- */

#define EV_SITE_SERVER 3
#define EV_SITE_CLIENT 4
/* database/sql and grpc sites: the same event, other string slots (instrumentations/<lib>/decode.rs). */
#define EV_SITE_SQL 5
#define EV_SITE_GRPC_SERVER 6
#define EV_SITE_GRPC_CLIENT 7

/* One probe-site hit = one finished span. The woven code computed everything: ids, Unix start,
 * duration, status; this is the site's arguments and record, strings copied. Variable size: this
 * header, then the strings back to back (slen[i] bytes each, in slot order), so a record is as
 * long as what it carries (~200 bytes for an HTTP span) and long SQL text fits. Slots by kind:
 *   server:      method, path, pattern, host, remote, ua, proto, query
 *   client:      method, url, error text
 *   sql_query:   driver package, query text, error text, error type, SQLSTATE, server.address,
 *                server.port (decimal), db.namespace; status = 1 when failed
 *   grpc_server: full method, peer, status message; status = code
 *   grpc_client: full method, target, status message; status = code */
#define SITE_STRS 8
struct site_event {
	u8 kind;
	u8 _pad0[3];
	u32 proc;
	s64 status;
	s64 duration_ns;
	u64 trace_hi;       /* trace id bytes 0-7, big-endian value */
	u64 trace_lo;
	u64 span;
	u64 parent;         /* 0 = root */
	s64 start;          /* Unix ns */
	u64 rflags;         /* record flags: bit 0 sampled, bit 1 remote parent */
	u16 slen[SITE_STRS];
};

/* Caps per string (bytes copied at most). */
#define URL_CAP 512     /* client: the whole URL (scheme://host/path?query); grpc: full method */
#define ERROR_CAP 256   /* client: the transport error's text; grpc: status message; sql: error */
#define SQL_TEXT_CAP 4096
/* A site record's flag: the record's last string field (query) points at the span's strings,
 * packed (gotapProbePack in each go/probes fragment: u16 lengths of the SITE_STRS slots, then the bytes, each
 * slot capped as below for its kind, PACKED_CAP bytes at most: a sql_query event's caps add up to
 * 5,152). */
#define REC_PACKED 4
/* A site event's flag (the event ABI below): a sql_query's text was cut at SQL_TEXT_CAP. */
#define REC_SQL_CUT 8
/* A site event's flag: `start` is bpf_ktime_get_ns() (a function probe's event in the site
 * format, instrumentations/<lib>/bpf), which the reader turns into Unix time. */
#define REC_MONO 32

/* The site event ABI (docs/probes.md, "The site event"), used by sites built since 2026-12-06:
 * the woven code builds the event itself — struct site_event from status through slen, then the
 * strings — and the site's prologue loads its address into RSI and its length into RDX before
 * the nop5. gotap recognises the prologue and sets this bit in the uprobe's cookie. Sites without
 * it (older builds) are read through their arguments and record. */
#define SITE_COOKIE_EVENT (1ULL << 32)
#define SITE_EVENT_HEAD (sizeof(struct site_event) - __builtin_offsetof(struct site_event, status))
#define PACKED_CAP SITE_DATA
#define SITE_DATA 8192  /* string bytes of one event: the caps of any kind add up to less */
#define SITE_DATA_MASK (SITE_DATA - 1)

/* Batched sites (docs/probes.md, "Batched sites"; go/probes/shared/gotap_batch.go): the woven
 * code of one package appends its spans' events to a buffer and fires the package's batch site
 * once per buffer, whose prologue loads the buffer's address into RSI and its length into RDX.
 * Each event there is a struct site_event with proc 0, then its strings. The BPF program copies
 * the buffer as one record: this head, then the events; the reader fills in proc. */
#define EV_SITE_BATCH 8
#define GOTAP_BATCH_CAP 16384  /* gotapBatchCap: the most one batch hit hands over */
#define EXIT_REFS_MAX 3        /* batch buffers per process: net/http, database/sql, grpc */
struct exit_refs {
	u64 ref[EXIT_REFS_MAX]; /* runtime address of each buffer's reference, 0 = none */
};
struct site_batch_head {
	u8 kind;
	u8 _pad0[3];
	u32 proc;
	u32 len;            /* bytes of events that follow */
	u32 _pad1;
};

/* Per-CPU scratch where a site event is assembled before bpf_ringbuf_output copies the used
 * part. The tail past SITE_DATA lets the verifier accept a copy of up to SQL_TEXT_CAP bytes at
 * any offset below SITE_DATA. */
struct site_scratch {
	struct site_event h;
	u8 data[SITE_DATA + SQL_TEXT_CAP];
};

/* Packed server strings are read straight into the header's lengths and the data after them. */
_Static_assert(__builtin_offsetof(struct site_scratch, data) ==
		       __builtin_offsetof(struct site_scratch, h.slen) + sizeof(((struct site_event *)0)->slen),
	       "site_scratch: data must follow the header's string lengths");
_Static_assert(PACKED_CAP <= SITE_DATA, "packed strings must fit the event data");
_Static_assert(SITE_EVENT_HEAD == 80, "the site event head is 8 u64s and 8 u16 lengths (docs/probes.md)");
