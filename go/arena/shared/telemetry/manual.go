//go:build manual

package telemetry

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net/http"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

const Enabled = true

// Setup installs a tracer provider exporting OTLP/gRPC in batches (the SDK's defaults, as most
// users run it) and the W3C propagator.
func Setup(ctx context.Context, service string) (func(context.Context) error, error) {
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(Endpoint()), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

func Handler(h http.Handler, operation string) http.Handler { return otelhttp.NewHandler(h, operation) }

func HTTPClient(base *http.Client) *http.Client {
	c := *base
	t := c.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	c.Transport = otelhttp.NewTransport(t)
	return &c
}

func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}
}

func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler())}
}

// OpenDB keeps one span per statement, and only inside a traced request (schema and seed on start
// make none): rows/prepare/reset spans are off so that the expected span count per request is fixed
// (the arena checks it).
func OpenDB(driverName, dsn string) (*sql.DB, error) {
	return otelsql.Open(driverName, dsn, otelsql.WithSpanOptions(otelsql.SpanOptions{
		SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
			return trace.SpanContextFromContext(ctx).IsValid()
		},
		OmitConnResetSession: true,
		OmitConnPrepare:      true,
		OmitRows:             true,
		OmitConnectorConnect: true,
	}))
}
