// Probe sites for net/http, added to the standard library's net/http package by
// `gotap build --probes` (rule nethttp-probe-sites in instrumentations/nethttp/weave/probes.yaml: `gotap toolexec`
// compiles this file and assembles gotap_probes_amd64.s into the net/http archive). They are
// package http fragments, not a package of their own: net/http cannot import outside the standard
// library, and the user's module graph must not change.
//
// Nothing here exports telemetry. While no tracer is attached, the semaphore is 0 and the woven
// code costs one load and a branch per request. When gotap (or bpftrace) attaches to a site, the
// kernel increments the semaphore (uprobe ref_ctr_offset); the woven code then creates trace and
// span ids, reads and writes the W3C traceparent header and calls the site once per span with the
// values the span needs. The layout below is a contract with crates/gotap-ebpf (bpf/gotap.bpf.c,
// src/sites.rs) and crates/gotap-binary (src/usdt.rs): see docs/probes.md before changing it.

package http

import (
	"context"
	"net/url"
	"reflect"
	"time"
	"unsafe"
)

// gotapProbeSemaphore[0] is the USDT semaphore of net/http's two sites (database/sql and grpc
// have their own). The other elements are a marker ("gotap-semaphor") that lets gotap find the
// variable in stripped binaries, and make it initialised data: the kernel only maintains
// semaphores in file-backed mappings, and zero-initialised variables would land in .noptrbss
// (anonymous memory).
var gotapProbeSemaphore = [8]uint16{0, 0x6f67, 0x6174, 0x2d70, 0x6573, 0x616d, 0x6870, 0x726f}

// net/http's number in the marker of its batch site's semaphore, and the event kinds of its
// sites (go/probes/shared/gotap_batch.go, bpf/types.h). The woven code runs while either the
// per-span sites' semaphore or the batch site's is set, and feeds whichever is.
const (
	gotapBatchPackage = 1
	gotapKindServer   = 3
	gotapKindClient   = 4
)

// gotapProbeRecord is what a site's last argument points to. Fixed layout on amd64 (offsets in
// bytes): traceHi 0, traceLo 8, span 16, parent 24, start 32, flags 40, then strings as
// (pointer, length) pairs: host 48, remote 64, userAgent 80, proto 96, query 112. Size 128.
type gotapProbeRecord struct {
	traceHi, traceLo uint64 // trace id, big-endian halves
	span, parent     uint64 // span ids, big-endian; parent 0 = root span
	start            int64  // span start, Unix nanoseconds
	flags            uint64 // bit 0: sampled; bit 1: parent came from an incoming traceparent; bit 4: server request over TLS
	host             string // server: Host header (server.address/port)
	remote           string // server: RemoteAddr (client.address/port)
	userAgent        string // server: User-Agent
	proto            string // server: "HTTP/1.1"
	query            string // server: raw query (exported only when the tracer opts in)
}

const (
	gotapFlagSampled      = 1
	gotapFlagRemoteParent = 2
	// gotapFlagTLS: the served request came over TLS (r.TLS != nil), so the span's url.scheme
	// is "https" (crates/gotap-ebpf/src/sites.rs, RFLAG_TLS). Bit 4: bit 2 is REC_PACKED to the
	// BPF program (older builds' packed strings) and bit 3 its sql_query cut flag. Children copy
	// only the sampled bit, so it stays on the server span.
	gotapFlagTLS = 16
)

// Each site call hands the tracer the span's whole event, built here (docs/probes.md, "The site
// event"), as its last argument; the site's prologue loads its address and length into registers,
// so the BPF program copies it with a single read of user memory (each read costs 0.1-0.2 µs in
// the kernel; building the event here a few ns). Layout, little-endian: status, duration (ns),
// trace id high and low halves, span id, parent span id, start (Unix ns), record flags, each 8
// bytes; eight u16 lengths of the string slots of gotap's site event in order (server: method,
// path, pattern, host, remote, user agent, proto, query; client: method, URL, error); then their
// bytes back to back, each cut at the BPF program's cap for its slot
// (crates/gotap-ebpf/bpf/types.h). The other arguments still carry every value, for bpftrace.
// The event is built in buf, a buffer on the caller's stack that the site call does not keep
// (an allocation per span cost the woven code more than the copy), or on the heap when it does
// not fit.
var (
	gotapServerCaps = [8]int{16, 256, 128, 128, 64, 255, 16, 256}
	gotapClientCaps = [8]int{16, 512, 256}
)

const (
	gotapEventHead      = 80 // 8 u64s, 8 u16 lengths
	gotapServerEventMax = gotapEventHead + 16 + 256 + 128 + 128 + 64 + 255 + 16 + 256
	gotapClientEventMax = gotapEventHead + 16 + 512 + 256
)

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

func gotapPut64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	b[4], b[5], b[6], b[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
}

