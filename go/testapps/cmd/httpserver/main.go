// httpserver is a net/http server: the library gotap instruments first. It listens on
// 127.0.0.1:$PORT (default 8080) and answers /hello.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

//go:noinline
func greet(name string) string {
	if name == "" {
		return "hello, nobody"
	}
	return "hello, " + name
}

type server struct{ hits int }

//go:noinline
func (s *server) hello(w http.ResponseWriter, r *http.Request) {
	s.hits++
	fmt.Fprintln(w, greet(r.URL.Query().Get("name")))
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", s.hello)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
