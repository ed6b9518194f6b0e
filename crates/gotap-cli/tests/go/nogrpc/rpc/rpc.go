// Package rpc uses grpc; the main package of this module does not import it.
package rpc

import "google.golang.org/grpc"

// NewServer returns a grpc server.
func NewServer() *grpc.Server { return grpc.NewServer() }
