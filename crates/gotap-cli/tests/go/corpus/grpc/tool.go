// The corpus's gRPC services (docs/corpus.md): a module whose go.mod names grpc-go's examples
// helloworld greeter_server and greeter_client as tools, so the test builds those main packages,
// which live in the module cache, with `go build` and `gotap build` at the version this go.mod pins.
package main

func main() {}
