package plugin_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/plugin/plugintest"
)

// requireC skips when the C toolchain is missing, unless CI is set: then missing clang is a
// failure, so CI can never pass without running the C plugin.
// Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32.
func requireC(t *testing.T) {
	t.Helper()
	if cBuildErr == nil {
		return
	}
	if errors.Is(cBuildErr, plugintest.ErrNoClang) && os.Getenv("CI") == "" {
		t.Skipf("C plugin not built: %v", cBuildErr)
	}
	t.Fatalf("C plugin not built: %v", cBuildErr)
}

func TestCPlugin(t *testing.T) {
	t.Parallel()
	requireC(t)
	reg := load(t, plugin.Options{}, "cplugin")
	p, ok := reg.Plugin("cfile")
	if !ok {
		t.Fatal("cfile not loaded")
	}
	if d := p.Describe(); len(d.ContentTypes) != 1 || d.ContentTypes[0].Name != "cfile.line" {
		t.Fatalf("describe: %+v", d)
	}
	// The C plugin is built for ABI 1.0: a 1.1 host runs it unchanged (minor versions are
	// backward compatible).
	if v := p.ABIVersion(); v != (abi.Version{Major: 1, Minor: 0}) || abi.Current().Minor < 1 {
		t.Fatalf("C plugin ABI %v on a host at %v; this test wants a 1.0 plugin on a later host", v, abi.Current())
	}
	host := plugintest.NewHost()
	var listing []byte
	for i := range 250 {
		listing = append(listing, []byte(fmt.Sprintf("file-%c-%d.txt\n", 'a'+i%26, i))...)
	}
	host.Serve("https://c.test/pub/LISTING", listing)
	res, err := p.SyncFirstStage(t.Context(), abi.SyncRequest{
		Remote:     abi.Remote{Name: "r", Type: "cfile.remote", URL: "https://c.test/pub/LISTING", Policy: abi.PolicyOnDemand},
		Repository: abi.Repository{Name: "repo", Type: "cfile.repo"},
	}, host)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if string(res.Details) != `{"lines":250}` {
		t.Fatalf("details: %s", res.Details)
	}
	units, batches := host.Counts()
	if units != 250 || batches != 3 {
		t.Fatalf("%d units in %d batches, want 250 in 3", units, batches)
	}
	u := host.Emitted()[1]
	if string(u.Fields) != `{"name":"file-b-1.txt","n":1}` || u.Artifacts[0].URL != "https://c.test/pub/file-b-1.txt" || !u.Artifacts[0].Deferred {
		t.Fatalf("unit 1: %s %+v", u.Fields, u.Artifacts)
	}
	if len(host.Reports()) != 1 {
		t.Fatalf("progress: %+v", host.Reports())
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"goplugin", "cplugin"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "cplugin" {
				requireC(t)
			}
			plugintest.Conformance(t, filepath.Join(wasmDir, name+".wasm"),
				plugin.Options{CacheDir: cacheDir, ScratchDir: t.TempDir(), Logger: testLogger(t)})
		})
	}
}
