// Package server wires Pulpo's components together and runs them: the
// database (external or a private cluster), migrations, storage, task
// workers and the HTTP listener serving the API. Components are built here
// and handed their dependencies explicitly; nothing registers itself.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/pulpo/pulpo/host/api"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/pgcluster"
	"github.com/pulpo/pulpo/host/pluginhost"
	"github.com/pulpo/pulpo/host/stages"
	"github.com/pulpo/pulpo/host/tasks"
	"github.com/pulpo/pulpo/host/tracing"
)

// Version is the version of the Pulpo host ("core" in status/).
const Version = "0.1.0"

// OpenDB connects to the configured database, starting the private cluster
// under the data directory when no URL is configured, and applies
// migrations. The returned stop function closes both.
func OpenDB(ctx context.Context, cfg config.Config, log *slog.Logger) (*db.DB, func(), error) {
	url := cfg.DatabaseURL
	var cluster *pgcluster.Cluster
	if url == "" {
		var err error
		cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: cfg.PostgresDir(), Database: "pulpo", Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("embedded database: %w", err)
		}
		url = cluster.URL()
		log.InfoContext(ctx, "embedded PostgreSQL running", "dir", cfg.PostgresDir())
	}
	stopCluster := func() {
		if cluster != nil {
			if err := cluster.Stop(context.Background()); err != nil {
				log.Error("stop embedded database", "err", err)
			}
		}
	}
	d, err := db.Open(ctx, url, int32(cfg.DatabaseMaxConns), log.With("component", "db"))
	if err != nil {
		stopCluster()
		return nil, nil, err
	}
	if err := db.Migrate(ctx, d.Pool()); err != nil {
		d.Close()
		stopCluster()
		return nil, nil, err
	}
	return d, func() { d.Close(); stopCluster() }, nil
}

