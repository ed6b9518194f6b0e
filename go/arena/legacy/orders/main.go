// orders (legacy): the arena's orders service for toolchains that cannot build the real one
// (modernc.org/sqlite, pgx and Go 1.22 ServeMux patterns): GET /orders/{id} over HTTP/JSON from
// 10 000 orders held in memory (no database).
package main

import (
	"encoding/json"
	"flag"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gotap.dev/arena/legacy/internal/debugz"
)

type order struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	ProductID  int64     `json:"product_id"`
	Quantity   int64     `json:"quantity"`
	CreatedAt  time.Time `json:"created_at"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	debugAddr := flag.String("debug-addr", "", "address of the /debug/runtime endpoint (empty: off)")
	flag.String("db", "", "ignored: the legacy orders service keeps its orders in memory")
	flag.Parse()
	debugz.Serve(*debugAddr)

	// The same seed as the real service, so gateway answers look alike.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	orders := make(map[int64]order, 10000)
	for i := int64(1); i <= 10000; i++ {
		orders[i] = order{ID: i, CustomerID: i%100 + 1, ProductID: i*919%1000 + 1, Quantity: i%5 + 1, CreatedAt: start.Add(time.Duration(i-1) * time.Minute)}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/orders/", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/orders/"), 10, 64)
		o, ok := orders[id]
		if err != nil || !ok {
			http.Error(w, `{"error":"no such order"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(o)
	})
	debugz.Run("orders", *addr, mux)
}
