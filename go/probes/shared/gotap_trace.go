// Trace-context helpers of the probe-site fragments: random ids and W3C traceparent parsing and
// formatting, in one place for every package `gotap build --probes` weaves. Like gotap_batch.go,
// `gotap toolexec` adds this file to each of them (rules instrumentations/*/weave/probes.yaml)
// with its package clause replaced by the woven package's: net/http cannot import a package
// outside the standard library, and grpc must not gain a module, so a shared Go package is not
// possible; one file adopted by each package is.
//
// Only `unsafe` is imported: every woven package already imports it (a package's compile step
// only knows the imports the package has).

package gotapshared

import _ "unsafe" // go:linkname

// The runtime's generator: math/rand is v1 in Go 1.26's net/http and v2 in 1.27's, and the
// runtime exports rand for linkname in both.
//
//go:linkname gotapRand runtime.rand
func gotapRand() uint64

// gotapProbeNonZero is a random span id or trace-id half: W3C trace-context forbids zero ids.
func gotapProbeNonZero() uint64 {
	for {
		if v := gotapRand(); v != 0 {
			return v
		}
	}
}

// gotapParseTraceparent reads version 00 of W3C trace-context: 00-<32 hex>-<16 hex>-<2 hex>.
// A later version may append fields after a '-'; version ff and zero ids are invalid.
func gotapParseTraceparent(h string) (hi, lo, parent, flags uint64, ok bool) {
	if len(h) < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-' || h[0:2] == "ff" {
		return 0, 0, 0, 0, false
	}
	if len(h) > 55 && (h[0:2] == "00" || h[55] != '-') {
		return 0, 0, 0, 0, false
	}
	var v [4]uint64
	for i, f := range [4][2]int{{3, 19}, {19, 35}, {36, 52}, {53, 55}} {
		for k := f[0]; k < f[1]; k++ {
			d := gotapHexVal[h[k]]
			if d > 15 {
				return 0, 0, 0, 0, false
			}
			v[i] = v[i]<<4 | uint64(d)
		}
	}
	if v[0] == 0 && v[1] == 0 || v[2] == 0 {
		return 0, 0, 0, 0, false
	}
	return v[0], v[1], v[2], v[3], true
}

// gotapHexVal maps a lower-case hex digit to its value and every other byte to 255 (a table: the
// switch per character it replaced showed in profiles of every traced request).
var gotapHexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 255
	}
	for i := 0; i < 10; i++ {
		t['0'+i] = byte(i)
	}
	for i := 0; i < 6; i++ {
		t['a'+i] = byte(10 + i)
	}
	return t
}()

// gotapFormatTraceparent is the version 00 traceparent of trace id hi:lo and span id span, with
// the sampled flag of bit 0 of flags (the fragments' records keep it there).
func gotapFormatTraceparent(hi, lo, span, flags uint64) string {
	const hex = "0123456789abcdef"
	var b [55]byte
	copy(b[:], "00-")
	put := func(at int, v uint64) {
		for i := 15; i >= 0; i-- {
			b[at+i] = hex[v&0xf]
			v >>= 4
		}
	}
	put(3, hi)
	put(19, lo)
	b[35] = '-'
	put(36, span)
	b[52] = '-'
	b[53] = '0'
	b[54] = hex[flags&1]
	return string(b[:])
}
