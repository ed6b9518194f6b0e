//line input/server.go:1
// Trimmed from google.golang.org/grpc v1.85.0 server.go: the join point of rule grpc-server
// (unary and streaming RPCs share processRPC from 1.85 on).

package grpc

import (
	"context"
	"io"

	"google.golang.org/grpc/internal/transport"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func (s *Server) processRPC(ctx context.Context, stream *transport.ServerStream, info *serviceInfo, sd *StreamDesc, trInfo *traceInfo) (err error) {
//line gotap-rule-grpc-server.go:1
if gotapServerStart != nil {
	var gotapEnd func(code int, msg string)
	ctx, gotapEnd = gotapServerStart(ctx, stream.Method(), gotapIncoming(ctx), gotapPeer(ctx), s.statsHandler != nil)
	defer func() { gotapEnd(gotapStatus(err)) }()
}
/*line input/server.go:16:149*/
	ss := &serverStream{ctx: ctx, s: stream}
	appErr := sd.Handler(info.serviceImpl, ss)
	if appErr != nil {
		return appErr
	}
	return ss.s.WriteStatus(statusOK)
}

// Stop and GracefulStop, bodies trimmed: the join points of the batch flush rules.
func (s *Server) Stop() {
	s.stop(false)
}

func (s *Server) GracefulStop() {
	s.stop(true)
}


//line gotap-rule-grpc-server-declarations.go:1
// Set by gotap.dev/gotaprt (by linkname, see instrumentations/grpc/weave/rules.yaml).
// statsHandler: the server has a stats handler, whose TagRPC already ran on ctx (a tracing
// one, such as otelgrpc, then made the RPC's server span; gotap makes none and keeps ctx).
var gotapServerStart func(ctx context.Context, fullMethod string, md map[string][]string, peer string, statsHandler bool) (context.Context, func(code int, msg string))

// gotapIncoming is the incoming metadata (keys in lower case), nil when there is none.
func gotapIncoming(ctx context.Context) map[string][]string {
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

// gotapPeer is the client's address ("ip:port"), "" when unknown.
func gotapPeer(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// gotapStatus is the gRPC status of an RPC's outcome: code 0 (OK) for nil and io.EOF.
func gotapStatus(err error) (int, string) {
	if err == nil || err == io.EOF {
		return 0, ""
	}
	s := status.Convert(err)
	return int(s.Code()), s.Message()
}

