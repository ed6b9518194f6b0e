// Batched probe site, shared by every package `gotap build --probes` weaves (net/http,
// database/sql, google.golang.org/grpc): `gotap toolexec` adds this file to each of them with
// its package clause replaced by the woven package's (docs/probes.md, "Batched sites"). Each
// package defines gotapBatchPackage (1 net/http, 2 database/sql, 3 grpc) next to its sites.
//
// Why: a kernel-optimised uprobe hit still costs a syscall round trip (0.6 µs in a tight loop,
// several µs inside a real request on some hosts), the largest share of a traced span's cost. So
// while gotap listens to this package's batch site, the woven code appends each span's event to a
// buffer here and fires the site once per buffer: when the next event would not fit, or at the
// latest gotapBatchDelay after the buffer's first event. One hit then carries tens of spans. The
// per-span sites still fire while a tool listens to them (bpftrace): each kind of site has its
// own semaphore.

package gotapshared

import (
	"sync"
	"time"
	"unsafe"
)

// gotapBatchSemaphore[0] is the USDT semaphore of the batch site; the other elements are the
// marker "gotap-batch-" followed by the package's number, which locates it in stripped binaries
// (and makes it file-backed initialised data, which the kernel needs to maintain it).
var gotapBatchSemaphore = [8]uint16{0, 0x6f67, 0x6174, 0x2d70, 0x6162, 0x6374, 0x2d68, gotapBatchPackage}

const (
	// gotapBatchCap is the most the site hands over at once (GOTAP_BATCH_CAP in
	// crates/gotap-ebpf/bpf/types.h): room for ~80 HTTP spans, and for the largest event any
	// package builds (a database/sql span with 4 KiB of query text) in an empty buffer.
	gotapBatchCap = 16384
	// gotapBatchDelay bounds how long a span waits in the buffer. Spans still buffered when the
	// process exits or dies from a signal are read by gotap's exit probe (gotapBatchRef); only a
	// SIGKILL loses them, as it loses an OpenTelemetry SDK's batch (5 s there).
	gotapBatchDelay = 10 * time.Millisecond
	// gotapBatchPrefix is the size of what precedes each event in the buffer: its kind (the
	// site event kinds of bpf/types.h) and 7 zero bytes, where gotap puts the process's id.
	gotapBatchPrefix = 8
)

// gotapBatchBuffer is a package's buffer. Its first two fields are a contract with gotap's exit
// probe (bpf/gotap.bpf.c, exit_flush): when the process exits or dies from a signal while spans
// are still buffered, the probe reads n at offset 0 and that many bytes of events at offset 8.
type gotapBatchBuffer struct {
	n     int // bytes of complete events in buf; raised only after an event is copied whole
	buf   [gotapBatchCap]byte
	mu    sync.Mutex
	armed bool // the flush timer is pending
	timer *time.Timer
}

var gotapBatch gotapBatchBuffer

// gotapBatchRef is where gotap finds the buffer, in stripped binaries too: the marker
// "gotap-batchref-" followed by the package's number, then the buffer's address. Initialised
// data holding a pointer (.data), so it is in the file; the code reaches the buffer through it,
// which keeps the linker from dropping it.
var gotapBatchRef = struct {
	marker [2]uint64
	buffer *gotapBatchBuffer
}{[2]uint64{0x61622d7061746f67, 0x2d666572686374 | gotapBatchPackage<<56}, &gotapBatch}

// gotapBatchAdd appends one span's event (gotapProbeEvent's result) of the given kind. The copy
// is made under the lock: the event usually lives on the caller's stack.
func gotapBatchAdd(kind byte, event string) {
	need := gotapBatchPrefix + len(event)
	if need > gotapBatchCap {
		return // cannot happen: every event is capped far below
	}
	b := gotapBatchRef.buffer
	b.mu.Lock()
	if b.n+need > gotapBatchCap {
		gotapBatchFlushLocked()
	}
	p := b.buf[b.n : b.n+need]
	p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = kind, 0, 0, 0, 0, 0, 0, 0
	copy(p[gotapBatchPrefix:], event)
	b.n += need
	if !b.armed {
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(gotapBatchDelay, gotapBatchTick)
		} else {
			b.timer.Reset(gotapBatchDelay)
		}
	}
	b.mu.Unlock()
}

// gotapBatchTick flushes what the buffer holds gotapBatchDelay after its first event.
func gotapBatchTick() {
	b := gotapBatchRef.buffer
	b.mu.Lock()
	b.armed = false
	gotapBatchFlushLocked()
	b.mu.Unlock()
}

// gotapBatchFlush hands over what the buffer holds now. Woven into the package's shutdown
// paths ((*http.Server).Shutdown and Close, (*grpc.Server).Stop and GracefulStop, (*sql.DB).Close,
// deferred: after the last requests), after which a program usually exits.
func gotapBatchFlush() {
	b := gotapBatchRef.buffer
	b.mu.Lock()
	gotapBatchFlushLocked()
	b.mu.Unlock()
}

// gotapBatchFlushLocked fires the batch site with the buffered events. The BPF program copies
// them during the call, so the buffer is free again when it returns.
func gotapBatchFlushLocked() {
	b := gotapBatchRef.buffer
	if b.n == 0 {
		return
	}
	gotapProbeBatch(unsafe.String(&b.buf[0], b.n))
	b.n = 0
}

// gotapProbeBatch is the batch site (gotap_batch_amd64.s): it loads the address and length of
// events into SI and DX, then executes the 5-byte NOP the probe sits on.
//
//go:noescape
func gotapProbeBatch(events string)
