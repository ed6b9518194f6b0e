// gogrpc: an HTTP server whose handlers call a gRPC server in the same process, with no
// OpenTelemetry code, for the function-probe tests of instrumentations/grpc
// (crates/gotap-ebpf/tests/grpc.rs). It serves grpc's own health service (no generated code of
// ours). Argument: the HTTP port. Prints "ready <grpc port>" once both listen.
//
// `gogrpc call <grpc address>` is a client only, in a process of its own (the same-host link
// between two processes, or an untraced caller standing for another host): it prints "ready",
// then for each line "SERVICE [TRACEPARENT]" read from stdin makes one unary Check (with that
// traceparent in its outgoing metadata, if given) and prints the gRPC code; it exits at EOF.
//
//	/check?service=S  unary Check (S "missing": NOT_FOUND); answers the gRPC code
//	/watch            server-streaming Watch, canceled after the first message
//	/remote?tp=T      unary Check with traceparent T in the outgoing metadata, as a traced
//	                  client on another host would send it
//	/loop?n=N         N unary Checks (for the BPF cost figures)
//	/relay            unary gotap.test.Relay/Fetch, whose handler GETs /check?service=catalog
//	                  from this server with net/http (a client span inside a gRPC handler)
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "call" {
		call(os.Args[2])
		return
	}
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: gogrpc <http port>"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("catalog", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	httpPort := os.Args[1]
	// A hand-written service (no generated code): its messages are health's.
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "gotap.test.Relay",
		HandlerType: (*interface{})(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Fetch",
			Handler: func(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
				in := new(healthpb.HealthCheckRequest)
				if err := dec(in); err != nil {
					return nil, err
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:"+httpPort+"/check?service=catalog", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return nil, err
				}
				resp.Body.Close()
				return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
			},
		}},
	}, struct{}{})
	go s.Serve(ln)

	conn, err := grpc.Dial(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	c := healthpb.NewHealthClient(conn)

	http.HandleFunc("/check", func(w http.ResponseWriter, r *http.Request) {
		_, err := c.Check(r.Context(), &healthpb.HealthCheckRequest{Service: r.URL.Query().Get("service")})
		fmt.Fprintln(w, status.Code(err))
	})
	http.HandleFunc("/remote", func(w http.ResponseWriter, r *http.Request) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", r.URL.Query().Get("tp"))
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "catalog"})
		fmt.Fprintln(w, status.Code(err))
	})
	http.HandleFunc("/watch", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		st, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "catalog"})
		if err == nil {
			_, err = st.Recv()
		}
		if err != nil {
			fmt.Fprintln(w, status.Code(err))
			return
		}
		cancel()
		_, err = st.Recv()
		fmt.Fprintln(w, status.Code(err))
	})
	http.HandleFunc("/relay", func(w http.ResponseWriter, r *http.Request) {
		out := new(healthpb.HealthCheckResponse)
		err := conn.Invoke(r.Context(), "/gotap.test.Relay/Fetch", &healthpb.HealthCheckRequest{}, out)
		fmt.Fprintln(w, status.Code(err))
	})
	http.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := 0; i < n; i++ {
			if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "catalog"}); err != nil {
				fmt.Fprintln(w, status.Code(err))
				return
			}
		}
		fmt.Fprintln(w, "OK")
	})
	hl, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fail(err)
	}
	fmt.Println("ready", ln.Addr().(*net.TCPAddr).Port)
	fail(http.Serve(hl, nil))
}

func call(addr string) {
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	c := healthpb.NewHealthClient(conn)
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		ctx := context.Background()
		if len(f) > 1 {
			ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", f[1])
		}
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: f[0]})
		fmt.Println(status.Code(err))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
