// cgohello calls into C: built with CGO_ENABLED=1 it is linked by the external (C) linker, which
// lays out the ELF differently from Go's internal linker.
package main

/*
static int add(int a, int b) { return a + b; }
*/
import "C"

import "fmt"

//go:noinline
func greet(name string) string {
	if name == "" {
		return "hello, nobody"
	}
	return "hello, " + name
}

type greeter struct{ n int }

//go:noinline
func (g *greeter) Greet(name string) string {
	g.n = int(C.add(C.int(g.n), 1))
	return fmt.Sprint(greet(name), " #", g.n)
}

func main() {
	fmt.Println((&greeter{}).Greet("gotap"))
}
