package gotaprt

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	_ "unsafe" // for go:linkname

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"gotap.dev/gotaprt/internal/sqltext"
)

// Names and attributes follow instrumentations/databasesql/spans.rs exactly (same sanitizer, same
// operation/collection parsing, in internal/sqltext): both strategies must emit the same spans
// for the same query.

const sqlScope = "gotap/database/sql"

// Implemented by the woven database/sql (see instrumentations/databasesql/weave/rules.yaml).
//
//go:linkname setSQLStart database/sql.gotapSetSQLStart
func setSQLStart(func(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error)))

var _ = addHook(func() { setSQLStart(sqlStart) })

// sqlSystems maps driver import-path prefixes to db.system.name.
var sqlSystems = []struct{ prefix, system string }{
	{"modernc.org/sqlite", "sqlite"},
	{"github.com/mattn/go-sqlite3", "sqlite"},
	{"github.com/glebarez/go-sqlite", "sqlite"},
	{"github.com/ncruces/go-sqlite3", "sqlite"},
	{"github.com/lib/pq", "postgresql"},
	{"github.com/jackc/pgx", "postgresql"},
	{"github.com/go-sql-driver/mysql", "mysql"},
	{"github.com/microsoft/go-mssqldb", "microsoft.sql_server"},
	{"github.com/denisenkom/go-mssqldb", "microsoft.sql_server"},
	{"github.com/sijms/go-ora", "oracle.db"},
	{"github.com/godror/godror", "oracle.db"},
	{"github.com/ClickHouse/clickhouse-go", "clickhouse"},
	{"github.com/trinodb/trino-go-client", "trino"},
}

func sqlSystemName(pkg string) string {
	for _, s := range sqlSystems {
		if pkg == s.prefix || strings.HasPrefix(pkg, s.prefix+"/") {
			return s.system
		}
	}
	return "other_sql"
}

var driverSystems sync.Map // reflect.Type → string

func driverSystem(drv driver.Driver) string {
	t := reflect.TypeOf(drv)
	if t == nil {
		return "other_sql"
	}
	if s, ok := driverSystems.Load(t); ok {
		return s.(string)
	}
	pt := t
	for pt.Kind() == reflect.Pointer {
		pt = pt.Elem()
	}
	s := sqlSystemName(pt.PkgPath())
	driverSystems.Store(t, s)
	return s
}

// sqlState is the status code of drivers that expose one (pgx's and lib/pq's errors: SQLSTATE).
type sqlState interface{ SQLState() string }

func sqlStatusCode(err error) string {
	var s sqlState
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// sqlErrorType mirrors db::error_type.
func sqlErrorType(err error, code string) string {
	if code != "" {
		return code
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "context deadline exceeded"):
		return "timeout"
	case strings.Contains(msg, "context canceled"):
		return "canceled"
	}
	return fmt.Sprintf("%T", err)
}

// sqlMark is put in the context the hook returns: the advice calls the method again with that
// context, and the hook must then step aside. It holds the span's IDs, so a query made from a
// context with another span started in between (a driver's own instrumentation) is traced.
type sqlMarkKey struct{}

type sqlMark struct {
	trace trace.TraceID
	span  trace.SpanID
}

func markOf(ctx context.Context) sqlMark {
	sc := trace.SpanContextFromContext(ctx)
	return sqlMark{sc.TraceID(), sc.SpanID()}
}

// sqlStart is database/sql's hook (instrumentations/databasesql/weave/rules.yaml): address, port and namespace are
// those of the DSN given to sql.Open (parsed once per DB inside database/sql), empty or 0 when
// unknown.
func sqlStart(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error)) {
	if m, ok := ctx.Value(sqlMarkKey{}).(sqlMark); ok && m == markOf(ctx) {
		return ctx, nil
	}
	ctx = withGoroutineSpan(ctx) // goroutine.go: a query without the request's context
	system := driverSystem(drv)
	p := sqltext.Scan(query, system)
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		attribute.String("db.system.name", system),
		attribute.String("db.query.text", p.Sanitized),
	)
	if p.Operation != "" {
		attrs = append(attrs, attribute.String("db.operation.name", p.Operation))
	}
	if p.Collection != "" {
		attrs = append(attrs, attribute.String("db.collection.name", p.Collection))
	}
	if namespace != "" {
		attrs = append(attrs, attribute.String("db.namespace", namespace))
	}
	if address != "" {
		attrs = append(attrs, attribute.String("server.address", address))
		if port > 0 {
			attrs = append(attrs, attribute.Int("server.port", port))
		}
	}
	name := system
	switch {
	case p.Operation != "" && p.Collection != "":
		name = p.Operation + " " + p.Collection
	case p.Operation != "":
		name = p.Operation
	}
	ctx, span := tracerProvider().Tracer(sqlScope, trace.WithInstrumentationVersion(Version)).
		Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	ctx = context.WithValue(ctx, sqlMarkKey{}, markOf(ctx))
	return ctx, func(err error) {
		// No rows and the driver's "take the slow path" are outcomes, not failures.
		if err != nil && !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, driver.ErrSkip) {
			span.SetStatus(codes.Error, sqltext.ScrubError(err.Error(), query, system))
			code := sqlStatusCode(err)
			if code != "" {
				span.SetAttributes(attribute.String("db.response.status_code", code))
			}
			span.SetAttributes(attribute.String("error.type", sqlErrorType(err, code)))
		}
		span.End()
	}
}
