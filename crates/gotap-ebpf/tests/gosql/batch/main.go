// Command batch is a database/sql program with no server: it runs a few statements on
// modernc.org/sqlite, some from goroutines it starts, and exits. Nothing in it ever makes a
// server span, so the goroutine-start hook would have no context to hand on: `gotap run` must not
// attach it (crates/gotap-ebpf/tests/databasesql.rs, sql_without_a_server_skips_the_goroutine_hook).
package main

import (
	"database/sql"
	"log"
	"sync"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t (n INTEGER)"); err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			if _, err := db.Exec("INSERT INTO t (n) VALUES (?)", n); err != nil {
				log.Fatal(err)
			}
		}(i)
	}
	wg.Wait()
	var c int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&c); err != nil {
		log.Fatal(err)
	}
	log.Printf("batch: %d rows", c)
}
