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
