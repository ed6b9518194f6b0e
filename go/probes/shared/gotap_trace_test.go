package gotapshared

import "testing"

func TestTraceparentRoundTrip(t *testing.T) {
	const h = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	hi, lo, parent, flags, ok := gotapParseTraceparent(h)
	if !ok || hi != 0x0af7651916cd43dd || lo != 0x8448eb211c80319c || parent != 0xb7ad6b7169203331 || flags != 1 {
		t.Fatalf("parse %q: %x %x %x %x %v", h, hi, lo, parent, flags, ok)
	}
	if got := gotapFormatTraceparent(hi, lo, parent, flags); got != h {
		t.Fatalf("format: %q", got)
	}
	if got := gotapFormatTraceparent(1, 2, 3, 0); got != "00-00000000000000010000000000000002-0000000000000003-00" {
		t.Fatalf("format unsampled: %q", got)
	}
}

func TestTraceparentRejects(t *testing.T) {
	for _, h := range []string{
		"",
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",      // short
		"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   // upper-case hex
		"00-00000000000000000000000000000000-b7ad6b7169203331-01",   // zero trace id
		"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   // zero span id
		"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   // version ff
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", // version 00 has no more fields
		"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",  // a later version's fields follow a '-'
		"00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	} {
		if _, _, _, _, ok := gotapParseTraceparent(h); ok {
			t.Errorf("%q accepted", h)
		}
	}
	// A later version may carry more fields.
	if _, _, _, _, ok := gotapParseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more"); !ok {
		t.Error("version 01 with a further field refused")
	}
}

func TestNonZeroIds(t *testing.T) {
	for i := 0; i < 1000; i++ {
		if gotapProbeNonZero() == 0 {
			t.Fatal("zero id")
		}
	}
}
