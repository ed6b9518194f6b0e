//go:build !manual

package telemetry

import (
	"context"
	"database/sql"
	"net/http"

	"google.golang.org/grpc"
)

const Enabled = false

func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	return func(context.Context) error { return nil }, nil
}

func Handler(h http.Handler, operation string) http.Handler { return h }

func HTTPClient(base *http.Client) *http.Client { return base }

func GRPCServerOptions() []grpc.ServerOption { return nil }

func GRPCDialOptions() []grpc.DialOption { return nil }

func OpenDB(driver, dsn string) (*sql.DB, error) { return sql.Open(driver, dsn) }
