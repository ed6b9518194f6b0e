// Package lib is the second module of the test workspace.
package lib

func Greeting() string { return "lib" }
