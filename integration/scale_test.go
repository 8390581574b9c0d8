package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulpo/pulpo/integration/harness"
)

// slowFS serves files, each file GET after a short delay, and holds GETs of
// paths containing hold until release is closed, so a sync of those paths is
// still running when the test acts.
type slowFS struct {
	h       http.Handler
	delay   time.Duration
	hold    string
	held    atomic.Int64 // held GETs so far
	release chan struct{}
}

func (s *slowFS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "PULP_MANIFEST") {
		if s.hold != "" && strings.Contains(r.URL.Path, s.hold) {
			s.held.Add(1)
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
		}
		time.Sleep(s.delay)
	}
	s.h.ServeHTTP(w, r)
}

// TestHorizontalScale runs Pulpo as an operator scales it out: two API and
// content processes without workers and two `pulpo worker` processes, on one
// database and one S3 bucket. Repositories made through either API are
// synced at once, and the syncs spread over both workers; what they publish
// is served by both content apps. A worker SIGKILLed in the middle of a sync
// has its task failed once its heartbeat expires, without a half-made
// repository version; the other worker keeps taking tasks, and the sync
// succeeds when run again.
func TestHorizontalScale(t *testing.T) {
	t.Parallel()
	const repos, perRepo = 6, 20
	bucket := harness.NewBucket(t)
	root := t.TempDir()
	manifests := make([]string, repos)
	bodies := make([]map[string][]byte, repos)
	for i := range repos {
		bodies[i] = smallFiles(fmt.Sprintf("r%d", i), perRepo)
		manifests[i] = fixture(t, root, fmt.Sprintf("r%d", i), bodies[i], nil)
	}
	slowBodies := smallFiles("slow", 10)
	slow := fixture(t, root, "slow", slowBodies, nil)
	up := &slowFS{h: http.FileServer(http.Dir(root)), delay: 5 * time.Millisecond, hold: "/slow/0007.txt", release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(up.release) }) }
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)

	env := append(bucket.Env(), "PULPO_WORKER_TTL=6s", "PULPO_TASK_POLL=200ms")
	a := harness.Start(t, harness.Options{Workers: harness.NoWorkers, Env: env})
	// The second API shares the first one's data directory only for its
	// compiled-plugin cache: artifacts are in the bucket, working files are
	// uniquely named.
	b := harness.Start(t, harness.Options{Workers: harness.NoWorkers, Env: env, DatabaseURL: a.DatabaseURL(), DataDir: a.DataDir()})
	apis := []*harness.Server{a, b}
	w1 := a.StartWorker(t, "--workers", "1")
	w2 := a.StartWorker(t, "--workers", "1")
	t.Cleanup(release) // before the workers stop: one may wait on a held download
	procs := map[string]*harness.Process{strconv.Itoa(w1.PID()): w1, strconv.Itoa(w2.PID()): w2}

	// workerOf returns the process that ran a task, from the pid its
	// worker's name starts with.
	workerOf := func(t *testing.T, task map[string]any) *harness.Process {
		t.Helper()
		href, _ := task["worker"].(string)
		if href == "" {
			t.Fatalf("task ran on no worker: %v", task)
		}
		name := a.JSON(t, http.MethodGet, href, nil, http.StatusOK)["name"].(string)
		pid, _, _ := strings.Cut(name, "@")
		p, ok := procs[pid]
		if !ok {
			t.Fatalf("task ran on worker %s, not one of the worker processes", name)
		}
		return p
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := b.JSON(t, http.MethodGet, "status/", nil, http.StatusOK)
		if len(st["online_workers"].([]any)) == 2 && len(st["online_api_apps"].([]any)) == 2 && len(st["online_content_apps"].([]any)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed 2 workers, 2 API and 2 content apps: %v", st)
		}
	}

	// Remotes and repositories through both APIs; every sync dispatched at
	// once, alternating APIs.
	hrefs := make([]string, repos)
	for i := range repos {
		api := apis[i%2]
		name := fmt.Sprintf("r%d", i)
		rm := api.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": name, "url": hs.URL + manifests[i], "policy": "immediate"}, http.StatusCreated)
		repo := api.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		hrefs[i] = repo["pulp_href"].(string)
	}
	tasks := make([]string, repos)
	var wg sync.WaitGroup
	for i := range repos {
		wg.Go(func() {
			resp, body, err := apis[(i+1)%2].Request(http.MethodPost, hrefs[i]+"sync/", map[string]any{}, nil)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Errorf("sync %s: %v %s", hrefs[i], err, body)
				return
			}
			var x struct{ Task string }
			if err := json.Unmarshal(body, &x); err != nil || x.Task == "" {
				t.Errorf("sync %s: no task in %s", hrefs[i], body)
			}
			tasks[i] = x.Task
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ran := map[*harness.Process]int{}
	for i, h := range tasks {
		done := apis[i%2].WaitTask(t, h)
		if done["state"] != "completed" {
			t.Fatalf("sync of %s: %v", hrefs[i], done)
		}
		ran[workerOf(t, done)]++
	}
	if len(ran) != 2 {
		t.Fatalf("all %d syncs ran on one worker (%s: %d, %s: %d)", repos, w1.Name(), ran[w1], w2.Name(), ran[w2])
	}
	t.Logf("syncs per worker: %d and %d", ran[w1], ran[w2])

	// Publish and distribute through alternating APIs, then read every file
	// of every repository through both content apps.
	for i, rh := range hrefs {
		api := apis[i%2]
		api.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository": rh})
		api.RunTask(t, http.MethodPost, "distributions/file/file/", map[string]any{"name": fmt.Sprintf("r%d", i), "base_path": fmt.Sprintf("scale/r%d", i), "repository": rh})
	}
	for i := range repos {
		for p, body := range bodies[i] {
			for _, srv := range apis {
				eventuallyContent(t, srv, fmt.Sprintf("/pulp/content/scale/r%d/%s", i, p), 200, string(body))
			}
		}
	}
	if keys := bucket.Keys(t); len(keys) != repos*perRepo+repos { // every file, and a PULP_MANIFEST per publication
		t.Errorf("the bucket holds %d objects, want %d", len(keys), repos*perRepo+repos)
	}

	// A sync held mid-download: kill the worker running it.
	rm := b.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": "slow", "url": hs.URL + slow, "policy": "immediate"}, http.StatusCreated)
	slowRepo := a.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "slow", "remote": rm["pulp_href"]}, http.StatusCreated)["pulp_href"].(string)
	task := b.JSON(t, http.MethodPost, slowRepo+"sync/", map[string]any{}, http.StatusAccepted)["task"].(string)
	var running map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		running = a.JSON(t, http.MethodGet, task, nil, http.StatusOK)
		if running["state"] == "running" && up.held.Load() > 0 {
			break
		}
		if time.Now().After(deadline) || running["state"] == "completed" || running["state"] == "failed" {
			t.Fatalf("the slow sync never waited on its held download: %v", running)
		}
	}
	// The sync has begun its version: it is there, incomplete, at the kill.
	versions := func(t *testing.T) (complete, incomplete int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, a.DatabaseURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		id := path.Base(slowRepo)
		if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE complete), count(*) FILTER (WHERE NOT complete)
			FROM repository_versions WHERE repository_id = $1`, id).Scan(&complete, &incomplete); err != nil {
			t.Fatal(err)
		}
		return complete, incomplete
	}
	if c, i := versions(t); c != 1 || i != 1 {
		t.Fatalf("before the kill: %d complete and %d incomplete versions, want 1 and 1", c, i)
	}
	victim := workerOf(t, running)
	survivor := w1
	if victim == w1 {
		survivor = w2
	}
	victim.Kill()
	killed := time.Now()
	failed := b.WaitTask(t, task)
	if failed["state"] != "failed" || failed["error"].(map[string]any)["description"] != "Worker has gone missing." {
		t.Fatalf("the killed sync: %v", failed)
	}
	t.Logf("the killed sync failed %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	if r := a.JSON(t, http.MethodGet, slowRepo, nil, http.StatusOK); r["latest_version_href"] != slowRepo+"versions/0/" {
		t.Fatalf("the killed sync left latest version %v", r["latest_version_href"])
	}
	if v := b.JSON(t, http.MethodGet, slowRepo+"versions/", nil, http.StatusOK); v["count"] != float64(1) {
		t.Fatalf("the killed sync left %v versions", v["count"])
	}
	if c, i := versions(t); c != 1 || i != 0 {
		t.Fatalf("after the kill: %d complete and %d incomplete versions, want 1 and 0", c, i)
	}

	// The survivor takes new tasks, and the sync now succeeds.
	release()
	done := a.RunTask(t, http.MethodPost, slowRepo+"sync/", map[string]any{})
	if workerOf(t, done) != survivor {
		t.Fatalf("the re-run did not run on the surviving worker: %v", done)
	}
	if r := b.JSON(t, http.MethodGet, slowRepo, nil, http.StatusOK); r["latest_version_href"] != slowRepo+"versions/1/" {
		t.Fatalf("the re-run made %v", r["latest_version_href"])
	}
	pub := b.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository": slowRepo})
	if workerOf(t, pub) != survivor {
		t.Fatalf("the publish did not run on the surviving worker: %v", pub)
	}
	a.RunTask(t, http.MethodPost, "distributions/file/file/", map[string]any{"name": "slow", "base_path": "scale/slow", "repository": slowRepo})
	for p, body := range slowBodies {
		for _, srv := range apis {
			eventuallyContent(t, srv, "/pulp/content/scale/slow/"+p, 200, string(body))
		}
	}
	if survivor.Exited() {
		t.Fatal("the surviving worker exited")
	}
}
