package plugin_test

import (
	"path/filepath"
	"testing"

	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/plugin/plugintest"
)

// TestBundledPluginsConform runs the ABI conformance kit against the plugins
// shipped in plugins/.
func TestBundledPluginsConform(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"file", "container"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wasm := filepath.Join(t.TempDir(), name+".wasm")
			if err := plugintest.BuildGo(t.Context(), "./plugins/"+name, wasm); err != nil {
				t.Fatal(err)
			}
			plugintest.Conformance(t, wasm, plugin.Options{CacheDir: cacheDir, ScratchDir: t.TempDir()})
		})
	}
}
