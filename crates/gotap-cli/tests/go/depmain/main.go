// A module whose go.mod names a third-party command as a tool (github.com/tklauser/numcpus's
// cmd/numcpus): gotap build of that main package, which lives in the module cache.
package main

func main() {}
