//go:build !go1.22

package main

import (
	"io"
	"net/http"
)

func registerPatterns(mux *http.ServeMux) {
	mux.HandleFunc("/users/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "user\n")
	})
}
