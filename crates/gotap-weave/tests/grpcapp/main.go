// grpcapp: a gRPC server and its client in one process, with no OpenTelemetry code, for
// `gotap build` tests (crates/gotap-cli/tests/build_grpc.rs). It serves grpc's own health
// service (no generated code of ours) and makes three calls — Check OK, Check NOT_FOUND, and
// a server-streaming Watch that it cancels after the first message — then waits for the spans
// to be exported and exits. Pinned to a grpc whose server join point (processRPC, grpc >= 1.85)
// differs from the arena's (processUnaryRPC/processStreamingRPC, grpc 1.83).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("catalog", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	c := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "catalog"}); err != nil {
		fail(err)
	}
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: "missing"})
	fmt.Println("check missing:", status.Code(err))

	wctx, cancel := context.WithCancel(ctx)
	w, err := c.Watch(wctx, &healthpb.HealthCheckRequest{Service: "catalog"})
	if err != nil {
		fail(err)
	}
	if _, err := w.Recv(); err != nil {
		fail(err)
	}
	cancel()
	_, err = w.Recv()
	fmt.Println("watch after cancel:", status.Code(err))
	// The server ends its span once the handler sees the cancellation; then the exporter flushes.
	time.Sleep(500 * time.Millisecond)
	s.Stop()
	time.Sleep(time.Second)
	fmt.Println("done")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
