package gotapshared

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// As each woven package defines it (net/http's number here).
const gotapBatchPackage = 1

func reset() {
	gotapBatch.mu.Lock()
	gotapBatch.n = 0
	gotapBatch.mu.Unlock()
}

func TestSemaphoreMarker(t *testing.T) {
	var b []byte
	for _, v := range gotapBatchSemaphore[1:] {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	if got := string(b); got != "gotap-batch-\x01\x00" {
		t.Fatalf("marker %q", got)
	}
}

// The layout gotap's exit probe reads (bpf/gotap.bpf.c, exit_flush; usdt::batch_refs).
func TestBufferReferenceLayout(t *testing.T) {
	var b []byte
	for _, v := range gotapBatchRef.marker {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	if got := string(b); got != "gotap-batchref-\x01" {
		t.Fatalf("marker %q", got)
	}
	if off := unsafe.Offsetof(gotapBatchRef.buffer); off != 16 {
		t.Fatalf("buffer address at offset %d", off)
	}
	if gotapBatchRef.buffer != &gotapBatch {
		t.Fatal("the reference does not point to the buffer")
	}
	if n, buf := unsafe.Offsetof(gotapBatch.n), unsafe.Offsetof(gotapBatch.buf); n != 0 || buf != 8 {
		t.Fatalf("n at %d, events at %d", n, buf)
	}
}

func TestEventsAreAppendedWithTheirKind(t *testing.T) {
	reset()
	gotapBatchAdd(3, "first")
	gotapBatchAdd(4, "second event")
	gotapBatch.mu.Lock()
	defer gotapBatch.mu.Unlock()
	want := "\x03\x00\x00\x00\x00\x00\x00\x00first\x04\x00\x00\x00\x00\x00\x00\x00second event"
	if got := string(gotapBatch.buf[:gotapBatch.n]); got != want {
		t.Fatalf("buffer %q, want %q", got, want)
	}
}

func TestFullBufferIsFlushedBeforeTheNextEvent(t *testing.T) {
	reset()
	ev := strings.Repeat("x", 1000)
	fits := gotapBatchCap / (gotapBatchPrefix + len(ev))
	for i := 0; i < fits; i++ {
		gotapBatchAdd(3, ev)
	}
	gotapBatch.mu.Lock()
	n := gotapBatch.n
	gotapBatch.mu.Unlock()
	if n != fits*(gotapBatchPrefix+len(ev)) {
		t.Fatalf("%d bytes buffered after %d events", n, fits)
	}
	gotapBatchAdd(5, ev) // does not fit: the buffer is flushed first
	gotapBatch.mu.Lock()
	defer gotapBatch.mu.Unlock()
	if gotapBatch.n != gotapBatchPrefix+len(ev) || gotapBatch.buf[0] != 5 {
		t.Fatalf("after the flush: %d bytes, first kind %d", gotapBatch.n, gotapBatch.buf[0])
	}
}

func TestBufferIsFlushedAfterTheDelay(t *testing.T) {
	reset()
	gotapBatchAdd(3, "lonely")
	deadline := time.Now().Add(2 * time.Second)
	for {
		gotapBatch.mu.Lock()
		n, armed := gotapBatch.n, gotapBatch.armed
		gotapBatch.mu.Unlock()
		if n == 0 && !armed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d bytes buffered 2 s after the event (delay %v)", n, gotapBatchDelay)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOversizedEventIsRefused(t *testing.T) {
	reset()
	gotapBatchAdd(5, strings.Repeat("y", gotapBatchCap))
	gotapBatch.mu.Lock()
	defer gotapBatch.mu.Unlock()
	if gotapBatch.n != 0 {
		t.Fatalf("%d bytes buffered", gotapBatch.n)
	}
}
