package main

import "testing"

func TestModuleConstraint(t *testing.T) {
	cases := []struct {
		rng, v string
		want   bool
	}{
		{">=1.60, <2", "v1.83.2", true},
		{">=1.60, <2", "v1.60.0", true},
		{">=1.60, <2", "v1.59.9", false},
		{">=1.60, <2", "v2.0.0", false},
		{">=1.60, <2", "v1.60.0-rc.1", false}, // a pre-release comes before its release
		{">= 1.60 <1.84", "v1.83.2", true},
		{"<1.84", "v1.84.0", false},
		{"=1.83.2", "v1.83.2+incompatible", true},
		{">v0.0.0-20250101000000-aaaaaaaaaaaa", "v0.0.0-20260819154853-08b0e4226688", true},
		{">=1.2.0-rc.2", "v1.2.0-rc.10", true}, // numeric identifiers compare as numbers
		{">=1.2.0-alpha", "v1.2.0-1", false},   // numeric identifiers sort first
		{"", "v0.1.0", true},
		{">=1.60", "not-a-version", false},
	}
	for _, c := range cases {
		in, err := moduleConstraint(c.rng)
		if err != nil {
			t.Fatalf("%q: %v", c.rng, err)
		}
		if got := in(c.v); got != c.want {
			t.Errorf("%q matches %s: got %v, want %v", c.rng, c.v, got, c.want)
		}
	}
	for _, bad := range []string{">=1.x", "~1.2", ">=01.2", "1.2.3.4"} {
		if _, err := moduleConstraint(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
