//line input/server.go:1
// Trimmed from Go 1.26 net/http/server.go: the join point of rule nethttp-server.

package http

type serverHandler struct {
	srv *Server
}

// ServeHTTP dispatches the request to the handler whose
// pattern most closely matches the request URL.
func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request) {
//line gotap-rule-nethttp-probe-server.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 {
	var gotapRec *gotapProbeRecord
	req, gotapRec = gotapProbeServerBegin(req)
	defer gotapProbeServerEnd(rw, req, gotapRec)
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
//line gotap-rule-nethttp-probe-flush-shutdown.go:1
defer gotapBatchFlush()
/*line input/server.go:27:57*/
	return srv.shutdown(ctx)
}

func (srv *Server) Close() error {
//line gotap-rule-nethttp-probe-flush-close.go:1
defer gotapBatchFlush()
/*line input/server.go:31:35*/
	return srv.close()
}
