package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// holdingFS serves files, except that it holds the GET of one path until
// release is closed, and counts the file GETs it receives.
type holdingFS struct {
	h       http.Handler
	hold    string
	release chan struct{}
	gets    atomic.Int64
}

func (s *holdingFS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "PULP_MANIFEST") {
		s.gets.Add(1)
		if strings.HasSuffix(r.URL.Path, "/"+s.hold) {
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
		}
	}
	s.h.ServeHTTP(w, r)
}

// TestFileSyncKilledWorker SIGKILLs the worker of an immediate file sync
// while its pipeline holds every state at once: units saved into the new
// version, artifacts recorded, and downloads stored but not recorded (they
// wait, in emit order, behind a download the upstream holds). The killed
// sync leaves no version and only consistent artifacts; a re-run completes
// with every file stored under its sha256, downloading only what the killed
// run had not recorded.
func TestFileSyncKilledWorker(t *testing.T) {
	t.Parallel()
	const n, held = 1000, 300
	root := t.TempDir()
	bodies := map[string][]byte{}
	var manifest strings.Builder
	var heldPath string
	for i := range n {
		p := fmt.Sprintf("kill/%04d.txt", i)
		bodies[p] = fmt.Appendf(nil, "file %d of a sync that gets killed\n", i)
		if err := os.MkdirAll(filepath.Join(root, "kill"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), bodies[p], 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(bodies[p])
		fmt.Fprintf(&manifest, "%s,%s,%d\n", p, hex.EncodeToString(sum[:]), len(bodies[p]))
		if i == held {
			heldPath = p
		}
	}
	if err := os.WriteFile(filepath.Join(root, "PULP_MANIFEST"), []byte(manifest.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	up := &holdingFS{h: http.FileServer(http.Dir(root)), hold: heldPath, release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(up.release) }) }
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)

	srv := harness.Start(t, harness.Options{Workers: harness.NoWorkers,
		Env: []string{"PULPO_WORKER_TTL=6s", "PULPO_TASK_POLL=200ms"}})
	worker := srv.StartWorker(t, "--workers", "1")
	t.Cleanup(release) // first, if the test fails early: a worker stops only once its download ends
	rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": "up", "url": hs.URL + "/PULP_MANIFEST", "policy": "immediate"}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "r", "remote": rm["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)

	task := srv.JSON(t, http.MethodPost, rh+"sync/", map[string]any{}, http.StatusAccepted)["task"].(string)
	// Wait until units before the held one are saved (content exists; the
	// progress reports may lag) and every file but the held one is stored:
	// the units after it wait behind it, unrecorded.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stored := countFiles(t, filepath.Join(srv.DataDir(), "media", "artifact"))
		saved := srv.JSON(t, http.MethodGet, "content/file/files/?limit=1", nil, http.StatusOK)["count"].(float64)
		if stored == n-1 && saved > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync never got there: %d files requested, %d stored, %v units saved; task %v",
				up.gets.Load(), stored, saved, srv.JSON(t, http.MethodGet, task, nil, http.StatusOK))
		}
	}
	worker.Kill()
	if done := srv.WaitTask(t, task); done["state"] != "failed" || done["error"].(map[string]any)["description"] != "Worker has gone missing." {
		t.Fatalf("killed sync: %v", done)
	}
	if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/0/" {
		t.Fatalf("after the kill: latest version %v", r["latest_version_href"])
	}
	if v := srv.JSON(t, http.MethodGet, rh+"versions/", nil, http.StatusOK); v["count"] != float64(1) {
		t.Fatalf("after the kill: %v versions", v["count"])
	}
	recorded := checkArtifacts(t, srv, bodies)
	stored := storedArtifacts(t, srv)
	if recorded == 0 || recorded > held || len(stored) != n-1 {
		t.Fatalf("killed at the wrong moment: %d artifacts recorded, %d files stored of %d", recorded, len(stored), n)
	}
	t.Logf("killed with %d artifacts recorded and %d more files stored without a row", recorded, len(stored)-recorded)
	// The killed worker left its download of the held file (and the manifest) behind.
	left := workFiles(t, srv)
	if !slices.ContainsFunc(left, func(p string) bool { return strings.Contains(p, "download-") }) {
		t.Fatalf("no half-done download in the working directory after the kill: %v", left)
	}

	// Re-run on a new worker, which sweeps what the dead one left.
	release()
	srv.StartWorker(t, "--workers", "1")
	for deadline := time.Now().Add(60 * time.Second); len(workFiles(t, srv)) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new worker left the dead one's files: %v", workFiles(t, srv))
		}
	}
	before := up.gets.Load()
	srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
	if got, want := up.gets.Load()-before, int64(n-recorded); got != want {
		t.Errorf("re-run downloaded %d files, want %d (those without an artifact row)", got, want)
	}
	if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/1/" {
		t.Fatalf("re-run: latest version %v", r["latest_version_href"])
	}
	if v := srv.JSON(t, http.MethodGet, rh+"versions/", nil, http.StatusOK); v["count"] != float64(2) {
		t.Fatalf("re-run: %v versions", v["count"])
	}
	files := srv.JSON(t, http.MethodGet, "content/file/files/?limit=5000&repository_version="+rh+"versions/1/", nil, http.StatusOK)
	if files["count"] != float64(n) {
		t.Fatalf("version 1 holds %v files, want %d", files["count"], n)
	}
	for _, f := range files["results"].([]any) {
		unit := f.(map[string]any)
		p, _ := unit["relative_path"].(string)
		body, ok := bodies[p]
		sum := sha256.Sum256(body)
		if !ok || unit["sha256"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("unit %v does not match the upstream", unit)
		}
	}
	if got := checkArtifacts(t, srv, bodies); got != n {
		t.Fatalf("%d artifacts after the re-run, want %d", got, n)
	}
	if stored := storedArtifacts(t, srv); len(stored) != n {
		t.Fatalf("%d artifact files stored after the re-run, want %d", len(stored), n)
	}
	if left := workFiles(t, srv); len(left) != 0 {
		t.Fatalf("working files left after the re-run: %v", left)
	}
}

