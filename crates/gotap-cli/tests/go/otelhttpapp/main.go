// A program instrumented by hand with go.opentelemetry.io/contrib's otelhttp (v0.64.0, built on
// otel v1.39.0, older than the gotap runtime's): gotap build must raise otel, the SDK and contrib's
// requirements together in its temporary module graph. It serves one request to itself and
// returns from main.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, otelhttp.NewHandler(mux, "hello"))
	resp, err := http.Get("http://" + ln.Addr().String() + "/hello")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
}