// Run serves until ctx is canceled, then shuts down in reverse order.
func Run(ctx context.Context, cfg config.Config, cmd config.Command, log *slog.Logger) error {
	for _, dir := range []string{cfg.DataDir, cfg.WorkDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	work, err := claimWorkDir(ctx, cfg.WorkDir(), log)
	if err != nil {
		return err
	}
	defer work.Release() //nolint:errcheck // shutting down
	// Downloads, spools and plugin scratch directories go to this process's own
	// directory, which a later start sweeps if the process dies mid-way.
	ownWork := cfg.WithWorkDir(work.Path)
	d, closeDB, err := OpenDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	opened, err := openStorage(ctx, cfg, log)
	if err != nil {
		return err
	}
	store := opened.driver
	m := newMetrics(d) // before the plugins load, so their describe calls count
	arts := &artifact.Store{DB: d, Storage: store, TempDir: ownWork.WorkDir(), Checksums: cfg.AllowedChecksums}
	plugins, err := loadPlugins(ctx, ownWork, log, m, pluginhost.Artifacts{DB: d, Storage: store})
	if err != nil {
		return err
	}
	defer plugins.Close(context.Background()) //nolint:errcheck // shutting down
	releaseMemory()
	applyMemoryLimit(ctx, cfg, log)
	versions := map[string]string{"core": Version}
	for _, p := range plugins.Plugins() {
		versions[p.Name()] = p.Version()
	}

	var tracer *tracing.Tracer
	if cfg.OTelEndpoint != "" {
		host, _ := os.Hostname()
		if tracer, err = tracing.New(tracing.Config{Endpoint: cfg.OTelEndpoint, Service: cfg.OTelService, SampleRatio: cfg.OTelSampleRatio,
			Attrs: []tracing.Attr{tracing.String("service.version", Version), tracing.String("service.instance.id", fmt.Sprintf("%s/%d", host, os.Getpid())),
				tracing.String("pulpo.role", string(cmd))}}); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tracer.Shutdown(sctx); err != nil {
				log.Warn("tracing: spans not exported at shutdown", "err", err)
			}
		}()
		log.InfoContext(ctx, "tracing", "endpoint", config.RedactURL(cfg.OTelEndpoint), "sample_ratio", cfg.OTelSampleRatio)
	}

	reg := tasks.NewRegistry()
	publisher := newPublisher(d, arts, plugins)
	publisher.Register(reg)
	coretask.Register(reg, coretask.Deps{DB: d, Storage: store, Artifacts: arts, OrphanProtection: cfg.OrphanProtectionTime,
		OnNewVersion: publisher.Autopublish})
	syncer := &stages.Syncer{DB: d, Artifacts: arts, TempDir: ownWork.WorkDir(), Log: log,
		Plugin: func(name string) (stages.FirstStager, bool) {
			p, ok := plugins.Plugin(name)
			return p, ok
		},
		Downloader: newDownloader(cfg, log, download.WithMeter(m)), Types: contentTypeInfo(plugins.Plugins()), OnNewVersion: publisher.Autopublish}
	syncer.Register(reg)
	registerRepair(reg, cfg, d, store, log, download.WithMeter(m))
	serveAPI, serveContent := cmd == config.Serve && cfg.API, cmd == config.Serve && cfg.Content
	serveHTTP := serveAPI || serveContent
	// Roles are registered only for what this process serves: status/
	// reports them as online apps, and the node heartbeats them.
	node := tasks.NewNode(d, reg, tasks.Options{
		Workers: cfg.Workers, API: serveAPI, Content: serveContent,
		TTL: cfg.WorkerTTL, Poll: cfg.TaskPoll, Versions: versions, Logger: log, Observer: m, Tracer: tracer,
	})
	if err := node.Start(ctx); err != nil {
		return err
	}
	defer node.Stop(context.Background())
	checks := newHealth(d, store, plugins, log)
	if cfg.MetricsListen != "" {
		stopOps, err := serveOps(ctx, cfg.MetricsListen, m, checks, log)
		if err != nil {
			return err
		}
		defer stopOps()
	}
	if !serveHTTP {
		log.InfoContext(ctx, "worker running", "workers", cfg.Workers)
		<-ctx.Done()
		return nil
	}

	mux := http.NewServeMux()
	opsRoutes(mux, m, checks)
	authn := auth.NewAuthenticator(d, cfg.AuthCacheTTL)
	if serveAPI {
		apiServer, err := api.New(api.Deps{
			Auth: &auth.Authorizer{Store: d}, Users: authn,
			DB: d, Storage: store, Artifacts: arts, Tasks: node, Versions: versions, Types: apiTypes(plugins.Plugins()),
			StorageUsage: opened.usage,
			MaxChunkSize: cfg.MaxUploadChunk, ContentOrigin: cfg.ContentOrigin, ContentPathPrefix: cfg.ContentPathPrefix,
			Logger: log, Requests: m,
		})
		if err != nil {
			return err
		}
		if err := bootstrapAuth(ctx, cfg, d, apiServer.BuiltinRoles(), log); err != nil {
			return err
		}
		mux.Handle("/pulp/api/v3/", apiServer)
	}
	if serveContent {
		app, err := newContentApp(cfg, d, opened, arts, plugins.Plugins(), log, download.WithMeter(m))
		if err != nil {
			return err
		}
		app.Start()
		defer app.Close() // after the HTTP shutdown: ends downloads nobody waits for
		mux.Handle(cfg.ContentPathPrefix, m.Instrument("content", app))
		routes, closeRoutes, err := pluginRoutes(cfg, d, store, arts, app, node, plugins.Plugins(), log)
		if err != nil {
			return err
		}
		defer closeRoutes()
		for _, rt := range routes {
			mux.Handle(rt.prefix, m.Instrument(rt.name, rt.h))
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Every request is authenticated (when it carries credentials) before
	// routing; the API decides per route what anonymous users may do.
	srv := &http.Server{Handler: tracer.Handler(authn.Middleware(mux, "/pulp/api/", log)), ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.InfoContext(ctx, "listening", "addr", ln.Addr().String(), "workers", cfg.Workers)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// usage reports the filesystem holding root.
func usage(root string) (total, used, free int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		return 0, 0, 0, err
	}
	bs := int64(st.Bsize)
	total, free = int64(st.Blocks)*bs, int64(st.Bavail)*bs
	return total, total - int64(st.Bfree)*bs, free, nil
}
