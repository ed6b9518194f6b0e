// catalog (legacy): the arena's catalog for toolchains that cannot build the gRPC one (Go < 1.22):
// GET /products/{id} over plain HTTP/JSON, 1 000 products in memory.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"gotap.dev/arena/legacy/internal/debugz"
)

type product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	InStock    bool   `json:"in_stock"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8082", "listen address")
	debugAddr := flag.String("debug-addr", "", "address of the /debug/runtime endpoint (empty: off)")
	flag.Parse()
	debugz.Serve(*debugAddr)

	products := make(map[int64]product, 1000)
	for i := int64(1); i <= 1000; i++ {
		products[i] = product{ID: i, Name: fmt.Sprintf("product %d", i), PriceCents: 100 + i*7%9000, InStock: i%13 != 0}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/products/", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/products/"), 10, 64)
		p, ok := products[id]
		if err != nil || !ok {
			http.Error(w, `{"error":"no such product"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p)
	})
	debugz.Run("catalog", *addr, mux)
}
