//line input/server.go:1
// Trimmed from Go 1.26 net/http/server.go: the join point of rule nethttp-server.

package http; import _ "unsafe"

type serverHandler struct {
	srv *Server
}

// ServeHTTP dispatches the request to the handler whose
// pattern most closely matches the request URL.
func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request) {
//line gotap-rule-nethttp-server.go:1
if gotapServerStart != nil {
	var gotapEnd func(int)
	req, gotapEnd = gotapServerStart(req)
	defer func() { gotapEnd(gotapStatusOf(rw)) }()
}
/*line input/server.go:11:69*/
	handler := sh.srv.Handler
	if handler == nil {
		handler = DefaultServeMux
	}
	if !sh.srv.DisableGeneralOptionsHandler && req.RequestURI == "*" && req.Method == "OPTIONS" {
		handler = globalOptionsHandler{}
	}

	handler.ServeHTTP(rw, req)
}

// A method of another type with the same name is left alone.
func (mux *ServeMux) ServeHTTP(w ResponseWriter, r *Request) {}

// Shutdown and Close, bodies trimmed: the join points of the batch flush rules.
func (srv *Server) Shutdown(ctx context.Context) error {
	return srv.shutdown(ctx)
}

func (srv *Server) Close() error {
	return srv.close()
}


//line gotap-rule-nethttp-server-declarations.go:1
var gotapServerStart func(*Request) (*Request, func(status int))

//go:linkname gotapSetServerStart
func gotapSetServerStart(f func(*Request) (*Request, func(status int))) { gotapServerStart = f }

// gotapStatusOf is the status the handler wrote; 0 when it wrote nothing (then 200 is
// sent); -1 for a writer whose status cannot be read (the span then has none rather than
// a wrong 200). HTTP/2's writers answer GotapStatus (rules nethttp-http2-status*).
func gotapStatusOf(w ResponseWriter) int {
	if r, ok := w.(*response); ok {
		return r.status
	}
	if s, ok := w.(interface{ GotapStatus() int }); ok {
		if st := s.GotapStatus(); st != 0 {
			return st
		}
		return StatusOK
	}
	return -1
}



//line gotap-rule-nethttp-http2-status-bundled-declarations.go:1
func (w *http2responseWriter) GotapStatus() int { return w.rws.status }

