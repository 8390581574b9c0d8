package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/tracing"
)

// Options configure a Node.
type Options struct {
	// Name identifies the process in app_status, e.g. "1234@host".
	Name string
	// Workers is how many tasks the node runs at once; 0 means it runs none
	// (an API-only process), though it still runs its own immediate tasks.
	Workers int
	// API and Content register those roles in app_status for status/.
	API, Content bool
	// TTL is how long a heartbeat stays valid (default 30s); beats go every TTL/3.
	TTL time.Duration
	// Poll is how often idle workers look for tasks without a NOTIFY (default 5s).
	Poll time.Duration
	// Grace is how long Stop waits for running tasks before canceling them (default 10s).
	Grace time.Duration
	// ImmediateTimeout bounds an immediate task run inside a request (default 5s).
	ImmediateTimeout time.Duration
	// Versions are the component versions recorded with each app row.
	Versions map[string]string
	Logger   *slog.Logger
	// Observer, when set, hears of every task this node started and ran to its end.
	Observer Observer
	// Tracer, when set, records a span per task run, in the trace of the
	// request that dispatched it.
	Tracer *tracing.Tracer
}

// Observer records started and finished tasks, e.g. as metrics.
type Observer interface {
	// TaskStarted hears of a task this node claimed and how long it waited.
	TaskStarted(name string, waited time.Duration)
	TaskFinished(name, state string, elapsed time.Duration)
}

// Node is one process's part in the tasking system.
type Node struct {
	db   *db.DB
	reg  *Registry
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	apps    map[string]uuid.UUID // app_type -> row id
	running map[uuid.UUID]context.CancelCauseFunc
	wake    chan struct{} // closed and replaced to wake every idle slot

	stop     context.CancelFunc
	loops    sync.WaitGroup // heartbeat, listener and slot loops
	inflight sync.WaitGroup // running tasks
}

// errCanceled is the cause given to a task context on a cancel request.
var errCanceled = errors.New("task canceled")

// errShutdown is the cause given to task contexts when the node stops.
var errShutdown = errors.New("Aborted during worker shutdown.")

// NewNode builds a node; Start begins its work.
func NewNode(d *db.DB, reg *Registry, o Options) *Node {
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.ImmediateTimeout <= 0 {
		o.ImmediateTimeout = 5 * time.Second
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("%d@%s", os.Getpid(), host)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{db: d, reg: reg, opts: o, log: o.Logger.With("component", "tasks"),
		apps: map[string]uuid.UUID{}, running: map[uuid.UUID]context.CancelCauseFunc{}, wake: make(chan struct{})}
}

// Start registers the node's roles and starts heartbeats, the listener and
// the worker slots.
func (n *Node) Start(ctx context.Context) error {
	if err := n.register(ctx); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.stop = cancel
	n.loops.Add(2)
	go func() { defer n.loops.Done(); n.heartbeatLoop(loopCtx) }()
	go func() { defer n.loops.Done(); n.listen(loopCtx) }()
	for range n.opts.Workers {
		n.loops.Add(1)
		go func() { defer n.loops.Done(); n.slot(loopCtx) }()
	}
	n.log.InfoContext(ctx, "tasking started", "name", n.opts.Name, "workers", n.opts.Workers)
	return nil
}

func (n *Node) register(ctx context.Context) error {
	roles := []string{}
	if n.opts.API {
		roles = append(roles, "api")
	}
	if n.opts.Content {
		roles = append(roles, "content")
	}
	if n.opts.Workers > 0 || len(roles) == 0 {
		roles = append(roles, "worker")
	}
	apps := map[string]uuid.UUID{}
	for _, r := range roles {
		a, err := n.db.RegisterApp(ctx, r, n.opts.Name, n.opts.Versions, n.opts.TTL)
		if err != nil {
			return fmt.Errorf("register %s app: %w", r, err)
		}
		apps[r] = a.ID
	}
	n.mu.Lock()
	n.apps = apps
	n.mu.Unlock()
	return nil
}

// Stop stops claiming tasks, waits up to Grace for running ones, cancels the
// rest (they fail with "Aborted during worker shutdown.") and unregisters.
func (n *Node) Stop(ctx context.Context) {
	if n.stop == nil {
		return
	}
	n.stop()
	done := make(chan struct{})
	go func() { n.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(n.opts.Grace):
		n.mu.Lock()
		for _, cancel := range n.running {
			cancel(errShutdown)
		}
		n.mu.Unlock()
		<-done
	}
	n.loops.Wait()
	if err := n.db.UnregisterApps(context.WithoutCancel(ctx), n.appIDs()); err != nil {
		n.log.WarnContext(ctx, "unregister apps", "err", err)
	}
}

func (n *Node) appIDs() []uuid.UUID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]uuid.UUID, 0, len(n.apps))
	for _, id := range n.apps {
		out = append(out, id)
	}
	return out
}

