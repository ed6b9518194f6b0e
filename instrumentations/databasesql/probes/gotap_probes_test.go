// Probe mode (instrumentations/databasesql/weave/probes.yaml) only: compiled into the woven database/sql by
// crates/gotap-weave/tests/database_sql_server.rs together with gotap_dsn_test.go.

package sql

import (
	"context"
	"errors"
	"testing"
	"unsafe"
)

// The record's string fields sit where docs/probes.md says the tracer reads them.
func TestGotapProbeRecordLayout(t *testing.T) {
	var r gotapProbeRecord
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"s1", unsafe.Offsetof(r.s1), 48},
		{"s2", unsafe.Offsetof(r.s2), 64},
		{"s3", unsafe.Offsetof(r.s3), 80},
		{"s4", unsafe.Offsetof(r.s4), 96},
		{"s5", unsafe.Offsetof(r.s5), 112},
		{"size", unsafe.Sizeof(r), 128},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
}

// gotapTestEvent reads a site event (gotapProbeEvent): eight u64s, eight u16 lengths, the bytes.
func gotapTestEvent(t *testing.T, p string) (head [8]uint64, out [8]string) {
	t.Helper()
	if len(p) < gotapEventHead {
		t.Fatalf("event %q: shorter than its head", p)
	}
	for i := range head {
		for k := 7; k >= 0; k-- {
			head[i] = head[i]<<8 | uint64(p[8*i+k])
		}
	}
	off := gotapEventHead
	for i := range out {
		n := int(p[64+2*i]) | int(p[64+2*i+1])<<8
		if off+n > len(p) {
			t.Fatalf("event %q: slot %d past the end", p, i)
		}
		out[i], off = p[off:off+n], off+n
	}
	if off != len(p) {
		t.Fatalf("event %q: %d bytes after the last slot", p, len(p)-off)
	}
	return head, out
}

// The record carries the DB's server (s3 address, s4 port, s5 namespace) and the site's event
// all of the span: ids, status, duration, flags and the eight strings, the namespace last.
func TestGotapProbeEventHasServer(t *testing.T) {
	db, err := Open("gotap-test", "scheme://user:pw@db.example:7000/x")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := OpenDB(gotapTestConnector{gotapTestDriver{}})
	defer other.Close()
	long := string(make([]byte, 5000))
	for _, c := range []struct {
		db             *DB
		query          string
		err            error
		s1, s3, s4, s5 string
	}{
		{db, "INSERT", nil, "", "db.example", "7000", ""},
		{db, "INSERT", errors.New("boom"), "*errors.errorString", "db.example", "7000", ""},
		{other, "INSERT", nil, "", "", "", ""},
		{other, long, nil, "", "", "", ""},
	} {
		_, rec := gotapProbeSQLBegin(context.Background())
		if rec == nil {
			t.Fatal("no record")
		}
		drv, failed, errText, event := gotapProbeSQLEvent(rec, c.db, c.query, c.err, 1234)
		if rec.s1 != c.s1 || rec.s3 != c.s3 || rec.s4 != c.s4 || rec.s5 != c.s5 {
			t.Errorf("record s1 %q s3 %q s4 %q s5 %q, want %q %q %q %q", rec.s1, rec.s3, rec.s4, rec.s5, c.s1, c.s3, c.s4, c.s5)
		}
		wantErr, wantFailed := "", int64(0)
		if c.err != nil {
			wantErr, wantFailed = c.err.Error(), 1
		}
		if drv != gotapDriverPath(c.db.Driver()) || failed != wantFailed || errText != wantErr {
			t.Errorf("site arguments %q %d %q", drv, failed, errText)
		}
		flags := rec.flags
		if len(c.query) > gotapSQLCaps[1] {
			flags |= gotapFlagSQLCut
		}
		head, got := gotapTestEvent(t, event)
		wantHead := [8]uint64{uint64(wantFailed), 1234, rec.traceHi, rec.traceLo, rec.span, rec.parent, uint64(rec.start), flags}
		if head != wantHead {
			t.Errorf("event head %#x, want %#x", head, wantHead)
		}
		want := [8]string{drv, c.query[:min(len(c.query), gotapSQLCaps[1])], wantErr, c.s1, "", c.s3, c.s4, c.s5}
		if got != want {
			t.Errorf("event strings %q, want %q", got, want)
		}
	}
	// The woven methods run with the semaphore set (a tracer attached) and keep their results.
	gotapProbeSemaphore[0] = 1
	defer func() { gotapProbeSemaphore[0] = 0 }()
	if n, err := db.Exec("INSERT"); err != nil {
		t.Fatalf("exec with the site armed: %v", err)
	} else if rows, _ := n.RowsAffected(); rows != 1 {
		t.Errorf("rows affected %d", rows)
	}
}
