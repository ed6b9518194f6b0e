// exitapp makes one HTTP request to itself (a server and a client span), then ends the way EXIT
// says: "os" → os.Exit(3), "fatal" → log.Fatal (status 1), "syscall" → syscall.Exit(3), which
// bypasses os.Exit and so loses the spans still buffered (the control of
// crates/gotap-cli/tests/build_exit.rs). No OpenTelemetry code: `gotap build` adds it.
package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"syscall"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /exit/{how}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "bye")
	})
	go http.Serve(ln, mux)
	how := os.Getenv("EXIT")
	resp, err := http.Get("http://" + ln.Addr().String() + "/exit/" + how)
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch how {
	case "os":
		os.Exit(3)
	case "fatal":
		log.Fatal("exitapp: fatal end")
	case "syscall":
		syscall.Exit(3)
	}
}
