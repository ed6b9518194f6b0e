// Package debugz serves the arena's measurement endpoint on its own listener (the same contract as
// go/arena/shared/debugz, which needs a newer Go).
package debugz

import (
	"context"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/metrics"
	"syscall"
	"time"
)

var samples = []metrics.Sample{
	{Name: "/gc/heap/allocs:bytes"},
	{Name: "/gc/heap/allocs:objects"},
	{Name: "/sched/goroutines:goroutines"},
}

// Serve starts GET /debug/runtime on addr (no-op when addr is empty).
func Serve(addr string) {
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("debug listener: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/runtime", func(w http.ResponseWriter, r *http.Request) {
		s := make([]metrics.Sample, len(samples))
		copy(s, samples)
		metrics.Read(s)
		out := map[string]uint64{}
		for _, m := range s {
			if m.Value.Kind() == metrics.KindUint64 {
				out[m.Name] = m.Value.Uint64()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	go http.Serve(ln, mux)
}

// Run serves h on addr until SIGTERM or SIGINT, then shuts the server down gracefully. It binds
// before returning control to the caller's setup so that "listening" means "ready".
func Run(name, addr string, h http.Handler) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("%s (legacy, Go 1.19-buildable) listening on %s", name, ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("%s: %v", name, err)
	}
}
