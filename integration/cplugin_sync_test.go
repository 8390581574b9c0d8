package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pulpo/pulpo/host/plugin/plugintest"
	"github.com/pulpo/pulpo/integration/harness"
)

// The C plugin (plugins/testdata/cplugin) syncs a text index: one "<path> <sha256> <size>"
// or bare "<path>" per line, each path resolved against the index URL's directory. These
// tests run it inside the real binary, so the whole ABI path a non-Go guest takes (kernel,
// fetch into /in, stdio on the mount, content_lookup, content_emit, errors) meets the host's
// real pipeline, database and storage.

// cFile is one upstream file of a C plugin index.
type cFile struct {
	body string
	bare bool // listed as "<path>" alone: the index gives no digest
}

func (f cFile) sha256() string {
	sum := sha256.Sum256([]byte(f.body))
	return hex.EncodeToString(sum[:])
}

// cUpstream serves a directory and counts the GETs of anything but an INDEX: the artifact
// downloads.
type cUpstream struct {
	dir  string
	fs   http.Handler
	hits atomic.Int64
}

func newCUpstream(t *testing.T) (*cUpstream, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	u := &cUpstream{dir: dir, fs: http.FileServer(http.Dir(dir))}
	hs := httptest.NewServer(u)
	t.Cleanup(hs.Close)
	return u, hs
}

func (u *cUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if path.Base(r.URL.Path) != "INDEX" {
		u.hits.Add(1)
	}
	u.fs.ServeHTTP(w, r)
}

// write replaces the tree under name with files and name/INDEX listing them (sorted, after
// a comment and a blank line, which the plugin must skip), and returns the index's URL path.
func (u *cUpstream) write(t *testing.T, name string, files map[string]cFile) string {
	t.Helper()
	root := filepath.Join(u.dir, name)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	lines := []string{"# written by " + t.Name(), ""}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		f := files[p]
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if f.bare {
			lines = append(lines, p)
		} else {
			lines = append(lines, fmt.Sprintf("%s %s\t%d", p, f.sha256(), len(f.body)))
		}
	}
	u.writeIndex(t, name, lines...)
	return "/" + name + "/INDEX"
}

