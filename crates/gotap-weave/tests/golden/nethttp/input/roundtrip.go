// Trimmed from Go 1.26 net/http/roundtrip.go: the join point of rule nethttp-client.

//go:build !js

package http

import _ "unsafe" // for linkname

// RoundTrip implements the [RoundTripper] interface.
func (t *Transport) RoundTrip(req *Request) (*Response, error) {
	if t == nil {
		panic("transport is nil")
	}
	return t.roundTrip(req)
}
