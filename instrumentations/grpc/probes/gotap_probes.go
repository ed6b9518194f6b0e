// Probe sites for google.golang.org/grpc, added to package grpc by `gotap build --probes` (rules
// in instrumentations/grpc/weave/probes.yaml). Same contract as instrumentations/nethttp/probes (docs/probes.md): one site call
// per span, when it ends, with the values the span needs; nothing runs while the semaphore is 0.
// Only imports package grpc already has, and no new module: the user's module graph is unchanged.
//
// Shared with the other fragments through linker symbols (see instrumentations/databasesql/probes):
// gotap.probeCtxKey (context key of database/sql and grpc spans) and gotap.probeHTTPParent
// (net/http's server span in a context). Trace context crosses the wire as `traceparent` gRPC
// metadata, as in SDK mode.

package grpc

import (
	"context"
	"io"
	"time"
	"unsafe"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// gotapProbeSemaphore[0] is the USDT semaphore of this package's sites; the other elements are
// the marker "gotap-sema-rpc" that locates it in stripped binaries and makes it initialised
// (file-backed) data, as net/http's (docs/probes.md). Each woven package has its own: a shared
// variable would need a linkname into net/http, which the linker refuses from 1.27 on and which
// a program without net/http could not satisfy.
var gotapProbeSemaphore = [8]uint16{0, 0x6f67, 0x6174, 0x2d70, 0x6573, 0x616d, 0x722d, 0x6370}

// grpc's number in the marker of its batch site's semaphore, and its sites' event kinds
// (go/probes/shared/gotap_batch.go, bpf/types.h).
const (
	gotapBatchPackage = 3
	gotapKindServer   = 6
	gotapKindClient   = 7
)

//go:linkname gotapProbeCtxKey gotap.probeCtxKey
var gotapProbeCtxKey byte

//go:linkname gotapProbeHTTPParent gotap.probeHTTPParent
var gotapProbeHTTPParent func(ctx context.Context) unsafe.Pointer

// gotapProbeRecord: the 128-byte record of docs/probes.md (grpc leaves the strings empty).
type gotapProbeRecord struct {
	traceHi, traceLo uint64
	span, parent     uint64
	start            int64
	flags            uint64
	s1, s2, s3, s4   string
	s5               string
}

// gotapProbeGRPCServer is called once per RPC served, when the handler returned: the full method
// (/pkg.Service/Method), the client's address, the gRPC status code and message.
//
//go:noescape
func gotapProbeGRPCServer(fullMethod, peer string, code, durationNs int64, msg string, rec *gotapProbeRecord, event string)

// gotapProbeGRPCClient is called once per RPC made, when it finished: the full method, the
// ClientConn's target, the status code and message.
//
//go:noescape
func gotapProbeGRPCClient(fullMethod, target string, code, durationNs int64, msg string, rec *gotapProbeRecord, event string)

func gotapProbeParentOf(ctx context.Context) unsafe.Pointer {
	if p, ok := ctx.Value(&gotapProbeCtxKey).(unsafe.Pointer); ok && p != nil {
		return p
	}
	if f := gotapProbeHTTPParent; f != nil {
		return f(ctx)
	}
	return nil
}

func gotapProbeNewRecord(parent unsafe.Pointer) *gotapProbeRecord {
	rec := new(gotapProbeRecord)
	gotapProbeInitRecord(rec, parent)
	return rec
}

func gotapProbeInitRecord(rec *gotapProbeRecord, parent unsafe.Pointer) {
	rec.start, rec.span, rec.flags = time.Now().UnixNano(), gotapProbeNonZero(), 1
	if parent != nil {
		p := (*gotapProbeRecord)(parent) // only the shared 48-byte head is read
		rec.traceHi, rec.traceLo, rec.parent, rec.flags = p.traceHi, p.traceLo, p.span, p.flags&1
	} else {
		rec.traceHi, rec.traceLo = gotapRand(), gotapProbeNonZero()
	}
}

// gotapProbeGRPCServerBegin starts a server span: joins an incoming traceparent and puts the span
// into the handler's context.
func gotapProbeGRPCServerBegin(ctx context.Context) (context.Context, *gotapProbeRecord) {
	c := &gotapProbeGRPCCtx{Context: ctx}
	rec := &c.rec
	gotapProbeInitRecord(rec, nil)
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md["traceparent"]; len(v) > 0 {
			if hi, lo, parent, flags, ok := gotapParseTraceparent(v[0]); ok {
				rec.traceHi, rec.traceLo, rec.parent = hi, lo, parent
				rec.flags = flags&1 | 2
			}
		}
	}
	return c, rec
}

