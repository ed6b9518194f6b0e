package otlp

// OTLP protobuf encoding of SDK spans, written by hand: an ExportTraceServiceRequest is a few
// nested messages of scalars, and encoding it here spares every woven program the protobuf
// runtime, the generated OTLP packages and (through their gRPC service stubs) grpc, genproto
// and grpc-gateway — most of the runtime's compile time and binary size (docs/build.md, "Build
// cost"). Field numbers are those of opentelemetry-proto v1 (trace.proto, common.proto,
// resource.proto, trace_service.proto); the mapping of SDK values follows the OTel Go OTLP
// exporter's (otlptrace/internal/tracetransform), so the Collector sees the same spans.

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Span flags (trace.proto SpanFlags): the low byte is the W3C trace flags.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, field int, wire int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wire))
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendString omits the empty string, as proto3 does for scalar fields.
func appendString(b []byte, field int, v string) []byte {
	if v == "" {
		return b
	}
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendUint(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(appendTag(b, field, wireVarint), v)
}

func appendFixed64(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return binary.LittleEndian.AppendUint64(appendTag(b, field, wireFixed64), v)
}

func appendFixed32(b []byte, field int, v uint32) []byte {
	if v == 0 {
		return b
	}
	return binary.LittleEndian.AppendUint32(appendTag(b, field, wireFixed32), v)
}

// appendMessage appends field `field` holding the message that enc appends. The message is
// encoded in place after a length placeholder of maximal size, then moved back over the unused
// part of it: no per-message allocation.
func appendMessage(b []byte, field int, enc func([]byte) []byte) []byte {
	b = appendTag(b, field, wireBytes)
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0) // a message is < 4 GiB: at most 5 length bytes
	b = enc(b)
	n := len(b) - start - 5
	var l [5]byte
	ln := len(appendVarint(l[:0], uint64(n)))
	copy(b[start:], appendVarint(l[:0], uint64(n)))
	copy(b[start+ln:], b[start+5:])
	return b[:start+ln+n]
}

func clampUint32(v int) uint64 {
	if v < 0 {
		return 0
	}
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint64(v)
}

func unixNano(t interface{ UnixNano() int64 }) uint64 {
	return uint64(max(0, t.UnixNano()))
}

// encodeTraceRequest encodes spans as an ExportTraceServiceRequest: one ResourceSpans per
// resource, one ScopeSpans per instrumentation scope, spans in their original order.
func encodeTraceRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	type scopeKey struct {
		res   attribute.Distinct
		scope instrumentation.Scope
	}
	type group struct {
		res    *resource.Resource
		scopes []scopeKey
	}
	var order []attribute.Distinct
	groups := map[attribute.Distinct]*group{}
	members := map[scopeKey][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		rk := s.Resource().Equivalent()
		g := groups[rk]
		if g == nil {
			g = &group{res: s.Resource()}
			groups[rk] = g
			order = append(order, rk)
		}
		sk := scopeKey{rk, s.InstrumentationScope()}
		if _, ok := members[sk]; !ok {
			g.scopes = append(g.scopes, sk)
		}
		members[sk] = append(members[sk], s)
	}
	for _, rk := range order {
		g := groups[rk]
		b = appendMessage(b, 1, func(b []byte) []byte { // ExportTraceServiceRequest.resource_spans
			if g.res != nil {
				b = appendMessage(b, 1, func(b []byte) []byte { // ResourceSpans.resource
					for it := g.res.Iter(); it.Next(); {
						b = appendKeyValue(b, 1, it.Attribute()) // Resource.attributes
					}
					return b
				})
			}
			for _, sk := range g.scopes {
				b = appendMessage(b, 2, func(b []byte) []byte { // ResourceSpans.scope_spans
					if sk.scope != (instrumentation.Scope{}) {
						b = appendMessage(b, 1, func(b []byte) []byte { // ScopeSpans.scope
							b = appendString(b, 1, sk.scope.Name)
							b = appendString(b, 2, sk.scope.Version)
							for it := sk.scope.Attributes.Iter(); it.Next(); {
								b = appendKeyValue(b, 3, it.Attribute())
							}
							return b
						})
					}
					for _, s := range members[sk] {
						b = appendMessage(b, 2, func(b []byte) []byte { return appendSpan(b, s) }) // ScopeSpans.spans
					}
					return appendString(b, 3, sk.scope.SchemaURL) // ScopeSpans.schema_url
				})
			}
			if g.res != nil {
				b = appendString(b, 3, g.res.SchemaURL()) // ResourceSpans.schema_url
			}
			return b
		})
	}
	return b
}

