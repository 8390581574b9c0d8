package server

import (
	"context"
	"log/slog"

	"github.com/pulpo/pulpo/host/scratch"
)

// claimWorkDir removes what dead processes left under root (kill -9 mid-download) and
// claims this process's own working directory there.
func claimWorkDir(ctx context.Context, root string, log *slog.Logger) (*scratch.Dir, error) {
	removed, err := scratch.Sweep(root)
	if len(removed) > 0 {
		log.InfoContext(ctx, "removed working files of dead processes", "paths", removed)
	}
	if err != nil {
		log.WarnContext(ctx, "sweep working directory", "error", err)
	}
	return scratch.Claim(root)
}
