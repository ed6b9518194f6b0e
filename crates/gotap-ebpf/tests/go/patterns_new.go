//go:debug httpmuxgo121=0
//go:build go1.22

package main

import (
	"io"
	"net/http"
)

// Go ≥ 1.22 patterns: the server span is named by route (Request.Pattern, Go ≥ 1.23).
func registerPatterns(mux *http.ServeMux) {
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "user "+r.PathValue("id")+"\n")
	})
}
