// Package debugz serves the arena's measurement endpoint on its own listener, so that the
// measurements never go through (or get counted by) the instrumentation under test.
package debugz

import (
	"encoding/json"
	"log"
	"net"
	"net/http"
	"runtime/metrics"
)

// Counters read by `gotap bench` before and after a load phase: allocations per request come from
// the difference.
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
