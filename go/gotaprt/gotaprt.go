// Package gotaprt is the runtime that `gotap build` links into a woven program.
//
// The weaver injects into the instrumented packages small hook variables and calls them at the
// join points (net/http's serverHandler.ServeHTTP, (*Transport).RoundTrip, …). net/http cannot
// import the OpenTelemetry SDK (the SDK imports net/http), so this package sets the hooks from the
// outside through //go:linkname setters that the weaver also injects and marks as linkable. The
// hooks of each library are in its folder (instrumentations/<name>/runtime/), compiled into this
// package; this directory holds the generic part (provider, exporter, exit and signal flushes).
// The spans it makes carry exactly the names and attributes of gotap's eBPF strategy
// (crates/gotap-spans).
//
// Configuration is the standard OTEL_* environment (OTLP/HTTP exporter, sampler, batch
// processor, resource). OTEL_SDK_DISABLED=true turns gotap's hooks off.
package gotaprt

import (
	"os"
	"sync/atomic"
	_ "unsafe" // for go:linkname
)

// hooks are the libraries' registrations: each library's runtime files
// (instrumentations/<name>/runtime/*.go, assembled into this package by gotap-weave's build.rs)
// add theirs with addHook from a package-level variable's initializer, which Go runs before any
// init function. This file then names no library: a library's hooks come and go with its
// registry line.
var hooks []func()

// addHook registers f to run at start unless OTEL_SDK_DISABLED=true; the result only lets it be
// called from a variable's initializer (`var _ = addHook(…)`).
func addHook(f func()) bool {
	hooks = append(hooks, f)
	return true
}

//go:linkname setBeforeExit os.gotapSetBeforeExit
func setBeforeExit(func(code int)) // rules/main.yaml, os-exit-flush

func init() {
	if os.Getenv("OTEL_SDK_DISABLED") == "true" {
		return
	}
	for _, h := range hooks {
		h()
	}
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
