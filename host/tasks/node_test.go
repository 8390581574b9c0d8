package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/tasks"
)

func TestMain(m *testing.M) {
	if os.Getenv("PULPO_TASKS_HELPER_DB") != "" {
		helperWorker() // never returns
	}
	dbtest.Main(m)
}

func newDB(t *testing.T) *db.DB {
	t.Helper()
	return db.New(dbtest.NewPool(t), slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func startNode(t *testing.T, d *db.DB, reg *tasks.Registry, o tasks.Options) *tasks.Node {
	t.Helper()
	if o.Poll == 0 {
		o.Poll = 200 * time.Millisecond
	}
	n := tasks.NewNode(d, reg, o)
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

func wait(t *testing.T, n *tasks.Node, id uuid.UUID) db.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	task, err := n.WaitTask(ctx, id)
	if err != nil {
		t.Fatalf("wait task %s: %v (state %s)", id, err, task.State)
	}
	return task
}

func TestTasksRunAcrossNodes(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	var ran atomic.Int64
	reg := tasks.NewRegistry()
	reg.Register("count", func(ctx context.Context, tk *tasks.Task) error { ran.Add(1); return nil })
	a := startNode(t, d, reg, tasks.Options{Name: "a", Workers: 2})
	startNode(t, d, reg, tasks.Options{Name: "b", Workers: 2})
	var ids []uuid.UUID
	for i := range 30 {
		task, err := a.Dispatch(t.Context(), tasks.Spec{Name: "count", Exclusive: []string{fmt.Sprint("r", i%5)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	for _, id := range ids {
		if got := wait(t, a, id); got.State != db.TaskCompleted {
			t.Fatalf("task %s ended %s: %s", id, got.State, got.Error)
		}
	}
	if ran.Load() != 30 {
		t.Fatalf("ran %d tasks, want 30", ran.Load())
	}
}

func TestExclusiveResourceRunsInOrderAlone(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	var mu sync.Mutex
	var order []int
	var active atomic.Int32
	reg := tasks.NewRegistry()
	reg.Register("step", func(ctx context.Context, tk *tasks.Task) error {
		if active.Add(1) != 1 {
			return errors.New("two tasks on one exclusive resource ran at once")
		}
		defer active.Add(-1)
		var i int
		if err := tk.Decode(&i); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		order = append(order, i)
		mu.Unlock()
		return nil
	})
	a := startNode(t, d, reg, tasks.Options{Name: "a", Workers: 3})
	startNode(t, d, reg, tasks.Options{Name: "b", Workers: 3})
	var ids []uuid.UUID
	for i := range 8 {
		task, err := a.Dispatch(t.Context(), tasks.Spec{Name: "step", Args: i, Exclusive: []string{"/repo/1/"}, Shared: []string{"/remote/1/"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	for _, id := range ids {
		if got := wait(t, a, id); got.State != db.TaskCompleted {
			t.Fatalf("task ended %s: %s", got.State, got.Error)
		}
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("ran in order %v, want dispatch order", order)
		}
	}
}

func TestSharedResourceOverlapsAndBlocksExclusive(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	both := make(chan struct{})
	var started atomic.Int32
	var exclusiveSawShared atomic.Bool
	var sharedDone atomic.Int32
	reg := tasks.NewRegistry()
	reg.Register("shared", func(ctx context.Context, tk *tasks.Task) error {
		if started.Add(1) == 2 {
			close(both)
		}
		select {
		case <-both: // only reachable when the two shared holders overlap
		case <-time.After(10 * time.Second):
			return errors.New("shared holders did not overlap")
		}
		time.Sleep(50 * time.Millisecond)
		sharedDone.Add(1)
		return nil
	})
	reg.Register("exclusive", func(ctx context.Context, tk *tasks.Task) error {
		if sharedDone.Load() != 2 {
			exclusiveSawShared.Store(true)
		}
		return nil
	})
	n := startNode(t, d, reg, tasks.Options{Name: "a", Workers: 3})
	s1, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "shared", Shared: []string{"res"}})
	s2, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "shared", Shared: []string{"res"}})
	ex, err := n.Dispatch(t.Context(), tasks.Spec{Name: "exclusive", Exclusive: []string{"res"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uuid.UUID{s1.ID, s2.ID, ex.ID} {
		if got := wait(t, n, id); got.State != db.TaskCompleted {
			t.Fatalf("task ended %s: %s", got.State, got.Error)
		}
	}
	if exclusiveSawShared.Load() {
		t.Fatal("exclusive task ran while shared holders were running")
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	running := make(chan struct{})
	reg := tasks.NewRegistry()
	reg.Register("block", func(ctx context.Context, tk *tasks.Task) error {
		close(running)
		<-ctx.Done()
		return ctx.Err()
	})
	reg.Register("noop", func(ctx context.Context, tk *tasks.Task) error { return nil })
	n := startNode(t, d, reg, tasks.Options{Name: "a", Workers: 1})
	blocker, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "block", Exclusive: []string{"x"}})
	queued, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "noop", Exclusive: []string{"x"}})
	select {
	case <-running:
	case <-time.After(20 * time.Second):
		t.Fatal("blocking task never started")
	}
	if got, err := d.CancelTask(t.Context(), queued.ID); err != nil || got.State != db.TaskCanceled {
		t.Fatalf("cancel waiting: %v %s", err, got.State)
	}
	if got, err := d.CancelTask(t.Context(), blocker.ID); err != nil || got.State != db.TaskCanceling {
		t.Fatalf("cancel running: %v %s", err, got.State)
	}
	if got := wait(t, n, blocker.ID); got.State != db.TaskCanceled {
		t.Fatalf("running task ended %s, want canceled", got.State)
	}
	if _, err := d.CancelTask(t.Context(), blocker.ID); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("cancel of a final task: %v, want ErrConflict", err)
	}
}

func TestFailurePanicProgressAndCreatedResources(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	reg := tasks.NewRegistry()
	reg.Register("fail", func(ctx context.Context, tk *tasks.Task) error { return errors.New("upstream said no") })
	reg.Register("panic", func(ctx context.Context, tk *tasks.Task) error { panic("boom") })
	reg.Register("work", func(ctx context.Context, tk *tasks.Task) error {
		p, err := tk.Progress(ctx, "test.items", "Processing Items", 3)
		if err != nil {
			return err
		}
		for range 3 {
			if err := p.Increment(ctx, 1); err != nil {
				return err
			}
		}
		if err := p.Done(ctx); err != nil {
			return err
		}
		return tk.Created(ctx, "/pulp/api/v3/things/1/")
	})
	n := startNode(t, d, reg, tasks.Options{Name: "a", Workers: 2})
	f, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "fail"})
	p, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "panic"})
	w, _ := n.Dispatch(t.Context(), tasks.Spec{Name: "work"})
	for id, want := range map[uuid.UUID]string{f.ID: "upstream said no", p.ID: "task panicked: boom"} {
		got := wait(t, n, id)
		var e struct{ Description string }
		_ = json.Unmarshal(got.Error, &e)
		if got.State != db.TaskFailed || e.Description != want {
			t.Fatalf("task ended %s with %s, want failed %q", got.State, got.Error, want)
		}
	}
	if got := wait(t, n, w.ID); got.State != db.TaskCompleted {
		t.Fatalf("work ended %s", got.State)
	}
	reports, err := d.ProgressReports(t.Context(), w.ID)
	if err != nil || len(reports) != 1 || reports[0].Done != 3 || *reports[0].Total != 3 || reports[0].State != "completed" {
		t.Fatalf("progress reports %+v, %v", reports, err)
	}
	created, err := d.CreatedResources(t.Context(), w.ID)
	if err != nil || len(created) != 1 || created[0] != "/pulp/api/v3/things/1/" {
		t.Fatalf("created resources %v, %v", created, err)
	}
}

