//line input/stream.go:1
// Trimmed from google.golang.org/grpc v1.83.2 stream.go: the join point of rule grpc-client.

package grpc

import (
	"context"

	"google.golang.org/grpc/metadata"
)

func newClientStream(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, opts ...CallOption) (_ ClientStream, err error) {
//line gotap-rule-grpc-probe-client.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 {
	var gotapRec *gotapProbeRecord
	ctx, gotapRec = gotapProbeGRPCClientBegin(ctx, method)
	if gotapRec != nil {
		gotapTarget := cc.Target()
		opts = append(opts, OnFinish(func(err error) { gotapProbeGRPCClientEnd(gotapRec, method, gotapTarget, err) }))
	}
}
/*line input/stream.go:11:141*/
	defer func() {
		if err != nil {
			// Ensure cleanup when stream creation fails.
			endOfClientStream(cc, err, opts...)
		}
	}()
	opts = append([]CallOption{OnFinish(func(error) { cc.idlenessMgr.OnCallEnd() })}, opts...)
	return newClientStreamWithParams(ctx, desc, cc, method, mc, onCommit, false, opts...)
}
