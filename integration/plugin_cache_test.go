package integration

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/integration/harness"
)

// TestColdStartCompilesApart starts servers on a data directory with no
// plugin caches: the first compiles the plugins in a child process and loads
// them from the caches the child filled, the second finds them and starts no
// child; both sync through the file plugin, which each compiles on its first
// call.
func TestColdStartCompilesApart(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	manifest := fixture(t, root, "cold", smallFiles("cold", 5), nil)
	hs := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(hs.Close)
	data := t.TempDir() // no shared cache: a first start ever
	db := ""
	for i, wantChild := range []bool{true, false} {
		srv := harness.Start(t, harness.Options{DataDir: data, DatabaseURL: db})
		db = srv.DatabaseURL()
		log := srv.Process().Log()
		if got := strings.Contains(log, "compiling plugins in a child process"); got != wantChild {
			t.Fatalf("start %d: child compile logged %v, want %v\n%s", i, got, wantChild, log)
		}
		if !strings.Contains(log, `compile="on first call"`) {
			t.Fatalf("start %d: plugins were compiled at load, not from the caches\n%s", i, log)
		}
		if i == 0 {
			described, _ := filepath.Glob(filepath.Join(data, "cache", "describe-*.json"))
			if len(described) != 2 {
				t.Fatalf("describe cache after the child: %v, want the two bundled plugins", described)
			}
		}
		name := []string{"cold-a", "cold-b"}[i]
		rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": name, "url": hs.URL + manifest}, http.StatusCreated)
		repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		srv.RunTask(t, http.MethodPost, repo["pulp_href"].(string)+"sync/", map[string]any{})
		got := srv.JSON(t, http.MethodGet, "content/file/files/?repository_version="+repo["pulp_href"].(string)+"versions/1/", nil, http.StatusOK)
		if got["count"] != 5.0 {
			t.Fatalf("start %d: synced %v files, want 5", i, got["count"])
		}
		srv.Stop()
	}
}
