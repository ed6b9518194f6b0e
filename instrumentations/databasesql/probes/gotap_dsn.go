// Where a database/sql DB's queries go (server.address, server.port, db.namespace of the stable
// OpenTelemetry database conventions), added to the standard library's database/sql package in
// both modes (instrumentations/databasesql/weave/rules.yaml and instrumentations/databasesql/weave/probes.yaml).
//
// The only place the server is known without asking the driver is the DSN given to sql.Open. It
// is parsed once, when the DB is opened, for the common forms of PostgreSQL, MySQL and SQLite;
// only the host, the port and the database name are kept (never the password, never the DSN).
// A DB made by sql.OpenDB from an application's own connector has none of them.
//
// Package sql imports neither strings nor net/url, and added files may only use the package's
// own imports: the few string helpers below replace them.

package sql

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"strconv"
	"sync"
)

// gotapDBServer is what the spans of one DB carry; empty fields are unknown.
type gotapDBServer struct {
	address   string // host name, IP address or Unix socket path; never with the port
	port      int    // 0 when unknown
	portText  string // port in decimal, "" when unknown (the probe record's form)
	namespace string // database name; for SQLite the file's base name (never a DSN parameter)
}

// gotapDBServers maps each *DB opened by sql.Open to its server, until DB.Close.
var gotapDBServers sync.Map

var gotapNoServer = &gotapDBServer{}

// gotapServerOf is db's server (a map lookup: the DSN was parsed at Open).
func gotapServerOf(db *DB) *gotapDBServer {
	if s, ok := gotapDBServers.Load(db); ok {
		return s.(*gotapDBServer)
	}
	return gotapNoServer
}

// gotapOpen is Open, step for step (the same lookups, errors and connectors), plus recording
// the server named by the DSN.
func gotapOpen(driverName, dataSourceName string) (*DB, error) {
	driversMu.RLock()
	driveri, ok := drivers[driverName]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("sql: unknown driver %q (forgotten import?)", driverName)
	}
	var c driver.Connector = dsnConnector{dsn: dataSourceName, driver: driveri}
	if driverCtx, ok := driveri.(driver.DriverContext); ok {
		connector, err := driverCtx.OpenConnector(dataSourceName)
		if err != nil {
			return nil, err
		}
		c = connector
	}
	db := OpenDB(c)
	if s := gotapParseDSN(gotapDriverPath(driveri), dataSourceName); *s != *gotapNoServer {
		gotapDBServers.Store(db, s)
	}
	return db, nil
}

// gotapDriverPath is the import path of the driver's type, pointer removed.
func gotapDriverPath(drv driver.Driver) string {
	t := reflect.TypeOf(drv)
	if t == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}

func gotapHasPathPrefix(pkg, prefix string) bool {
	return pkg == prefix || len(pkg) > len(prefix) && pkg[:len(prefix)] == prefix && pkg[len(prefix)] == '/'
}

// gotapParseDSN reads the server of dsn in the format of the driver whose type lives in package
// pkg. Anything it does not recognise is left unknown.
func gotapParseDSN(pkg, dsn string) *gotapDBServer {
	s := &gotapDBServer{}
	switch {
	case gotapHasPathPrefix(pkg, "modernc.org/sqlite"), gotapHasPathPrefix(pkg, "github.com/mattn/go-sqlite3"),
		gotapHasPathPrefix(pkg, "github.com/glebarez/go-sqlite"), gotapHasPathPrefix(pkg, "github.com/ncruces/go-sqlite3"):
		s.namespace = gotapSQLiteFile(dsn)
	case gotapHasPathPrefix(pkg, "github.com/go-sql-driver/mysql"):
		gotapParseMySQL(s, dsn)
	case gotapHasPathPrefix(pkg, "github.com/lib/pq"), gotapHasPathPrefix(pkg, "github.com/jackc/pgx"):
		if gotapHasPrefix(dsn, "postgres://") || gotapHasPrefix(dsn, "postgresql://") {
			gotapParseURL(s, dsn, true)
		} else {
			gotapParsePostgresKV(s, dsn)
		}
	default:
		// Other drivers: a URL (sqlserver://, clickhouse://…) names its host; what its path means
		// differs per driver, so no namespace.
		if gotapIndex(dsn, "://") > 0 {
			gotapParseURL(s, dsn, false)
		}
	}
	if s.address == "" {
		s.port = 0 // a port of an unknown host says nothing (server.port goes with server.address)
	}
	if s.port > 0 {
		s.portText = strconv.Itoa(s.port)
	}
	return s
}

// gotapParseURL: scheme://[user[:password]@]host[:port][/database][?params]. PostgreSQL's URL
// may also name host, port and dbname as parameters, and several hosts (then none is reported:
// which one serves the query is not known here).
func gotapParseURL(s *gotapDBServer, dsn string, postgres bool) {
	rest := dsn[gotapIndex(dsn, "://")+3:]
	query := ""
	if i := gotapIndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i+1:]
	}
	path := ""
	if i := gotapIndexByte(rest, '/'); i >= 0 {
		rest, path = rest[:i], rest[i+1:]
	}
	if i := gotapLastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:] // user and password
	}
	if gotapIndexByte(rest, ',') < 0 {
		gotapHostPort(s, rest)
	}
	if postgres {
		s.namespace = gotapUnescape(path)
		for query != "" {
			kv := query
			if i := gotapIndexByte(query, '&'); i >= 0 {
				kv, query = query[:i], query[i+1:]
			} else {
				query = ""
			}
			k, v := kv, ""
			if i := gotapIndexByte(kv, '='); i >= 0 {
				k, v = kv[:i], gotapUnescape(kv[i+1:])
			}
			gotapPostgresParam(s, k, v)
		}
	}
}

