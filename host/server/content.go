package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/content"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/storage/s3"
)

// newContentApp builds the content app served under the content path
// prefix, with each distribution type's serve_from_publication from its
// plugin's describe.
func newContentApp(cfg config.Config, d *db.DB, store openedStorage, arts *artifact.Store, plugins []*plugin.Plugin, log *slog.Logger, dlOpts ...download.Option) (*content.Handler, error) {
	fromPub := map[string]bool{}
	for _, p := range plugins {
		for _, dt := range p.Describe().DistributionTypes {
			fromPub[dt.Name] = dt.ServeFromPublication
		}
	}
	deps := content.Deps{
		DB: d, Storage: store.driver, Artifacts: arts, Downloader: remoteDownloaders(cfg, log, dlOpts...),
		ServeFromPublication: fromPub, Prefix: cfg.ContentPathPrefix, Logger: log,
		Downloads: &auth.Authorizer{Store: d}, // core.rbac guards
	}
	if cfg.ContentRedirect {
		if store.presign == nil {
			return nil, fmt.Errorf("content_redirect: storage %q cannot presign URLs", cfg.Storage)
		}
		ttl := cfg.ContentRedirectTTL
		deps.Redirect = func(ctx context.Context, key, contentType, disposition string) (string, error) {
			return store.presign.PresignGet(ctx, key, ttl, s3.ResponseHeaders{ContentType: contentType, ContentDisposition: disposition})
		}
	}
	return content.New(deps)
}
