//go:debug httpmuxgo121=0
//go:build go1.22

package main

import "net/http"

// Go ≥ 1.22 patterns (method + wildcard): the server span is named by the route. The //go:debug
// line keeps them on although go.mod says go 1.19 (which would default httpmuxgo121=1).
func (s *service) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /users/{id}", s.logged(func(w http.ResponseWriter, r *http.Request) {
		s.user(w, r, r.PathValue("id"))
	}))
	mux.HandleFunc("GET /fanout", s.logged(s.fanout))
	mux.HandleFunc("/fail", s.logged(s.fail))
	mux.HandleFunc("/notfound", s.logged(s.notFound))
	mux.HandleFunc("/healthz", s.logged(s.healthz))
}