// Sites: Go assembly (gotap_probes_amd64.s): two register loads of the event, then a 5-byte NOP,
// so a uprobe there takes the kernel's optimised path. Arguments are on the stack (ABI0).

// gotapProbeHTTPServer is called once per served request, after the handler returned.
//
//go:noescape
func gotapProbeHTTPServer(method, path string, status, durationNs int64, pattern string, rec *gotapProbeRecord, event string)

// gotapProbeHTTPClient is called once per round trip, after it finished (status 0 and errText set
// when the transport failed).
//
//go:noescape
func gotapProbeHTTPClient(method, url string, status, durationNs int64, errText string, rec *gotapProbeRecord, event string)

type gotapProbeKey struct{}

// gotapProbeCtxKey's address is the context key under which the grpc and database/sql fragments
// store their span's record (an unsafe.Pointer). They cannot name a net/http type, and a program
// may link them without net/http, so every fragment declares this zero-valued variable under one
// linker name and the linker merges the declarations. A declaration, not a reference to a symbol
// defined elsewhere: Go 1.27's linker refuses linkname references into another package
// (docs/probes.md, the contract).
//
//go:linkname gotapProbeCtxKey gotap.probeCtxKey
var gotapProbeCtxKey byte

// gotapProbeServerCtx is the request's context while a server span is open: the parent context
// plus the span's record, in one allocation (a context.WithValue node, a separate record and the
// Request copy of r.WithContext were three, and this runs on every request while traced). Every
// other key, and cancellation, is the parent's: context.WithCancel below it still finds the
// parent's cancelCtx through Value, as with any context node.
type gotapProbeServerCtx struct {
	context.Context
	rec   gotapProbeRecord
	began time.Time // rec.start with its monotonic reading (the duration)
}

func (c *gotapProbeServerCtx) Value(key any) any {
	if _, ok := key.(gotapProbeKey); ok {
		return &c.rec
	}
	return c.Context.Value(key)
}

// gotapProbeServerBegin starts a server span: joins an incoming traceparent and puts the span into
// the request's context, where client round trips made with that context find their parent. The
// request is the one the server has just read for this handler call and nobody else holds, so its
// context is replaced in place rather than through r.WithContext's copy of the whole Request.
func gotapProbeServerBegin(r *Request) (*Request, *gotapProbeRecord) {
	c := &gotapProbeServerCtx{Context: r.Context()}
	rec := &c.rec
	c.began = time.Now()
	rec.start = c.began.UnixNano()
	rec.span = gotapProbeNonZero()
	rec.flags = gotapFlagSampled // set here, before any child reads flags
	rec.host, rec.remote, rec.proto = r.Host, r.RemoteAddr, r.Proto
	// The server stores header keys canonicalised: index the map, skip Get's canonicalisation.
	if v := r.Header["User-Agent"]; len(v) > 0 {
		rec.userAgent = v[0]
	}
	if r.URL != nil {
		rec.query = r.URL.RawQuery
	}
	tp := ""
	if v := r.Header["Traceparent"]; len(v) > 0 {
		tp = v[0]
	}
	if hi, lo, parent, flags, ok := gotapParseTraceparent(tp); ok {
		rec.traceHi, rec.traceLo, rec.parent = hi, lo, parent
		rec.flags = flags&gotapFlagSampled | gotapFlagRemoteParent
	} else {
		rec.traceHi, rec.traceLo = gotapRand(), gotapProbeNonZero()
	}
	if r.TLS != nil {
		rec.flags |= gotapFlagTLS
	}
	r.ctx = c
	return r, rec
}

// gotapProbeServerEnd fires the server site. ServeMux recorded the matched pattern on the request
// it was given, which is the one gotapProbeServerBegin returned.
func gotapProbeServerEnd(w ResponseWriter, r *Request, rec *gotapProbeRecord) {
	if rec == nil {
		return
	}
	status := gotapProbeStatus(w)
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	strs := [8]string{r.Method, path, r.Pattern, rec.host, rec.remote, rec.userAgent, rec.proto, rec.query}
	var dur int64
	if c, ok := r.ctx.(*gotapProbeServerCtx); ok && &c.rec == rec {
		dur = int64(time.Since(c.began)) // one clock read instead of time.Now's two
	} else {
		dur = time.Now().UnixNano() - rec.start
	}
	var buf [gotapServerEventMax]byte
	event := gotapProbeEvent(buf[:], rec, rec.flags, status, dur, &strs, &gotapServerCaps)
	if gotapBatchSemaphore[0] != 0 {
		gotapBatchAdd(gotapKindServer, event)
	}
	if gotapProbeSemaphore[0] != 0 {
		gotapProbeHTTPServer(r.Method, path, status, dur, r.Pattern, rec, event)
	}
}

