// Command both is the database/sql test service (package app) with two drivers linked in,
// modernc.org/sqlite and github.com/lib/pq; its third argument picks the one to use ("sqlite" or
// "postgres"), so gotap must tell them apart by the connection's type.
package main

import (
	"os"

	_ "github.com/lib/pq"
	"gotap.dev/ebpftest/gosql/app"
	_ "modernc.org/sqlite"
)

func main() {
	if len(os.Args) > 3 && os.Args[3] == "postgres" {
		app.Run("postgres", "$1")
		return
	}
	app.Run("sqlite", "?")
}
