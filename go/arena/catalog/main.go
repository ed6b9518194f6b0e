// catalog: the arena's gRPC service. GetProduct(id) answers from an in-memory table, so that the
// gateway's second downstream costs gRPC framing and protobuf, not storage.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"gotap.dev/arena/shared/catalogpb"
	"gotap.dev/arena/shared/debugz"
	"gotap.dev/arena/shared/telemetry"
)

const numProducts = 1000

type server struct {
	catalogpb.UnimplementedCatalogServer
	products map[int64]*catalogpb.Product
}

func (s *server) GetProduct(ctx context.Context, req *catalogpb.GetProductRequest) (*catalogpb.Product, error) {
	p, ok := s.products[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "product %d not found", req.GetId())
	}
	return p, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "gRPC listen address")
	debugAddr := flag.String("debug-addr", "", "address of the uninstrumented /debug/runtime endpoint (empty: off)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown, err := telemetry.Setup(ctx, "catalog")
	if err != nil {
		log.Fatalf("telemetry: %v", err)
	}
	debugz.Serve(*debugAddr)

	s := &server{products: make(map[int64]*catalogpb.Product, numProducts)}
	for i := int64(1); i <= numProducts; i++ {
		s.products[i] = &catalogpb.Product{Id: i, Name: fmt.Sprintf("product-%04d", i), PriceCents: 100 + i*7%5000, Stock: int32(i % 97)}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer(telemetry.GRPCServerOptions()...)
	catalogpb.RegisterCatalogServer(gs, s)
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
	}()
	log.Printf("catalog listening on %s (manual instrumentation: %v)", ln.Addr(), telemetry.Enabled)
	if err := gs.Serve(ln); err != nil {
		log.Fatalf("serve: %v", err)
	}
	// Flush spans still in the batcher before exiting: the arena counts what arrived.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		log.Printf("telemetry shutdown: %v", err)
	}
}
