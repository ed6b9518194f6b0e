// Probe site for database/sql, added to the standard library's database/sql package by
// `gotap build --probes` (rule databasesql-probe-sites in instrumentations/databasesql/weave/probes.yaml). Same
// contract as instrumentations/nethttp/probes (docs/probes.md): one site call per span, when it ends, with the
// values the span needs; nothing runs while the semaphore is 0.
//
// Shared with the other fragments through linker symbols rather than imports (database/sql
// cannot import net/http, and a program may link either without the other). Each is a
// zero-valued variable every fragment declares under the same name; the linker merges them:
//   - gotap.probeCtxKey: the address of this byte is the context key under which database/sql and
//     grpc spans put their record, so a db span started in a gRPC handler finds its parent;
//   - gotap.probeHTTPParent: set by net/http (instrumentations/databasesql/probes/nethttp) to find its server
//     span in a context;
//   - gotap.probeGoroutineParent: set by net/http too, the server span of the request the calling
//     goroutine serves (or its creator served): the parent of a statement whose context holds
//     no span (db.Query, a framework's query without WithContext).

package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// gotapProbeSemaphore[0] is the USDT semaphore of this package's sites; the other elements are
// the marker "gotap-sema-sql" that locates it in stripped binaries and makes it initialised
// (file-backed) data, as net/http's (docs/probes.md). Each woven package has its own: a shared
// variable would need a linkname into net/http, which the linker refuses from 1.27 on and which
// a program without net/http could not satisfy.
var gotapProbeSemaphore = [8]uint16{0, 0x6f67, 0x6174, 0x2d70, 0x6573, 0x616d, 0x732d, 0x6c71}

// database/sql's number in the marker of its batch site's semaphore, and its site's event kind
// (go/probes/shared/gotap_batch.go, bpf/types.h).
const (
	gotapBatchPackage = 2
	gotapKindSQL      = 5
)

//go:linkname gotapProbeCtxKey gotap.probeCtxKey
var gotapProbeCtxKey byte

//go:linkname gotapProbeHTTPParent gotap.probeHTTPParent
var gotapProbeHTTPParent func(ctx context.Context) unsafe.Pointer

//go:linkname gotapProbeGoroutineParent gotap.probeGoroutineParent
var gotapProbeGoroutineParent func() unsafe.Pointer

// gotapProbeRecord: the 128-byte record of docs/probes.md. For database/sql, s1 is the error's Go
// type (%T) and s2 the driver's SQLSTATE, when the query failed; s3 server.address (host, no
// port), s4 server.port in decimal and s5 db.namespace, each "" when unknown (from the DSN given
// to sql.Open, parsed once per DB: gotap_dsn.go).
type gotapProbeRecord struct {
	traceHi, traceLo uint64
	span, parent     uint64
	start            int64
	flags            uint64
	s1, s2, s3, s4   string
	s5               string
}

// gotapProbeSQLQuery is called once per query or exec, when it returned: driver is the package
// path of the driver's type (db.system.name), query the text as given (sanitised by the tracer),
// failed 1 when err counts as a failure, errText its message.
//
//go:noescape
func gotapProbeSQLQuery(driver, query string, failed, durationNs int64, errText string, rec *gotapProbeRecord, event string)

// gotapProbeSQLMark marks the context the advice calls the method again with.
type gotapProbeSQLMark struct{}

// gotapProbeParentOf is the innermost gotap span in ctx: a database/sql or grpc one, else the
// net/http server's; when ctx holds none, the server span the goroutine runs in.
func gotapProbeParentOf(ctx context.Context) unsafe.Pointer {
	if p, ok := ctx.Value(&gotapProbeCtxKey).(unsafe.Pointer); ok && p != nil {
		return p
	}
	if f := gotapProbeHTTPParent; f != nil {
		if p := f(ctx); p != nil {
			return p
		}
	}
	if f := gotapProbeGoroutineParent; f != nil {
		return f()
	}
	return nil
}

// gotapProbeSQLBegin starts a client span; a nil record means ctx is the one it returned (the
// advice's own second call: the original body runs).
func gotapProbeSQLBegin(ctx context.Context) (context.Context, *gotapProbeRecord) {
	inner := gotapProbeParentOf(ctx)
	if m, ok := ctx.Value(gotapProbeSQLMark{}).(*gotapProbeRecord); ok && unsafe.Pointer(m) == inner {
		return ctx, nil
	}
	c := &gotapProbeSQLCtx{Context: ctx}
	rec := &c.rec
	rec.start, rec.span, rec.flags = time.Now().UnixNano(), gotapProbeNonZero(), 1
	if inner != nil {
		p := (*gotapProbeRecord)(inner) // only the shared 48-byte head is read
		rec.traceHi, rec.traceLo, rec.parent, rec.flags = p.traceHi, p.traceLo, p.span, p.flags&1
	} else {
		rec.traceHi, rec.traceLo = gotapRand(), gotapProbeNonZero()
	}
	return c, rec
}

