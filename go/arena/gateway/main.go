// gateway: the arena's front door. GET /orders/{id}/details fetches the order from `orders` over
// HTTP, then the ordered product from `catalog` over gRPC, and answers with both in one JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"gotap.dev/arena/shared/catalogpb"
	"gotap.dev/arena/shared/debugz"
	"gotap.dev/arena/shared/telemetry"
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

type gateway struct {
	ordersURL string
	http      *http.Client
	catalog   catalogpb.CatalogClient
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (g *gateway) fetchOrder(ctx context.Context, id string) (order, int, error) {
	var o order
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.ordersURL+"/orders/"+id, nil)
	if err != nil {
		return o, http.StatusBadRequest, err
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return o, http.StatusBadGateway, fmt.Errorf("orders: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return o, resp.StatusCode, fmt.Errorf("orders answered %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		return o, http.StatusBadGateway, fmt.Errorf("orders: %w", err)
	}
	return o, http.StatusOK, nil
}

func (g *gateway) details(w http.ResponseWriter, r *http.Request) {
	o, code, err := g.fetchOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	p, err := g.catalog.GetProduct(r.Context(), &catalogpb.GetProductRequest{Id: o.ProductID})
	if err != nil {
		code := http.StatusBadGateway
		if status.Code(err) == codes.NotFound {
			code = http.StatusNotFound
		}
		writeJSON(w, code, map[string]string{"error": "catalog: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, details{
		Order:      o,
		Product:    product{ID: p.GetId(), Name: p.GetName(), PriceCents: p.GetPriceCents(), InStock: p.GetStock() > 0},
		TotalCents: p.GetPriceCents() * o.Quantity,
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "HTTP listen address")
	debugAddr := flag.String("debug-addr", "", "address of the uninstrumented /debug/runtime endpoint (empty: off)")
	ordersURL := flag.String("orders", "http://127.0.0.1:8081", "base URL of the orders service")
	catalogAddr := flag.String("catalog", "127.0.0.1:50051", "address of the catalog gRPC service")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown, err := telemetry.Setup(ctx, "gateway")
	if err != nil {
		log.Fatalf("telemetry: %v", err)
	}
	debugz.Serve(*debugAddr)

	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, telemetry.GRPCDialOptions()...)
	conn, err := grpc.NewClient(*catalogAddr, opts...)
	if err != nil {
		log.Fatalf("catalog client: %v", err)
	}
	defer conn.Close()
	// Enough idle connections for the arena's load: the default (2 per host) would measure
	// connection churn instead of the services.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	g := &gateway{
		ordersURL: *ordersURL,
		http:      telemetry.HTTPClient(&http.Client{Transport: transport, Timeout: 10 * time.Second}),
		catalog:   catalogpb.NewCatalogClient(conn),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}/details", g.details)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: telemetry.Handler(mux, "gateway"), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("gateway listening on %s (manual instrumentation: %v)", ln.Addr(), telemetry.Enabled)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		log.Printf("telemetry shutdown: %v", err)
	}
}
