package plugintest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/abi/abitest"
	"github.com/pulpo/pulpo/abi/wasmcheck"
	"github.com/pulpo/pulpo/host/plugin"
)

// Conformance loads the plugin file wasmPath with the real runtime and runs the ABI
// conformance kit (abi/abitest) against it. opts.Dirs is replaced; other options apply.
func Conformance(t *testing.T, wasmPath string, opts plugin.Options) {
	t.Helper()
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wasmcheck.ParseAndCheck(wasm, abi.Current()); err != nil {
		t.Fatalf("module %s: %v", wasmPath, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(wasmPath)), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Dirs = []string{dir}
	ctx := context.Background()
	reg, err := plugin.Load(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(ctx) })
	abitest.Run(t, wasm, reg.Plugins()[0])
}
