package server

import (
	"log/slog"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/content"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/storage"
)

// newContentApp builds the content app served under the content path
// prefix, with each distribution type's serve_from_publication from its
// plugin's describe.
func newContentApp(cfg config.Config, d *db.DB, store storage.Driver, arts *artifact.Store, plugins []*plugin.Plugin, log *slog.Logger) (*content.Handler, error) {
	fromPub := map[string]bool{}
	for _, p := range plugins {
		for _, dt := range p.Describe().DistributionTypes {
			fromPub[dt.Name] = dt.ServeFromPublication
		}
	}
	return content.New(content.Deps{
		DB: d, Storage: store, Artifacts: arts, Downloader: remoteDownloaders(cfg, log),
		ServeFromPublication: fromPub, Prefix: cfg.ContentPathPrefix, Logger: log,
	})
}
