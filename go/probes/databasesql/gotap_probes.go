// Probe site for database/sql, added to the standard library's database/sql package by
// `gotap build --probes` (rule databasesql-probe-sites in rules/database_sql_probes.yaml). Same
// contract as go/probes/nethttp (docs/probes.md): one site call per span, when it ends, with the
// values the span needs; nothing runs while the semaphore is 0.
//
// Shared with the other fragments through linker symbols rather than imports (database/sql
// cannot import net/http, and a program may link either without the other). Each is a
// zero-valued variable every fragment declares under the same name; the linker merges them:
//   - gotap.probeCtxKey: the address of this byte is the context key under which database/sql and
//     grpc spans put their record, so a db span started in a gRPC handler finds its parent;
//   - gotap.probeHTTPParent: set by net/http (go/probes/databasesql/nethttp) to find its server
//     span in a context.

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

//go:linkname gotapProbeCtxKey gotap.probeCtxKey
var gotapProbeCtxKey byte

//go:linkname gotapProbeHTTPParent gotap.probeHTTPParent
var gotapProbeHTTPParent func(ctx context.Context) unsafe.Pointer

//go:linkname gotapRand runtime.rand
func gotapRand() uint64

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
func gotapProbeSQLQuery(driver, query string, failed, durationNs int64, errText string, rec *gotapProbeRecord)

// gotapProbeSQLMark marks the context the advice calls the method again with.
type gotapProbeSQLMark struct{}

// gotapProbeParentOf is the innermost gotap span in ctx: a database/sql or grpc one, else the
// net/http server's.
func gotapProbeParentOf(ctx context.Context) unsafe.Pointer {
	if p, ok := ctx.Value(&gotapProbeCtxKey).(unsafe.Pointer); ok && p != nil {
		return p
	}
	if f := gotapProbeHTTPParent; f != nil {
		return f(ctx)
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
	rec.start, rec.span, rec.flags = time.Now().UnixNano(), gotapProbeNonZero(), 1|gotapFlagPacked
	if inner != nil {
		p := (*gotapProbeRecord)(inner) // only the shared 48-byte head is read
		rec.traceHi, rec.traceLo, rec.parent, rec.flags = p.traceHi, p.traceLo, p.span, p.flags&1|gotapFlagPacked
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

// gotapProbeSQLEnd fires the site for a query on db. No rows and the driver's "take the slow
// path" are outcomes, not failures (as in SDK mode, go/gotaprt/sql.go).
func gotapProbeSQLEnd(rec *gotapProbeRecord, db *DB, query string, err error) {
	failed, errText := int64(0), ""
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
	drv := gotapDriverPath(db.Driver())
	strs := [8]string{drv, query, errText, rec.s1, rec.s2, rec.s3, rec.s4, rec.s5}
	rec.s5 = gotapProbePack(&strs, &gotapSQLCaps) // children read only the record's head
	gotapProbeSQLQuery(drv, query, failed, time.Now().UnixNano()-rec.start, errText, rec)
}

// The caps of a sql_query event's slots (driver, query, error, error type, SQLSTATE,
// server.address, server.port, db.namespace): crates/gotap-ebpf/bpf/gotap.bpf.c.
var gotapSQLCaps = [8]int{128, 4096, 256, 256, 16, 256, 16, 128}

// gotapFlagPacked: at the site, the record's last string points at the packed strings.
const gotapFlagPacked = 4

// gotapProbePack copies a span's strings, each cut at its slot's cap, into one buffer the BPF
// program reads in one block: eight little-endian u16 lengths, then the bytes (the net/http
// fragment has the same function and explains the format; flag gotapFlagPacked tells the tracer
// that the record's last string field points at it).
func gotapProbePack(strs *[8]string, caps *[8]int) string {
	n := 16
	for i := range strs {
		if len(strs[i]) > caps[i] {
			strs[i] = strs[i][:caps[i]]
		}
		n += len(strs[i])
	}
	b := make([]byte, n)
	off := 16
	for i, s := range strs {
		b[2*i], b[2*i+1] = byte(len(s)), byte(len(s)>>8)
		off += copy(b[off:], s)
	}
	return unsafe.String(&b[0], n)
}

func gotapProbeNonZero() uint64 {
	for {
		if v := gotapRand(); v != 0 {
			return v
		}
	}
}
