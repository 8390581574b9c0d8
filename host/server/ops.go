package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/health"
	"github.com/pulpo/pulpo/host/metrics"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/repair"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

// newMetrics builds the process's collectors, with the database pool and the
// artifact totals read at scrape time.
func newMetrics(d *db.DB) *metrics.Metrics {
	m := metrics.New()
	pool := d.Pool()
	m.WatchPool(func() metrics.PoolStats {
		s := pool.Stat()
		return metrics.PoolStats{Acquired: s.AcquiredConns(), Idle: s.IdleConns(), Total: s.TotalConns(), Max: s.MaxConns(),
			Acquires: s.AcquireCount(), EmptyAcquires: s.EmptyAcquireCount(), CanceledAcquires: s.CanceledAcquireCount(),
			AcquireDuration: s.AcquireDuration()}
	})
	m.WatchArtifacts(d.ArtifactTotals, 10*time.Second)
	m.WatchTaskQueue(d.TaskQueue, 2*time.Second)
	return m
}

// newHealth builds the readiness checks: the database answers and carries
// every migration, the storage takes a write, plugins are loaded.
func newHealth(d *db.DB, store storage.Driver, plugins *plugin.Registry, log *slog.Logger) *health.Checker {
	h := health.New(3*time.Second, log)
	h.Add("database", health.Database(d))
	h.Add("migrations", health.Migrations(func(ctx context.Context) ([]string, error) { return db.Pending(ctx, d.Pool()) }))
	h.Add("storage", health.Storage(store))
	h.Add("plugins", health.Plugins(func() int { return len(plugins.Plugins()) }))
	return h
}

// opsRoutes adds /metrics, /livez and /readyz to mux.
func opsRoutes(mux *http.ServeMux, m *metrics.Metrics, h *health.Checker) {
	mux.Handle("GET /metrics", m.Instrument("metrics", m.Handler()))
	mux.Handle("GET /livez", m.Instrument("health", health.Live()))
	mux.Handle("GET /readyz", m.Instrument("health", h.Ready()))
}

// serveOps runs the metrics_listen server until ctx ends; the returned
// function waits for its shutdown.
func serveOps(ctx context.Context, addr string, m *metrics.Metrics, h *health.Checker, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	opsRoutes(mux, m, h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // shutting down
	})
	log.InfoContext(ctx, "metrics listening", "addr", ln.Addr().String())
	return func() {
		stop()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // shutting down
		<-done
	}, nil
}

// registerRepair adds the repair task, fetching from remotes with the
// downloaders syncs use.
func registerRepair(reg *tasks.Registry, cfg config.Config, d *db.DB, store storage.Driver, log *slog.Logger, opts ...download.Option) {
	build := remoteDownloaders(cfg, log, opts...)
	s := &repair.Service{DB: d, Storage: store, TempDir: cfg.WorkDir(),
		Downloader: func(rm db.Remote) (repair.Fetcher, error) { return build(rm) }}
	s.Register(reg)
}