// checkArtifacts checks every recorded artifact: one of the upstream files,
// stored with the bytes its sha256 names. It returns how many there are.
func checkArtifacts(t *testing.T, srv *harness.Server, bodies map[string][]byte) int {
	t.Helper()
	want := map[string]int{}
	for _, b := range bodies {
		sum := sha256.Sum256(b)
		want[hex.EncodeToString(sum[:])] = len(b)
	}
	arts := srv.JSON(t, http.MethodGet, "artifacts/?limit=5000", nil, http.StatusOK)
	list := arts["results"].([]any)
	if arts["count"] != float64(len(list)) {
		t.Fatalf("artifacts: count %v, %d listed", arts["count"], len(list))
	}
	for _, a := range list {
		art := a.(map[string]any)
		sha, _ := art["sha256"].(string)
		size, ok := want[sha]
		if !ok || art["size"] != float64(size) {
			t.Fatalf("artifact %v is none of the upstream files", art)
		}
		data, err := os.ReadFile(filepath.Join(srv.DataDir(), "media", filepath.FromSlash(art["file"].(string))))
		if err != nil {
			t.Fatalf("artifact %s: %v", sha, err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
			t.Fatalf("artifact %s holds other bytes (%d)", sha, len(data))
		}
	}
	return len(list)
}

// storedArtifacts lists the files under the store's artifact directory, each
// checked to hold the bytes its name (the sha256) says.
func storedArtifacts(t *testing.T, srv *harness.Server) []string {
	t.Helper()
	dir := filepath.Join(srv.DataDir(), "media", "artifact")
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := strings.ReplaceAll(filepath.ToSlash(rel), "/", "")
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != name {
			return fmt.Errorf("%s holds other bytes", p)
		}
		out = append(out, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// workFiles lists the regular files under the server's working directory
// (<data-dir>/tmp), but for the lock files of the processes' own directories:
// between tasks there should be none.
func workFiles(t *testing.T, srv *harness.Server) []string {
	t.Helper()
	root := filepath.Join(srv.DataDir(), "tmp")
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(root, p); d.Type().IsRegular() && !(filepath.Dir(rel) == "." && strings.HasSuffix(rel, ".lock")) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// countFiles counts the regular files under dir (0 if it does not exist yet).
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
