// Command multipolar is the Multipolar AI gateway.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// GC pacing for a proxy: its live heap is small (tens of MB even with a
// thousand streams open) while it allocates per request, so collecting at
// 4x the live heap instead of 2x halves the GC's CPU, and the soft memory
// limit makes the GC work harder before the heap grows past it. GOGC and
// GOMEMLIMIT in the environment take precedence.
const (
	gcPercent   = 300
	memoryLimit = 96 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts the drain, restore the default action
	// so a second one ends the process at once.
	go func() { <-ctx.Done(); stop() }()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}
