package server

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/pulpo/pulpo/host/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from memory_limit unless
// GOMEMLIMIT is set (the runtime read it already). Without a limit the heap may grow to
// twice what is live. It is applied once the plugins are loaded: a cold compile (no
// compilation cache yet) needs more live memory than the limit, and under the limit it
// would only collect garbage in a loop, slower and no smaller.
func applyMemoryLimit(ctx context.Context, cfg config.Config, log *slog.Logger) {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		log.InfoContext(ctx, "memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
}

// releaseMemory hands memory the runtime no longer uses back to the operating system now
// rather than over minutes: compiling plugins leaves tens of MiB of garbage behind.
func releaseMemory() { debug.FreeOSMemory() }
