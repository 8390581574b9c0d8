package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// upload sends data as a chunked upload and returns its href and sha256.
func upload(t *testing.T, srv *harness.Server, data []byte, chunk int) (string, string) {
	t.Helper()
	up := srv.JSON(t, http.MethodPost, "uploads/", map[string]any{"size": len(data)}, http.StatusCreated)
	h := up["pulp_href"].(string)
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		resp, body := srv.Do(http.MethodPut, h, harness.Form{Files: map[string]harness.File{"file": {Name: "chunk", Data: data[off:end]}}},
			http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/*", off, end-1)}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("chunk at %d: %d %s", off, resp.StatusCode, body)
		}
	}
	sum := sha256.Sum256(data)
	return h, hex.EncodeToString(sum[:])
}

// TestWorkerProcessesAndKilledWorker runs the API without workers and two
// `pulpo worker` processes on the same database. Both take tasks; one is
// SIGKILLed in the middle of a long upload commit. The other fails that task
// once the dead worker's heartbeat expires, its lock is released, and the
// same commit then succeeds.
func TestWorkerProcessesAndKilledWorker(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{Workers: harness.NoWorkers,
		Env: []string{"PULPO_WORKER_TTL=6s", "PULPO_TASK_POLL=200ms"}})
	w1 := srv.StartWorker(t, "--workers", "1")
	w2 := srv.StartWorker(t, "--workers", "1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ws := srv.JSON(t, http.MethodGet, "workers/?online=true", nil, http.StatusOK)
		if ws["count"] == float64(2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers online: %v", ws)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Small commits run on the worker processes.
	for i := range 6 {
		h, sum := upload(t, srv, []byte(strings.Repeat(strconv.Itoa(i), 1000+i)), 512)
		task := srv.RunTask(t, http.MethodPost, h+"commit/", map[string]any{"sha256": sum})
		if task["worker"] == nil {
			t.Fatalf("task ran on no worker: %v", task)
		}
	}

	// A long commit: kill whichever worker runs it.
	big := bytes.Repeat([]byte("pulpo-kill-test."), 32<<20) // 512 MiB
	h, sum := upload(t, srv, big, 100<<20)
	resp := srv.JSON(t, http.MethodPost, h+"commit/", map[string]any{"sha256": sum}, http.StatusAccepted)
	taskHref := resp["task"].(string)
	var running map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; {
		running = srv.JSON(t, http.MethodGet, taskHref, nil, http.StatusOK)
		if running["state"] == "running" {
			break
		}
		if running["state"] != "waiting" || time.Now().After(deadline) {
			t.Fatalf("commit task never seen running: %v", running)
		}
		time.Sleep(10 * time.Millisecond)
	}
	worker := srv.JSON(t, http.MethodGet, running["worker"].(string), nil, http.StatusOK)
	victim, survivor := w1, w2
	if strings.HasPrefix(worker["name"].(string), strconv.Itoa(w2.PID())+"@") {
		victim, survivor = w2, w1
	}
	victim.Kill()

	failed := srv.WaitTask(t, taskHref)
	if failed["state"] != "failed" || failed["error"].(map[string]any)["description"] != "Worker has gone missing." {
		t.Fatalf("killed task: %v", failed)
	}
	if arts := srv.JSON(t, http.MethodGet, "artifacts/?sha256="+sum, nil, http.StatusOK); arts["count"] != float64(0) {
		t.Fatalf("a half-done commit left an artifact: %v", arts)
	}
	// The lock on the upload is free: the same commit now completes.
	done := srv.RunTask(t, http.MethodPost, h+"commit/", map[string]any{"sha256": sum})
	if done["state"] != "completed" || len(done["created_resources"].([]any)) != 1 {
		t.Fatalf("retried commit: %v", done)
	}
	if survivor.Exited() {
		t.Fatal("the surviving worker exited")
	}
	if arts := srv.JSON(t, http.MethodGet, "artifacts/?sha256="+sum, nil, http.StatusOK); arts["count"] != float64(1) {
		t.Fatalf("artifact after retry: %v", arts)
	}
}

// TestBadInputOverHTTP sends malformed requests to the real binary: each is
// a 4xx naming what is wrong, and nothing is stored.
func TestBadInputOverHTTP(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{})
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
		names        string
	}{
		{http.MethodPost, "uploads/", `{"size": `, 400, "detail"},
		{http.MethodPost, "uploads/", map[string]any{"size": "big"}, 400, "size"},
		{http.MethodPost, "uploads/", map[string]any{"size": 5, "colour": "red"}, 400, "colour"},
		{http.MethodPost, "orphans/cleanup/", map[string]any{"content_hrefs": []string{"/nope/"}}, 400, "content_hrefs"},
		{http.MethodPatch, "tasks/01900000-0000-7000-8000-000000000001/", map[string]any{"state": "canceled"}, 404, "detail"},
		{http.MethodGet, "tasks/?state__in=", nil, 200, "count"},
		{http.MethodGet, "artifacts/?offset=-3", nil, 400, "offset"},
	} {
		resp, body := srv.Do(tc.method, tc.path, tc.body, nil)
		if resp.StatusCode != tc.want || !strings.Contains(string(body), `"`+tc.names+`"`) {
			t.Errorf("%s %s: %d %s (want %d naming %s)", tc.method, tc.path, resp.StatusCode, body, tc.want, tc.names)
		}
	}
	h, _ := upload(t, srv, []byte("abc"), 3)
	resp, body := srv.Do(http.MethodPost, h+"commit/", map[string]any{"sha256": strings.Repeat("0", 64)}, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"sha256"`) {
		t.Fatalf("commit with a wrong sha256: %d %s", resp.StatusCode, body)
	}
	if arts := srv.JSON(t, http.MethodGet, "artifacts/", nil, http.StatusOK); arts["count"] != float64(0) {
		t.Fatalf("artifacts stored after bad input: %v", arts)
	}
}
