// sqlnoctx: a net/http + database/sql service on SQLite (modernc.org/sqlite) whose handler runs
// its statements without the request's context, as frameworks often do (db.Query, db.Exec,
// QueryRow instead of their Context forms), also in a goroutine it starts; no OpenTelemetry code.
// crates/gotap-cli/tests/sql_nocontext.rs traces it with every strategy and checks that each
// statement's span is a child of the request's server span, and that a statement run outside any
// request (by a worker goroutine main started) is a root.
//
//	GET /q        db.Query(`SELECT * FROM "users"`), db.Exec("UPDATE `users` …") on the handler's
//	              goroutine, then db.QueryRow("SELECT n FROM users …") in a goroutine it starts
//	              and waits for
//	GET /outside  has the worker run db.Exec("DELETE FROM audit") and waits for it
//
// Listens on $ADDR and prints "listening on ADDR" once ready; the database is $DB, a SQLite file
// path (tests add parameters: `x.db?_pragma=busy_timeout(5000)`).
package main

import (
	"database/sql"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", os.Getenv("DB"))
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, n INTEGER)`,
		`CREATE TABLE IF NOT EXISTS audit (what TEXT)`,
		`INSERT OR IGNORE INTO users (id, n) VALUES (1, 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			log.Fatal(err)
		}
	}

	// The worker: started by main before any request, so it runs in no request's span.
	work := make(chan chan error)
	go func() {
		for done := range work {
			_, err := db.Exec("DELETE FROM audit")
			done <- err
		}
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /q", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.Query(`SELECT * FROM "users"`)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for rows.Next() {
		}
		rows.Close()
		if _, err := db.Exec("UPDATE `users` SET n = n + 1 WHERE id = 1"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		done := make(chan error)
		go func() {
			var n int
			done <- db.QueryRow("SELECT n FROM users WHERE id = 1").Scan(&n)
		}()
		if err := <-done; err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /outside", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan error)
		work <- done
		if err := <-done; err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", os.Getenv("ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
