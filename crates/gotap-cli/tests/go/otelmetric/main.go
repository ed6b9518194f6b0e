// A program that already uses the OpenTelemetry SDK, metrics included (sdk/metric v1.39.0, an
// older release than the gotap runtime's): gotap build must raise the whole OTel family together
// in its temporary module graph. It serves one request to itself and returns from main.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func main() {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	counter, _ := mp.Meter("otelmetric").Int64Counter("requests")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		counter.Add(r.Context(), 1)
		io.WriteString(w, "hello")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, mux)
	resp, err := http.Get("http://" + ln.Addr().String() + "/hello")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
}