// gotapProbeStatus is the status the handler wrote to w: 0 when it wrote nothing (net/http then
// answers 200; the tracer reports 200), -1 when w is a writer whose status cannot be read (the
// tracer then omits http.response.status_code rather than report a 200 that may be wrong).
//
// HTTP/1.x serves with *response. HTTP/2 serves with another writer, which this file cannot name
// in every Go version: Go ≤ 1.26 has the bundled *http2responseWriter (h2_bundle.go), Go 1.27
// the value http2ResponseWriter{*http2.ResponseWriter} around net/http/internal/http2's writer
// (http2.go), and neither type exists in the other version. Both keep the status in
// rws.status (x/net/http2's writer too), so it is read by reflection: only for HTTP/2 requests,
// and only the fields' names, never the writer's behaviour, are relied on. The writer's state is
// still live here: the HTTP/2 servers release it (handlerDone) after serverHandler.ServeHTTP,
// whose deferred call this runs in, returned.
func gotapProbeStatus(w ResponseWriter) int64 {
	if rw, ok := w.(*response); ok {
		return int64(rw.status)
	}
	v := reflect.ValueOf(w)
	// Go 1.27: struct{ *http2.ResponseWriter } -> *responseWriter -> rws -> status.
	// Go ≤ 1.26: *http2responseWriter -> rws -> status.
	for _, name := range [...]string{"ResponseWriter", "rws", "status"} {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return -1
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return -1
		}
		f, ok := v.Type().FieldByName(name)
		if !ok || len(f.Index) != 1 {
			if name == "ResponseWriter" {
				continue // not the 1.27 wrapper: look for rws in this struct
			}
			return -1
		}
		v = v.Field(f.Index[0])
	}
	if !v.CanInt() {
		return -1
	}
	return v.Int()
}

// gotapProbeClientRoundTrip wraps one round trip in a client span, child of the span in the
// request's context (if any), and sends traceparent on the wire so the callee joins the trace.
func gotapProbeClientRoundTrip(t *Transport, req *Request) (*Response, error) {
	if req.URL == nil || req.Header == nil {
		return t.roundTrip(req)
	}
	began := time.Now() // its monotonic reading times the span: one clock read at the end
	rec := &gotapProbeRecord{start: began.UnixNano(), span: gotapProbeNonZero(), flags: gotapFlagSampled}
	if p := gotapProbeClientParent(req.Context()); p != nil {
		rec.traceHi, rec.traceLo, rec.parent, rec.flags = p.traceHi, p.traceLo, p.span, p.flags&gotapFlagSampled
	} else {
		rec.traceHi, rec.traceLo = gotapRand(), gotapProbeNonZero()
	}
	// RoundTrip must not modify the caller's request: send a shallow copy with its own header.
	r2 := new(Request)
	*r2 = *req
	r2.Header = req.Header.Clone()
	r2.Header.Set("Traceparent", gotapFormatTraceparent(rec.traceHi, rec.traceLo, rec.span, rec.flags))
	resp, err := t.roundTrip(r2)
	status, errText := int64(0), ""
	if err != nil {
		errText = err.Error()
	} else if resp != nil {
		status = int64(resp.StatusCode)
	}
	full := gotapRedactedURL(req)
	strs := [8]string{req.Method, full, errText}
	dur := int64(time.Since(began))
	var buf [gotapClientEventMax]byte
	event := gotapProbeEvent(buf[:], rec, rec.flags, status, dur, &strs, &gotapClientCaps)
	if gotapBatchSemaphore[0] != 0 {
		gotapBatchAdd(gotapKindClient, event)
	}
	if gotapProbeSemaphore[0] != 0 {
		gotapProbeHTTPClient(req.Method, full, status, dur, errText, rec, event)
	}
	return resp, err
}

// gotapProbeClientParent is the span a round trip made with ctx is the child of: the innermost
// of a grpc or database/sql span (gotap.probeCtxKey; a call made in a gRPC handler or by a driver
// inside a query) and net/http's server span, in that order, as the grpc and database/sql
// fragments look them up. Only the record's shared 48-byte head (ids, start, flags) is read.
func gotapProbeClientParent(ctx context.Context) *gotapProbeRecord {
	if p, ok := ctx.Value(&gotapProbeCtxKey).(unsafe.Pointer); ok && p != nil {
		return (*gotapProbeRecord)(p)
	}
	if p, ok := ctx.Value(gotapProbeKey{}).(*gotapProbeRecord); ok && p != nil {
		return p
	}
	return nil
}

// gotapRedactedURL hides credentials, as semconv requires for url.full.
func gotapRedactedURL(r *Request) string {
	if r.URL.User == nil {
		return r.URL.String()
	}
	u := *r.URL
	u.User = url.UserPassword("REDACTED", "REDACTED")
	return u.String()
}