// appendSpan appends the fields of one trace.v1.Span.
func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytesField(b, 1, tid[:])
	b = appendBytesField(b, 2, sid[:])
	b = appendString(b, 3, sc.TraceState().String())
	if psid := s.Parent().SpanID(); psid.IsValid() {
		b = appendBytesField(b, 4, psid[:])
	}
	b = appendString(b, 5, s.Name())
	b = appendUint(b, 6, uint64(spanKind(s.SpanKind())))
	b = appendFixed64(b, 7, unixNano(s.StartTime()))
	b = appendFixed64(b, 8, unixNano(s.EndTime()))
	for _, kv := range s.Attributes() {
		b = appendKeyValue(b, 9, kv)
	}
	b = appendUint(b, 10, clampUint32(s.DroppedAttributes()))
	for _, e := range s.Events() {
		b = appendMessage(b, 11, func(b []byte) []byte { // Span.Event
			b = appendFixed64(b, 1, unixNano(e.Time))
			b = appendString(b, 2, e.Name)
			for _, kv := range e.Attributes {
				b = appendKeyValue(b, 3, kv)
			}
			return appendUint(b, 4, clampUint32(e.DroppedAttributeCount))
		})
	}
	b = appendUint(b, 12, clampUint32(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = appendMessage(b, 13, func(b []byte) []byte { // Span.Link
			ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = appendBytesField(b, 1, ltid[:])
			b = appendBytesField(b, 2, lsid[:])
			b = appendString(b, 3, l.SpanContext.TraceState().String())
			for _, kv := range l.Attributes {
				b = appendKeyValue(b, 4, kv)
			}
			b = appendUint(b, 5, clampUint32(l.DroppedAttributeCount))
			return appendFixed32(b, 6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		})
	}
	b = appendUint(b, 14, clampUint32(s.DroppedLinks()))
	st := s.Status()
	b = appendMessage(b, 15, func(b []byte) []byte { // Span.status
		b = appendString(b, 2, st.Description)
		return appendUint(b, 3, uint64(statusCode(st.Code)))
	})
	return appendFixed32(b, 16, spanFlags(sc.TraceFlags(), s.Parent()))
}

func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if parent.IsRemote() {
		f |= flagIsRemote
	}
	return f
}

// spanKind: trace.v1.Span.SpanKind (UNSPECIFIED 0, INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4,
// CONSUMER 5).
func spanKind(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

// statusCode: trace.v1.Status.StatusCode (UNSET 0, OK 1, ERROR 2).
func statusCode(c codes.Code) int {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

// appendKeyValue appends field `field` holding a common.v1.KeyValue.
func appendKeyValue(b []byte, field int, kv attribute.KeyValue) []byte {
	return appendMessage(b, field, func(b []byte) []byte {
		b = appendString(b, 1, string(kv.Key))
		return appendMessage(b, 2, func(b []byte) []byte { return appendAnyValue(b, kv.Value) })
	})
}

// appendAnyValue appends the fields of a common.v1.AnyValue. A oneof member is written even when
// it holds its zero value (false, 0, ""), so the receiver knows which one is set.
func appendAnyValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		x := uint64(0)
		if v.AsBool() {
			x = 1
		}
		return appendVarint(appendTag(b, 2, wireVarint), x)
	case attribute.INT64:
		return appendVarint(appendTag(b, 3, wireVarint), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return binary.LittleEndian.AppendUint64(appendTag(b, 4, wireFixed64), math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		return appendBytesField(b, 1, []byte(v.AsString()))
	case attribute.BYTESLICE:
		return appendBytesField(b, 7, v.AsByteSlice())
	case attribute.BOOLSLICE:
		return appendArray(b, len(v.AsBoolSlice()), func(b []byte, i int) []byte {
			return appendAnyValue(b, attribute.BoolValue(v.AsBoolSlice()[i]))
		})
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		return appendArray(b, len(s), func(b []byte, i int) []byte { return appendAnyValue(b, attribute.Int64Value(s[i])) })
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		return appendArray(b, len(s), func(b []byte, i int) []byte { return appendAnyValue(b, attribute.Float64Value(s[i])) })
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		return appendArray(b, len(s), func(b []byte, i int) []byte { return appendAnyValue(b, attribute.StringValue(s[i])) })
	case attribute.SLICE:
		s := v.AsSlice()
		return appendArray(b, len(s), func(b []byte, i int) []byte { return appendAnyValue(b, s[i]) })
	case attribute.MAP:
		m := v.AsMap()
		return appendMessage(b, 6, func(b []byte) []byte { // KeyValueList
			for _, kv := range m {
				b = appendKeyValue(b, 1, kv)
			}
			return b
		})
	case attribute.EMPTY:
		return b
	}
	return appendBytesField(b, 1, []byte("INVALID"))
}

// appendArray appends AnyValue.array_value holding n values.
func appendArray(b []byte, n int, elem func([]byte, int) []byte) []byte {
	return appendMessage(b, 5, func(b []byte) []byte {
		for i := 0; i < n; i++ {
			b = appendMessage(b, 1, func(b []byte) []byte { return elem(b, i) })
		}
		return b
	})
}
