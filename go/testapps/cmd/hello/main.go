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

func main() {
	fmt.Println(greet("gotap"))
}
