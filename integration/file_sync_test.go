package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulpo/pulpo/integration/harness"
)

// fixture writes a PULP_MANIFEST tree like Pulp's file fixtures and returns
// the manifest's relative URL path.
func fixture(t *testing.T, root, name string, files map[string][]byte, tamper func(path string, line string) string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	var lines []string
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, body, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		line := fmt.Sprintf("%s,%s,%d", p, hex.EncodeToString(sum[:]), len(body))
		if tamper != nil {
			line = tamper(p, line)
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(filepath.Join(dir, "PULP_MANIFEST"), []byte("# generated\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "/" + name + "/PULP_MANIFEST"
}

func smallFiles(prefix string, n int) map[string][]byte {
	out := map[string][]byte{}
	for i := range n {
		out[fmt.Sprintf("%s/%04d.txt", prefix, i)] = []byte(fmt.Sprintf("%s file %d\n", prefix, i))
	}
	return out
}

// countingFS serves files and counts the non-manifest GETs.
type countingFS struct {
	h    http.Handler
	hits atomic.Int64
}

func (c *countingFS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "PULP_MANIFEST") {
		c.hits.Add(1)
	}
	c.h.ServeHTTP(w, r)
}

func TestFilePluginSync(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	few := fixture(t, root, "few", smallFiles("few", 3), nil)
	many := fixture(t, root, "many", smallFiles("many", 300), nil)
	bigBody := []byte(strings.Repeat("0123456789abcdef", 512<<10)) // 8 MiB
	large := fixture(t, root, "large", map[string][]byte{"big.bin": bigBody}, nil)
	bad := fixture(t, root, "bad", smallFiles("bad", 5), func(p, line string) string {
		if p == "bad/0003.txt" { // a digest the served bytes do not have
			return p + "," + strings.Repeat("0", 64) + line[strings.LastIndex(line, ","):]
		}
		return line
	})
	missing := fixture(t, root, "missing", smallFiles("missing", 4), nil)
	os.Remove(filepath.Join(root, "missing", "missing/0002.txt"))
	up := &countingFS{h: http.FileServer(http.Dir(root))}
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})

	newRepo := func(t *testing.T, name, path, policy string) (string, string) {
		t.Helper()
		rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": name, "url": hs.URL + path, "policy": policy}, http.StatusCreated)
		repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		return repo["pulp_href"].(string), rm["pulp_href"].(string)
	}
	files := func(t *testing.T, versionHref string) float64 {
		t.Helper()
		return srv.JSON(t, http.MethodGet, "content/file/files/?repository_version="+versionHref, nil, http.StatusOK)["count"].(float64)
	}
	syncOK := func(t *testing.T, rh string, body map[string]any) map[string]any {
		t.Helper()
		return srv.RunTask(t, http.MethodPost, rh+"sync/", body)
	}
	syncFail := func(t *testing.T, rh string, body map[string]any) string {
		t.Helper()
		task := srv.WaitTask(t, srv.JSON(t, http.MethodPost, rh+"sync/", body, http.StatusAccepted)["task"].(string))
		if task["state"] != "failed" {
			t.Fatalf("sync should fail: %v", task)
		}
		return task["error"].(map[string]any)["description"].(string)
	}

	t.Run("immediate, re-sync, changed upstream, mirror", func(t *testing.T) {
		rh, _ := newRepo(t, "many", many, "immediate")
		syncOK(t, rh, map[string]any{})
		if n := files(t, rh+"versions/1/"); n != 300 {
			t.Fatalf("version 1 holds %v files", n)
		}
		one := srv.JSON(t, http.MethodGet, "content/file/files/?relative_path=many/0007.txt", nil, http.StatusOK)["results"].([]any)[0].(map[string]any)
		sum := sha256.Sum256([]byte("many file 7\n"))
		if one["sha256"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("unit %v", one)
		}
		syncOK(t, rh, map[string]any{})
		if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/1/" {
			t.Fatalf("unchanged re-sync made %v", r["latest_version_href"])
		}
		// The upstream changes: one file edited, one added, one dropped.
		os.WriteFile(filepath.Join(root, "many", "many/0001.txt"), []byte("edited\n"), 0o644)
		changed := smallFiles("many", 300)
		delete(changed, "many/0002.txt")
		changed["many/0001.txt"] = []byte("edited\n")
		changed["many/extra.txt"] = []byte("extra\n")
		fixture(t, root, "many", changed, nil)
		syncOK(t, rh, map[string]any{})
		// Additive: the edit replaces 0001 (same relative_path), the dropped file stays.
		if n := files(t, rh+"versions/2/"); n != 301 {
			t.Fatalf("additive version 2 holds %v files", n)
		}
		syncOK(t, rh, map[string]any{"mirror": true})
		if n := files(t, rh+"versions/3/"); n != 300 {
			t.Fatalf("mirror version 3 holds %v files", n)
		}
	})

	t.Run("on_demand and streamed download nothing", func(t *testing.T) {
		for _, policy := range []string{"on_demand", "streamed"} {
			rh, _ := newRepo(t, "lazy-"+policy, few, policy)
			before := up.hits.Load()
			syncOK(t, rh, map[string]any{})
			if n := files(t, rh+"versions/1/"); n != 3 {
				t.Fatalf("%s: %v files", policy, n)
			}
			if up.hits.Load() != before {
				t.Fatalf("%s sync downloaded %d files", policy, up.hits.Load()-before)
			}
		}
	})

	t.Run("large file", func(t *testing.T) {
		rh, _ := newRepo(t, "large", large, "immediate")
		syncOK(t, rh, map[string]any{})
		sum := sha256.Sum256(bigBody)
		arts := srv.JSON(t, http.MethodGet, "artifacts/?sha256="+hex.EncodeToString(sum[:]), nil, http.StatusOK)
		if arts["count"] != float64(1) || arts["results"].([]any)[0].(map[string]any)["size"] != float64(len(bigBody)) {
			t.Fatalf("large artifact: %v", arts)
		}
	})

	t.Run("bad digest and missing file fail naming the url", func(t *testing.T) {
		rh, _ := newRepo(t, "bad", bad, "immediate")
		if msg := syncFail(t, rh, map[string]any{}); !strings.Contains(msg, "bad/0003.txt") {
			t.Fatalf("bad digest error: %s", msg)
		}
		rh2, _ := newRepo(t, "missing", missing, "immediate")
		if msg := syncFail(t, rh2, map[string]any{}); !strings.Contains(msg, "missing/0002.txt") {
			t.Fatalf("missing file error: %s", msg)
		}
		for _, h := range []string{rh, rh2} {
			if r := srv.JSON(t, http.MethodGet, h, nil, http.StatusOK); r["latest_version_href"] != h+"versions/0/" {
				t.Fatalf("failed sync left %v", r["latest_version_href"])
			}
		}
		if left := workFiles(t, srv); len(left) != 0 {
			t.Fatalf("failed syncs left working files: %v", left)
		}
	})

	t.Run("concurrent syncs", func(t *testing.T) {
		a, _ := newRepo(t, "shared-a", few, "immediate")
		b, _ := newRepo(t, "shared-b", few, "immediate")
		var wg sync.WaitGroup
		var tasks []map[string]any
		var mu sync.Mutex
		// Two syncs of one repository (serialised by its lock) and one of another sharing content.
		for _, rh := range []string{a, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body, err := srv.Client.Request(http.MethodPost, rh+"sync/", map[string]any{}, nil)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					t.Errorf("sync %s: %v %s", rh, err, body)
					return
				}
				var x struct{ Task string }
				if err := json.Unmarshal(body, &x); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				tasks = append(tasks, map[string]any{"task": x.Task})
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, tk := range tasks {
			if done := srv.WaitTask(t, tk["task"].(string)); done["state"] != "completed" {
				t.Fatalf("concurrent sync: %v", done)
			}
		}
		if files(t, a+"versions/1/") != 3 || files(t, b+"versions/1/") != 3 {
			t.Fatal("concurrent syncs did not both complete their versions")
		}
		if r := srv.JSON(t, http.MethodGet, a, nil, http.StatusOK); r["latest_version_href"] != a+"versions/1/" {
			t.Fatalf("second sync of the same repository made %v", r["latest_version_href"])
		}
	})
}