// gotapHostPort splits host[:port], [v6]:port or an escaped socket path.
func gotapHostPort(s *gotapDBServer, hp string) {
	host, port := hp, ""
	if len(hp) > 0 && hp[0] == '[' {
		if i := gotapIndexByte(hp, ']'); i > 0 {
			host = hp[1:i]
			if len(hp) > i+1 && hp[i+1] == ':' {
				port = hp[i+2:]
			}
		}
	} else if i := gotapLastIndexByte(hp, ':'); i >= 0 && gotapIndexByte(hp[:i], ':') < 0 {
		host, port = hp[:i], hp[i+1:]
	}
	s.address = gotapUnescape(host)
	s.port = gotapPort(port)
}

func gotapPort(p string) int {
	if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
		return n
	}
	return 0
}

func gotapPostgresParam(s *gotapDBServer, k, v string) {
	switch k {
	case "host":
		if gotapIndexByte(v, ',') < 0 {
			s.address = v
		} else {
			s.address, s.port = "", 0
		}
	case "hostaddr":
		if s.address == "" && gotapIndexByte(v, ',') < 0 {
			s.address = v
		}
	case "port":
		s.port = gotapPort(v) // 0 for a list of ports
	case "dbname":
		s.namespace = v
	}
}

// gotapParsePostgresKV: `host=db port=5432 dbname=shop user=app password='a b'` (values may be
// single-quoted, with backslash escapes).
func gotapParsePostgresKV(s *gotapDBServer, dsn string) {
	i := 0
	for i < len(dsn) {
		for i < len(dsn) && (dsn[i] == ' ' || dsn[i] == '\t' || dsn[i] == '\n' || dsn[i] == '\r') {
			i++
		}
		start := i
		for i < len(dsn) && dsn[i] != '=' && dsn[i] != ' ' {
			i++
		}
		key := dsn[start:i]
		for i < len(dsn) && dsn[i] == ' ' {
			i++
		}
		if i >= len(dsn) || dsn[i] != '=' {
			return // not key=value: nothing more is reliable
		}
		i++
		for i < len(dsn) && dsn[i] == ' ' {
			i++
		}
		var val []byte
		if i < len(dsn) && dsn[i] == '\'' {
			i++
			for i < len(dsn) && dsn[i] != '\'' {
				if dsn[i] == '\\' && i+1 < len(dsn) {
					i++
				}
				val = append(val, dsn[i])
				i++
			}
			i++
		} else {
			for i < len(dsn) && dsn[i] != ' ' && dsn[i] != '\t' {
				if dsn[i] == '\\' && i+1 < len(dsn) {
					i++
				}
				val = append(val, dsn[i])
				i++
			}
		}
		gotapPostgresParam(s, key, string(val))
	}
}

// gotapParseMySQL: [user[:password]@][net[(addr)]]/dbname[?params], split as the driver does (the
// last '/' ends the address, the last '@' before it the credentials).
func gotapParseMySQL(s *gotapDBServer, dsn string) {
	slash := gotapLastIndexByte(dsn, '/')
	if slash < 0 {
		return
	}
	name := dsn[slash+1:]
	if i := gotapIndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	s.namespace = gotapUnescape(name)
	netAddr := dsn[:slash]
	if i := gotapLastIndexByte(netAddr, '@'); i >= 0 {
		netAddr = netAddr[i+1:]
	}
	open := gotapIndexByte(netAddr, '(')
	if open < 0 || netAddr[len(netAddr)-1] != ')' {
		return // no address: the driver's default (127.0.0.1:3306), not written in the DSN
	}
	addr := netAddr[open+1 : len(netAddr)-1]
	if netAddr[:open] == "unix" {
		s.address = addr
		return
	}
	gotapHostPort(s, addr)
}

// gotapSQLiteFile is the database of a SQLite DSN: the base name of its file, without the
// parameters (`/var/lib/app.db`, `app.db?_pragma=…`, `file:app.db?cache=shared` and
// `file:///var/lib/app.db` → `app.db`; `:memory:` as is). The drivers (modernc, mattn, glebarez,
// ncruces) all cut a plain path's parameters at its first '?' too, and those parameters hold
// secrets (`_auth_pass=…`, `_key=…` of encrypted databases) and the caller's pragmas; the
// directory says where the file lives on this host, not which database it is.
func gotapSQLiteFile(dsn string) string {
	p := dsn
	if gotapHasPrefix(p, "file:") {
		p = p[len("file:"):]
		if i := gotapIndexByte(p, '#'); i >= 0 {
			p = p[:i]
		}
	}
	if i := gotapIndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if gotapHasPrefix(dsn, "file:") {
		if gotapHasPrefix(p, "//") {
			// file://host/path: only an empty host or localhost is valid for SQLite.
			rest := p[2:]
			if i := gotapIndexByte(rest, '/'); i >= 0 {
				p = rest[i:]
			}
		}
		p = gotapUnescape(p)
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' || p[i] == '\\' {
			return p[i+1:]
		}
	}
	return p
}

func gotapHasPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && s[:len(prefix)] == prefix
}

func gotapIndexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func gotapLastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func gotapIndex(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// gotapUnescape decodes %XX escapes; a malformed escape is kept as written.
func gotapUnescape(s string) string {
	if gotapIndexByte(s, '%') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}