// gotapProbeSQLCtx is the query's context: the caller's plus the span's record under both keys
// (gotap.probeCtxKey for children, gotapProbeSQLMark for the advice's second call), in one
// allocation instead of two context.WithValue nodes and a record. Everything else is the parent's.
type gotapProbeSQLCtx struct {
	context.Context
	rec gotapProbeRecord
}

func (c *gotapProbeSQLCtx) Value(key any) any {
	switch k := key.(type) {
	case *byte:
		if k == &gotapProbeCtxKey {
			return unsafe.Pointer(&c.rec)
		}
	case gotapProbeSQLMark:
		return &c.rec
	}
	return c.Context.Value(key)
}

// gotapProbeSQLEnd fires the site for a query on db.
func gotapProbeSQLEnd(rec *gotapProbeRecord, db *DB, query string, err error) {
	dur := time.Now().UnixNano() - rec.start
	drv, failed, errText, event := gotapProbeSQLEvent(rec, db, query, err, dur)
	if gotapBatchSemaphore[0] != 0 {
		gotapBatchAdd(gotapKindSQL, event)
	}
	if gotapProbeSemaphore[0] != 0 {
		gotapProbeSQLQuery(drv, query, failed, dur, errText, rec, event)
	}
}

// gotapProbeSQLEvent fills the record's strings and builds the site's arguments and event. No
// rows and the driver's "take the slow path" are outcomes, not failures (as in SDK mode,
// instrumentations/databasesql/runtime/sql.go).
func gotapProbeSQLEvent(rec *gotapProbeRecord, db *DB, query string, err error, dur int64) (drv string, failed int64, errText, event string) {
	if err != nil && !errors.Is(err, ErrNoRows) && !errors.Is(err, driver.ErrSkip) {
		failed, errText = 1, err.Error()
		rec.s1 = fmt.Sprintf("%T", err)
		var s interface{ SQLState() string }
		if errors.As(err, &s) {
			rec.s2 = s.SQLState()
		}
	}
	srv := gotapServerOf(db)
	rec.s3, rec.s4, rec.s5 = srv.address, srv.portText, srv.namespace
	drv = gotapDriverPath(db.Driver())
	strs := [8]string{drv, query, errText, rec.s1, rec.s2, rec.s3, rec.s4, rec.s5}
	flags := rec.flags
	if len(query) > gotapSQLCaps[1] {
		flags |= gotapFlagSQLCut
	}
	return drv, failed, errText, gotapProbeEvent(nil, rec, flags, failed, dur, &strs, &gotapSQLCaps)
}

// The caps of a sql_query event's slots (driver, query, error, error type, SQLSTATE,
// server.address, server.port, db.namespace): crates/gotap-ebpf/bpf/gotap.bpf.c.
var gotapSQLCaps = [8]int{128, 4096, 256, 256, 16, 256, 16, 128}

// gotapFlagSQLCut: in the site event's flags, the query text was longer than its cap (the
// tracer counts such spans).
const gotapFlagSQLCut = 8

// gotapProbeEvent builds the span's site event, the site's last argument, in buf if it fits (the
// net/http fragment has the same function and explains the format). database/sql passes none:
// its events can hold 4 KB of query text, too much for every query's stack.
func gotapProbeEvent(buf []byte, rec *gotapProbeRecord, flags uint64, status, durationNs int64, strs *[8]string, caps *[8]int) string {
	n := gotapEventHead
	for i := range strs {
		if len(strs[i]) > caps[i] {
			strs[i] = strs[i][:caps[i]]
		}
		n += len(strs[i])
	}
	b := buf
	if n > len(b) {
		b = make([]byte, n)
	}
	b = b[:n]
	for i, v := range [8]uint64{uint64(status), uint64(durationNs), rec.traceHi, rec.traceLo, rec.span, rec.parent, uint64(rec.start), flags} {
		gotapPut64(b[8*i:], v)
	}
	off := gotapEventHead
	for i, s := range strs {
		b[64+2*i], b[64+2*i+1] = byte(len(s)), byte(len(s)>>8)
		off += copy(b[off:], s)
	}
	return unsafe.String(&b[0], n)
}

const gotapEventHead = 80 // 8 u64s, 8 u16 lengths

func gotapPut64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	b[4], b[5], b[6], b[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
}
