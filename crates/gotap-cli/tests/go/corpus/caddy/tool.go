// The corpus's Caddy (docs/corpus.md): a module whose go.mod names github.com/caddyserver/caddy/v2's
// cmd/caddy as a tool, so the test builds that main package, which lives in the module cache,
// with `go build` and `gotap build` at the version this go.mod pins.
package main

func main() {}
