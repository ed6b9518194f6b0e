// wraprule is the program of crates/gotap-cli/tests/build_rules.rs: a user rules file
// (rules.yaml) wraps its calls to strconv.Atoi and (*strings.Builder).WriteString and adds a
// field to Order. Unwoven, it prints only the parse results, `{ID:1}` and `built`.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Order gets a field from the rules (struct-definition + add-fields); %+v shows it.
type Order struct {
	ID int
}

var calls int

func record(s string) string {
	calls++
	fmt.Printf("argument %d: %s\n", calls, s)
	return s
}

func main() {
	for _, a := range os.Args[1:] {
		// The argument is evaluated once, before the wrapper's "after" advice.
		n, err := strconv.Atoi(record(a))
		fmt.Printf("parsed %q: %d, %v\n", a, n, err)
	}
	fmt.Printf("%+v\n", Order{ID: 1})
	// A method call site: resolved with the compile step's type information.
	var b strings.Builder
	b.WriteString("built")
	fmt.Println(b.String())
}
