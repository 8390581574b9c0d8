package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/tracing"
)

// Spec describes a task to dispatch.
type Spec struct {
	Name      string
	Args      any
	Exclusive []string // resources held alone, e.g. a repository href
	Shared    []string // resources others may share, e.g. a remote href
	// Immediate tasks are short: when their resources are free they run in
	// the dispatching request itself, otherwise a worker runs them.
	Immediate   bool
	TaskGroupID *uuid.UUID
}

// Dispatch queues a task and returns its row. An immediate task whose
// resources are free has already run when Dispatch returns.
func (n *Node) Dispatch(ctx context.Context, s Spec) (db.Task, error) {
	if _, ok := n.reg.funcs[s.Name]; !ok {
		return db.Task{}, fmt.Errorf("dispatch: unknown task %q", s.Name)
	}
	nt := db.NewTask{Name: s.Name, Args: s.Args, ExclusiveResources: s.Exclusive, SharedResources: s.Shared,
		LoggingCID: RequestIDFrom(ctx), Immediate: s.Immediate, TaskGroupID: s.TaskGroupID, TraceParent: tracing.Traceparent(ctx)}
	if parent, ok := taskIDFrom(ctx); ok {
		nt.ParentTaskID = &parent
	}
	t, err := n.db.InsertTask(ctx, nt)
	if err != nil {
		return t, fmt.Errorf("dispatch %s: %w", s.Name, err)
	}
	if !s.Immediate {
		return t, nil
	}
	owner := n.appID("api")
	claimed, err := n.db.ClaimTask(ctx, owner, n.opts.Name, []string{s.Name}, &t.ID)
	if errors.Is(err, db.ErrNotFound) {
		return t, nil // resources busy: a worker will run it
	}
	if err != nil {
		return t, fmt.Errorf("dispatch %s: claim: %w", s.Name, err)
	}
	rctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), n.opts.ImmediateTimeout,
		fmt.Errorf("immediate task exceeded %s", n.opts.ImmediateTimeout))
	defer cancel()
	n.run(rctx, claimed, owner)
	return n.db.GetTask(ctx, t.ID)
}

// WaitTask polls until the task reaches a final state or ctx ends.
func (n *Node) WaitTask(ctx context.Context, id uuid.UUID) (db.Task, error) {
	for {
		t, err := n.db.GetTask(ctx, id)
		if err != nil {
			return t, err
		}
		switch t.State {
		case db.TaskCompleted, db.TaskFailed, db.TaskCanceled, db.TaskSkipped:
			return t, nil
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
