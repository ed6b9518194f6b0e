// Command sqlite is the database/sql test service (package app) on modernc.org/sqlite; its
// second argument is the database file.
package main

import (
	"gotap.dev/ebpftest/gosql/app"
	_ "modernc.org/sqlite"
)

func main() { app.Run("sqlite", "?") }
