// gateway (legacy): GET /orders/{id}/details fetches the order from `orders`, then its product from
// `catalog`, both over HTTP/JSON (the real gateway calls catalog over gRPC), with the request's
// context so an instrumentation can link the three hops.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
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

type product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	InStock    bool   `json:"in_stock"`
}

type details struct {
	Order      order   `json:"order"`
	Product    product `json:"product"`
	TotalCents int64   `json:"total_cents"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	debugAddr := flag.String("debug-addr", "", "address of the /debug/runtime endpoint (empty: off)")
	ordersURL := flag.String("orders", "http://127.0.0.1:8081", "base URL of the orders service")
	catalogAddr := flag.String("catalog", "127.0.0.1:8082", "host:port of the (legacy, HTTP) catalog service")
	flag.Parse()
	debugz.Serve(*debugAddr)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	get := func(r *http.Request, url string, v interface{}) (int, error) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, fmt.Errorf("%s: %s", url, resp.Status)
		}
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/orders/", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/orders/"), "/details")
		if id == "" || strings.Contains(id, "/") || !strings.HasSuffix(r.URL.Path, "/details") {
			http.NotFound(w, r)
			return
		}
		var d details
		if code, err := get(r, *ordersURL+"/orders/"+id, &d.Order); err != nil {
			if code == http.StatusNotFound {
				http.Error(w, `{"error":"no such order"}`, http.StatusNotFound)
			} else {
				http.Error(w, `{"error":"orders unavailable"}`, http.StatusBadGateway)
			}
			return
		}
		if _, err := get(r, fmt.Sprintf("http://%s/products/%d", *catalogAddr, d.Order.ProductID), &d.Product); err != nil {
			http.Error(w, `{"error":"catalog unavailable"}`, http.StatusBadGateway)
			return
		}
		d.TotalCents = d.Product.PriceCents * d.Order.Quantity
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	})
	debugz.Run("gateway", *addr, mux)
}
