// A service that sets up the OpenTelemetry trace SDK itself (otel v1.28.0, much older than the
// gotap runtime's): a TracerProvider exporting through the OTLP/HTTP trace exporter (otlptracehttp,
// configured by OTEL_EXPORTER_OTLP_ENDPOINT), installed as the global provider with the W3C
// propagator. main starts a span "main" and calls the program's own server with its context; the
// handler starts a span "work". The program shuts its provider down before printing the answer,
// so every span it was given has been exported when it exits. The resource carries
// app.provider=<module name>: spans exported by this provider, not by gotap's own, have it.
//
// crates/gotap-cli/tests/go/otelv147 is this program on a release newer than the runtime's.
package main

import (
	"context"
	"fmt"
	"io"
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

const name = "oteltrace"

func main() {
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		fail(err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithAttributes(attribute.String("app.provider", name)))
	if err != nil {
		fail(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	tracer := otel.Tracer("example.com/" + name)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		_, span := tracer.Start(r.Context(), "work")
		defer span.End()
		io.WriteString(w, "hello")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go http.Serve(ln, mux)

	ctx, root := tracer.Start(ctx, "main")
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/hello", nil)
	if err != nil {
		fail(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	root.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		fail(err)
	}
	fmt.Println(string(body))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
