//line input/stream.go:1
// Trimmed from google.golang.org/grpc v1.85.0 stream.go (unchanged join point): the join point of rule grpc-client.

package grpc

import (
	"context"

	"google.golang.org/grpc/metadata"
)

func newClientStream(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, opts ...CallOption) (_ ClientStream, err error) {
//line gotap-rule-grpc-client.go:1
if gotapClientStart != nil {
	var gotapEnd func(code int, msg string)
	var gotapInject []string
	ctx, gotapInject, gotapEnd = gotapClientStart(ctx, method, cc.Target())
	if gotapEnd != nil {
		ctx = gotapOutgoing(ctx, gotapInject)
		opts = append(opts, OnFinish(func(err error) { gotapEnd(gotapStatus(err)) }))
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


//line gotap-rule-grpc-client-declarations.go:1
// Set by gotap.dev/gotaprt (by linkname, see instrumentations/grpc/weave/rules.yaml). A nil end function
// means the call is not traced (the runtime's or the application's own OTLP exports).
var gotapClientStart func(ctx context.Context, fullMethod string, target string) (context.Context, []string, func(code int, msg string))

// gotapOutgoing sets the key/value pairs in ctx's outgoing metadata, replacing earlier
// values of those keys (FromOutgoingContext returns a copy).
func gotapOutgoing(ctx context.Context, kv []string) context.Context {
	if len(kv) < 2 {
		return ctx
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if md == nil {
		md = metadata.MD{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		md.Set(kv[i], kv[i+1])
	}
	return metadata.NewOutgoingContext(ctx, md)
}

