// Added to net/http next to instrumentations/nethttp/probes by `gotap build --probes` (rule
// nethttp-probe-parent in instrumentations/databasesql/weave/probes.yaml): lets the database/sql and grpc sites
// find the net/http server span in a context. Those packages cannot name net/http's context key
// type, and must link without net/http, so the lookup travels through a function variable that
// every fragment declares under one linker symbol (zero-valued declarations of one symbol are
// merged by the linker) and net/http sets here.
//
// A statement issued without the request's context (db.Query, a framework's query without
// WithContext) finds no span in its context: its parent is then the request the goroutine
// serves, or the one of the goroutine that started it. The goroutine-local slot is the field the
// rules runtime-probe-goroutine-span-* add to runtime.g (copied to the goroutines a goroutine starts,
// dropped when it exits); rule nethttp-probe-goroutine puts the request being served there
// (gotapProbeGoroutineEnter) and database/sql reads it through gotap.probeGoroutineParent.

package http

import (
	"context"
	"sync/atomic"
	"unsafe"
)

//go:linkname gotapProbeHTTPParent gotap.probeHTTPParent
var gotapProbeHTTPParent func(ctx context.Context) unsafe.Pointer

//go:linkname gotapProbeGoroutineParent gotap.probeGoroutineParent
var gotapProbeGoroutineParent func() unsafe.Pointer

func init() {
	gotapProbeHTTPParent = gotapProbeHTTPParentOf
	gotapProbeGoroutineParent = gotapProbeGoroutineParentOf
}

// gotapProbeHTTPParentOf returns the server span's record (whose first 48 bytes, the ids, start
// and flags, every gotap record shares) or nil.
func gotapProbeHTTPParentOf(ctx context.Context) unsafe.Pointer {
	if p, ok := ctx.Value(gotapProbeKey{}).(*gotapProbeRecord); ok && p != nil {
		return unsafe.Pointer(p)
	}
	return nil
}

//go:linkname gotapProbeGoroutineSlot runtime.gotapGoroutineSpan
func gotapProbeGoroutineSlot() unsafe.Pointer

//go:linkname gotapProbeSetGoroutineSlot runtime.gotapSetGoroutineSpan
func gotapProbeSetGoroutineSlot(p unsafe.Pointer)

// gotapProbeGoroutine is what the slot points to while serverHandler.ServeHTTP serves req. The
// request, not its record: the rule may run before the server site's own advice, which then puts
// the record into this same request's context (gotapProbeServerBegin replaces r.ctx in place).
// ended is set when ServeHTTP returns: goroutines the handler started keep the pointer after that
// (nothing cheap runs when they go idle, e.g. a worker pool the first request started) and must
// not use it.
type gotapProbeGoroutine struct {
	req   *Request
	prev  *gotapProbeGoroutine // the request served before on this goroutine (a nested ServeHTTP)
	ended atomic.Bool
}

func gotapProbeGoroutineEnter(req *Request) *gotapProbeGoroutine {
	prev := (*gotapProbeGoroutine)(gotapProbeGoroutineSlot())
	for prev != nil && prev.ended.Load() {
		prev = prev.prev
	}
	g := &gotapProbeGoroutine{req: req, prev: prev}
	gotapProbeSetGoroutineSlot(unsafe.Pointer(g))
	return g
}

func gotapProbeGoroutineLeave(g *gotapProbeGoroutine) {
	g.ended.Store(true)
	if gotapProbeGoroutineSlot() == unsafe.Pointer(g) {
		gotapProbeSetGoroutineSlot(unsafe.Pointer(g.prev))
	}
}

// gotapProbeGoroutineParentOf is the record of the server span the calling goroutine runs in,
// or nil.
func gotapProbeGoroutineParentOf() unsafe.Pointer {
	g := (*gotapProbeGoroutine)(gotapProbeGoroutineSlot())
	if g == nil || g.ended.Load() || g.req == nil {
		return nil
	}
	return gotapProbeHTTPParentOf(g.req.Context())
}
