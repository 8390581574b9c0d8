package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/plugin"
)

// loadPlugins compiles and checks every plugin of the configured folders. arts answers
// the plugins' artifact_read calls (nil where no call runs, as in ListPlugins).
func loadPlugins(ctx context.Context, cfg config.Config, log *slog.Logger, obs plugin.CallObserver, arts plugin.ArtifactReader) (*plugin.Registry, error) {
	for _, dir := range []string{cfg.WorkDir(), cfg.CacheDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("plugins: %w", err)
		}
	}
	idle := cfg.PluginIdleTimeout
	if idle == 0 {
		idle = -1 // kept
	}
	reg, err := plugin.Load(ctx, plugin.Options{
		Dirs: cfg.PluginDirs, CacheDir: cfg.CacheDir(), ScratchDir: cfg.WorkDir(), Logger: log,
		HostVersion: Version, MemoryPages: cfg.PluginMemoryPages, CallTimeout: cfg.PluginCallTimeout, PoolSize: cfg.PluginPoolSize, Observer: obs,
		Artifacts: arts, IdleTimeout: idle,
	})
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	return reg, nil
}

// ListPlugins prints the loaded plugins, their versions and types.
func ListPlugins(ctx context.Context, cfg config.Config, w io.Writer, log *slog.Logger) error {
	reg, err := loadPlugins(ctx, cfg, log, nil, nil)
	if err != nil {
		return err
	}
	defer reg.Close(context.WithoutCancel(ctx)) //nolint:errcheck
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUGIN\tVERSION\tABI\tTYPES\tFILE")
	for _, p := range reg.Plugins() {
		d := p.Describe()
		var types []string
		for _, c := range d.ContentTypes {
			types = append(types, c.Name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", p.Name(), p.Version(), d.ABIVersion, types, p.Path())
	}
	if len(reg.Plugins()) == 0 {
		fmt.Fprintf(tw, "(no plugins in %v)\n", cfg.PluginDirs)
	}
	return tw.Flush()
}

// CompilePluginsApart compiles the plugins this host version has not described before in
// a short-lived `pulpo plugins` child process (exe), which fills the compilation and
// describe caches under the data directory; the server then loads from them and compiles
// each plugin at its first call from the cache (tens of ms). The compiler's transient
// memory (about 70 MiB for the bundled plugins) so never counts in the server's peak.
// A failure is logged and the server compiles in process, as without the child.
func CompilePluginsApart(ctx context.Context, cfg config.Config, exe string, log *slog.Logger) {
	missing, err := plugin.Uncached(plugin.Options{Dirs: cfg.PluginDirs, CacheDir: cfg.CacheDir(), HostVersion: Version})
	if err != nil || len(missing) == 0 {
		return
	}
	if err := os.MkdirAll(cfg.CacheDir(), 0o755); err != nil {
		log.WarnContext(ctx, "compiling plugins in process", "err", err)
		return
	}
	cmd := exec.CommandContext(ctx, exe, string(config.Plugins), "--data-dir", cfg.DataDir,
		"--plugin-dir", strings.Join(cfg.PluginDirs, ":"), "--log-level", cfg.LogLevel, "--log-format", cfg.LogFormat)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	log.InfoContext(ctx, "compiling plugins in a child process", "plugins", missing)
	if err := cmd.Run(); err != nil {
		log.WarnContext(ctx, "compiling plugins in process: the child failed", "err", err)
	}
}
