// orders: the arena's HTTP JSON API over a real database through database/sql. Go 1.22+ ServeMux
// patterns with path parameters; SQLite (modernc.org/sqlite, pure Go, default) or PostgreSQL
// (pgx's database/sql driver) chosen by -db. The schema is created and seeded on start.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"gotap.dev/arena/shared/debugz"
	"gotap.dev/arena/shared/telemetry"
)

const (
	seedOrders    = 10000
	seedCustomers = 500
	seedProducts  = 1000
)

type Order struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	ProductID  int64     `json:"product_id"`
	Quantity   int64     `json:"quantity"`
	CreatedAt  time.Time `json:"created_at"`
}

type store struct {
	db       *sql.DB
	postgres bool
}

// q turns `?` placeholders into PostgreSQL's `$n`.
func (s *store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func openStore(dsn string) (*store, func(), error) {
	cleanup := func() {}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := telemetry.OpenDB("pgx", dsn)
		if err != nil {
			return nil, nil, err
		}
		return &store{db: db, postgres: true}, cleanup, nil
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	if path == "" {
		dir, err := os.MkdirTemp("", "arena-orders-")
		if err != nil {
			return nil, nil, err
		}
		path = filepath.Join(dir, "orders.db")
		cleanup = func() { os.RemoveAll(dir) }
	}
	db, err := telemetry.OpenDB("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, nil, err
	}
	return &store{db: db}, cleanup, nil
}

func (s *store) migrate(ctx context.Context) error {
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.postgres {
		id = "BIGSERIAL PRIMARY KEY"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS orders (id ` + id + `, customer_id BIGINT NOT NULL, product_id BIGINT NOT NULL, quantity BIGINT NOT NULL, created_at TIMESTAMP NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id)`,
	}
	for _, st := range stmts {
		if _, err := s.db.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := int64(0); i < seedOrders; i++ {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO orders (customer_id, product_id, quantity, created_at) VALUES (?, ?, ?, ?)`),
			1+i%seedCustomers, 1+(i*7919)%seedProducts, 1+i%5, base.Add(time.Duration(i)*time.Minute)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return tx.Commit()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (s *store) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "order id must be an integer")
			return
		}
		var o Order
		err = s.db.QueryRowContext(r.Context(), s.q(`SELECT id, customer_id, product_id, quantity, created_at FROM orders WHERE id = ?`), id).
			Scan(&o.ID, &o.CustomerID, &o.ProductID, &o.Quantity, &o.CreatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			httpError(w, http.StatusNotFound, "no such order")
			return
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		cust, err := strconv.ParseInt(r.URL.Query().Get("customer"), 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "customer must be an integer")
			return
		}
		rows, err := s.db.QueryContext(r.Context(), s.q(`SELECT id, customer_id, product_id, quantity, created_at FROM orders WHERE customer_id = ? ORDER BY id DESC LIMIT 20`), cust)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		defer rows.Close()
		out := []Order{}
		for rows.Next() {
			var o Order
			if err := rows.Scan(&o.ID, &o.CustomerID, &o.ProductID, &o.Quantity, &o.CreatedAt); err != nil {
				httpError(w, http.StatusInternalServerError, err.Error())
				return
			}
			out = append(out, o)
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		var o Order
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&o); err != nil || o.CustomerID <= 0 || o.ProductID <= 0 || o.Quantity <= 0 {
			httpError(w, http.StatusBadRequest, "body must be {customer_id, product_id, quantity} with positive integers")
			return
		}
		o.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
		if s.postgres {
			err := s.db.QueryRowContext(r.Context(), `INSERT INTO orders (customer_id, product_id, quantity, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
				o.CustomerID, o.ProductID, o.Quantity, o.CreatedAt).Scan(&o.ID)
			if err != nil {
				httpError(w, http.StatusInternalServerError, err.Error())
				return
			}
		} else {
			res, err := s.db.ExecContext(r.Context(), `INSERT INTO orders (customer_id, product_id, quantity, created_at) VALUES (?, ?, ?, ?)`,
				o.CustomerID, o.ProductID, o.Quantity, o.CreatedAt)
			if err != nil {
				httpError(w, http.StatusInternalServerError, err.Error())
				return
			}
			o.ID, _ = res.LastInsertId()
		}
		writeJSON(w, http.StatusCreated, o)
	})
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "HTTP listen address")
	debugAddr := flag.String("debug-addr", "", "address of the uninstrumented /debug/runtime endpoint (empty: off)")
	dsn := flag.String("db", "", "database: empty or sqlite:PATH for SQLite (empty: a temporary file), postgres://… for PostgreSQL")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown, err := telemetry.Setup(ctx, "orders")
	if err != nil {
		log.Fatalf("telemetry: %v", err)
	}
	st, cleanup, err := openStore(*dsn)
	if err != nil {
		log.Fatalf("database: %v", err)
	}
	defer cleanup()
	// Keep the pool's connections across bursts: database/sql's default keeps 2 idle, so every
	// burst would reopen (and re-pragma) SQLite connections.
	st.db.SetMaxIdleConns(64)
	if err := st.migrate(ctx); err != nil {
		log.Fatalf("database: %v", err)
	}
	debugz.Serve(*debugAddr)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: telemetry.Handler(st.routes(), "orders"), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("orders listening on %s (postgres: %v, manual instrumentation: %v)", ln.Addr(), st.postgres, telemetry.Enabled)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	st.db.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		log.Printf("telemetry shutdown: %v", err)
	}
}
