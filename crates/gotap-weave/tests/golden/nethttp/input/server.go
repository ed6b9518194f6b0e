// Trimmed from Go 1.26 net/http/server.go: the join point of rule nethttp-server.

package http

type serverHandler struct {
	srv *Server
}

// ServeHTTP dispatches the request to the handler whose
// pattern most closely matches the request URL.
func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request) {
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
