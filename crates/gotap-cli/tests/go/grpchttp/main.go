// A gRPC server whose handlers query SQLite and make an HTTP call, and an HTTP server whose
// handlers call it over gRPC, all in one process:
//
//	GET /q    → gRPC /gotap.test.Q/Run  → SELECT 40 + 2, then GET /leaf (HTTP client, handler's context)
//	GET /fail → gRPC /gotap.test.Q/Fail → a query on a missing table; answers NOT_FOUND
//
// Used by gotap's tests of probe sites: the parent lookups between the net/http, grpc and
// database/sql fragments, and `gotap probes bpftrace`. Listens on $ADDR (HTTP) and $GRPC_ADDR;
// $DB is the SQLite file.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	_ "modernc.org/sqlite"
)

func main() {
	addr := os.Getenv("ADDR")
	db, err := sql.Open("sqlite", os.Getenv("DB"))
	if err != nil {
		log.Fatal(err)
	}
	unary := func(body func(ctx context.Context) error) grpc.MethodHandler {
		return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			if err := body(ctx); err != nil {
				return nil, err
			}
			return new(emptypb.Empty), nil
		}
	}
	run := func(ctx context.Context) error {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT 40 + 2").Scan(&n); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/leaf", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	fail := func(ctx context.Context) error {
		if _, err := db.ExecContext(ctx, "DELETE FROM missing"); err == nil {
			return nil
		}
		return status.Error(codes.NotFound, "nothing here")
	}
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "gotap.test.Q",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Run", Handler: unary(run)},
			{MethodName: "Fail", Handler: unary(fail)},
		},
	}, struct{}{})
	gl, err := net.Listen("tcp", os.Getenv("GRPC_ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(gl)
	cc, err := grpc.NewClient(os.Getenv("GRPC_ADDR"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	call := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := cc.Invoke(r.Context(), method, new(emptypb.Empty), new(emptypb.Empty)); err != nil {
				http.Error(w, status.Code(err).String(), http.StatusBadGateway)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	http.HandleFunc("GET /q", call("/gotap.test.Q/Run"))
	http.HandleFunc("GET /fail", call("/gotap.test.Q/Fail"))
	http.HandleFunc("GET /leaf", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "leaf") })
	hl, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(hl, nil))
}
