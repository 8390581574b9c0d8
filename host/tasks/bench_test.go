package tasks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/tasks"
)

// BenchmarkDispatchComplete dispatches b.N no-op tasks on distinct
// resources to two nodes of one worker slot each and waits until all are
// completed: the round trip of dispatch, NOTIFY, claim, run and finish.
func BenchmarkDispatchComplete(b *testing.B) {
	d := db.New(dbtest.NewPool(b), nil)
	reg := tasks.NewRegistry()
	reg.Register("noop", func(ctx context.Context, t *tasks.Task) error { return nil })
	var nodes []*tasks.Node
	for _, name := range []string{"a", "b"} {
		n := tasks.NewNode(d, reg, tasks.Options{Name: name, Workers: 1, Poll: 100 * time.Millisecond})
		if err := n.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Stop(context.Background()) })
		nodes = append(nodes, n)
	}
	ctx := context.Background()
	ids := make([]uuid.UUID, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := nodes[i%2].Dispatch(ctx, tasks.Spec{Name: "noop", Exclusive: []string{fmt.Sprintf("/bench/%d/", i)}})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, t.ID)
	}
	dispatched := b.Elapsed()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, id := range ids {
		t, err := nodes[0].WaitTask(wctx, id)
		if err != nil || t.State != db.TaskCompleted {
			b.Fatalf("task %s: %s %v", id, t.State, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(dispatched.Microseconds())/float64(b.N), "dispatch-µs/op")
}
