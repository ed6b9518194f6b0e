// httpapp is the Go program gotap-ebpf's integration tests trace: a net/http server whose
// handlers answer, fail, and call other servers (inline and from a goroutine they start).
//
// Usage: httpapp <port>. Prints "ready" once listening.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func call(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fmt.Sprint(resp.StatusCode)
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	// Calls ?url= from the handler's goroutine.
	mux.HandleFunc("/call", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, call(r.URL.Query().Get("url")))
	})
	// Calls ?url= from a goroutine the handler starts (context must follow the `go` statement).
	mux.HandleFunc("/async", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan string)
		go func() { done <- call(r.URL.Query().Get("url")) }()
		io.WriteString(w, <-done)
	})
	registerPatterns(mux)
	srv := &http.Server{Addr: "127.0.0.1:" + os.Args[1], Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := listen(srv.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	srv.Serve(ln)
}
