// sigapp serves GET /hello/{n} on 127.0.0.1 (the address is its first line of output) until a
// signal ends it; crates/gotap-cli/tests/build_signals.rs stops it with SIGTERM or SIGINT. With
// SIGAPP_MODE=own it handles SIGTERM itself (signal.NotifyContext, registered after gotap's
// runtime registered its own, stopped as soon as the signal comes): it shuts the server down, prints "sigapp: graceful shutdown" and
// returns from main (status 0). By default it has no handler and the signal's default action
// ends it. SIGAPP_MODE=oneshot makes one request to itself and returns from main at once (a
// short-lived command). No OpenTelemetry code: `gotap build` adds it.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello/{n}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.PathValue("n"))
	})
	srv := &http.Server{Handler: mux}
	switch os.Getenv("SIGAPP_MODE") {
	case "oneshot":
		go srv.Serve(ln)
		resp, err := http.Get("http://" + ln.Addr().String() + "/hello/1")
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return
	case "own":
	default:
		fmt.Println(ln.Addr())
		log.Fatal(srv.Serve(ln)) // until the signal kills the process
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	<-ctx.Done()
	// NotifyContext's documented pattern: restore the default at once, so that a second signal
	// kills. The runtime, woken by the same signal, must still see that this one was handled.
	stop()
	// Still alive a while after the signal: had the runtime re-raised it, the process would be
	// dead before this sleep ends.
	time.Sleep(300 * time.Millisecond)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sigapp: graceful shutdown")
}
