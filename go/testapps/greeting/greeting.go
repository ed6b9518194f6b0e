// Package greeting is a local module the deps test program reaches through a `replace` to a
// directory, so buildinfo carries a `=> ./greeting` line without a version or checksum.
package greeting

// Shout upper-cases ASCII letters (kept trivial: the test only needs the module to be linked).
//
//go:noinline
func Shout(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
