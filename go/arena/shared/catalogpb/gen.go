package catalogpb

// Regenerate (the output is committed, so building needs neither protoc nor the plugins):
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative catalog.proto
// Plugins: go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//          go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
