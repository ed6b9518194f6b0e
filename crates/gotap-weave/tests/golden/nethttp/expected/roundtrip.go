//line input/roundtrip.go:1
// Trimmed from Go 1.26 net/http/roundtrip.go: the join point of rule nethttp-client.

//go:build !js

package http

import _ "unsafe" // for linkname

// RoundTrip implements the [RoundTripper] interface.
func (t *Transport) RoundTrip(req *Request) (*Response, error) {
//line gotap-rule-nethttp-client.go:1
if gotapClientRoundTrip != nil && t != nil {
	return gotapClientRoundTrip(req, t.roundTrip)
}
/*line input/roundtrip.go:10:65*/
	if t == nil {
		panic("transport is nil")
	}
	return t.roundTrip(req)
}


//line gotap-rule-nethttp-client-declarations.go:1
var gotapClientRoundTrip func(*Request, func(*Request) (*Response, error)) (*Response, error)

//go:linkname gotapSetClientRoundTrip
func gotapSetClientRoundTrip(f func(*Request, func(*Request) (*Response, error)) (*Response, error)) {
	gotapClientRoundTrip = f
}

