// app serves one HTTP request, then returns from main: the request's span is then still in the
// batch processor of the woven runtime (crates/gotap-cli/tests/build_more.rs). It is a module of
// the workspace ../go.work and also builds alone (GOWORK=off, replace in go.mod).
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"

	"example.com/lib"
)

func main() {
	// CPUPROFILE: record a profile of the run (the PGO tests use it as default.pgo).
	if p := os.Getenv("CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			panic(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			panic(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		panic(err)
	}
	fmt.Println("listening on", ln.Addr())
	done := make(chan struct{})
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", lib.Greeting())
		once.Do(func() { close(done) })
	})}
	go srv.Serve(ln)
	<-done
	// Shutdown waits for the request (and so its span) to finish.
	if err := srv.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("bye")
}
