// Command pulpo is the Pulpo server: `pulpo serve` runs the REST API, the
// content app and task workers in one process; `pulpo worker` runs workers
// only; `pulpo migrate` applies database migrations.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/server"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, cmd, err := config.Load(os.Args[1:], os.Getenv)
	if errors.Is(err, config.ErrHelp) {
		var ue *config.UsageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stdout, ue.Usage)
		}
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulpo:", err)
		var ue *config.UsageError
		if errors.As(err, &ue) && ue.Usage != "" {
			fmt.Fprintln(os.Stderr, ue.Usage)
		}
		return 2
	}
	if cmd == config.Version {
		fmt.Println("pulpo", server.Version)
		return 0
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case config.Serve, config.Worker:
		if exe, xerr := os.Executable(); xerr == nil {
			server.CompilePluginsApart(ctx, cfg, exe, log)
		}
		err = server.Run(ctx, cfg, cmd, log)
	case config.Migrate:
		var closeDB func()
		_, closeDB, err = server.OpenDB(ctx, cfg, log)
		if err == nil {
			closeDB()
			log.Info("migrations applied")
		}
	case config.Plugins:
		err = server.ListPlugins(ctx, cfg, os.Stdout, log)
	}
	if err != nil {
		log.Error("pulpo failed", "command", string(cmd), "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
