package sqltext

import (
	"os"
	"strings"
	"testing"
)

// corpusField undoes the escapes of testdata/sanitize.txt: \n, \t and \\.
func corpusField(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '\\' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

// The corpus instrumentations/databasesql/spans.rs (probe sites' spans) runs too: both strategies export
// the same db.query.text and status message, per dialect.
func TestSanitizeCorpus(t *testing.T) {
	data, err := os.ReadFile("testdata/sanitize.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw := strings.Split(line, "\t")
		f := make([]string, len(raw))
		for i, r := range raw {
			f[i] = corpusField(r)
		}
		switch {
		case f[0] == "query" && len(f) == 4:
			if got := Scan(f[2], f[1]).Sanitized; got != f[3] {
				t.Errorf("%s %q: sanitized %q, want %q", f[1], f[2], got, f[3])
			}
		case f[0] == "error" && len(f) == 5:
			if got := ScrubError(f[3], f[2], f[1]); got != f[4] {
				t.Errorf("%s %q, error %q: %q, want %q", f[1], f[2], f[3], got, f[4])
			}
		default:
			t.Fatalf("bad corpus line %q", line)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("%d cases", n)
	}
}

// The corpus instrumentations/databasesql/spans.rs runs too: both strategies give the same
// db.operation.name and db.collection.name (so the same span name), quoted identifiers included.
func TestNamesCorpus(t *testing.T) {
	data, err := os.ReadFile("testdata/names.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw := strings.Split(line, "\t")
		if len(raw) != 4 {
			t.Fatalf("bad corpus line %q", line)
		}
		f := make([]string, len(raw))
		for i, r := range raw {
			f[i] = corpusField(r)
			if f[i] == "-" {
				f[i] = ""
			}
		}
		p := Scan(f[1], f[0])
		if p.Operation != f[2] || p.Collection != f[3] {
			t.Errorf("%s %q: operation %q collection %q, want %q %q", f[0], f[1], p.Operation, p.Collection, f[2], f[3])
		}
		n++
	}
	if n < 30 {
		t.Fatalf("%d cases", n)
	}
}