func TestImmediateTaskRunsInDispatcher(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	reg := tasks.NewRegistry()
	reg.Register("quick", func(ctx context.Context, tk *tasks.Task) error { return nil })
	n := startNode(t, d, reg, tasks.Options{Name: "api-only", API: true}) // no worker slots
	got, err := n.Dispatch(t.Context(), tasks.Spec{Name: "quick", Immediate: true, Exclusive: []string{"d"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != db.TaskCompleted {
		t.Fatalf("immediate task is %s after dispatch, want completed", got.State)
	}
}

// TestKilledWorkerTaskFails runs a worker in a child process, kills it with
// SIGKILL in the middle of a task that has started a repository version, and
// checks that a surviving node fails the task, frees its resource and leaves
// no incomplete version.
func TestKilledWorkerTaskFails(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	repo, err := d.CreateRepository(t.Context(), db.Repository{PulpType: "test.test", Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PULPO_TASKS_HELPER_DB="+d.Pool().Config().ConnString())
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _, _ = child.Process.Wait() })

	reg := tasks.NewRegistry()
	reg.Register("build-version", func(ctx context.Context, tk *tasks.Task) error { return nil })
	reg.Register("after", func(ctx context.Context, tk *tasks.Task) error { return nil })
	// The survivor runs no worker slots for build-version's name so the child claims it.
	survivor := startNode(t, d, tasks.NewRegistry(), tasks.Options{Name: "survivor", API: true, TTL: 900 * time.Millisecond})
	disp := tasks.NewNode(d, reg, tasks.Options{Name: "dispatcher", API: true})
	if err := disp.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer disp.Stop(context.Background())
	victim, err := disp.Dispatch(t.Context(), tasks.Spec{Name: "build-version", Args: repo.ID, Exclusive: []string{"repo"}})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the child holds the task with a version under way.
	deadline := time.Now().Add(20 * time.Second)
	for {
		task, _ := d.GetTask(t.Context(), victim.ID)
		var incomplete int
		_ = d.Pool().QueryRow(t.Context(), "SELECT count(*) FROM repository_versions WHERE NOT complete").Scan(&incomplete)
		if task.State == db.TaskRunning && incomplete == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never started the task (state %s)", task.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	next, err := disp.Dispatch(t.Context(), tasks.Spec{Name: "after", Exclusive: []string{"repo"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = child.Process.Wait()

	got := wait(t, survivor, victim.ID)
	if got.State != db.TaskFailed || string(got.Error) != `{"description": "Worker has gone missing."}` {
		t.Fatalf("killed task ended %s %s", got.State, got.Error)
	}
	var incomplete int
	if err := d.Pool().QueryRow(t.Context(), "SELECT count(*) FROM repository_versions WHERE NOT complete").Scan(&incomplete); err != nil || incomplete != 0 {
		t.Fatalf("%d incomplete versions left (%v)", incomplete, err)
	}
	var members int
	_ = d.Pool().QueryRow(t.Context(), "SELECT count(*) FROM repository_content").Scan(&members)
	if members != 0 {
		t.Fatalf("%d membership rows of the discarded version left", members)
	}
	// The resource is free again: a worker can run the next task on it.
	startNode(t, d, reg, tasks.Options{Name: "after-worker", Workers: 1})
	if got := wait(t, survivor, next.ID); got.State != db.TaskCompleted {
		t.Fatalf("next task on the freed resource ended %s", got.State)
	}
}

// helperWorker is the child process of TestKilledWorkerTaskFails: it claims
// build-version, starts a version with content, and hangs until killed.
func helperWorker() {
	ctx := context.Background()
	d, err := db.Open(ctx, os.Getenv("PULPO_TASKS_HELPER_DB"), 4, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	reg := tasks.NewRegistry()
	reg.Register("build-version", func(ctx context.Context, tk *tasks.Task) error {
		var repo uuid.UUID
		if err := tk.Decode(&repo); err != nil {
			return err
		}
		v, err := d.NewVersion(ctx, repo, &tk.ID, nil)
		if err != nil {
			return err
		}
		cs, err := d.GetOrCreateContents(ctx, []db.NewContent{{PulpType: "test.test", NaturalKey: "k1", Fields: json.RawMessage(`{}`)}})
		if err != nil {
			return err
		}
		if err := d.AddContent(ctx, repo, v.Number, []uuid.UUID{cs[0].ID}); err != nil {
			return err
		}
		select {} // hang until SIGKILL
	})
	n := tasks.NewNode(d, reg, tasks.Options{Name: "victim", Workers: 1, TTL: 900 * time.Millisecond, Poll: 100 * time.Millisecond})
	if err := n.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	select {}
}
