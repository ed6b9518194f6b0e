//line input/roundtrip.go:1
// Trimmed from Go 1.26 net/http/roundtrip.go: the join point of rule nethttp-client.

//go:build !js

package http

import _ "unsafe" // for linkname

// RoundTrip implements the [RoundTripper] interface.
func (t *Transport) RoundTrip(req *Request) (*Response, error) {
//line gotap-rule-nethttp-probe-client.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && t != nil {
	return gotapProbeClientRoundTrip(t, req)
}
/*line input/roundtrip.go:10:65*/
	if t == nil {
		panic("transport is nil")
	}
	return t.roundTrip(req)
}
