package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

func registerWorker(t *testing.T, d *db.DB, name string, ttl time.Duration) db.App {
	t.Helper()
	return must[db.App](t)(d.RegisterApp(context.Background(), "worker", name, map[string]string{"core": "test"}, ttl))
}

// runningTask inserts a task and claims it (alone) for worker.
func runningTask(t *testing.T, d *db.DB, worker db.App, nt db.NewTask) db.Task {
	t.Helper()
	ctx := context.Background()
	task := must[db.Task](t)(d.InsertTask(ctx, nt))
	got, err := d.ClaimTask(ctx, worker.ID, worker.Name, []string{nt.Name}, &task.ID)
	if err != nil {
		t.Fatalf("claim %s: %v", task.ID, err)
	}
	if got.State != db.TaskRunning || got.WorkerID == nil || *got.WorkerID != worker.ID || got.StartedAt == nil || got.WorkerName != worker.Name {
		t.Fatalf("claimed %+v", got)
	}
	return got
}

func TestCancelAndDeleteTask(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	w := registerWorker(t, d, "w", time.Hour)

	notes := make(chan db.Notification, 100)
	lctx, stop := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	lwg.Go(func() {
		d.Listen(lctx, []string{db.ChannelTaskCancel}, func(n db.Notification) { notes <- n }) //nolint:errcheck // ends with lctx
	})
	t.Cleanup(func() { stop(); lwg.Wait() })
	select { // Listen reports an empty notification once LISTEN is in place
	case n := <-notes:
		if n.Channel != "" {
			t.Fatalf("first notification %+v, want the empty one", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LISTEN never started")
	}

	waiting := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "t", ExclusiveResources: []string{"a"}}))
	running := runningTask(t, d, w, db.NewTask{Name: "t", ExclusiveResources: []string{"b"}})
	canceling := runningTask(t, d, w, db.NewTask{Name: "t", ExclusiveResources: []string{"c"}})
	must[db.Task](t)(d.CancelTask(ctx, canceling.ID))
	finals := map[string]uuid.UUID{}
	for _, state := range []string{db.TaskCompleted, db.TaskFailed} {
		r := runningTask(t, d, w, db.NewTask{Name: "t", ExclusiveResources: []string{state}})
		must[db.Task](t)(d.FinishTask(ctx, r.ID, w.ID, state, map[string]string{"description": "x"}))
		finals[state] = r.ID
	}
	canceled := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "t"}))
	must[db.Task](t)(d.CancelTask(ctx, canceled.ID))
	finals[db.TaskCanceled] = canceled.ID

	for _, tc := range []struct {
		name      string
		id        uuid.UUID
		wantState string
		wantErr   error
	}{
		{"waiting is canceled at once", waiting.ID, db.TaskCanceled, nil},
		{"running becomes canceling", running.ID, db.TaskCanceling, nil},
		{"canceling stays canceling", canceling.ID, db.TaskCanceling, nil},
		{"completed", finals[db.TaskCompleted], db.TaskCompleted, db.ErrConflict},
		{"failed", finals[db.TaskFailed], db.TaskFailed, db.ErrConflict},
		{"canceled", finals[db.TaskCanceled], db.TaskCanceled, db.ErrConflict},
		{"unknown", uuid.New(), "", db.ErrNotFound},
	} {
		got, err := d.CancelTask(ctx, tc.id)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if got.State != tc.wantState {
			t.Errorf("%s: state %q, want %q", tc.name, got.State, tc.wantState)
		}
		if tc.wantErr == nil {
			stored := must[db.Task](t)(d.GetTask(ctx, tc.id))
			if stored.State != tc.wantState || (stored.FinishedAt != nil) != (tc.wantState == db.TaskCanceled) {
				t.Errorf("%s: stored state %s finished_at %v", tc.name, stored.State, stored.FinishedAt)
			}
		}
	}
	// The workers of running and canceling tasks are told.
	want := []string{canceling.ID.String(), running.ID.String(), canceling.ID.String()}
	var got []string
	for len(got) < len(want) {
		select {
		case n := <-notes:
			if n.Channel != "" {
				got = append(got, n.Payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("cancel notifications %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("cancel notifications %v, want %v", got, want)
	}

	// A canceling task that fails ends canceled; one that completes stays completed.
	if f := must[db.Task](t)(d.FinishTask(ctx, running.ID, w.ID, db.TaskFailed, map[string]string{"description": "ctx canceled"})); f.State != db.TaskCanceled || f.Error != nil {
		t.Errorf("canceling task that failed ended %s (%s)", f.State, f.Error)
	}
	if f := must[db.Task](t)(d.FinishTask(ctx, canceling.ID, w.ID, db.TaskCompleted, nil)); f.State != db.TaskCompleted {
		t.Errorf("canceling task that completed ended %s", f.State)
	}
	if _, err := d.FinishTask(ctx, canceling.ID, w.ID, db.TaskFailed, nil); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("finishing a finished task: %v", err)
	}

	// Delete: only final states.
	still := runningTask(t, d, w, db.NewTask{Name: "t", ExclusiveResources: []string{"still"}})
	waiting2 := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "t", ExclusiveResources: []string{"still"}}))
	stillCanceling := runningTask(t, d, w, db.NewTask{Name: "t", ExclusiveResources: []string{"d"}})
	must[db.Task](t)(d.CancelTask(ctx, stillCanceling.ID))
	for _, id := range []uuid.UUID{still.ID, waiting2.ID, stillCanceling.ID} {
		wantErr(t, d.DeleteTask(ctx, id), db.ErrConflict)
		must[db.Task](t)(d.GetTask(ctx, id))
	}
	for _, id := range []uuid.UUID{finals[db.TaskCompleted], finals[db.TaskFailed], finals[db.TaskCanceled], waiting.ID} {
		ok(t, d.DeleteTask(ctx, id))
		_, err := d.GetTask(ctx, id)
		wantErr(t, err, db.ErrNotFound)
	}
	wantErr(t, d.DeleteTask(ctx, uuid.New()), db.ErrNotFound)
}

