package integration

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/plugin/plugintest"
	"github.com/pulpo/pulpo/integration/harness"
)

// waitRunning polls a task until some content has been associated.
func waitRunning(t *testing.T, srv *harness.Server, taskHref string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		task := srv.JSON(t, http.MethodGet, taskHref, nil, http.StatusOK)
		for _, p := range task["progress_reports"].([]any) {
			pr := p.(map[string]any)
			if pr["code"] == "associating.content" && pr["done"].(float64) > 0 && task["state"] == "running" {
				return task
			}
		}
		if s := task["state"]; s != "waiting" && s != "running" || time.Now().After(deadline) {
			t.Fatalf("sync never got going: %v", task)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func buildTestPlugin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := plugintest.BuildGo(t.Context(), "./plugins/testdata/goplugin", filepath.Join(dir, "testplug.wasm")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCancelAndKillMidSync cancels a long sync, then SIGKILLs the worker of
// another: neither leaves a version, and a re-run afterwards succeeds.
func TestCancelAndKillMidSync(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{PluginDirs: []string{buildTestPlugin(t)}, Workers: harness.NoWorkers,
		Env: []string{"PULPO_WORKER_TTL=6s", "PULPO_TASK_POLL=200ms"}})
	worker := srv.StartWorker(t, "--workers", "1")
	remote := srv.JSON(t, http.MethodPost, "remotes/testplug/remote/", map[string]any{"name": "up", "url": "http://127.0.0.1:9/", "policy": "on_demand"}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/testplug/repo/", map[string]any{"name": "r", "remote": remote["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)
	long := map[string]any{"mode": "emit", "count": 300000}
	noVersion := func(when string) {
		t.Helper()
		if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/0/" {
			t.Fatalf("%s: latest version %v", when, r["latest_version_href"])
		}
		if v := srv.JSON(t, http.MethodGet, rh+"versions/", nil, http.StatusOK); v["count"] != float64(1) {
			t.Fatalf("%s: %v versions listed", when, v["count"])
		}
	}

	// Cancel.
	task := srv.JSON(t, http.MethodPost, rh+"sync/", long, http.StatusAccepted)["task"].(string)
	waitRunning(t, srv, task)
	srv.JSON(t, http.MethodPatch, task, map[string]any{"state": "canceled"}, http.StatusOK)
	if done := srv.WaitTask(t, task); done["state"] != "canceled" {
		t.Fatalf("canceled sync ended %v", done["state"])
	}
	noVersion("after cancel")

	// SIGKILL the worker mid-sync.
	task = srv.JSON(t, http.MethodPost, rh+"sync/", long, http.StatusAccepted)["task"].(string)
	running := waitRunning(t, srv, task)
	w := srv.JSON(t, http.MethodGet, running["worker"].(string), nil, http.StatusOK)
	if !strings.HasPrefix(w["name"].(string), strconv.Itoa(worker.PID())+"@") {
		t.Fatalf("sync ran on %v, not the worker process", w["name"])
	}
	worker.Kill()
	if done := srv.WaitTask(t, task); done["state"] != "failed" || done["error"].(map[string]any)["description"] != "Worker has gone missing." {
		t.Fatalf("killed sync: %v", done)
	}
	noVersion("after kill")

	// A new worker re-runs the sync to completion.
	srv.StartWorker(t, "--workers", "1")
	srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{"mode": "emit", "count": 500})
	if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/1/" {
		t.Fatalf("re-run: latest %v", r["latest_version_href"])
	}
	items := srv.JSON(t, http.MethodGet, "content/testplug/items/?repository_version="+rh+"versions/1/", nil, http.StatusOK)
	if items["count"] != float64(500) {
		t.Fatalf("re-run version holds %v items", items["count"])
	}
}
