// Added to net/http next to instrumentations/nethttp/probes by `gotap build --probes` (rule
// nethttp-probe-parent in instrumentations/databasesql/weave/probes.yaml): lets the database/sql and grpc sites
// find the net/http server span in a context. Those packages cannot name net/http's context key
// type, and must link without net/http, so the lookup travels through a function variable that
// every fragment declares under one linker symbol (zero-valued declarations of one symbol are
// merged by the linker) and net/http sets here.

package http

import (
	"context"
	"unsafe"
)

//go:linkname gotapProbeHTTPParent gotap.probeHTTPParent
var gotapProbeHTTPParent func(ctx context.Context) unsafe.Pointer

func init() { gotapProbeHTTPParent = gotapProbeHTTPParentOf }

// gotapProbeHTTPParentOf returns the server span's record (whose first 48 bytes, the ids, start
// and flags, every gotap record shares) or nil.
func gotapProbeHTTPParentOf(ctx context.Context) unsafe.Pointer {
	if p, ok := ctx.Value(gotapProbeKey{}).(*gotapProbeRecord); ok && p != nil {
		return unsafe.Pointer(p)
	}
	return nil
}