func TestClaimTaskResources(t *testing.T) {
	t.Parallel()
	type tdef struct {
		label, name  string // name defaults to "t"
		excl, shared string // space-separated resources
		imm          bool
	}
	for _, tc := range []struct {
		name   string
		tasks  []tdef
		run    string // labels claimed (alone) before, in order
		cancel string // labels canceled after that
		finish string // labels finished (completed) after that
		only   string // claim only this label
		want   string // labels ClaimTask returns, in order, until none is runnable
	}{
		{name: "fifo on an exclusive resource", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}, {label: "3", excl: "r"}},
			want: "1"},
		{name: "running exclusive blocks the next", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}},
			run: "1", want: ""},
		{name: "finished exclusive lets the next run", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}, {label: "3", excl: "r"}},
			run: "1", finish: "1", want: "2"},
		{name: "canceling still holds its resources", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}},
			run: "1", cancel: "1", want: ""},
		{name: "canceled waiting task releases", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}},
			cancel: "1", want: "2"},
		{name: "older waiting task blocks a newer one on the same resource", tasks: []tdef{
			{label: "1", name: "other", excl: "r"}, {label: "2", excl: "r"}, {label: "3", shared: "r"}, {label: "4", excl: "s"}},
			want: "4"},
		{name: "older waiting shared task blocks a newer exclusive", tasks: []tdef{
			{label: "1", name: "other", shared: "r"}, {label: "2", excl: "r"}, {label: "3", shared: "r"}, {label: "4", shared: "s"}},
			want: "4"}, // 3 waits behind the waiting exclusive 2: FIFO per resource
		{name: "two shared do not block each other", tasks: []tdef{{label: "1", shared: "r"}, {label: "2", shared: "r"}, {label: "3", shared: "r"}},
			run: "1", want: "2 3"},
		{name: "shared blocks exclusive", tasks: []tdef{{label: "1", shared: "r"}, {label: "2", excl: "r"}, {label: "3", shared: "r"}},
			run: "1", want: ""},
		{name: "shared blocks exclusive until it finishes", tasks: []tdef{{label: "1", shared: "r"}, {label: "2", excl: "r"}},
			run: "1", finish: "1", want: "2"},
		{name: "exclusive blocks shared", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", shared: "r"}},
			run: "1", want: ""},
		{name: "different resources do not block", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "s"}, {label: "3", shared: "q"}},
			run: "1", want: "2 3"},
		{name: "several resources", tasks: []tdef{{label: "1", excl: "r s", shared: "x"}, {label: "2", excl: "s"}, {label: "3", shared: "r"},
			{label: "4", shared: "x"}, {label: "5", excl: "q", shared: "x"}, {label: "6", excl: "x"}, {label: "7", shared: "x"}},
			run: "1", want: "4 5"},
		{name: "immediate tasks first", tasks: []tdef{{label: "1", excl: "a"}, {label: "2", excl: "b", imm: true}, {label: "3", excl: "c"}},
			want: "2 1 3"},
		{name: "only a blocked task", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}, {label: "3", excl: "s"}},
			only: "2", want: ""},
		{name: "only a free task", tasks: []tdef{{label: "1", excl: "r"}, {label: "2", excl: "r"}, {label: "3", excl: "s"}},
			only: "3", want: "3"},
		{name: "names not registered are left alone", tasks: []tdef{{label: "1", name: "other"}, {label: "2", name: "other"}},
			want: ""},
		{name: "a resource both exclusive and shared counts as exclusive", tasks: []tdef{{label: "1", excl: "r", shared: "r"}, {label: "2", shared: "r"}},
			run: "1", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newDB(t)
			ctx := context.Background()
			w := registerWorker(t, d, "w", time.Hour)
			ids := map[string]uuid.UUID{}
			labels := map[uuid.UUID]string{}
			for _, td := range tc.tasks {
				name := td.name
				if name == "" {
					name = "t"
				}
				task := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: name, Immediate: td.imm,
					ExclusiveResources: strings.Fields(td.excl), SharedResources: strings.Fields(td.shared)}))
				ids[td.label], labels[task.ID] = task.ID, td.label
			}
			for _, l := range strings.Fields(tc.run) {
				id := ids[l]
				if _, err := d.ClaimTask(ctx, w.ID, w.Name, []string{"t"}, &id); err != nil {
					t.Fatalf("claim %s: %v", l, err)
				}
			}
			for _, l := range strings.Fields(tc.cancel) {
				must[db.Task](t)(d.CancelTask(ctx, ids[l]))
			}
			for _, l := range strings.Fields(tc.finish) {
				must[db.Task](t)(d.FinishTask(ctx, ids[l], w.ID, db.TaskCompleted, nil))
			}
			var only *uuid.UUID
			if tc.only != "" {
				id := ids[tc.only]
				only = &id
			}
			var got []string
			for {
				task, err := d.ClaimTask(ctx, w.ID, w.Name, []string{"t"}, only)
				if errors.Is(err, db.ErrNotFound) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, labels[task.ID])
				if len(got) > len(tc.tasks) {
					t.Fatalf("claimed %v", got)
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("claimed %v, want %q", got, tc.want)
			}
		})
	}
}

