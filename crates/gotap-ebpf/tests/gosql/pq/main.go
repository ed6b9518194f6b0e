// Command pq is the database/sql test service (package app) on github.com/lib/pq; its second
// argument is a PostgreSQL DSN.
package main

import (
	_ "github.com/lib/pq"
	"gotap.dev/ebpftest/gosql/app"
)

func main() { app.Run("postgres", "$1") }
