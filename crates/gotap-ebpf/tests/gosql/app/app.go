// Package app is the HTTP service the database/sql eBPF tests trace (crates/gotap-ebpf/tests/
// databasesql.rs): each request of /ops runs one fixed set of database/sql calls, with the
// request's context, through whichever driver the main package registered.
package app

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// Run serves on 127.0.0.1:<os.Args[1]> with the database driverName opens at os.Args[2];
// placeholder is the driver's first bind parameter ("?" or "$1"). Prints "ready" once listening.
func Run(driverName, placeholder string) {
	db, err := sql.Open(driverName, os.Args[2])
	if err != nil {
		fail(err)
	}
	// One connection: the same one serves every call, as in most small services.
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"DROP TABLE IF EXISTS users",
		"DROP TABLE IF EXISTS items",
		"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT)",
		"INSERT INTO users (id, name) VALUES (1, 'alice')",
	} {
		if _, err := db.Exec(q); err != nil {
			fail(err)
		}
	}
	p := placeholder
	http.HandleFunc("/ops", func(w http.ResponseWriter, r *http.Request) {
		if err := ops(r.Context(), db, p); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	fail(http.Serve(ln, nil))
}

// ops runs, in order: an exec and a query of the DB, a prepared query and a prepared exec (a
// prepare each, then the statement), a transaction's exec and query, and a query that fails.
func ops(ctx context.Context, db *sql.DB, p string) error {
	if _, err := db.ExecContext(ctx, "INSERT INTO items (id, label) VALUES (2, 'pen')"); err != nil {
		return err
	}
	var name string
	if err := db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = 1").Scan(&name); err != nil {
		return err
	}
	st, err := db.PrepareContext(ctx, "SELECT id FROM users WHERE name = "+p)
	if err != nil {
		return err
	}
	var id int
	if err := st.QueryRowContext(ctx, name).Scan(&id); err != nil {
		return err
	}
	st.Close()
	up, err := db.PrepareContext(ctx, "UPDATE users SET name = 'carol' WHERE id = "+p)
	if err != nil {
		return err
	}
	if _, err := up.ExecContext(ctx, id); err != nil {
		return err
	}
	up.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM items WHERE id = 2"); err != nil {
		tx.Rollback()
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT label FROM missing_table WHERE id = 3")
	if err == nil {
		rows.Close()
		return fmt.Errorf("querying a missing table did not fail")
	}
	if !strings.Contains(err.Error(), "missing_table") {
		return fmt.Errorf("unexpected error: %v", err)
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
