// bigsvc is a realistically large Go service (gRPC server + OpenTelemetry SDK with OTLP
// exporters, tens of MB) used only to benchmark `gotap inspect` (scripts/bench-inspect.sh).
// It is its own module because its dependencies need a newer Go than the go1.19 test programs.
package main

import (
	"context"
	"log"
	"net"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

func main() {
	ctx := context.Background()
	var exp sdktrace.SpanExporter
	var err error
	switch os.Getenv("EXPORTER") {
	case "http":
		exp, err = otlptracehttp.New(ctx)
	case "stdout":
		exp, err = stdouttrace.New()
	default:
		exp, err = otlptracegrpc.New(ctx)
	}
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.Default()))
	otel.SetTracerProvider(tp)
	defer tp.Shutdown(ctx)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s)
	log.Printf("listening on %s", lis.Addr())
	log.Fatal(s.Serve(lis))
}