func (n *Node) appID(role string) uuid.UUID {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id, ok := n.apps[role]; ok {
		return id
	}
	for _, id := range n.apps {
		return id
	}
	return uuid.Nil
}

func (n *Node) heartbeatLoop(ctx context.Context) {
	tick := time.NewTicker(n.opts.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := n.db.Heartbeat(ctx, n.appIDs()); errors.Is(err, db.ErrNotFound) {
			// We were presumed dead and our tasks failed: stop them and rejoin.
			n.log.ErrorContext(ctx, "heartbeat expired; canceling running tasks and registering again")
			n.cancelAll(errors.New("worker heartbeat expired"))
			if err := n.register(ctx); err != nil {
				n.log.ErrorContext(ctx, "register again", "err", err)
			}
		} else if err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "heartbeat", "err", err)
		}
		reaped, err := n.db.ReapDead(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "reap dead workers", "err", err)
		}
		for _, id := range reaped {
			n.log.WarnContext(ctx, "failed task of a missing worker", "task", id)
		}
	}
}

func (n *Node) cancelAll(cause error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, cancel := range n.running {
		cancel(cause)
	}
}

func (n *Node) listen(ctx context.Context) {
	err := n.db.Listen(ctx, []string{db.ChannelTaskWakeup, db.ChannelTaskCancel}, func(msg db.Notification) {
		switch msg.Channel {
		case db.ChannelTaskCancel:
			if id, err := uuid.Parse(msg.Payload); err == nil {
				n.cancelTask(id)
			}
		case db.ChannelTaskWakeup:
			n.wakeAll()
		default: // (re)connected: notifications sent before may be lost
			n.wakeAll()
			n.recheckCancels(ctx)
		}
	})
	if err != nil && ctx.Err() == nil {
		n.log.ErrorContext(ctx, "listener stopped", "err", err)
	}
}

func (n *Node) cancelTask(id uuid.UUID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cancel, ok := n.running[id]; ok {
		cancel(errCanceled)
	}
}

func (n *Node) recheckCancels(ctx context.Context) {
	n.mu.Lock()
	ids := make([]uuid.UUID, 0, len(n.running))
	for id := range n.running {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		if s, err := n.db.TaskState(ctx, id); err == nil && s == db.TaskCanceling {
			n.cancelTask(id)
		}
	}
}

func (n *Node) wakeAll() {
	n.mu.Lock()
	close(n.wake)
	n.wake = make(chan struct{})
	n.mu.Unlock()
}

func (n *Node) wakeChan() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wake
}

