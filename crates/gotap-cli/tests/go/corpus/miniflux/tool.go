// The corpus's SQL service (docs/corpus.md): a module whose go.mod names miniflux.app/v2 (its main
// package is the module's root) as a tool, so the test builds it, from the module cache, with
// `go build` and `gotap build` at the version this go.mod pins.
package main

func main() {}