// writeIndex writes name/INDEX as the given lines.
func (u *cUpstream) writeIndex(t *testing.T, name string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(u.dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(u.dir, name, "INDEX"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildCPlugin compiles the C plugin into a new plugin directory. Without clang the test is
// skipped, unless CI is set: CI must not pass without running the C plugin (as in
// host/plugin's tests).
func buildCPlugin(t *testing.T) string {
	t.Helper()
	src := filepath.Join(harness.RepoRoot(t), "plugins", "testdata", "cplugin", "cplugin.c")
	dir := t.TempDir()
	err := plugintest.BuildC(t.Context(), src, filepath.Join(dir, "cplugin.wasm"))
	if errors.Is(err, plugintest.ErrNoClang) && os.Getenv("CI") == "" {
		t.Skipf("C plugin not built: %v", err)
	}
	if err != nil {
		t.Fatalf("C plugin not built: %v", err)
	}
	return dir
}

func TestCPluginSync(t *testing.T) {
	t.Parallel()
	pluginDir := buildCPlugin(t)
	up, hs := newCUpstream(t)
	files := map[string]cFile{
		"a.txt":     {body: "alpha\n"},
		"docs/b.md": {body: "# bravo\n"},
		// "#" and "%" would cut or break the URL unless the plugin percent-encodes them;
		// non-ASCII bytes must arrive as the same name.
		"odd#1%+x.txt":   {body: "charlie"},
		"ünï/delta.bin":  {body: strings.Repeat("delta ", 20000)},
		"plain/echo.txt": {body: "echo, listed without a digest\n", bare: true},
	}
	index := up.write(t, "repo", files)
	srv := harness.Start(t, harness.Options{PluginDirs: []string{pluginDir}})

	newRepo := func(t *testing.T, name, indexPath, policy string) string {
		t.Helper()
		rm := srv.JSON(t, http.MethodPost, "remotes/cfile/remote/", map[string]any{"name": name, "url": hs.URL + indexPath, "policy": policy}, http.StatusCreated)
		repo := srv.JSON(t, http.MethodPost, "repositories/cfile/repo/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		return repo["pulp_href"].(string)
	}
	latest := func(t *testing.T, rh string) any {
		t.Helper()
		return srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK)["latest_version_href"]
	}
	syncFail := func(t *testing.T, rh string, body map[string]any) string {
		t.Helper()
		task := srv.WaitTask(t, srv.JSON(t, http.MethodPost, rh+"sync/", body, http.StatusAccepted)["task"].(string))
		if task["state"] != "failed" {
			t.Fatalf("sync should fail: %v", task)
		}
		return task["error"].(map[string]any)["description"].(string)
	}

	t.Run("immediate, then mirror of a changed upstream", func(t *testing.T) {
		rh := newRepo(t, "main", index, "immediate")
		task := srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
		if created := task["created_resources"].([]any); len(created) != 1 || created[0] != rh+"versions/1/" {
			t.Fatalf("sync created %v", created)
		}
		checkCVersion(t, srv, rh+"versions/1/", files)
		if n := up.hits.Load(); n != int64(len(files)) {
			t.Fatalf("%d artifact downloads, want %d", n, len(files))
		}

		// Upstream drops one file and adds one; a mirror sync holds exactly the new list and
		// downloads only the new file (the others are found by digest, or for the bare entry
		// by its stored unit).
		changed := maps.Clone(files)
		delete(changed, "docs/b.md")
		changed["e.txt"] = cFile{body: "foxtrot\n"}
		up.write(t, "repo", changed)
		before := up.hits.Load()
		task = srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{"mirror": true})
		if created := task["created_resources"].([]any); len(created) != 1 || created[0] != rh+"versions/2/" {
			t.Fatalf("mirror sync created %v", created)
		}
		checkCVersion(t, srv, rh+"versions/2/", changed)
		if n := up.hits.Load() - before; n != 1 {
			t.Fatalf("mirror sync downloaded %d files, want 1 (e.txt)", n)
		}
		if got := cNames(t, srv, "repository_version_added", rh+"versions/2/"); !slices.Equal(got, []string{"e.txt"}) {
			t.Fatalf("version 2 added %v", got)
		}
		if got := cNames(t, srv, "repository_version_removed", rh+"versions/2/"); !slices.Equal(got, []string{"docs/b.md"}) {
			t.Fatalf("version 2 removed %v", got)
		}

		// New bytes under a stored name: a cfile.line is identified by its name, so the host
		// would keep the stored unit and its old bytes. The plugin refuses instead.
		edited := maps.Clone(changed)
		edited["a.txt"] = cFile{body: "alpha, edited\n"}
		up.write(t, "repo", edited)
		msg := syncFail(t, rh, map[string]any{"mirror": true})
		if !strings.Contains(msg, "a.txt changed upstream to sha256 "+edited["a.txt"].sha256()) || !strings.Contains(msg, files["a.txt"].sha256()) {
			t.Fatalf("edited file error: %s", msg)
		}
		if l := latest(t, rh); l != rh+"versions/2/" {
			t.Fatalf("failed sync moved latest to %v", l)
		}
	})

	t.Run("on_demand records artifacts without downloading", func(t *testing.T) {
		lazy := map[string]cFile{"l1.txt": {body: "lazy one\n"}, "sub/l2.txt": {body: "lazy two\n"}, "l3.txt": {body: "lazy three\n", bare: true}}
		rh := newRepo(t, "lazy", up.write(t, "lazy", lazy), "on_demand")
		before := up.hits.Load()
		srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
		if n := up.hits.Load() - before; n != 0 {
			t.Fatalf("on_demand sync downloaded %d files", n)
		}
		if got := cNames(t, srv, "repository_version", rh+"versions/1/"); !slices.Equal(got, slices.Sorted(maps.Keys(lazy))) {
			t.Fatalf("on_demand version 1 holds %v", got)
		}
		for p, f := range lazy {
			if arts := srv.JSON(t, http.MethodGet, "artifacts/?sha256="+f.sha256(), nil, http.StatusOK); arts["count"] != float64(0) {
				t.Fatalf("on_demand sync stored the artifact of %s: %v", p, arts)
			}
		}
	})

	t.Run("malformed index line fails naming the line", func(t *testing.T) {
		good := cFile{body: "good\n"}
		up.writeIndex(t, "bad", "# an index with a broken third line",
			fmt.Sprintf("good.txt %s %d", good.sha256(), len(good.body)),
			"broken.txt 1234",
			"after.txt")
		rh := newRepo(t, "bad", "/bad/INDEX", "immediate")
		msg := syncFail(t, rh, map[string]any{})
		if !strings.Contains(msg, `line 3 "broken.txt 1234"`) || !strings.Contains(msg, "got 2 fields") || !strings.Contains(msg, hs.URL+"/bad/INDEX") {
			t.Fatalf("malformed line error: %s", msg)
		}
		if l := latest(t, rh); l != rh+"versions/0/" {
			t.Fatalf("failed sync left %v", l)
		}
		if got := cNames(t, srv, "name", "good.txt"); len(got) != 0 {
			t.Fatalf("failed sync saved %v", got)
		}
	})
}

// cNames returns the sorted names of the cfile.line units whose filter param is value.
func cNames(t *testing.T, srv *harness.Server, param, value string) []string {
	t.Helper()
	var names []string
	for _, u := range cUnits(t, srv, param, value) {
		names = append(names, u["name"].(string))
	}
	slices.Sort(names)
	return names
}

// cUnits returns the cfile.line units whose filter param is value, failing t if they do not
// fit on one page.
func cUnits(t *testing.T, srv *harness.Server, param, value string) []map[string]any {
	t.Helper()
	var page struct {
		Count   int              `json:"count"`
		Results []map[string]any `json:"results"`
	}
	srv.Decode(t, http.MethodGet, "content/cfile/lines/?limit=1000&"+param+"="+url.QueryEscape(value), nil, http.StatusOK, &page)
	if page.Count != len(page.Results) {
		t.Fatalf("%s=%s: %d units over several pages", param, value, page.Count)
	}
	return page.Results
}

// checkCVersion checks that the repository version holds exactly one cfile.line per file,
// carrying the index's digest and size (none for bare entries), and that its artifacts are
// exactly the files' bytes: by the API's digests and sizes, and by hashing what storage
// holds.
func checkCVersion(t *testing.T, srv *harness.Server, version string, files map[string]cFile) {
	t.Helper()
	units := cUnits(t, srv, "repository_version", version)
	got := map[string]map[string]any{}
	for _, u := range units {
		got[u["name"].(string)] = u
	}
	if len(units) != len(files) || len(got) != len(files) {
		t.Fatalf("%s holds %v, want %v", version, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(files)))
	}
	want := map[string]int{} // sha256 -> size of every artifact
	for p, f := range files {
		u, ok := got[p]
		if !ok {
			t.Fatalf("%s lacks %s; holds %v", version, p, slices.Sorted(maps.Keys(got)))
		}
		if f.bare {
			if _, has := u["sha256"]; has {
				t.Errorf("%s: bare entry has a digest field: %v", p, u)
			}
		} else if u["sha256"] != f.sha256() || u["size"] != float64(len(f.body)) {
			t.Errorf("%s: unit %v, want sha256 %s size %d", p, u, f.sha256(), len(f.body))
		}
		want[f.sha256()] = len(f.body)
	}

	var arts struct {
		Count   int `json:"count"`
		Results []struct {
			File   string `json:"file"`
			Size   int    `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"results"`
	}
	srv.Decode(t, http.MethodGet, "artifacts/?limit=1000&repository_version="+url.QueryEscape(version), nil, http.StatusOK, &arts)
	if arts.Count != len(want) || len(arts.Results) != len(want) {
		t.Fatalf("%s has %d artifacts, want %d", version, arts.Count, len(want))
	}
	for _, a := range arts.Results {
		size, ok := want[a.SHA256]
		if !ok || a.Size != size {
			t.Errorf("%s: artifact %s of %d bytes was not upstream", version, a.SHA256, a.Size)
			continue
		}
		// The filesystem storage of the data directory holds each artifact at its key.
		body, err := os.ReadFile(filepath.Join(srv.DataDir(), "media", filepath.FromSlash(a.File)))
		if err != nil {
			t.Errorf("stored artifact %s: %v", a.SHA256, err)
			continue
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != a.SHA256 {
			t.Errorf("stored artifact %s holds bytes hashing to %x", a.SHA256, sum)
		}
	}
}
