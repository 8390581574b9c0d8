package plugin_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/plugin"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	// A cache of its own: with the shared one, describe may be cached and the plugin
	// not compiled at load.
	cacheDir := t.TempDir()
	reg := load(t, plugin.Options{CacheDir: cacheDir}, "goplugin")
	ps := reg.Plugins()
	if len(ps) != 1 {
		t.Fatalf("%d plugins loaded", len(ps))
	}
	p := ps[0]
	b, err := os.ReadFile(filepath.Join(wasmDir, "goplugin.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if p.Name() != "testplug" || p.Version() != "0.0.1" || p.SHA256() != hex.EncodeToString(sum[:]) ||
		p.ABIVersion() != abi.Current() {
		t.Fatalf("plugin %s %s %s %v", p.Name(), p.Version(), p.SHA256(), p.ABIVersion())
	}
	d := p.Describe()
	if len(d.ContentTypes) != 2 || d.ContentTypes[0].Name != "testplug.item" ||
		d.ContentTypes[0].Artifacts.RelativePathField != "name" || d.ContentTypes[1].Relations[0].To != "testplug.item" {
		t.Fatalf("describe: %+v", d.ContentTypes)
	}
	if len(d.Routes) != 1 || d.Routes[0].Prefix != "/test/" {
		t.Fatalf("routes: %+v", d.Routes)
	}
	if s := p.Stats(); s.Created != 1 || s.Idle != 1 || s.Discarded != 0 {
		t.Fatalf("stats after load: %+v (the describe instance should stay in the pool)", s)
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("compilation cache %s is empty: %v", cacheDir, err)
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, opts *plugin.Options) []string
		want  []string
	}{
		{"future ABI", func(t *testing.T, opts *plugin.Options) []string { return []string{"badabi"} },
			[]string{"badabi.wasm", "built for ABI 2.0, host provides 1.1"}},
		{"newer minor", func(t *testing.T, opts *plugin.Options) []string {
			dir := t.TempDir()
			next := abi.Version{Major: abi.VersionMajor, Minor: abi.VersionMinor + 1}
			writeFile(t, filepath.Join(dir, "next.wasm"), string(markerOnly(next.Marker())))
			opts.Dirs = []string{dir}
			return nil
		}, []string{"next.wasm", fmt.Sprintf("needs ABI %d.%d, host provides %s", abi.VersionMajor, abi.VersionMinor+1, abi.Current())}},
		{"missing describe", func(t *testing.T, opts *plugin.Options) []string { return []string{"noexport"} },
			[]string{"noexport.wasm", "missing required export describe"}},
		{"invalid describe", func(t *testing.T, opts *plugin.Options) []string {
			requireC(t)
			return []string{"cbaddescribe"}
		}, []string{"cbaddescribe.wasm", "describe is invalid", `"other.line": must start with the plugin name "cfile."`,
			`natural_key field "id" is not declared`}},
		{"hash mismatch", func(t *testing.T, opts *plugin.Options) []string {
			opts.Expected = map[string]string{"goplugin.wasm": strings.Repeat("0", 64)}
			return []string{"goplugin"}
		}, []string{"goplugin.wasm", "does not match 0000", "expected hashes"}},
		{"sidecar mismatch", func(t *testing.T, opts *plugin.Options) []string {
			dir := t.TempDir()
			link(t, "goplugin", dir)
			writeFile(t, filepath.Join(dir, "goplugin.wasm.sha256"), strings.Repeat("ab", 32)+"  goplugin.wasm\n")
			opts.Dirs = []string{dir}
			return nil
		}, []string{"goplugin.wasm", "from goplugin.wasm.sha256"}},
		{"duplicate name", func(t *testing.T, opts *plugin.Options) []string {
			dir := t.TempDir()
			link(t, "goplugin", dir)
			opts.Dirs = []string{dir}
			return []string{"goplugin"}
		}, []string{`plugin name "testplug" is already taken by ` + "/"}},
		{"not wasm", func(t *testing.T, opts *plugin.Options) []string {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "junk.wasm"), "#!/bin/sh\n")
			opts.Dirs = []string{dir}
			return nil
		}, []string{"junk.wasm", "not a WebAssembly binary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts plugin.Options
			names := tt.setup(t, &opts)
			_, err := tryLoad(t, opts, names...)
			var le *plugin.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load() = %v, want a *LoadError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadChecksMatchingHash(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(wasmDir, "goplugin.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	dir := t.TempDir()
	link(t, "goplugin", dir)
	writeFile(t, filepath.Join(dir, "goplugin.wasm.sha256"), hex.EncodeToString(sum[:])+"  goplugin.wasm\n")
	load(t, plugin.Options{Dirs: []string{dir, filepath.Join(dir, "missing")}})
}

func TestClose(t *testing.T) {
	t.Parallel()
	reg := load(t, plugin.Options{}, "goplugin")
	p := reg.Plugins()[0]
	if err := reg.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := p.HandleRoute(t.Context(), abi.RouteRequest{Method: "GET", Path: "/test/empty"}, nil)
	if !errors.Is(err, plugin.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

// markerOnly is the smallest module exporting a marker function: a host must refuse it
// by its marker alone, before compiling.
func markerOnly(marker string) []byte {
	exp := append(append([]byte{1, byte(len(marker))}, marker...), 0, 0) // one func export, index 0
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, 1, 4, 1, 0x60, 0, 0) // type section: () -> ()
	b = append(b, 3, 2, 1, 0)          // function section: one function of type 0
	b = append(b, 7, byte(len(exp)))
	b = append(b, exp...)
	return append(b, 10, 4, 1, 2, 0, 0x0b) // code section: an empty body
}

func link(t *testing.T, name, dir string) {
	t.Helper()
	if err := os.Link(filepath.Join(wasmDir, name+".wasm"), filepath.Join(dir, name+".wasm")); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A second load with the same cache takes describe from it: nothing is compiled or
// instantiated until the first call, which then works; a file replaced after such a load
// is refused at that call rather than run unchecked.
func TestLoadCachedDescribe(t *testing.T) {
	t.Parallel()
	cache, dir := t.TempDir(), t.TempDir()
	src, err := os.ReadFile(filepath.Join(pluginDir(t, "goplugin"), "goplugin.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "goplugin.wasm"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := plugin.Options{Dirs: []string{dir}, CacheDir: cache, ScratchDir: t.TempDir(), Logger: testLogger(t)}
	first, err := plugin.Load(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := first.Plugins()[0].Describe()
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	for _, replace := range []bool{false, true} {
		reg, err := plugin.Load(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		p := reg.Plugins()[0]
		if s := p.Stats(); s.Created != 0 {
			t.Fatalf("stats after a cached load: %+v, want no instance", s)
		}
		if got := p.Describe(); got.Name != want.Name || len(got.ContentTypes) != len(want.ContentTypes) || len(got.Routes) != len(want.Routes) {
			t.Fatalf("cached describe %+v, want %+v", got, want)
		}
		if replace {
			// Same name and size, other bytes: the module no longer has the hash it was
			// loaded with.
			changed := append([]byte(nil), src...)
			changed[len(changed)-1] ^= 0xff
			if err := os.WriteFile(filepath.Join(dir, "goplugin.wasm"), changed, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err = p.HandleRoute(t.Context(), abi.RouteRequest{Method: "GET", Path: "/test/empty"}, nil)
		switch {
		case !replace && err != nil:
			t.Fatalf("first call after a cached load: %v", err)
		case !replace && p.Stats().Created != 1:
			t.Fatalf("stats after the first call: %+v", p.Stats())
		case replace && (err == nil || !strings.Contains(err.Error(), "changed since it was loaded")):
			t.Fatalf("call after the file changed: %v, want it refused", err)
		}
		if err := reg.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}
