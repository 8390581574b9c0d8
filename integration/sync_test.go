package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulpo/pulpo/host/plugin/plugintest"
	"github.com/pulpo/pulpo/integration/harness"
)

// linesUpstream serves a list of names at /lines and each name's bytes at
// /lines/<name>, counting the artifact downloads.
type linesUpstream struct {
	mu    sync.Mutex
	names []string
	hits  atomic.Int64
}

func (u *linesUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	names := append([]string(nil), u.names...)
	u.mu.Unlock()
	if r.URL.Path == "/lines" {
		fmt.Fprint(w, strings.Join(names, "\n")+"\n")
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/lines/")
	for _, n := range names {
		if n == name {
			u.hits.Add(1)
			fmt.Fprintf(w, "content of %s", name)
			return
		}
	}
	http.NotFound(w, r)
}

func (u *linesUpstream) set(names ...string) {
	u.mu.Lock()
	u.names = names
	u.mu.Unlock()
}

// TestSyncThroughThePlugin syncs with a real WASM plugin's first stage and
// the host's pipeline: immediate, re-sync, on_demand, additive and mirror.
func TestSyncThroughThePlugin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := plugintest.BuildGo(t.Context(), "./plugins/testdata/goplugin", filepath.Join(dir, "testplug.wasm")); err != nil {
		t.Fatal(err)
	}
	up := &linesUpstream{}
	up.set("a.txt", "b.txt", "c.txt")
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{PluginDirs: []string{dir}})

	remote := srv.JSON(t, http.MethodPost, "remotes/testplug/remote/", map[string]any{"name": "up", "url": hs.URL + "/lines"}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/testplug/repo/", map[string]any{"name": "r", "remote": remote["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)
	sync := func(body map[string]any) map[string]any {
		t.Helper()
		return srv.RunTask(t, http.MethodPost, rh+"sync/", body)
	}
	task := sync(map[string]any{"mode": "lines"})
	if created := task["created_resources"].([]any); len(created) != 1 || created[0] != rh+"versions/1/" {
		t.Fatalf("sync created %v", created)
	}
	v1 := srv.JSON(t, http.MethodGet, rh+"versions/1/", nil, http.StatusOK)
	present := v1["content_summary"].(map[string]any)["present"].(map[string]any)
	if present["testplug.item"].(map[string]any)["count"] != float64(3) || present["testplug.label"].(map[string]any)["count"] != float64(1) {
		t.Fatalf("version 1 summary %v", present)
	}
	if up.hits.Load() != 3 {
		t.Fatalf("%d artifact downloads, want 3", up.hits.Load())
	}
	if arts := srv.JSON(t, http.MethodGet, "artifacts/", nil, http.StatusOK); arts["count"] != float64(3) {
		t.Fatalf("artifacts %v", arts["count"])
	}
	codes := map[string]bool{}
	for _, p := range task["progress_reports"].([]any) {
		codes[p.(map[string]any)["code"].(string)] = true
	}
	if !codes["sync.downloading.artifacts"] || !codes["associating.content"] || !codes["sync.parsing"] {
		t.Fatalf("progress reports %v", codes)
	}

	// Unchanged upstream: no new version, nothing downloaded again.
	sync(map[string]any{"mode": "lines"})
	if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/1/" || up.hits.Load() != 3 {
		t.Fatalf("re-sync: latest %v, downloads %d", r["latest_version_href"], up.hits.Load())
	}

	// An on_demand remote records where new items are without fetching them.
	lazy := srv.JSON(t, http.MethodPost, "remotes/testplug/remote/", map[string]any{"name": "lazy", "url": hs.URL + "/lines", "policy": "on_demand"}, http.StatusCreated)
	up.set("a.txt", "d.txt")
	sync(map[string]any{"mode": "lines", "remote": lazy["pulp_href"]})
	v2 := srv.JSON(t, http.MethodGet, rh+"versions/2/", nil, http.StatusOK)
	if v2["content_summary"].(map[string]any)["present"].(map[string]any)["testplug.item"].(map[string]any)["count"] != float64(4) || up.hits.Load() != 3 {
		t.Fatalf("additive on_demand: %v, downloads %d", v2["content_summary"], up.hits.Load())
	}

	// Mirror: exactly what the upstream lists.
	sync(map[string]any{"mode": "lines", "mirror": true})
	v3 := srv.JSON(t, http.MethodGet, rh+"versions/3/", nil, http.StatusOK)
	items := srv.JSON(t, http.MethodGet, "content/testplug/items/?repository_version="+rh+"versions/3/", nil, http.StatusOK)
	if items["count"] != float64(2) {
		t.Fatalf("mirror version holds %v items: %v", items["count"], v3["content_summary"])
	}

	// A failing upstream fails the sync and leaves no version.
	up.set("a.txt", "missing/../x")
	failed := srv.WaitTask(t, srv.JSON(t, http.MethodPost, rh+"sync/", map[string]any{"mode": "lines"}, http.StatusAccepted)["task"].(string))
	if failed["state"] != "failed" {
		t.Fatalf("sync of a broken upstream: %v", failed)
	}
	if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/3/" {
		t.Fatalf("a failed sync moved latest to %v", r["latest_version_href"])
	}
}
