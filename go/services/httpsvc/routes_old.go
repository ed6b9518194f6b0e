//go:build !go1.22

package main

import (
	"net/http"
	"strings"
)

// Before Go 1.22 the mux matches path prefixes only: methods and the {id} wildcard by hand.
func (s *service) routes(mux *http.ServeMux) {
	getOnly := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/users/", s.logged(getOnly(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		if id == "" || strings.Contains(id, "/") {
			http.NotFound(w, r)
			return
		}
		s.user(w, r, id)
	})))
	mux.HandleFunc("/fanout", s.logged(getOnly(s.fanout)))
	mux.HandleFunc("/fail", s.logged(s.fail))
	mux.HandleFunc("/notfound", s.logged(s.notFound))
	mux.HandleFunc("/healthz", s.logged(s.healthz))
}
