package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// field is one decoded protobuf field: varint/fixed values in num, length-delimited in raw.
type field struct {
	num  int
	wire int
	val  uint64
	raw  []byte
}

// decode parses one message's fields (a minimal wire-format reader, independent of the encoder).
func decode(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("bad tag in % x", b)
		}
		b = b[n:]
		f := field{num: int(tag >> 3), wire: int(tag & 7)}
		switch f.wire {
		case wireVarint:
			f.val, n = binary.Uvarint(b)
			if n <= 0 {
				t.Fatalf("bad varint")
			}
			b = b[n:]
		case wireFixed64:
			f.val = binary.LittleEndian.Uint64(b)
			b = b[8:]
		case wireFixed32:
			f.val = uint64(binary.LittleEndian.Uint32(b))
			b = b[4:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || int(l) > len(b)-n {
				t.Fatalf("bad length")
			}
			f.raw = b[n : n+int(l)]
			b = b[n+int(l):]
		default:
			t.Fatalf("unexpected wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out
}

func fieldsNamed(fs []field, num int) []field {
	var out []field
	for _, f := range fs {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

func one(t *testing.T, fs []field, num int) field {
	t.Helper()
	m := fieldsNamed(fs, num)
	if len(m) != 1 {
		t.Fatalf("field %d: %d occurrences, want 1", num, len(m))
	}
	return m[0]
}

// attrs decodes repeated KeyValue field num into key → AnyValue fields.
func attrs(t *testing.T, fs []field, num int) map[string][]field {
	out := map[string][]field{}
	for _, kv := range fieldsNamed(fs, num) {
		k := decode(t, kv.raw)
		out[string(one(t, k, 1).raw)] = decode(t, one(t, k, 2).raw)
	}
	return out
}

func TestKnownBytes(t *testing.T) {
	// KeyValue{key:"k", value:{string_value:"v"}} as protoc encodes it.
	got := appendKeyValue(nil, 9, attribute.String("k", "v"))
	want := []byte{0x4a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, 'v'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	// int_value -1: ten-byte varint; bool false still written (oneof member set).
	got = appendAnyValue(nil, attribute.Int64Value(-1))
	want = []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	if !bytes.Equal(got, want) {
		t.Fatalf("int -1: got % x, want % x", got, want)
	}
	if got := appendAnyValue(nil, attribute.BoolValue(false)); !bytes.Equal(got, []byte{0x10, 0x00}) {
		t.Fatalf("bool false: % x", got)
	}
	// A message longer than 127 bytes gets a two-byte length.
	long := strings.Repeat("x", 200)
	got = appendMessage(nil, 1, func(b []byte) []byte { return append(b, long...) })
	if !bytes.Equal(got[:3], []byte{0x0a, 0xc8, 0x01}) || string(got[3:]) != long {
		t.Fatalf("long message: % x…", got[:3])
	}
}

func makeSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	mem := tracetest.NewInMemoryExporter()
	res := resource.NewSchemaless(attribute.String("service.name", "svc"), attribute.Int("process.pid", 42))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem), sdktrace.WithResource(res))
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	start := time.Unix(1700000000, 123)
	_, s := tp.Tracer("gotap/net/http/server", trace.WithInstrumentationVersion("0.1.0")).Start(ctx, "GET /users/{id}",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("http.request.method", "GET"),
			attribute.Int("http.response.status_code", 500),
			attribute.Bool("b", false),
			attribute.Float64("f", 1.5),
			attribute.StringSlice("ss", []string{"a", "b"}),
		))
	s.AddEvent("ev", trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithAttributes(attribute.String("k", "v")))
	s.SetStatus(codes.Error, "boom")
	s.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
	_, c := tp.Tracer("gotap/net/http/client").Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindClient))
	c.End()
	return mem.GetSpans().Snapshots() // (the in-memory exporter forgets them at shutdown)
}

