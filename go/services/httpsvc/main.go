// httpsvc is the sample service gotap's demo and end-to-end tests trace: a net/http server whose
// handlers answer, fail, and call a downstream httpsvc over HTTP, both from the handler goroutine
// and from goroutines the handler starts.
//
// Usage:
//
//	httpsvc -listen 127.0.0.1:8080 -name A [-downstream http://127.0.0.1:8081]
//	httpsvc -name C -once URL    (one GET first thing in main, then exit)
//
// Routes: GET /users/{id}, GET /fanout, /fail (500), /notfound (404), /healthz. Each request
// prints one deterministic line to stdout ("NAME METHOD PATH STATUS BYTES"), so a test can check
// that tracing leaves the program's own output unchanged.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

type service struct {
	name       string
	downstream string
	client     *http.Client
	outMu      sync.Mutex
}

// get calls the downstream service and returns "STATUS BODY" (or "error: …").
func (s *service) get(r *http.Request, path string) (int, string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.downstream+path, nil)
	if err != nil {
		return 0, "error: " + err.Error()
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// counting remembers the status and size a handler wrote, for the log line.
type counting struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (c *counting) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *counting) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.bytes += n
	return n, err
}

func (s *service) logged(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &counting{ResponseWriter: w}
		h(c, r)
		if c.status == 0 {
			c.status = http.StatusOK
		}
		s.outMu.Lock()
		fmt.Printf("%s %s %s %d %d\n", s.name, r.Method, r.URL.Path, c.status, c.bytes)
		s.outMu.Unlock()
	}
}

// user answers one user; with a downstream, it asks the downstream from the handler goroutine.
func (s *service) user(w http.ResponseWriter, r *http.Request, id string) {
	if s.downstream == "" {
		fmt.Fprintf(w, "%s user %s\n", s.name, id)
		return
	}
	status, body := s.get(r, "/users/"+id)
	if status != http.StatusOK {
		w.WriteHeader(http.StatusBadGateway)
	}
	fmt.Fprintf(w, "%s user %s via [%d %s]\n", s.name, id, status, body)
}

// fanout asks the downstream for two users from two goroutines the handler starts.
func (s *service) fanout(w http.ResponseWriter, r *http.Request) {
	if s.downstream == "" {
		fmt.Fprintf(w, "%s fanout (no downstream)\n", s.name)
		return
	}
	ids := []string{"1", "2"}
	results := make([]string, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func(i int, id string) {
			defer wg.Done()
			status, body := s.get(r, "/users/"+id)
			results[i] = fmt.Sprintf("[%d %s]", status, body)
		}(i, id)
	}
	wg.Wait()
	fmt.Fprintf(w, "%s fanout %s\n", s.name, strings.Join(results, " "))
}

func (s *service) fail(w http.ResponseWriter, r *http.Request) {
	http.Error(w, s.name+" failed on purpose", http.StatusInternalServerError)
}

func (s *service) notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, s.name+" has nothing here", http.StatusNotFound)
}

