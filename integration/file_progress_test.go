package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// throttledFS serves files with a delay per file GET (not for the manifest).
type throttledFS struct {
	h     http.Handler
	delay time.Duration
}

func (s throttledFS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "PULP_MANIFEST") {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		}
	}
	s.h.ServeHTTP(w, r)
}

// progressTree writes n files and their manifest under root/name; the file
// numbered bad (if in range) is listed with a wrong digest.
func progressTree(t *testing.T, root, name string, n, bad int) string {
	t.Helper()
	var m strings.Builder
	for i := range n {
		rel := fmt.Sprintf("%04d.txt", i)
		body := fmt.Appendf(nil, "progress file %d\n", i)
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name, rel), body, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		if i == bad {
			sum = sha256.Sum256([]byte("something else"))
		}
		fmt.Fprintf(&m, "%s,%s,%d\n", rel, hex.EncodeToString(sum[:]), len(body))
	}
	if err := os.WriteFile(filepath.Join(root, name, "PULP_MANIFEST"), []byte(m.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name + "/PULP_MANIFEST"
}

type report struct {
	Code, State string
	Done        float64
	Total       *float64
}

func reports(task map[string]any) map[string]report {
	out := map[string]report{}
	for _, p := range task["progress_reports"].([]any) {
		m := p.(map[string]any)
		r := report{Code: m["code"].(string), State: m["state"].(string), Done: m["done"].(float64)}
		if tot, ok := m["total"].(float64); ok {
			r.Total = &tot
		}
		out[r.Code] = r
	}
	return out
}

// TestFileSyncProgress polls a sync from a slow upstream: its reports move
// while the task runs, and are final and consistent when it ends, whether it
// completes, fails or is canceled.
func TestFileSyncProgress(t *testing.T) {
	t.Parallel()
	const n = 400
	root := t.TempDir()
	good := progressTree(t, root, "good", n, -1)
	bad := progressTree(t, root, "bad", n, n/2)
	long := progressTree(t, root, "long", 5*n, -1)
	hs := httptest.NewServer(throttledFS{h: http.FileServer(http.Dir(root)), delay: 10 * time.Millisecond})
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})
	sync := func(name, manifest string) (string, string) {
		rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": name, "url": hs.URL + "/" + manifest,
			"policy": "immediate", "download_concurrency": 2}, http.StatusCreated)
		repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		rh := repo["pulp_href"].(string)
		return rh, srv.JSON(t, http.MethodPost, rh+"sync/", map[string]any{}, http.StatusAccepted)["task"].(string)
	}
	// watch polls the task until it ends and returns it with the largest done
	// seen below n while it ran, per report.
	watch := func(href string, until func(map[string]any) bool) (map[string]any, map[string]float64) {
		live := map[string]float64{}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			task := srv.JSON(t, http.MethodGet, href, nil, http.StatusOK)
			state := task["state"]
			if state == "running" {
				for code, r := range reports(task) {
					if r.State != "running" && r.State != "completed" {
						t.Fatalf("report %s is %s while the task runs", code, r.State)
					}
					if r.Done > 0 && r.Done < n {
						live[code] = max(live[code], r.Done)
					}
				}
			}
			if state != "waiting" && state != "running" && state != "canceling" {
				return task, live
			}
			if until != nil && until(task) {
				until = nil
			}
			if time.Now().After(deadline) {
				t.Fatalf("task still %v: %v", state, task)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("completed", func(t *testing.T) {
		_, href := sync("good", good)
		task, live := watch(href, nil)
		if task["state"] != "completed" {
			t.Fatalf("sync %v: %v", task["state"], task["error"])
		}
		for _, code := range []string{"sync.downloading.artifacts", "associating.content"} {
			if live[code] == 0 {
				t.Errorf("%s never showed progress while the task ran (seen: %v)", code, live)
			}
		}
		want := map[string]float64{"sync.downloading.metadata": 1, "sync.parsing.metadata": n,
			"sync.downloading.artifacts": n, "associating.content": n}
		got := reports(task)
		for code, done := range want {
			r, ok := got[code]
			switch {
			case !ok:
				t.Errorf("no %s report: %v", code, got)
			case r.State != "completed" || r.Done != done || r.Total != nil && *r.Total != r.Done:
				t.Errorf("%s ended %s with %v of %v, want completed with %v", code, r.State, r.Done, r.Total, done)
			}
		}
	})

	t.Run("failed", func(t *testing.T) {
		_, href := sync("bad", bad)
		task, _ := watch(href, nil)
		if task["state"] != "failed" {
			t.Fatalf("sync %v, want failed", task["state"])
		}
		got := reports(task)
		if r := got["sync.downloading.artifacts"]; r.State != "failed" || r.Done >= n {
			t.Errorf("downloads ended %s with %v done", r.State, r.Done)
		}
		for code, r := range got {
			if r.State != "completed" && r.State != "failed" || r.Total != nil && r.Done > *r.Total {
				t.Errorf("%s ended %s with %v of %v", code, r.State, r.Done, r.Total)
			}
		}
	})

	t.Run("canceled", func(t *testing.T) {
		_, href := sync("long", long)
		canceled := false
		task, _ := watch(href, func(task map[string]any) bool {
			if r := reports(task)["associating.content"]; r.Done > 0 && !canceled {
				srv.JSON(t, http.MethodPatch, href, map[string]any{"state": "canceled"}, http.StatusOK)
				canceled = true
			}
			return canceled
		})
		if task["state"] != "canceled" {
			t.Fatalf("sync %v, want canceled", task["state"])
		}
		got := reports(task)
		for _, code := range []string{"sync.downloading.artifacts", "associating.content"} {
			if r := got[code]; r.State != "canceled" || r.Done <= 0 || r.Done >= 5*n {
				t.Errorf("%s ended %s with %v done", code, r.State, r.Done)
			}
		}
		for code, r := range got {
			if r.State == "running" {
				t.Errorf("%s still running after the cancel", code)
			}
		}
		if left := workFiles(t, srv); len(left) != 0 {
			t.Fatalf("canceled sync left working files: %v", left)
		}
	})
}
