// deps links real modules from the Go module proxy (github.com/google/uuid, golang.org/x/text
// replaced by another version) and a local module behind a directory `replace`, so buildinfo has
// dep lines with and without checksums and both kinds of `=>` lines.
package main

import (
	"fmt"

	"example.com/gotap/greeting"
	"github.com/google/uuid"
	"golang.org/x/text/width"
)

//go:noinline
func greet(name string) string {
	if name == "" {
		return "hello, nobody"
	}
	return "hello, " + width.Widen.String(name)
}

type greeter struct{ ns uuid.UUID }

//go:noinline
func (g *greeter) Greet(name string) string {
	return uuid.NewSHA1(g.ns, []byte(name)).String()
}

func main() {
	fmt.Println(greet("gotap"), greeting.Shout("gotap"))
	fmt.Println((&greeter{ns: uuid.NameSpaceDNS}).Greet("gotap"))
}
