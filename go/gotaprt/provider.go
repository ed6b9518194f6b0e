package gotaprt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"gotap.dev/gotaprt/internal/otlp"
)

// Version is gotap's distro version, reported as telemetry.distro.version.
const Version = "0.1.0"

const (
	serverScope = "gotap/net/http/server"
	clientScope = "gotap/net/http/client"
)

// suppressKey marks contexts whose outgoing requests must not be traced: the exporter's own
// uploads, which would otherwise produce a client span per export, forever.
type suppressKey struct{}

var (
	initOnce    sync.Once
	ownProvider trace.TracerProvider
	w3c         = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
)

// Until the application installs its own (otel.SetTracerProvider / SetTextMapPropagator), the
// otel package hands out delegating placeholders of these types (go.opentelemetry.io/otel/internal/global).
const (
	placeholderProvider   = "*global.tracerProvider"
	placeholderPropagator = "*global.textMapPropagator"
)

// tracerProvider is the application's provider when it set one (gotap's spans then join its
// traces), else gotap's own SDK provider, created on first use so an application that installs
// its own never gets a second exporter.
func tracerProvider() trace.TracerProvider {
	if tp := otel.GetTracerProvider(); reflect.TypeOf(tp).String() != placeholderProvider {
		return tp
	}
	initOnce.Do(func() { ownProvider = newProvider() })
	return ownProvider
}

func propagator() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); reflect.TypeOf(p).String() != placeholderPropagator {
		return p
	}
	return w3c
}

func newProvider() trace.TracerProvider {
	if strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")) == "none" {
		return noop.NewTracerProvider()
	}
	ctx := context.Background()
	cfg, err := otlp.ConfigFromEnv(os.Getenv) // gotap's OTLP/HTTP exporter, internal/otlp
	if err != nil {
		fmt.Fprintf(os.Stderr, "gotap: cannot create the OTLP exporter, spans are dropped: %v\n", err)
		return noop.NewTracerProvider()
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(os.Stderr, "gotap: %s\n", w)
	}
	exp := otlp.New(cfg)
	ownExporter.Store(exp)
	res, err := resource.New(ctx, resource.WithAttributes(defaultResource()...), resource.WithFromEnv())
	if err != nil {
		// Partial resources come with an error (bad OTEL_RESOURCE_ATTRIBUTES): keep what parsed.
		fmt.Fprintf(os.Stderr, "gotap: resource: %v\n", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(suppressingExporter{exp}),
		sdktrace.WithResource(res),
	}
	for _, p := range spanProcessors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	ownSDK.Store(tp)
	return tp
}

// spanProcessors are the libraries' processors of gotap's own provider, added by their hooks
// (which run in init, before the provider is created on first use).
var spanProcessors []sdktrace.SpanProcessor

// ownSDK is gotap's own SDK provider once created (read at exit without racing its creation),
// ownExporter its exporter.
var (
	ownSDK      atomic.Pointer[sdktrace.TracerProvider]
	ownExporter atomic.Pointer[otlp.Exporter]
)

// mainExit is main.gotapMainExit, the hook rules/main.yaml defers in the main package's main
// function; the linker merges this declaration with the woven one (as for grpc's hooks).
//
//go:linkname mainExit main.gotapMainExit
var mainExit func()

// exitFlushTimeout bounds how long returning from main waits for the last export: a collector
// that is down must not keep the program from exiting.
const exitFlushTimeout = 3 * time.Second

// flushAtExit exports the spans still queued in gotap's batch processor when main returns. An
// application's own provider (otel.SetTracerProvider) is the application's to shut down.
func flushAtExit() {
	ctx, cancel := context.WithTimeout(context.Background(), exitFlushTimeout)
	defer cancel()
	flush(ctx, "at exit")
}

// flush exports gotap's pending spans within ctx, the process being about to end (`when` says
// how, for the message). The exporter is told so: a collector that refuses the connection is not
// retried, since nobody will listen before the process is gone. A failure is reported with the
// number of spans lost, the endpoint and the cause.
func flush(ctx context.Context, when string) {
	tp := ownSDK.Load()
	if tp == nil {
		return
	}
	err := tp.ForceFlush(otlp.Final(ctx))
	if err == nil {
		return
	}
	var lost *otlp.LostError
	if !errors.As(err, &lost) {
		// The bound passed while the exporter was still trying: it knows what it was sending.
		lost = ownExporter.Load().InFlight(err)
	}
	if lost != nil {
		fmt.Fprintf(os.Stderr, "gotap: %s not exported %s to %s: %v\n", otlp.Spans(lost.Spans), when, lost.URL, lost.Err)
		return
	}
	fmt.Fprintf(os.Stderr, "gotap: spans not exported %s: %v\n", when, err)
}

// defaultResource mirrors the resource gotap's eBPF strategy reports for a process.
func defaultResource() []attribute.KeyValue {
	exe, _ := os.Executable()
	name := filepath.Base(exe)
	if name == "." || name == "" {
		name = filepath.Base(os.Args[0])
	}
	host, _ := os.Hostname()
	return []attribute.KeyValue{
		attribute.String("service.name", name), // OTEL_SERVICE_NAME overrides (WithFromEnv)
		attribute.String("telemetry.distro.name", "gotap"),
		attribute.String("telemetry.distro.version", Version),
		attribute.String("process.runtime.name", "go"),
		attribute.String("process.runtime.version", runtime.Version()),
		attribute.Int("process.pid", os.Getpid()),
		attribute.String("process.executable.path", exe),
		attribute.String("host.name", host),
	}
}

type suppressingExporter struct{ sdktrace.SpanExporter }

func (e suppressingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	return e.SpanExporter.ExportSpans(context.WithValue(ctx, suppressKey{}, true), spans)
}
