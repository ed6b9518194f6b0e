// A gRPC service instrumented by hand with go.opentelemetry.io/contrib's otelgrpc (v0.65.0, on
// otel v1.40.0, older than the gotap runtime's): the program sets up the trace SDK itself, a
// TracerProvider exporting through the OTLP gRPC trace exporter (otlptracegrpc, configured by
// OTEL_EXPORTER_OTLP_ENDPOINT), installed as the global provider with the W3C propagator, and
// gives otelgrpc's stats handlers to its server and its client. main starts a span "main" and
// calls the program's own server (grpc.health.v1.Health/Check) with its context; the handler
// starts a span "work". The program shuts its provider down before printing the answer, so
// every span it was given has been exported when it exits. The resource carries
// app.provider=otelgrpcapp: spans exported by this provider, not by gotap's own, have it.
package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// checker is grpc's health server with a span of the program's own around each Check.
type checker struct{ *health.Server }

func (c checker) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	_, span := otel.Tracer("example.com/otelgrpcapp").Start(ctx, "work")
	defer span.End()
	return c.Server.Check(ctx, req)
}

func main() {
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		fail(err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithAttributes(attribute.String("app.provider", "otelgrpcapp")))
	if err != nil {
		fail(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	srv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler()))
	healthpb.RegisterHealthServer(srv, checker{health.NewServer()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go srv.Serve(ln)

	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		fail(err)
	}
	ctx, root := otel.Tracer("example.com/otelgrpcapp").Start(ctx, "main")
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fail(err)
	}
	root.End()
	conn.Close()
	srv.GracefulStop()
	if err := tp.Shutdown(context.Background()); err != nil {
		fail(err)
	}
	fmt.Println(resp.GetStatus())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
