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

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Names and attributes follow crates/gotap-spans/src/db.rs exactly (same sanitizer, same
// operation/collection parsing): both strategies must emit the same spans for the same query.

const sqlScope = "gotap/database/sql"

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

type parsedQuery struct {
	sanitized, operation, collection string
}

// sqlTok is a word (identifier or keyword) or one punctuation byte; strings, numbers and quoted
// identifiers are punctuation too ('?', '0', the quote), as in db.rs.
type sqlTok struct {
	word  string
	punct byte
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdent(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' || c == '.'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// scanSQL mirrors db::scan.
func scanSQL(q string) parsedQuery {
	var out strings.Builder
	out.Grow(len(q))
	var toks []sqlTok
	i := 0
	for i < len(q) {
		c := q[i]
		start := i
		switch {
		case c == '\'':
			i++
			for i < len(q) {
				if q[i] == '\'' {
					if i+1 < len(q) && q[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			out.WriteByte('?')
			toks = append(toks, sqlTok{punct: '?'})
		case c == '"' || c == '`':
			i++
			for i < len(q) && q[i] != c {
				i++
			}
			i = min(i+1, len(q))
			out.WriteString(q[start:i])
			toks = append(toks, sqlTok{punct: c})
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			out.WriteString(q[start:i])
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i += 2
			for i < len(q) && !(q[i] == '*' && i+1 < len(q) && q[i+1] == '/') {
				i++
			}
			i = min(i+2, len(q))
			out.WriteString(q[start:i])
		case isIdentStart(c):
			for i < len(q) && isIdent(q[i]) {
				i++
			}
			out.WriteString(q[start:i])
			toks = append(toks, sqlTok{word: q[start:i]})
		case isDigit(c):
			glued := start > 0 && isIdent(q[start-1]) && q[start-1] != '.'
			for i < len(q) && (isAlnum(q[i]) || q[i] == '.' || q[i] == '_') {
				i++
			}
			if glued {
				out.WriteString(q[start:i])
			} else {
				out.WriteByte('?')
			}
			toks = append(toks, sqlTok{punct: '0'})
		default:
			// Any other byte; a multi-byte character is copied whole.
			n := 1
			if c >= 0x80 {
				for n < 4 && i+n < len(q) && q[i+n]&0xC0 == 0x80 {
					n++
				}
			}
			i += n
			out.WriteString(q[start:i])
			if !isSpace(c) {
				toks = append(toks, sqlTok{punct: c})
			}
		}
	}
	p := parsedQuery{sanitized: out.String()}
	first := -1
	for j, t := range toks {
		if t.word != "" || t.punct != '(' {
			first = j
			break
		}
	}
	if first >= 0 && toks[first].word != "" && !strings.EqualFold(toks[first].word, "WITH") {
		p.operation = strings.ToUpper(toks[first].word)
		p.collection = sqlCollection(p.operation, toks, first)
	}
	return p
}

func sqlCollection(op string, toks []sqlTok, first int) string {
	switch op {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE":
	default:
		return ""
	}
	intro := -1
	for j, t := range toks {
		if t.word == "" {
			continue
		}
		w := t.word
		if strings.EqualFold(w, "FROM") || strings.EqualFold(w, "JOIN") || strings.EqualFold(w, "INTO") || (j == first && op == "UPDATE") {
			if intro >= 0 {
				return ""
			}
			intro = j
		}
	}
	if intro < 0 || intro+1 >= len(toks) || toks[intro+1].word == "" {
		return ""
	}
	if intro+2 < len(toks) && toks[intro+2].word == "" && toks[intro+2].punct == ',' {
		return ""
	}
	return toks[intro+1].word
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

// sqlStart is database/sql's hook (rules/database_sql.yaml): address, port and namespace are
// those of the DSN given to sql.Open (parsed once per DB inside database/sql), empty or 0 when
// unknown.
func sqlStart(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error)) {
	if m, ok := ctx.Value(sqlMarkKey{}).(sqlMark); ok && m == markOf(ctx) {
		return ctx, nil
	}
	system := driverSystem(drv)
	p := scanSQL(query)
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		attribute.String("db.system.name", system),
		attribute.String("db.query.text", p.sanitized),
	)
	if p.operation != "" {
		attrs = append(attrs, attribute.String("db.operation.name", p.operation))
	}
	if p.collection != "" {
		attrs = append(attrs, attribute.String("db.collection.name", p.collection))
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
	case p.operation != "" && p.collection != "":
		name = p.operation + " " + p.collection
	case p.operation != "":
		name = p.operation
	}
	ctx, span := tracerProvider().Tracer(sqlScope, trace.WithInstrumentationVersion(Version)).
		Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	ctx = context.WithValue(ctx, sqlMarkKey{}, markOf(ctx))
	return ctx, func(err error) {
		// No rows and the driver's "take the slow path" are outcomes, not failures.
		if err != nil && !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, driver.ErrSkip) {
			span.SetStatus(codes.Error, err.Error())
			code := sqlStatusCode(err)
			if code != "" {
				span.SetAttributes(attribute.String("db.response.status_code", code))
			}
			span.SetAttributes(attribute.String("error.type", sqlErrorType(err, code)))
		}
		span.End()
	}
}
