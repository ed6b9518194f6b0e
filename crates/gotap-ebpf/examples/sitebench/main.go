// sitebench calls gotap's two net/http probe sites (the same assembly, record and site event as
// go/probes/nethttp, each event built per call as the woven code does) in timed bursts, guarded by the semaphore like woven code, and prints the cost per span every second:
//
//	sem=<semaphore> spans=<spans in that second> ns/span=<wall ns per span>
//
// Run it, attach a tracer, detach: the three phases give the disabled cost (semaphore 0: one
// load and a branch), and the traced cost (argument preparation + probe hit + capture).
// -force calls the sites even while the semaphore is 0 (cost of the calls without a probe).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"time"
	"unsafe"
)

var gotapProbeSemaphore = [8]uint16{0, 0x6f67, 0x6174, 0x2d70, 0x6573, 0x616d, 0x6870, 0x726f}

type gotapProbeRecord struct {
	traceHi, traceLo uint64
	span, parent     uint64
	start            int64
	flags            uint64
	host             string
	remote           string
	userAgent        string
	proto            string
	query            string
}

//go:noescape
func gotapProbeHTTPServer(method, path string, status, durationNs int64, pattern string, rec *gotapProbeRecord, event string)

//go:noescape
func gotapProbeHTTPClient(method, url string, status, durationNs int64, errText string, rec *gotapProbeRecord, event string)

var (
	serverCaps = [8]int{16, 256, 128, 128, 64, 255, 16, 256}
	clientCaps = [8]int{16, 512, 256}
)

// event is go/probes/nethttp's gotapProbeEvent.
func event(rec *gotapProbeRecord, status, durationNs int64, strs *[8]string, caps *[8]int) string {
	n := 80
	for i := range strs {
		if len(strs[i]) > caps[i] {
			strs[i] = strs[i][:caps[i]]
		}
		n += len(strs[i])
	}
	b := make([]byte, n)
	for i, v := range [8]uint64{uint64(status), uint64(durationNs), rec.traceHi, rec.traceLo, rec.span, rec.parent, uint64(rec.start), rec.flags} {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	off := 80
	for i, s := range strs {
		binary.LittleEndian.PutUint16(b[64+2*i:], uint16(len(s)))
		off += copy(b[off:], s)
	}
	return unsafe.String(&b[0], n)
}

// spans calls the two sites as woven code does: the client span, then its parent server span.
func spans(srv, cli *gotapProbeRecord) {
	const url, path, pattern = "http://127.0.0.1:8080/users/42", "/users/42", "GET /users/{id}"
	c := [8]string{"GET", url, ""}
	gotapProbeHTTPClient("GET", url, 200, 1000, "", cli, event(cli, 200, 1000, &c, &clientCaps))
	s := [8]string{"GET", path, pattern, srv.host, srv.remote, srv.userAgent, srv.proto, srv.query}
	gotapProbeHTTPServer("GET", path, 200, 5000, pattern, srv, event(srv, 200, 5000, &s, &serverCaps))
}

func main() {
	seconds := flag.Int("seconds", 10, "run this long")
	force := flag.Bool("force", false, "call the sites even while the semaphore is 0")
	rate := flag.Int("rate", 0, "spans per second, evenly paced (0: timed bursts, as fast as possible)")
	flag.Parse()
	fmt.Println("sitebench ready")
	srv := &gotapProbeRecord{
		traceHi: 1, traceLo: 2, span: 3, flags: 1,
		host: "example.com:8080", remote: "10.1.2.3:4567", userAgent: "sitebench/1", proto: "HTTP/1.1",
	}
	cli := &gotapProbeRecord{traceHi: 1, traceLo: 2, span: 4, parent: 3, flags: 1}
	if *rate > 0 {
		paced(*seconds, *rate, srv, cli)
		return
	}
	// Bursts of 1000 spans, then a 10 ms pause so the tracer's reader keeps up (no ring-buffer
	// drops); only the bursts are timed.
	for s := 0; s < *seconds; s++ {
		n := 0
		var busy time.Duration
		start := time.Now()
		for time.Since(start) < time.Second {
			t0 := time.Now()
			for i := 0; i < 500; i++ {
				if gotapProbeSemaphore[0] != 0 || *force {
					srv.start = int64(i)
					spans(srv, cli)
				}
				n += 2
			}
			busy += time.Since(t0)
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Printf("sem=%d spans=%d ns/span=%.2f\n", gotapProbeSemaphore[0], n, float64(busy.Nanoseconds())/float64(n))
	}
}

// paced calls a client and a server site every 2/rate seconds, like a service answering
// rate/2 requests per second with one outgoing call each: the cost of a tracer at a fixed load
// rather than at saturation.
func paced(seconds, rate int, srv, cli *gotapProbeRecord) {
	interval := 2 * time.Second / time.Duration(rate)
	start := time.Now()
	next := start
	n := 0
	for time.Since(start) < time.Duration(seconds)*time.Second {
		if gotapProbeSemaphore[0] != 0 {
			srv.start = int64(n)
			spans(srv, cli)
		}
		n += 2
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	fmt.Printf("sem=%d spans=%d paced at %d/s\n", gotapProbeSemaphore[0], n, rate)
}
