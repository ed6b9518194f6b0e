// The low-rate service of scripts/bench-lowrate.sh (docs/benchmarks.md, "Probe hits per span at
// a low request rate"): GET /order/{id} runs one SQLite query (modernc.org/sqlite, with the
// request's context) and one outgoing net/http call (GET /stock on itself), as a typical small
// service does per request; 3 spans per request under gotap run. ADDR: listen address; DB: the
// SQLite file.
package main

import (
	"database/sql"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	_ "modernc.org/sqlite"
)

func main() {
	addr := os.Getenv("ADDR")
	db, err := sql.Open("sqlite", os.Getenv("DB"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT)"); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec("INSERT OR IGNORE INTO orders VALUES (1, 'book'), (2, 'pen')"); err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("GET /order/{id}", func(w http.ResponseWriter, r *http.Request) {
		var item string
		if err := db.QueryRowContext(r.Context(), "SELECT item FROM orders WHERE id = ?", r.PathValue("id")).Scan(&item); err != nil {
			item = "none"
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://"+addr+"/stock", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		stock, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, "%s %s", item, stock)
	})
	http.HandleFunc("GET /stock", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "in stock") })
	log.Fatal(http.ListenAndServe(addr, nil))
}
