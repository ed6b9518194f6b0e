// Probe mode (rules/database_sql_probes.yaml) only: compiled into the woven database/sql by
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

// gotapTestUnpack reads the strings gotapProbePack packed: eight u16 lengths, then the bytes.
func gotapTestUnpack(t *testing.T, p string) (out [8]string) {
	t.Helper()
	if len(p) < 16 {
		t.Fatalf("packed strings %q: shorter than their lengths", p)
	}
	off := 16
	for i := range out {
		n := int(p[2*i]) | int(p[2*i+1])<<8
		if off+n > len(p) {
			t.Fatalf("packed strings %q: slot %d past the end", p, i)
		}
		out[i], off = p[off:off+n], off+n
	}
	if off != len(p) {
		t.Fatalf("packed strings %q: %d bytes after the last slot", p, len(p)-off)
	}
	return out
}

// The record handed to the site carries the DB's server: s3 address, s4 port, s5 namespace, and
// at the site s5 points at all the span's strings packed (flag gotapFlagPacked), the namespace
// in the last slot.
func TestGotapProbeRecordHasServer(t *testing.T) {
	db, err := Open("gotap-test", "scheme://user:pw@db.example:7000/x")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := OpenDB(gotapTestConnector{gotapTestDriver{}})
	defer other.Close()
	for _, c := range []struct {
		db             *DB
		err            error
		s1, s3, s4, s5 string
	}{
		{db, nil, "", "db.example", "7000", ""},
		{db, errors.New("boom"), "*errors.errorString", "db.example", "7000", ""},
		{other, nil, "", "", "", ""},
	} {
		_, rec := gotapProbeSQLBegin(context.Background())
		if rec == nil {
			t.Fatal("no record")
		}
		gotapProbeSQLEnd(rec, c.db, "INSERT", c.err)
		if rec.s1 != c.s1 || rec.s3 != c.s3 || rec.s4 != c.s4 {
			t.Errorf("record s1 %q s3 %q s4 %q, want %q %q %q", rec.s1, rec.s3, rec.s4, c.s1, c.s3, c.s4)
		}
		if rec.flags&gotapFlagPacked == 0 {
			t.Errorf("record flags %#x: packing flag missing", rec.flags)
		}
		errText := ""
		if c.err != nil {
			errText = c.err.Error()
		}
		got := gotapTestUnpack(t, rec.s5)
		want := [8]string{gotapDriverPath(c.db.Driver()), "INSERT", errText, c.s1, "", c.s3, c.s4, c.s5}
		if got != want {
			t.Errorf("packed strings %q, want %q", got, want)
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