// slot claims and runs one task at a time until ctx ends.
func (n *Node) slot(ctx context.Context) {
	names := n.reg.Names()
	for ctx.Err() == nil {
		wake := n.wakeChan() // taken before claiming, so a NOTIFY during the claim is not lost
		t, err := n.db.ClaimTask(ctx, n.appID("worker"), n.opts.Name, names, nil)
		if err == nil {
			n.run(ctx, t, n.appID("worker"))
			continue
		}
		if !errors.Is(err, db.ErrNotFound) && ctx.Err() == nil {
			n.log.WarnContext(ctx, "claim task", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(n.opts.Poll):
		}
	}
}

// run executes a claimed task and records its outcome. The task context is
// detached from ctx so that stopping the node lets it finish within Grace.
func (n *Node) run(ctx context.Context, t db.Task, owner uuid.UUID) {
	n.inflight.Add(1)
	defer n.inflight.Done()
	tctx, cancel := context.WithCancelCause(withTaskID(context.WithoutCancel(ctx), t.ID))
	defer cancel(nil)
	n.mu.Lock()
	n.running[t.ID] = cancel
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.running, t.ID)
		n.mu.Unlock()
	}()
	// A cancel may have arrived between the claim and registering the cancel func.
	if s, err := n.db.TaskState(tctx, t.ID); err == nil && s == db.TaskCanceling {
		cancel(errCanceled)
	}

	log := n.log.With("task", t.ID, "task_name", t.Name)
	handle := &Task{ID: t.ID, Name: t.Name, Args: t.Args, db: n.db, logger: log}
	start := time.Now()
	if n.opts.Observer != nil && t.StartedAt != nil {
		n.opts.Observer.TaskStarted(t.Name, t.StartedAt.Sub(t.CreatedAt))
	}
	tctx, span := n.opts.Tracer.StartRoot(tctx, t.TraceParent, "task "+t.Name, tracing.Internal,
		tracing.String("pulp.task.id", t.ID.String()), tracing.String("pulp.task.name", t.Name))
	err := call(tctx, n.reg.funcs[t.Name], handle)
	if err == nil && tctx.Err() != nil {
		err = context.Cause(tctx)
	}
	span.End(err)
	fin := context.WithoutCancel(tctx)
	handle.flush(fin)
	state, taskErr := db.TaskCompleted, any(nil)
	if err != nil {
		state, taskErr = db.TaskFailed, map[string]string{"description": describe(err, context.Cause(tctx))}
		if derr := untilStored(ctx, fin, log, "discard incomplete versions", func(c context.Context) error {
			return n.db.DiscardTaskVersions(c, []uuid.UUID{t.ID})
		}); derr != nil {
			log.ErrorContext(fin, "discard incomplete versions", "err", derr)
		}
	}
	var final db.Task
	ferr := untilStored(ctx, fin, log, "record task end", func(c context.Context) (err error) {
		final, err = n.db.FinishTask(c, t.ID, owner, state, taskErr)
		return err
	})
	if ferr != nil {
		log.ErrorContext(fin, "record task end", "err", ferr)
		return
	}
	if n.opts.Observer != nil {
		n.opts.Observer.TaskFinished(t.Name, final.State, time.Since(start))
	}
	log.InfoContext(fin, "task finished", "state", final.State, "duration_ms", time.Since(start).Milliseconds(), "err", err)
}

// untilStored runs write until it succeeds, the row is gone or no longer this worker's
// (ErrNotFound, ErrConflict), or the node stops (ctx). The end of a task must reach the
// database even if the database was down when the task ended (a restart, a failover):
// given up, the task would stay running for as long as this node heartbeats.
func untilStored(ctx, fin context.Context, log *slog.Logger, what string, write func(context.Context) error) error {
	pause := 100 * time.Millisecond
	for {
		err := write(fin)
		if err == nil || errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrConflict) || ctx.Err() != nil {
			return err
		}
		log.WarnContext(fin, what+": retrying", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// describe is the error text stored on a failed task.
func describe(err, cause error) string {
	if errors.Is(cause, errShutdown) {
		return errShutdown.Error()
	}
	return err.Error()
}

// call runs fn, turning a panic into an error so one bad task cannot take the
// process down.
func call(ctx context.Context, fn Func, t *Task) (err error) {
	if fn == nil {
		return fmt.Errorf("no code registered for task %q", t.Name)
	}
	defer func() {
		if r := recover(); r != nil {
			t.logger.ErrorContext(ctx, "task panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("task panicked: %v", r)
		}
	}()
	return fn(ctx, t)
}