// TestClaimTaskConcurrent: workers claiming at once never run two tasks on
// one exclusive resource, and every task is claimed once, in FIFO order.
func TestClaimTaskConcurrent(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	const workers, tasks = 6, 12
	var ws []db.App
	for range workers {
		ws = append(ws, registerWorker(t, d, "w", time.Hour))
	}
	var want []uuid.UUID
	for range tasks {
		want = append(want, must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "t", ExclusiveResources: []string{"r"}})).ID)
	}
	var got []uuid.UUID
	for range tasks {
		var mu sync.Mutex
		var claimed []db.Task
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, w := range ws {
			wg.Go(func() {
				<-start
				task, err := d.ClaimTask(ctx, w.ID, w.Name, []string{"t"}, nil)
				if err == nil {
					mu.Lock()
					claimed = append(claimed, task)
					mu.Unlock()
				} else if !errors.Is(err, db.ErrNotFound) {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(claimed) != 1 {
			t.Fatalf("%d tasks on one exclusive resource claimed at once", len(claimed))
		}
		got = append(got, claimed[0].ID)
		must[db.Task](t)(d.FinishTask(ctx, claimed[0].ID, *claimed[0].WorkerID, db.TaskCompleted, nil))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("claim order differs from dispatch order")
	}
}

func TestReapDead(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	dead := registerWorker(t, d, "dead", ttl)
	live := registerWorker(t, d, "live", time.Hour)
	if a := must[db.App](t)(d.GetApp(ctx, dead.ID)); a.TTL != ttl || !a.Online {
		t.Fatalf("registered %+v", a)
	}

	u := newUniverse(t, d)
	m := runScenario(t, d, u, "reap", 0, []op{{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"}})
	rowsBefore := fmtRows(membershipRows(t, d, m.repo))

	deadRun := runningTask(t, d, dead, db.NewTask{Name: "sync", ExclusiveResources: []string{"repo"}})
	deadCancel := runningTask(t, d, dead, db.NewTask{Name: "sync", ExclusiveResources: []string{"other"}})
	must[db.Task](t)(d.CancelTask(ctx, deadCancel.ID))
	liveRun := runningTask(t, d, live, db.NewTask{Name: "sync", ExclusiveResources: []string{"third"}})
	queued := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "sync", ExclusiveResources: []string{"repo"}}))
	ok(t, d.SaveProgress(ctx, db.ProgressReport{ID: db.NewID(), TaskID: deadRun.ID, Message: "m", Code: "c", State: db.TaskRunning}))

	v := must[db.RepositoryVersion](t)(d.NewVersion(ctx, m.repo, &deadRun.ID, nil))
	ok(t, d.AddContent(ctx, m.repo, v.Number, u.list("c f")))
	ok(t, d.RemoveContent(ctx, m.repo, v.Number, u.list("a")))

	// Nothing has expired yet.
	ok(t, d.Heartbeat(ctx, []uuid.UUID{dead.ID, live.ID}))
	if reaped := must[[]uuid.UUID](t)(d.ReapDead(ctx)); len(reaped) != 0 {
		t.Fatalf("reaped %v before any heartbeat expired", reaped)
	}
	time.Sleep(3 * ttl)
	ok(t, d.Heartbeat(ctx, []uuid.UUID{live.ID}))
	reaped := must[[]uuid.UUID](t)(d.ReapDead(ctx))
	slices.SortFunc(reaped, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	want := []uuid.UUID{deadRun.ID, deadCancel.ID}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(reaped, want) {
		t.Fatalf("reaped %v, want %v", reaped, want)
	}
	if got := must[db.Task](t)(d.GetTask(ctx, deadRun.ID)); got.State != db.TaskFailed || got.FinishedAt == nil ||
		!strings.Contains(string(got.Error), "Worker has gone missing.") {
		t.Errorf("dead worker's task: %s %s", got.State, got.Error)
	}
	if got := must[db.Task](t)(d.GetTask(ctx, deadCancel.ID)); got.State != db.TaskCanceled || got.Error != nil {
		t.Errorf("dead worker's canceling task: %s %s", got.State, got.Error)
	}
	if got := must[db.Task](t)(d.GetTask(ctx, liveRun.ID)); got.State != db.TaskRunning {
		t.Errorf("live worker's task: %s", got.State)
	}
	if got := must[db.Task](t)(d.GetTask(ctx, queued.ID)); got.State != db.TaskWaiting {
		t.Errorf("waiting task: %s", got.State)
	}
	if ps := must[[]db.ProgressReport](t)(d.ProgressReports(ctx, deadRun.ID)); len(ps) != 1 || ps[0].State != db.TaskFailed {
		t.Errorf("progress of the reaped task: %+v", ps)
	}
	// The incomplete version is gone and the membership is as before.
	m.check(t, d, "reaped")
	if got := fmtRows(membershipRows(t, d, m.repo)); !slices.Equal(got, rowsBefore) {
		t.Fatalf("membership after reaping\n%v\nwant\n%v", got, rowsBefore)
	}
	var left int
	ok(t, d.Pool().QueryRow(ctx, "SELECT count(*) FROM repository_versions WHERE NOT complete").Scan(&left))
	if left != 0 {
		t.Fatalf("%d incomplete versions left", left)
	}
	// The queued task on the repository can run now; the dead worker cannot finish its task.
	if got, err := d.ClaimTask(ctx, live.ID, live.Name, []string{"sync"}, nil); err != nil || got.ID != queued.ID {
		t.Fatalf("claim after reaping: %v %v", got.ID, err)
	}
	if _, err := d.FinishTask(ctx, deadRun.ID, dead.ID, db.TaskCompleted, nil); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("dead worker finished its reaped task: %v", err)
	}
	if again := must[[]uuid.UUID](t)(d.ReapDead(ctx)); len(again) != 0 {
		t.Fatalf("reaped again: %v", again)
	}
	if a := must[db.App](t)(d.GetApp(ctx, dead.ID)); a.Online {
		t.Fatalf("dead app online")
	}
	// Ten TTLs on, the dead app's row goes, and its heartbeat says so.
	time.Sleep(10 * ttl)
	ok(t, d.Heartbeat(ctx, []uuid.UUID{live.ID}))
	must[[]uuid.UUID](t)(d.ReapDead(ctx))
	_, err := d.GetApp(ctx, dead.ID)
	wantErr(t, err, db.ErrNotFound)
	wantErr(t, d.Heartbeat(ctx, []uuid.UUID{live.ID, dead.ID}), db.ErrNotFound)
	if got := must[db.Task](t)(d.GetTask(ctx, deadRun.ID)); got.WorkerID != nil || got.WorkerName != "dead" {
		t.Errorf("reaped task keeps worker %v name %q", got.WorkerID, got.WorkerName)
	}
	apps := must[[]db.App](t)(d.ListApps(ctx, "worker"))
	if len(apps) != 1 || apps[0].ID != live.ID {
		t.Fatalf("apps left: %+v", apps)
	}
}

// TestReapTaskWithoutWorker: a running task whose app row was deleted (worker
// id set to NULL) is reaped too.
func TestReapTaskWithoutWorker(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	w := registerWorker(t, d, "gone", time.Hour)
	task := runningTask(t, d, w, db.NewTask{Name: "t", Args: map[string]int{"n": 1}})
	var args map[string]int
	if err := json.Unmarshal(task.Args, &args); err != nil || args["n"] != 1 {
		t.Fatalf("args %s", task.Args)
	}
	ok(t, d.UnregisterApps(ctx, []uuid.UUID{w.ID}))
	reaped := must[[]uuid.UUID](t)(d.ReapDead(ctx))
	if len(reaped) != 1 || reaped[0] != task.ID {
		t.Fatalf("reaped %v", reaped)
	}
}

// TestClaimTaskWithBacklog: claiming must not cost time in proportion to the
// number of waiting tasks. With 3000 waiting tasks on distinct resources a
// claim that walks the queue in order stops at the first task; one that
// checks every waiting task for blockers, then sorts, takes hundreds of ms.
func TestClaimTaskWithBacklog(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	w := registerWorker(t, d, "w", time.Hour)
	if _, err := d.Pool().Exec(ctx, `INSERT INTO tasks (id, created_at, name, state, exclusive_resources, shared_resources)
		SELECT gen_random_uuid(), now() + i * interval '1 ms', 't', 'waiting', ARRAY['/r/' || i || '/'], ARRAY['/shared/']
		FROM generate_series(1, 3000) i`); err != nil {
		t.Fatal(err)
	}
	// Statistics as autovacuum would have them on a busy system.
	if _, err := d.Pool().Exec(ctx, "ANALYZE tasks"); err != nil {
		t.Fatal(err)
	}
	claims := 0
	start := time.Now()
	for ; claims < 10 && time.Since(start) < 2*time.Second; claims++ {
		if _, err := d.ClaimTask(ctx, w.ID, w.Name, []string{"t"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if per := time.Since(start) / time.Duration(claims); per > 100*time.Millisecond {
		t.Fatalf("a claim with 3000 waiting tasks takes %v", per)
	} else {
		t.Logf("a claim with 3000 waiting tasks takes %v", per)
	}
}

func TestTaskQueue(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	counts, oldest, err := d.TaskQueue(ctx)
	if err != nil || counts[db.TaskWaiting] != 0 || counts[db.TaskRunning] != 0 || !oldest.IsZero() {
		t.Fatalf("empty queue: %v %v %v", counts, oldest, err)
	}
	w := registerWorker(t, d, "w", time.Hour)
	runningTask(t, d, w, db.NewTask{Name: "run"})
	first := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "wait"}))
	must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "wait"}))
	done := runningTask(t, d, w, db.NewTask{Name: "done"})
	if _, err := d.FinishTask(ctx, done.ID, w.ID, db.TaskCompleted, nil); err != nil {
		t.Fatal(err)
	}
	counts, oldest, err = d.TaskQueue(ctx)
	if err != nil || counts[db.TaskWaiting] != 2 || counts[db.TaskRunning] != 1 || counts[db.TaskCanceling] != 0 {
		t.Fatalf("queue: %v %v", counts, err)
	}
	if !oldest.Equal(first.CreatedAt) {
		t.Fatalf("oldest waiting created at %v, want %v", oldest, first.CreatedAt)
	}
}
