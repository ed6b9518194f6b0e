package gotaprt

import (
	"context"
	"sync/atomic"
	"unsafe"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The goroutine's span: a statement issued without the request's context (db.Query, or a
// framework's query without WithContext) has no span in its context; its parent is then the
// server span the goroutine runs in, or the one of the goroutine that started it.
//
// The slot is a field the weaver adds to runtime.g (rules runtime-goroutine-span-* in
// instrumentations/databasesql/weave/rules.yaml): a goroutine's own, copied to the goroutines it
// starts, dropped when it exits. A map keyed by goroutine id would need the id (parsed from
// runtime.Stack on every statement), a lock, a cleanup when each goroutine exits (which nothing
// reports) and could not be inherited; the field needs none of that and the GC frees what it
// points to.

//go:linkname goroutineSpanSlot runtime.gotapGoroutineSpan
func goroutineSpanSlot() unsafe.Pointer

//go:linkname setGoroutineSpanSlot runtime.gotapSetGoroutineSpan
func setGoroutineSpanSlot(p unsafe.Pointer)

// goSpan is what the slot points to: a server span's context while it runs. ended is set when
// the span ends: goroutines the handler started keep the pointer after that (nothing cheap runs
// when they go idle, e.g. a worker pool the first request started), and must not use it.
type goSpan struct {
	sc    trace.SpanContext
	prev  *goSpan // the span the goroutine ran in before (a server span nested in another)
	ended atomic.Bool
}

// goroutineSpans keeps, in gotap's own provider, each server span in the slot of the goroutine
// that starts it until it ends. The SDK calls OnStart on the goroutine calling Start, and gotap's
// server hooks (net/http's serverHandler.ServeHTTP, grpc's stream handler) end the span on that
// goroutine too.
type goroutineSpans struct{}

var _ = addHook(func() { spanProcessors = append(spanProcessors, goroutineSpans{}) })

func (goroutineSpans) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if s.SpanKind() != trace.SpanKindServer {
		return
	}
	prev := (*goSpan)(goroutineSpanSlot())
	for prev != nil && prev.ended.Load() {
		prev = prev.prev // only spans still running are kept: the chain stays as deep as the nesting
	}
	setGoroutineSpanSlot(unsafe.Pointer(&goSpan{sc: s.SpanContext(), prev: prev}))
}

func (goroutineSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanKind() != trace.SpanKindServer {
		return
	}
	g := (*goSpan)(goroutineSpanSlot())
	if g == nil || g.sc.SpanID() != s.SpanContext().SpanID() {
		return // ended on another goroutine: the next server span started here replaces it
	}
	g.ended.Store(true)
	setGoroutineSpanSlot(unsafe.Pointer(g.prev))
}

func (goroutineSpans) Shutdown(context.Context) error   { return nil }
func (goroutineSpans) ForceFlush(context.Context) error { return nil }

// goroutineSpan is the span context the calling goroutine runs in, invalid when none.
func goroutineSpan() trace.SpanContext {
	g := (*goSpan)(goroutineSpanSlot())
	if g == nil || g.ended.Load() {
		return trace.SpanContext{}
	}
	return g.sc
}

// withGoroutineSpan is ctx, or, when ctx holds no span, ctx with the goroutine's span as parent.
func withGoroutineSpan(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if sc := goroutineSpan(); sc.IsValid() {
		return trace.ContextWithSpanContext(ctx, sc)
	}
	return ctx
}
