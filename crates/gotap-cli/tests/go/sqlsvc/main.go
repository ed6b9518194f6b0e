// sqlsvc: a plain net/http + database/sql service on SQLite (modernc.org/sqlite) or PostgreSQL
// (pgx's database/sql driver), no OpenTelemetry code, that `gotap build` tests weave
// (crates/gotap-cli/tests/build_sql.rs).
// Every handler passes r.Context() to database/sql, so each query span is a child of the
// request's server span.
//
//	GET /orders/{id}  one query of each kind: DB query, Tx exec, prepared Stmt query, Conn exec
//	GET /missing      a QueryRow that finds no row (sql.ErrNoRows: not a failed query) → 404
//	GET /broken       a query on a table that does not exist → 500, the error in the body
//	GET /long         one query of LongQuery, longer than probe mode's cap on query text
//	GET /scan         runs ScanQueries (tricky texts for the sanitizer and parser, some invalid,
//	                  quoted table names: "orders", "main"."orders", [orders], `orders`);
//	                  one body line per query: "ok" or "err <Go type of the error> [SQLSTATE]"
//	GET /leaks        runs LeakQueries (PostgreSQL's or SQLite's): literals written so that a
//	                  sanitizer that misses them, or a driver's error that quotes them, would
//	                  export the word "secret-"; one body line per query: "ok" or "err"
//
// Listens on $ADDR and prints "listening on ADDR" once ready; the database is $DB: a SQLite file
// path (tests add parameters, one a password: `x.db?_pragma=…&_auth_pass=secret`), or a
// postgres:// URL (then the one `?` placeholder of a query is written `$1`).
package main

import (
	"database/sql"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"strings"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// ScanQueries: the same list is in build_sql.rs, which compares each span with the Rust builder.
var ScanQueries = []string{
	"SELECT * FROM orders WHERE total = 'it''s' AND id = -1.5e3",
	"select $1, t2.total from orders t2 limit 10",
	"SELECT \"it's\" -- it's 1\n/* 2 */ FROM orders",
	"WITH x AS (SELECT 1) SELECT * FROM x",
	"  (SELECT 1)",
	"SELECT * FROM orders JOIN audit ON 1 = 1",
	"SELECT * FROM orders, audit",
	"SELECT * FROM `orders` WHERE id = 0x1F",
	"SELECT 'unterminated",
	"SELECT é FROM orders",
	"DELETE FROM audit WHERE what = 'x''y'",
	"Update orders SET views = views WHERE id IN (SELECT id FROM orders)",
	"PRAGMA user_version",
	"SELECT * FROM \"orders\" WHERE id = 1",
	"SELECT total FROM \"main\".\"orders\"",
	"SELECT total FROM [orders]",
	"UPDATE `orders` SET views = views WHERE id = 0",
}

// LeakQueries: dollar-quoted, escape (E'…') and double-quoted strings (by dialect), and failing
// statements whose driver errors quote the literal (build_sql.rs, e2e_probes_more.rs).
var LeakQueries = map[string][]string{
	"pgx": {
		"SELECT $s$dollar-secret-1$s$",
		"SELECT $$dollar-secret-2$$ AS \"Visible\"",
		"SELECT E'e-secret\\'s-3'",
		"SELECT 1 'failing-secret-4'",
		"SELECT $q$failing-secret-5$q$::int",
	},
	"sqlite": {
		"SELECT \"dq-secret-1\"",
		"SELECT 1 'a' 'failing-secret-2'",
		"SELECT 'failing-secret-3' FROM nope",
	},
}

// LongQuery (4,839 bytes) is longer than the 4,096 bytes of query text a probe site hands to gotap:
// e2e_probes_more.rs checks the cut (the SDK build exports it whole).
var LongQuery = "SELECT count(*) FROM orders WHERE " + strings.Repeat("id = id AND ", 400) + "1 = 1"

func main() {
	dsn := os.Getenv("DB")
	driver, ph := "sqlite", func(q string) string { return q }
	if strings.HasPrefix(dsn, "postgres://") {
		driver, ph = "pgx", func(q string) string { return strings.Replace(q, "?", "$1", 1) }
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		log.Fatal(err)
	}
	// Without a context: spans of their own traces.
	for _, q := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL, views INTEGER NOT NULL DEFAULT 0)",
		"CREATE TABLE audit (what TEXT NOT NULL)",
		"INSERT INTO orders (id, total) VALUES (1, 5), (2, 25)",
	} {
		if _, err := db.Exec(q); err != nil {
			log.Fatal(err)
		}
	}
	stmt, err := db.Prepare("SELECT count(*) FROM orders WHERE total > 10")
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var total int
		if err := db.QueryRowContext(ctx, ph("SELECT total FROM orders WHERE id = ?"), r.PathValue("id")).Scan(&total); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := tx.ExecContext(ctx, ph("UPDATE orders SET views = views + 1 WHERE id = ?"), r.PathValue("id")); err != nil {
			tx.Rollback()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := tx.Commit(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var big int
		if err := stmt.QueryRowContext(ctx).Scan(&big); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "INSERT INTO audit (what) VALUES ('viewed')"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "total %d, big orders %d\n", total, big)
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		var total int
		err := db.QueryRowContext(r.Context(), ph("SELECT total FROM orders WHERE id = ?"), 999).Scan(&total)
		if errors.Is(err, sql.ErrNoRows) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, fmt.Sprint("unexpected: ", err), http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT * FROM nope")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rows.Close()
		fmt.Fprintln(w, "unexpected: the query worked")
	})

	mux.HandleFunc("GET /long", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), LongQuery).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, n)
	})
	mux.HandleFunc("GET /scan", func(w http.ResponseWriter, r *http.Request) {
		for _, q := range ScanQueries {
			rows, err := db.QueryContext(r.Context(), q)
			if err != nil {
				var st interface{ SQLState() string }
				if errors.As(err, &st) {
					fmt.Fprintf(w, "err %T %s\n", err, st.SQLState())
				} else {
					fmt.Fprintf(w, "err %T\n", err)
				}
				continue
			}
			rows.Close()
			fmt.Fprintln(w, "ok")
		}
	})

	mux.HandleFunc("GET /leaks", func(w http.ResponseWriter, r *http.Request) {
		for _, q := range LeakQueries[driver] {
			rows, err := db.QueryContext(r.Context(), q)
			if err != nil {
				fmt.Fprintln(w, "err")
				continue
			}
			rows.Close()
			fmt.Fprintln(w, "ok")
		}
	})

	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