func (s *service) healthz(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "ok\n")
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	name := flag.String("name", "httpsvc", "service name printed in responses and log lines")
	downstream := flag.String("downstream", "", "base URL of the downstream httpsvc (optional)")
	once := flag.String("once", "", "GET this URL first thing, print the status and exit without serving")
	graceful := flag.Bool("graceful", false, "on SIGINT/SIGTERM, count the signals for 300ms, print the count and exit 0")
	selfload := flag.Duration("selfload", 0, "serve, GET /users/42 from inside the process one request at a time for this long (after 1s of warm-up), print the cost per request on stderr and exit")
	selfloadTick := flag.Duration("selfload-tick", 0, "with -selfload: also print the cost per request of every interval this long")
	flag.Parse()

	if *graceful {
		// Shows how many signals the program received for one Ctrl-C or kill (a supervisor that
		// forwards signals must not deliver them twice).
		ch := make(chan os.Signal, 16)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			first := <-ch
			n := 1
			deadline := time.After(300 * time.Millisecond)
			for {
				select {
				case <-ch:
					n++
				case <-deadline:
					fmt.Printf("%s got %v x%d\n", *name, first, n)
					os.Exit(0)
				}
			}
		}()
	}

	if *once != "" {
		// The very first thing main does: shows whether a tracer sees a program's first calls.
		resp, err := http.Get(*once)
		if err != nil {
			log.Fatalf("httpsvc: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%s once %d\n", *name, resp.StatusCode)
		return
	}

	s := &service{
		name:       *name,
		downstream: strings.TrimRight(*downstream, "/"),
		client:     &http.Client{Timeout: 10 * time.Second},
	}
	mux := http.NewServeMux()
	s.routes(mux)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("httpsvc: %v", err)
	}
	// Stderr, so stdout holds only the per-request lines.
	fmt.Fprintf(os.Stderr, "httpsvc %s listening on %s\n", s.name, ln.Addr())
	if *selfload > 0 {
		go http.Serve(ln, mux)
		selfLoad(ln.Addr().String(), *selfload, *selfloadTick)
		return
	}
	log.Fatal(http.Serve(ln, mux))
}

// selfLoad is the benchmark load that leaves the scheduler out (scripts/bench-probes.sh): a client
// inside this process sends GET /users/42 over one keep-alive connection, one request at a time,
// as raw bytes (not through http.Client, so the only span per request is the server's, as with
// wrk or vegeta). With GOMAXPROCS=1 the client and the handler take turns on one thread that never
// sleeps (the other side's data is already in the socket when a goroutine parks), so the process's
// CPU time per request is the request's own cost, without the wake-ups of a server waiting for an
// external client, which vary with latency and drown a few microseconds. Prints, on stderr
// (stdout has a line per request), a line when the measured phase starts and one with its result:
//
//	selfload measuring
//	selfload requests=N seconds=S cpu_ns_per_request=C wall_ns_per_request=W
//
// With tick > 0, also one line per interval of that length (end time in Unix ns), so that a
// tracer attached and detached during the run can be compared with itself detached, interval by
// interval (scripts/bench-probes.sh, LOADS=toggle):
//
//	selfload tick end_unix_ns=T requests=N cpu_ns_per_request=C wall_ns_per_request=W
func selfLoad(addr string, d, tick time.Duration) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatalf("httpsvc: selfload: %v", err)
	}
	req := []byte("GET /users/42 HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: selfload\r\n\r\n")
	br := bufio.NewReader(conn)
	get := func() {
		if _, err := conn.Write(req); err != nil {
			log.Fatalf("httpsvc: selfload: %v", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			log.Fatalf("httpsvc: selfload: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("httpsvc: selfload: %s", resp.Status)
		}
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		get()
	}
	fmt.Fprintln(os.Stderr, "selfload measuring")
	cpu0, t0, n := cpuTime(), time.Now(), 0
	tickCPU, tickT, tickN := cpu0, t0, 0
	for time.Since(t0) < d {
		for i := 0; i < 100; i++ {
			get()
		}
		n += 100
		if tick > 0 {
			tickN += 100
			if now := time.Now(); now.Sub(tickT) >= tick {
				c := cpuTime()
				fmt.Fprintf(os.Stderr, "selfload tick end_unix_ns=%d requests=%d cpu_ns_per_request=%.0f wall_ns_per_request=%.0f\n",
					now.UnixNano(), tickN, float64((c-tickCPU).Nanoseconds())/float64(tickN), float64(now.Sub(tickT).Nanoseconds())/float64(tickN))
				tickCPU, tickT, tickN = c, now, 0
			}
		}
	}
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	fmt.Fprintf(os.Stderr, "selfload requests=%d seconds=%.3f cpu_ns_per_request=%.0f wall_ns_per_request=%.0f\n",
		n, wall.Seconds(), float64(cpu.Nanoseconds())/float64(n), float64(wall.Nanoseconds())/float64(n))
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("httpsvc: getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
