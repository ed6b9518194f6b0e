// usdtsites calls gotap-style probe sites with fixed, known values, so the USDT note writer/reader
// and the eBPF site strategy can be tested without a woven net/http. The sites, the semaphore and
// the record follow the contract of instrumentations/nethttp/probes (docs/probes.md) in its argument ABI: the
// sites start with the nop5 and pass no event, as older builds' and hand-written sites do (the
// woven sites' event ABI is exercised by the e2e tests of gotap build --probes).
//
// While the semaphore is 0 it calls nothing; once a tracer attaches (the kernel increments the
// semaphore) it fires both sites every 10 ms, prints "fired N" after each pair, and exits after
// -n pairs (0 = forever).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
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
func gotapProbeHTTPServer(method, path string, status, durationNs int64, pattern string, rec *gotapProbeRecord)

//go:noescape
func gotapProbeHTTPClient(method, url string, status, durationNs int64, errText string, rec *gotapProbeRecord)

func main() {
	n := flag.Int("n", 0, "exit after this many pairs of site calls (0: never)")
	flag.Parse()
	fmt.Println("usdtsites ready")
	fired := 0
	for *n == 0 || fired < *n {
		time.Sleep(10 * time.Millisecond)
		if gotapProbeSemaphore[0] == 0 {
			continue
		}
		start := time.Now().UnixNano()
		srv := &gotapProbeRecord{
			traceHi: 0x0af7651916cd43dd, traceLo: 0x8448eb211c80319c,
			span: 0xb7ad6b7169203331, parent: 0x00f067aa0ba902b7, start: start, flags: 3,
			host: "example.com:8080", remote: "10.1.2.3:4567", userAgent: "usdtsites/1",
			proto: "HTTP/1.1", query: "q=1",
		}
		cli := &gotapProbeRecord{
			traceHi: srv.traceHi, traceLo: srv.traceLo, span: 0x1111111111111111, parent: srv.span,
			start: start + 1000, flags: 1,
		}
		gotapProbeHTTPClient("POST", "http://127.0.0.1:9/orders?id=7", 0, 2000, "dial tcp 127.0.0.1:9: connect: connection refused", cli)
		gotapProbeHTTPServer("GET", "/users/42", 503, 5000, "GET /users/{id}", srv)
		fired++
		fmt.Println("fired", fired)
	}
	os.Stdout.Sync()
}
