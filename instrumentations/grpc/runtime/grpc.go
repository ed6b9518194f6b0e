package gotaprt

import (
	"context"
	"strings"
	_ "unsafe" // for go:linkname

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// gRPC spans. Names, attributes and status follow instrumentations/grpc/spans.rs exactly.
//
// This package does not import google.golang.org/grpc (that would add grpc to every woven
// program's module graph): the woven grpc package declares the hook variables below with
// standard-library types only (instrumentations/grpc/weave/rules.yaml) and this file declares the same symbols through
// //go:linkname. The linker merges the two zero-valued variables into one; without grpc in the
// program, these are plain variables nobody reads. The linker does not compare the types: the
// two declarations must stay identical.

//go:linkname grpcServerStart google.golang.org/grpc.gotapServerStart
var grpcServerStart func(ctx context.Context, fullMethod string, md map[string][]string, peer string, statsHandler bool) (context.Context, func(code int, msg string))

//go:linkname grpcClientStart google.golang.org/grpc.gotapClientStart
var grpcClientStart func(ctx context.Context, fullMethod string, target string) (context.Context, []string, func(code int, msg string))

const (
	grpcServerScope = "gotap/grpc/server"
	grpcClientScope = "gotap/grpc/client"
)

var _ = addHook(registerGRPC)

func registerGRPC() {
	grpcServerStart = grpcServer
	grpcClientStart = grpcClient
}

// grpcServerErrors are the status codes semconv counts as server errors: UNKNOWN,
// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. A client sees every
// non-OK code as an error.
func grpcServerError(code int) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}

// grpcMethod splits "/pkg.Service/Method" into the span name "pkg.Service/Method", the service
// and the method; ok is false when the name has no service part.
func grpcMethod(full string) (name, service, method string, ok bool) {
	name = strings.TrimPrefix(full, "/")
	i := strings.LastIndexByte(name, '/')
	if i <= 0 || i == len(name)-1 {
		if name == "" {
			name = "grpc"
		}
		return name, "", "", false
	}
	return name, name[:i], name[i+1:], true
}

// grpcTarget is the server a ClientConn target names ("host:port", "dns:///host:port",
// "passthrough:///host:port"); ok is false for unix sockets and empty targets, port -1 if none.
func grpcTarget(target string) (host string, port int, ok bool) {
	if i := strings.Index(target, "://"); i >= 0 {
		if scheme := target[:i]; scheme == "unix" || scheme == "unix-abstract" {
			return "", -1, false
		}
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[j+1:] // after the (usually empty) authority
		}
		target = rest
	} else if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return "", -1, false
	}
	if target == "" {
		return "", -1, false
	}
	host, port = splitHostPort(target)
	return host, port, true
}

func grpcAttrs(full string) (string, []attribute.KeyValue) {
	name, service, method, ok := grpcMethod(full)
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, attribute.String("rpc.system", "grpc"))
	if ok {
		attrs = append(attrs, attribute.String("rpc.service", service), attribute.String("rpc.method", method))
	}
	return name, attrs
}

// mdCarrier reads and writes gRPC metadata (keys are lower case there).
type mdCarrier map[string][]string

func (c mdCarrier) Get(k string) string {
	if v := c[strings.ToLower(k)]; len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c mdCarrier) Set(k, v string) { c[strings.ToLower(k)] = []string{v} }
func (c mdCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

func grpcNoEnd(int, string) {}

func grpcServer(ctx context.Context, full string, md map[string][]string, peer string, statsHandler bool) (context.Context, func(code int, msg string)) {
	// grpc's handleStream calls the server's stats handler's TagRPC before processing the RPC, so a
	// tracing stats handler (contrib otelgrpc) has already started the RPC's server span and put it
	// in ctx. grpc later hands that handler the ctx of processUnaryRPC/processStreamingRPC/processRPC
	// — the one the advice returns — and otelgrpc ends trace.SpanFromContext(ctx): a span of
	// gotap's here would take otelgrpc's attributes and end, and otelgrpc's own would never end.
	// So gotap leaves ctx alone and makes no second server span; the handler's spans parent to
	// otelgrpc's. Only with a stats handler: without one, a recording span in ctx is a caller's
	// (net/http's server span when grpc is served through ServeHTTP), and gotap's grpc span goes
	// under it as usual.
	if statsHandler && trace.SpanFromContext(ctx).IsRecording() {
		return ctx, grpcNoEnd
	}
	if md != nil {
		ctx = propagator().Extract(ctx, mdCarrier(md))
	}
	name, attrs := grpcAttrs(full)
	if peer != "" {
		host, port := splitHostPort(peer)
		attrs = append(attrs, attribute.String("network.peer.address", host))
		if port >= 0 {
			attrs = append(attrs, attribute.Int("network.peer.port", port))
		}
	}
	ctx, span := tracerProvider().Tracer(grpcServerScope, trace.WithInstrumentationVersion(Version)).
		Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return ctx, func(code int, msg string) {
		span.SetAttributes(attribute.Int("rpc.grpc.status_code", code))
		if grpcServerError(code) {
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
}

func grpcClient(ctx context.Context, full string, target string) (context.Context, []string, func(code int, msg string)) {
	// The OTLP/gRPC exporter of an application with its own SDK: tracing its uploads would add a
	// span per export, forever.
	if ctx.Value(suppressKey{}) != nil || strings.HasPrefix(full, "/opentelemetry.proto.collector.") {
		return ctx, nil, nil
	}
	name, attrs := grpcAttrs(full)
	if host, port, ok := grpcTarget(target); ok {
		attrs = append(attrs, attribute.String("server.address", host))
		if port >= 0 {
			attrs = append(attrs, attribute.Int("server.port", port))
		}
	}
	ctx, span := tracerProvider().Tracer(grpcClientScope, trace.WithInstrumentationVersion(Version)).
		Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	carrier := mdCarrier{}
	propagator().Inject(ctx, carrier)
	kv := make([]string, 0, 2*len(carrier))
	for k, v := range carrier {
		kv = append(kv, k, v[0])
	}
	return ctx, kv, func(code int, msg string) {
		span.SetAttributes(attribute.Int("rpc.grpc.status_code", code))
		if code != 0 {
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
}
