// httpapp is the Go program gotap-ebpf's integration tests trace: a net/http server whose
// handlers answer, fail, and call other servers (inline and from a goroutine they start).
//
// Usage: httpapp <port> [tls]. Prints "ready" once listening. With tls: HTTPS with a throwaway
// self-signed certificate (HTTP/1.1 and HTTP/2 by ALPN).
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// call GETs url; a non-empty traceparent is sent as that header (an application propagating a
// context of its own).
func call(url, traceparent string) string {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
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
	// Calls ?url= (with ?tp= as traceparent) from the handler's goroutine.
	mux.HandleFunc("/call", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, call(r.URL.Query().Get("url"), r.URL.Query().Get("tp")))
	})
	// Calls ?url= from a goroutine the handler starts (context must follow the `go` statement).
	mux.HandleFunc("/async", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan string)
		go func() { done <- call(r.URL.Query().Get("url"), r.URL.Query().Get("tp")) }()
		io.WriteString(w, <-done)
	})
	// /startworker starts (once) a long-lived goroutine from inside a request; /kick?url= hands it
	// a URL to call later, outside any request it runs in.
	work := make(chan string, 16)
	var startOnce sync.Once
	mux.HandleFunc("/startworker", func(w http.ResponseWriter, r *http.Request) {
		startOnce.Do(func() {
			go func() {
				for url := range work {
					call(url, "")
				}
			}()
		})
	})
	mux.HandleFunc("/kick", func(w http.ResponseWriter, r *http.Request) {
		work <- r.URL.Query().Get("url")
	})
	registerPatterns(mux)
	srv := &http.Server{Addr: "127.0.0.1:" + os.Args[1], Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := listen(srv.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(os.Args) > 2 && os.Args[2] == "tls" {
		cert, err := selfSigned()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		fmt.Println("ready")
		srv.ServeTLS(ln, "", "")
		return
	}
	fmt.Println("ready")
	srv.Serve(ln)
}
