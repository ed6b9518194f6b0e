// Tests of gotap_dsn.go, compiled into the woven database/sql by
// crates/gotap-weave/tests/database_sql_server.rs (`go test -overlay … database/sql`), in both
// modes: the DSN forms, and sql.Open recording the server of each DB once (until Close).

package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"
)

func TestGotapParseDSN(t *testing.T) {
	const (
		pgx    = "github.com/jackc/pgx/v5/stdlib"
		pq     = "github.com/lib/pq"
		mysql  = "github.com/go-sql-driver/mysql"
		sqlite = "modernc.org/sqlite"
		mattn  = "github.com/mattn/go-sqlite3"
	)
	for _, c := range []struct {
		pkg, dsn       string
		addr, port, ns string
	}{
		{pgx, "postgres://app:s3cr%40t@db.example:6543/shop?sslmode=disable", "db.example", "6543", "shop"},
		{pgx, "postgresql://db.example/shop", "db.example", "", "shop"},
		{pgx, "postgres://app@[::1]:5433/my%20db", "::1", "5433", "my db"},
		{pgx, "postgres://a:1,b:2/shop", "", "", "shop"},
		{pgx, "postgres:///shop?host=%2Fvar%2Frun%2Fpostgresql&port=5432", "/var/run/postgresql", "5432", "shop"},
		{pgx, "postgres://app:pw@db/", "db", "", ""},
		{pq, "host=db.example port=5432 dbname=shop user=app password='p w\\'d' sslmode=disable", "db.example", "5432", "shop"},
		{pq, "user=app dbname = 'my shop' host=10.0.0.7", "10.0.0.7", "", "my shop"},
		{pq, "host=a,b port=1,2 dbname=shop", "", "", "shop"},
		{pq, "dbname=shop port=5433", "", "", "shop"},
		{pq, "garbage", "", "", ""},
		{mysql, "app:p@ss/w@tcp(db.example:3307)/shop?parseTime=true", "db.example", "3307", "shop"},
		{mysql, "app@unix(/run/mysqld/mysqld.sock)/shop", "/run/mysqld/mysqld.sock", "", "shop"},
		{mysql, "app:pw@tcp([2001:db8::1]:3306)/", "2001:db8::1", "3306", ""},
		{mysql, "/shop", "", "", "shop"},
		{mysql, "app:pw@tcp(db.example)/shop", "db.example", "", "shop"},
		{mysql, "no slash", "", "", ""},
		// SQLite: the file's base name, never a DSN parameter (_auth_pass, _key) nor the directory.
		{sqlite, "/var/lib/app/app.db", "", "", "app.db"},
		{sqlite, "data.db", "", "", "data.db"},
		{sqlite, "data.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", "", "", "data.db"},
		{mattn, "x.db?_auth&_auth_user=admin&_auth_pass=secret", "", "", "x.db"},
		{sqlite, "/tmp/run/x.db?_pragma=foreign_keys(1)&_auth_pass=secret", "", "", "x.db"},
		{sqlite, "file:app.db?cache=shared&_pragma=busy_timeout(5000)", "", "", "app.db"},
		{sqlite, "file:data.db?_auth_pass=secret#frag", "", "", "data.db"},
		{mattn, "file:///var/lib/app/my%20app.db?mode=ro", "", "", "my app.db"},
		{mattn, "file://localhost/var/lib/app.db?_key=secret", "", "", "app.db"},
		{sqlite, ":memory:", "", "", ":memory:"},
		{sqlite, ":memory:?_pragma=foreign_keys(1)", "", "", ":memory:"},
		{sqlite, "file::memory:?cache=shared", "", "", ":memory:"},
		{"github.com/ncruces/go-sqlite3/driver", `C:\data\app.db?_pragma=x`, "", "", "app.db"},
		// PostgreSQL and MySQL: the database name only, never the password or a parameter.
		{pgx, "postgres://u:pw@h/db?sslmode=require&password=secret", "h", "", "db"},
		{pq, "host=h dbname=db password=secret", "h", "", "db"},
		{pq, "password=secret host=h dbname=db sslmode=disable", "h", "", "db"},
		{mysql, "user:pw@tcp(h:3306)/db?tls=skip-verify&allowCleartextPasswords=1", "h", "3306", "db"},
		{"example.com/other", "sqlserver://app:pw@sql.example:1433?database=shop", "sql.example", "1433", ""},
		{"example.com/other", "some opaque string", "", "", ""},
	} {
		s := gotapParseDSN(c.pkg, c.dsn)
		if s.address != c.addr || s.portText != c.port || s.namespace != c.ns {
			t.Errorf("%s %q: got address %q port %q namespace %q, want %q %q %q", c.pkg, c.dsn, s.address, s.portText, s.namespace, c.addr, c.port, c.ns)
		}
		if want := 0; c.port == "" && s.port != want {
			t.Errorf("%q: port %d for no port text", c.dsn, s.port)
		}
	}
}

// A driver of its own package path is "other": the DSN is parsed as a URL.
type gotapTestDriver struct{ ctxConnector bool }

type gotapTestConn struct{}

func (gotapTestConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("no statements") }
func (gotapTestConn) Close() error                        { return nil }
func (gotapTestConn) Begin() (driver.Tx, error)           { return nil, errors.New("no transactions") }
func (gotapTestConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

func (gotapTestDriver) Open(string) (driver.Conn, error) { return gotapTestConn{}, nil }

type gotapTestCtxDriver struct{ gotapTestDriver }

type gotapTestConnector struct{ d driver.Driver }

func (c gotapTestConnector) Connect(context.Context) (driver.Conn, error) {
	return gotapTestConn{}, nil
}
func (c gotapTestConnector) Driver() driver.Driver { return c.d }

func (d gotapTestCtxDriver) OpenConnector(dsn string) (driver.Connector, error) {
	if dsn == "bad://" {
		return nil, errors.New("bad dsn")
	}
	return gotapTestConnector{d}, nil
}

func init() {
	Register("gotap-test", gotapTestDriver{})
	Register("gotap-test-ctx", gotapTestCtxDriver{})
}

// TestGotapOpenRecordsServer: the woven Open records the server per DB, for drivers with and without OpenConnector; OpenDB
// knows none; Close forgets it; Open's errors are unchanged.
func TestGotapOpenRecordsServer(t *testing.T) {
	for _, name := range []string{"gotap-test", "gotap-test-ctx"} {
		db, err := Open(name, "scheme://user:pw@db.example:7000/x")
		if err != nil {
			t.Fatal(err)
		}
		s := gotapServerOf(db)
		if s.address != "db.example" || s.port != 7000 || s.portText != "7000" {
			t.Errorf("%s: server %+v", name, *s)
		}
		if _, err := db.Exec("INSERT"); err != nil {
			t.Errorf("%s: exec through the woven DB: %v", name, err)
		}
		db.Close()
		if gotapServerOf(db) != gotapNoServer {
			t.Errorf("%s: server kept after Close", name)
		}
	}
	db := OpenDB(gotapTestConnector{gotapTestDriver{}})
	if gotapServerOf(db) != gotapNoServer {
		t.Errorf("OpenDB with an application's connector: %+v", *gotapServerOf(db))
	}
	db.Close()
	if _, err := Open("gotap-nope", "x"); err == nil || err.Error() != `sql: unknown driver "gotap-nope" (forgotten import?)` {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := Open("gotap-test-ctx", "bad://"); err == nil || err.Error() != "bad dsn" {
		t.Errorf("OpenConnector error: %v", err)
	}
}