func TestEncodeFields(t *testing.T) {
	spans := makeSpans(t)
	req := decode(t, encodeTraceRequest(nil, spans))
	rs := decode(t, one(t, req, 1).raw) // one resource
	res := attrs(t, decode(t, one(t, rs, 1).raw), 1)
	if string(one(t, res["service.name"], 1).raw) != "svc" || one(t, res["process.pid"], 3).val != 42 {
		t.Fatalf("resource: %+v", res)
	}
	scopes := fieldsNamed(rs, 2)
	if len(scopes) != 2 {
		t.Fatalf("%d scopes, want 2", len(scopes))
	}
	ss := decode(t, scopes[0].raw)
	scope := decode(t, one(t, ss, 1).raw)
	if string(one(t, scope, 1).raw) != "gotap/net/http/server" || string(one(t, scope, 2).raw) != "0.1.0" {
		t.Fatalf("scope: %+v", scope)
	}
	sp := decode(t, one(t, ss, 2).raw)
	sc := spans[0].SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	if !bytes.Equal(one(t, sp, 1).raw, tid[:]) || !bytes.Equal(one(t, sp, 2).raw, sid[:]) {
		t.Fatal("ids")
	}
	if !bytes.Equal(one(t, sp, 4).raw, []byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2}) {
		t.Fatal("parent span id")
	}
	if string(one(t, sp, 5).raw) != "GET /users/{id}" || one(t, sp, 6).val != 2 {
		t.Fatal("name or kind")
	}
	if one(t, sp, 7).val != 1700000000000000123 || one(t, sp, 8).val != 1700000000002000123 {
		t.Fatalf("times %d %d", one(t, sp, 7).val, one(t, sp, 8).val)
	}
	a := attrs(t, sp, 9)
	if string(one(t, a["http.request.method"], 1).raw) != "GET" || one(t, a["http.response.status_code"], 3).val != 500 ||
		one(t, a["b"], 2).val != 0 || math.Float64frombits(one(t, a["f"], 4).val) != 1.5 {
		t.Fatalf("attributes: %+v", a)
	}
	arr := fieldsNamed(decode(t, one(t, a["ss"], 5).raw), 1)
	if len(arr) != 2 || string(one(t, decode(t, arr[1].raw), 1).raw) != "b" {
		t.Fatalf("string slice: %+v", arr)
	}
	ev := decode(t, one(t, sp, 11).raw)
	if one(t, ev, 1).val != 1700000000001000123 || string(one(t, ev, 2).raw) != "ev" || len(attrs(t, ev, 3)) != 1 {
		t.Fatalf("event: %+v", ev)
	}
	st := decode(t, one(t, sp, 15).raw)
	if string(one(t, st, 2).raw) != "boom" || one(t, st, 3).val != 2 {
		t.Fatalf("status: %+v", st)
	}
	// sampled | has-is-remote | is-remote (the parent came from another process)
	if f := one(t, sp, 16); f.wire != wireFixed32 || f.val != 0x301 {
		t.Fatalf("flags %#x", f.val)
	}
	// The client span: a root span, unset status, local parent.
	cs := decode(t, one(t, decode(t, scopes[1].raw), 2).raw)
	if len(fieldsNamed(cs, 4)) != 0 || one(t, cs, 6).val != 3 || one(t, cs, 16).val != 0x101 {
		t.Fatalf("client span: %+v", cs)
	}
	if len(decode(t, one(t, cs, 15).raw)) != 0 {
		t.Fatal("unset status must be an empty message")
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	cfg, err := ConfigFromEnv(env(nil))
	if err != nil || cfg.url != "http://localhost:4318/v1/traces" || cfg.timeout != 10*time.Second {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, _ = ConfigFromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/base/"}))
	if cfg.url != "http://c:4318/base/v1/traces" {
		t.Fatal(cfg.url)
	}
	cfg, _ = ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://c:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t:443/custom",
		"OTEL_EXPORTER_OTLP_HEADERS":         "a=1,b=x%20y",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":  "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
	}))
	if cfg.url != "https://t:443/custom" || cfg.headers["b"] != "x y" || cfg.headers["a"] != "1" ||
		cfg.timeout != 2500*time.Millisecond || !cfg.gzip {
		t.Fatalf("%+v", cfg)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `"grpc" is not supported`) {
		t.Fatalf("warnings: %q", cfg.Warnings)
	}
	if _, err := ConfigFromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://"})); err == nil {
		t.Fatal("an endpoint without host must be refused")
	}
}

func TestExportRetriesAndSendsHeaders(t *testing.T) {
	var calls atomic.Int32
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" ||
			r.Header.Get("Authorization") != "Bearer x" || r.Header.Get("Content-Encoding") != "gzip" ||
			!strings.HasPrefix(r.Header.Get("User-Agent"), "gotap-otlp") {
			http.Error(w, "bad request headers", http.StatusBadRequest)
			return
		}
		z, err := gzip.NewReader(r.Body)
		if err == nil {
			got, err = io.ReadAll(z)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	cfg, err := ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    srv.URL,
		"OTEL_EXPORTER_OTLP_HEADERS":     "Authorization=Bearer%20x",
		"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
	}))
	if err != nil {
		t.Fatal(err)
	}
	exp := New(cfg)
	spans := makeSpans(t)
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || !bytes.Equal(got, encodeTraceRequest(nil, spans)) {
		t.Fatalf("calls %d, body %d bytes", calls.Load(), len(got))
	}
	// A non-retryable status is returned at once, with the server's message.
	cfg.url = srv.URL + "/other"
	cfg.gzip = false
	err = New(cfg).ExportSpans(context.Background(), spans)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "bad request headers") {
		t.Fatalf("err = %v", err)
	}
	_ = exp.Shutdown(context.Background())
	if exp.ExportSpans(context.Background(), spans) == nil {
		t.Fatal("export after shutdown must fail")
	}
}

// A process about to end (Final) is not held by a collector that refuses the connection: the
// export fails at once, naming the spans, the endpoint and the cause. Outside Final the refusal
// is retried until the timeout, as a collector restarting would be.
func TestFinalExportFailsFastOnRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg, err := ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "60000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	spans := makeSpans(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = New(cfg).ExportSpans(Final(ctx), spans)
	var lost *LostError
	if !errors.As(err, &lost) {
		t.Fatalf("err = %v, want a *LostError", err)
	}
	want := fmt.Sprintf("%s not exported to http://%s/v1/traces: connection refused", Spans(len(spans)), addr)
	if err.Error() != want || lost.Spans != len(spans) || ctx.Err() != nil {
		t.Fatalf("err = %q, want %q (before the deadline)", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v: the cause must stay visible to errors.Is", err)
	}

	// Not final: retried until the bound, which the message then names with the last error.
	short, cancel2 := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel2()
	err = New(cfg).ExportSpans(short, spans)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded (last error: connection refused)") {
		t.Fatalf("err = %v", err)
	}
}
