//line input/server.go:1
// Trimmed from google.golang.org/grpc v1.83.2 server.go: the join points of rules
// grpc-server-unary and grpc-server-streaming.

package grpc

import (
	"context"
	"io"

	"google.golang.org/grpc/internal/transport"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func (s *Server) processUnaryRPC(ctx context.Context, stream *transport.ServerStream, info *serviceInfo, md *MethodDesc, trInfo *traceInfo) (err error) {
//line gotap-rule-grpc-probe-server-unary.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 {
	var gotapRec *gotapProbeRecord
	ctx, gotapRec = gotapProbeGRPCServerBegin(ctx)
	defer func() { gotapProbeGRPCServerEnd(ctx, stream.Method(), gotapRec, err) }()
}
/*line input/server.go:16:154*/
	sh := s.statsHandler
	ctx = NewContextWithServerTransportStream(ctx, stream)
	reply, appErr := md.Handler(info.serviceImpl, ctx, df, s.opts.unaryInt)
	if appErr != nil {
		appStatus, _ := status.FromError(appErr)
		stream.WriteStatus(appStatus)
		return appErr
	}
	return stream.WriteStatus(statusOK)
}

func (s *Server) processStreamingRPC(ctx context.Context, stream *transport.ServerStream, info *serviceInfo, sd *StreamDesc, trInfo *traceInfo) (err error) {
//line gotap-rule-grpc-probe-server-streaming.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 {
	var gotapRec *gotapProbeRecord
	ctx, gotapRec = gotapProbeGRPCServerBegin(ctx)
	defer func() { gotapProbeGRPCServerEnd(ctx, stream.Method(), gotapRec, err) }()
}
/*line input/server.go:28:158*/
	ss := &serverStream{ctx: NewContextWithServerTransportStream(ctx, stream), s: stream}
	appErr := sd.Handler(info.serviceImpl, ss)
	if appErr != nil {
		return appErr
	}
	return ss.s.WriteStatus(statusOK)
}

// Stop and GracefulStop, bodies trimmed: the join points of the batch flush rules.
func (s *Server) Stop() {
//line gotap-rule-grpc-probe-flush-stop.go:1
defer gotapBatchFlush()
/*line input/server.go:38:26*/
	s.stop(false)
}

func (s *Server) GracefulStop() {
//line gotap-rule-grpc-probe-flush-graceful-stop.go:1
defer gotapBatchFlush()
/*line input/server.go:42:34*/
	s.stop(true)
}
