// hello is the smallest Go program gotap's analysis tests inspect.
package main

import "fmt"

//go:noinline
func greet(name string) string {
	if name == "" {
		return "hello, nobody"
	}
	return "hello, " + name
}

type greeter struct{ prefix string }

// Greet is a pointer method: its symbol, main.(*greeter).Greet, has parentheses and a star.
//
//go:noinline
func (g *greeter) Greet(name string) string {
	if len(name) > 10 {
		return g.prefix + name[:10]
	}
	return g.prefix + name
}

func main() {
	fmt.Println(greet("gotap"))
	fmt.Println((&greeter{prefix: "hi, "}).Greet("gotap"))
}
