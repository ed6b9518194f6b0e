// Package telemetry is the one place where the arena services differ between their two builds:
// plain (`go build`), which links no OpenTelemetry code at all, and `manual` (`go build -tags
// manual`), instrumented by hand with the OTel Go SDK the way a user would write it.
package telemetry

import "os"

// Endpoint is where the manual build sends OTLP/gRPC (host:port of the arena's collector). A
// variable of its own: the SDK reads OTEL_EXPORTER_OTLP_ENDPOINT itself, as a URL.
func Endpoint() string {
	if e := os.Getenv("ARENA_OTLP_ENDPOINT"); e != "" {
		return e
	}
	return "127.0.0.1:4317"
}
