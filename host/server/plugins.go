package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	reg, err := plugin.Load(ctx, plugin.Options{
		Dirs: cfg.PluginDirs, CacheDir: cfg.CacheDir(), ScratchDir: cfg.WorkDir(), Logger: log,
		HostVersion: Version, MemoryPages: cfg.PluginMemoryPages, CallTimeout: cfg.PluginCallTimeout, PoolSize: cfg.PluginPoolSize, Observer: obs,
		Artifacts: arts,
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
