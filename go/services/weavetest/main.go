// weavetest: a plain net/http service (no OpenTelemetry code) that `gotap build` tests weave.
//
//	GET /users/{id}  calls GET /backend on itself from a goroutine with the request's context
//	                 (client span child of the server span, traceparent to the backend)
//	GET /backend     200 "ok"
//	GET /fail        500
//
// Listens on $ADDR (default 127.0.0.1:8080) and prints "listening on ADDR" once ready.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		type result struct {
			body string
			err  error
		}
		done := make(chan result)
		go func() {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://"+addr+"/backend", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- result{string(b), err}
		}()
		res := <-done
		if res.err != nil {
			http.Error(w, res.err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "user %s: %s\n", r.PathValue("id"), res.body)
	})
	mux.HandleFunc("GET /backend", func(w http.ResponseWriter, r *http.Request) {
		// Echo what arrived, so a test can see the propagated context.
		w.Header().Set("X-Seen-Traceparent", r.Header.Get("Traceparent"))
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
