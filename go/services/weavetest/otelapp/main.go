// otelapp: a service that already uses the OpenTelemetry API and SDK itself (its own tracer
// provider and propagator, set before serving). Woven by `gotap build`, gotap's HTTP spans must
// go to the application's provider and join its traces: the application's span made from the
// request context is a child of gotap's server span.
//
//	GET /work   makes an application span "app-work" from r.Context()
//
// Listens on $ADDR and prints "listening on ADDR" once ready.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	otel.SetTracerProvider(sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "otelapp-own-sdk"))),
	))
	otel.SetTextMapPropagator(propagation.TraceContext{})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		_, span := otel.Tracer("otelapp").Start(r.Context(), "app-work")
		span.End()
		fmt.Fprintln(w, "done")
	})
	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