// gotapProbeGRPCCtx is the handler's context: the incoming one plus the span's record under
// gotap.probeCtxKey, in one allocation (not a context.WithValue node and a record).
type gotapProbeGRPCCtx struct {
	context.Context
	rec gotapProbeRecord
}

func (c *gotapProbeGRPCCtx) Value(key any) any {
	if k, ok := key.(*byte); ok && k == &gotapProbeCtxKey {
		return unsafe.Pointer(&c.rec)
	}
	return c.Context.Value(key)
}

func gotapProbeGRPCServerEnd(ctx context.Context, fullMethod string, rec *gotapProbeRecord, err error) {
	peerAddr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		peerAddr = p.Addr.String()
	}
	code, msg := gotapProbeStatus(err)
	strs := [8]string{fullMethod, peerAddr, msg}
	dur := time.Now().UnixNano() - rec.start
	var buf [gotapGRPCEventMax]byte
	event := gotapProbeEvent(buf[:], rec, rec.flags, code, dur, &strs, &gotapServerCaps)
	if gotapBatchSemaphore[0] != 0 {
		gotapBatchAdd(gotapKindServer, event)
	}
	if gotapProbeSemaphore[0] != 0 {
		gotapProbeGRPCServer(fullMethod, peerAddr, code, dur, msg, rec, event)
	}
}

// gotapProbeGRPCClientBegin starts a client span, child of the span in ctx, and sends traceparent
// in the outgoing metadata. Nil record: not traced (an application's own OTLP exports, which
// would otherwise add a span per export, forever).
func gotapProbeGRPCClientBegin(ctx context.Context, fullMethod string) (context.Context, *gotapProbeRecord) {
	if len(fullMethod) >= 31 && fullMethod[:31] == "/opentelemetry.proto.collector." {
		return ctx, nil
	}
	rec := gotapProbeNewRecord(gotapProbeParentOf(ctx))
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	if md == nil {
		md = metadata.MD{}
	}
	md.Set("traceparent", gotapFormatTraceparent(rec.traceHi, rec.traceLo, rec.span, rec.flags))
	return metadata.NewOutgoingContext(ctx, md), rec
}

func gotapProbeGRPCClientEnd(rec *gotapProbeRecord, fullMethod, target string, err error) {
	code, msg := gotapProbeStatus(err)
	strs := [8]string{fullMethod, target, msg}
	dur := time.Now().UnixNano() - rec.start
	var buf [gotapGRPCEventMax]byte
	event := gotapProbeEvent(buf[:], rec, rec.flags, code, dur, &strs, &gotapClientCaps)
	if gotapBatchSemaphore[0] != 0 {
		gotapBatchAdd(gotapKindClient, event)
	}
	if gotapProbeSemaphore[0] != 0 {
		gotapProbeGRPCClient(fullMethod, target, code, dur, msg, rec, event)
	}
}

// The caps of the grpc events' slots (full method, peer or target, status message):
// crates/gotap-ebpf/bpf/gotap.bpf.c.
var (
	gotapServerCaps = [8]int{512, 64, 256}
	gotapClientCaps = [8]int{512, 128, 256}
)

// gotapProbeEvent builds the span's site event, the site's last argument, in buf if it fits (the
// net/http fragment has the same function and explains the format).
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

const (
	gotapEventHead    = 80 // 8 u64s, 8 u16 lengths
	gotapGRPCEventMax = gotapEventHead + 512 + 128 + 256
)

func gotapPut64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	b[4], b[5], b[6], b[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
}

// gotapProbeStatus is the gRPC status of an RPC's outcome: 0 (OK) for nil and io.EOF.
func gotapProbeStatus(err error) (int64, string) {
	if err == nil || err == io.EOF {
		return 0, ""
	}
	s := status.Convert(err)
	return int64(s.Code()), s.Message()
}
