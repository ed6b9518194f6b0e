//go:build unix

package gotaprt

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "unsafe" // for go:linkname
)

// notified is the number of channels os/signal notified of signal n at its last delivery, the
// runtime's own included (rules/main.yaml, signal-handlers).
//
//go:linkname notified os/signal.gotapNotified
func notified(n int) int64

// signalFlushTimeout bounds the flush before a signal's default action: the sender (kubelet,
// systemd, a shell's Ctrl-C) expects the process to go soon, and may follow with SIGKILL.
const signalFlushTimeout = 2 * time.Second

// watchSignals keeps the spans still buffered when SIGTERM or SIGINT ends a program that does not
// handle the signal itself: Go's default action kills the process without running deferred calls
// or os.Exit, so neither exit flush runs.
//
// The runtime is notified of each signal on a channel of its own. When one arrives, it asks
// os/signal whether any other channel was notified of it — counted when os/signal delivered it,
// so a signal.Notify, NotifyContext, Stop or Reset the program made at any time before, whether
// before or after this registration, counts, and a handler that stops its notification as soon
// as it is woken still counts for this signal. If so, the program handles the signal and its own shutdown path ends it, through main's
// return or os.Exit, which flush; the runtime does nothing. If not, the runtime flushes (at most
// signalFlushTimeout), stops its notification, so that the signal's disposition is the default
// again, and sends the signal to its own process: the program dies of it, with the status the
// sender expects. A signal is never swallowed.
//
// A signal ignored when the program started (SIGINT of a background job, nohup) is left alone:
// notifying it would stop it being ignored.
func watchSignals() {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		if signal.Ignored(sig) {
			continue
		}
		c := make(chan os.Signal, 1)
		signal.Notify(c, sig)
		go onSignal(c, sig)
	}
}

func onSignal(c chan os.Signal, sig syscall.Signal) {
	for range c {
		if notified(int(sig)) > 1 {
			continue // the program's own handler has it too
		}
		flushBeforeSignal(c, sig)
		signal.Stop(c)
		// Default disposition now, unless the program registered meanwhile: then its handler
		// gets this signal, which it would otherwise have missed.
		_ = syscall.Kill(os.Getpid(), sig)
		return
	}
}

// flushBeforeSignal exports the pending spans, returning early when the signal comes again (a
// second Ctrl-C means now) or the bound passes.
func flushBeforeSignal(c chan os.Signal, sig syscall.Signal) {
	if ownSDK.Load() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), signalFlushTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		flush(ctx, "at "+signalName(sig))
	}()
	select {
	case <-done:
	case <-c:
	}
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}
