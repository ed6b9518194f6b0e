// SDK mode (instrumentations/databasesql/weave/rules.yaml) only: compiled into the woven database/sql by
// crates/gotap-weave/tests/database_sql_server.rs together with gotap_dsn_test.go.

package sql

import (
	"context"
	"database/sql/driver"
	"testing"
)

type gotapHookCall struct {
	address   string
	port      int
	namespace string
	query     string
}

// gotapEnableForTest sets the runtime's hook to one that records its arguments and lets the
// original body run.
func gotapEnableForTest(t *testing.T) *[]gotapHookCall {
	calls := &[]gotapHookCall{}
	prev := gotapSQLStart
	gotapSQLStart = func(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error)) {
		*calls = append(*calls, gotapHookCall{address, port, namespace, query})
		return ctx, nil
	}
	t.Cleanup(func() { gotapSQLStart = prev })
	return calls
}

// The hook gets the DB's server with every query, on DB, Conn, Tx and Stmt alike.
func TestGotapHookGetsServer(t *testing.T) {
	calls := gotapEnableForTest(t)
	db, err := Open("gotap-test", "scheme://user:pw@db.example:7000/x")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	db.ExecContext(ctx, "INSERT 1")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn.ExecContext(ctx, "INSERT 2")
	conn.Close()
	want := gotapHookCall{"db.example", 7000, "", ""}
	if len(*calls) != 2 {
		t.Fatalf("hook calls: %+v", *calls)
	}
	for i, c := range *calls {
		want.query = []string{"INSERT 1", "INSERT 2"}[i]
		if c != want {
			t.Errorf("call %d: %+v, want %+v", i, c, want)
		}
	}
	// A DB of an application's connector: nothing known.
	*calls = nil
	other := OpenDB(gotapTestConnector{gotapTestDriver{}})
	defer other.Close()
	other.ExecContext(ctx, "INSERT 3")
	if len(*calls) != 1 || (*calls)[0] != (gotapHookCall{query: "INSERT 3"}) {
		t.Errorf("OpenDB: %+v", *calls)
	}
}
