//go:build !unix

package gotaprt

// watchSignals: SIGTERM and SIGINT are re-raised with syscall.Kill, which only unix has; elsewhere
// spans pending at such a signal are lost, as before.
func watchSignals() {}
