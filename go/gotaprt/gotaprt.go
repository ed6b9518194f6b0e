// Package gotaprt is the runtime that `gotap build` links into a woven program.
//
// The weaver injects into net/http small hook variables and calls them at the join points
// (serverHandler.ServeHTTP, (*Transport).RoundTrip). net/http cannot import the OpenTelemetry
// SDK (the SDK imports net/http), so this package sets the hooks from the outside through
// //go:linkname setters that the weaver also injects and marks as linkable. The spans it makes
// carry exactly the names and attributes of gotap's eBPF strategy (crates/gotap-spans).
//
// Configuration is the standard OTEL_* environment (OTLP/HTTP exporter, sampler, batch
// processor, resource). OTEL_SDK_DISABLED=true turns gotap's hooks off.
package gotaprt

import (
	"context"
	"database/sql/driver"
	"net/http"
	"os"
	"sync/atomic"
	_ "unsafe" // for go:linkname
)

// Implemented by the woven net/http (see instrumentations/nethttp/weave/rules.yaml).
//
//go:linkname setServerStart net/http.gotapSetServerStart
func setServerStart(func(*http.Request) (*http.Request, func(status int)))

//go:linkname setClientRoundTrip net/http.gotapSetClientRoundTrip
func setClientRoundTrip(func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error))

//go:linkname setSQLStart database/sql.gotapSetSQLStart
func setSQLStart(func(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error))) // instrumentations/databasesql/weave/rules.yaml

//go:linkname setBeforeExit os.gotapSetBeforeExit
func setBeforeExit(func(code int)) // rules/main.yaml, os-exit-flush

func init() {
	if os.Getenv("OTEL_SDK_DISABLED") == "true" {
		return
	}
	setServerStart(serverStart)
	setClientRoundTrip(clientRoundTrip)
	registerGRPC() // grpc.go: google.golang.org/grpc hooks, linked by variable (instrumentations/grpc/weave/rules.yaml)
	setSQLStart(sqlStart)
	mainExit = flushAtExit // provider.go; deferred in main by rules/main.yaml
	setBeforeExit(beforeExit)
	watchSignals() // signal.go: flush, then the default action, on a SIGTERM/SIGINT the program does not handle
}

var exiting atomic.Bool

// beforeExit runs at the top of os.Exit (log.Fatal…): deferred calls, main's flush included, will
// not run, so the spans still buffered are exported here, waiting at most exitFlushTimeout. Only
// the first os.Exit flushes; a second one, from another goroutine, exits without waiting.
func beforeExit(int) {
	if exiting.CompareAndSwap(false, true) {
		flushAtExit()
	}
}
