// crates/gotap-cli/tests/go/oteltrace's program on otel v1.47.0 (newer than the gotap runtime's): a
// TracerProvider of the program's own with the OTLP/HTTP trace exporter, a span "main" around
// a request to its own server, whose handler starts a span "work"; the resource carries
// app.provider=otelv147. Only the module's requirements (go.mod) and this name differ.
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

const name = "otelv147"

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
