package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/content"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/liveroute"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/registry"
	"github.com/pulpo/pulpo/host/registry/token"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

// liveRoute is a plugin route prefix and what serves it.
type liveRoute struct {
	prefix, name string
	h            http.Handler
}

// pluginRoutes builds a handler for every route the plugins declare: the OCI registry
// for routes speaking abi.ProtocolOCIDistribution, handle_route for the others. The
// returned function stops what they run.
func pluginRoutes(cfg config.Config, d *db.DB, store storage.Driver, arts *artifact.Store, files *content.Handler,
	node *tasks.Node, plugins []*plugin.Plugin, log *slog.Logger) ([]liveRoute, func(), error) {
	var out []liveRoute
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	seen := map[string]string{}
	for _, p := range plugins {
		desc := p.Describe()
		keys := map[string][]string{}
		for _, ct := range desc.ContentTypes {
			keys[ct.Name] = ct.NaturalKey
		}
		for _, rt := range desc.Routes {
			if other, dup := seen[rt.Prefix]; dup {
				closeAll()
				return nil, nil, fmt.Errorf("route %s is declared by plugins %s and %s", rt.Prefix, other, p.Name())
			}
			seen[rt.Prefix] = p.Name()
			if rt.Protocol != abi.ProtocolOCIDistribution {
				out = append(out, liveRoute{prefix: rt.Prefix, name: "plugin_" + p.Name(),
					h: &liveroute.Handler{Plugin: p, DB: d, Storage: store, NaturalKeys: keys, Logger: log}})
				continue
			}
			var up registry.Uploader
			if p.HasExport(abi.ExportContentFromUpload) {
				up = p
			}
			access, tokens, err := registryAccess(cfg, d, p.Name(), rt.Registry.DistributionType, log)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			if tokens != nil {
				if other, dup := seen["/token"]; dup {
					closeAll()
					return nil, nil, fmt.Errorf("registry token endpoint /token is wanted by plugins %s and %s", other, p.Name())
				}
				seen["/token"] = p.Name()
				out = append(out, liveRoute{prefix: "/token", name: "registry_token", h: tokens})
			}
			reg, err := registry.New(registry.Deps{DB: d, Storage: store, Artifacts: arts, Files: files, Plugin: up, Access: access,
				Describe: desc, Route: rt, Tasks: node, UploadDir: filepath.Join(cfg.WorkDir(), "registry-uploads"), Logger: log,
				PullThroughTTL: cfg.PullThroughTTL})
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			reg.Start()
			closers = append(closers, reg.Close)
			out = append(out, liveRoute{prefix: rt.Prefix, name: "registry", h: reg})
		}
	}
	return out, closeAll, nil
}

// registryAccess is the registry's access policy: token authentication with its token
// endpoint, or with token_auth off everything open (no endpoint).
func registryAccess(cfg config.Config, d *db.DB, pluginName, distType string, log *slog.Logger) (registry.Access, http.Handler, error) {
	if !cfg.TokenAuth {
		log.Warn("token_auth is off: the registry serves private distributions and accepts pushes from anyone")
		return registry.OpenAccess{}, nil, nil
	}
	key, err := token.LoadKey(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	signer := &token.Signer{Key: key, Issuer: "pulpo"}
	_, endpoint, _ := strings.Cut(distType, ".")
	srv := &token.Server{Signer: signer, Users: auth.NewAuthenticator(d, cfg.AuthCacheTTL), Perms: &auth.Authorizer{Store: d},
		Dists: d, DistributionType: distType, Model: auth.ModelOf(auth.Distribution, pluginName, endpoint),
		TTL: 5 * time.Minute, Log: log}
	return &token.Access{Signer: signer, Policy: srv}, srv, nil
}
