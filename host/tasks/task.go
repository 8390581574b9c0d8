package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// Task is what task code sees of its running task.
type Task struct {
	ID     uuid.UUID
	Name   string
	Args   json.RawMessage
	db     *db.DB
	logger *slog.Logger

	mu       sync.Mutex
	progress []*Progress
}

// Decode unmarshals the task's arguments into v.
func (t *Task) Decode(v any) error {
	if err := json.Unmarshal(t.Args, v); err != nil {
		return fmt.Errorf("task %s arguments: %w", t.Name, err)
	}
	return nil
}

// Logger returns a logger tagged with the task id.
func (t *Task) Logger() *slog.Logger { return t.logger }

// DB is the database the task runs against.
func (t *Task) DB() *db.DB { return t.db }

// Created records an href the task created; it appears in created_resources.
func (t *Task) Created(ctx context.Context, href string) error {
	return t.db.AddCreatedResource(ctx, t.ID, href)
}

// progressInterval bounds how often a report is written while it changes.
const progressInterval = 500 * time.Millisecond

// Progress is a progress report of a running task. Its methods are safe for
// concurrent use; writes are throttled.
type Progress struct {
	mu    sync.Mutex
	db    *db.DB
	row   db.ProgressReport
	saved time.Time
	dirty bool
}

// Progress starts a report, e.g. code "sync.downloading.artifacts" with
// message "Downloading Artifacts"; total < 0 means unknown.
func (t *Task) Progress(ctx context.Context, code, message string, total int64) (*Progress, error) {
	p := &Progress{db: t.db, row: db.ProgressReport{ID: db.NewID(), TaskID: t.ID, Code: code, Message: message, State: "running"}}
	if total >= 0 {
		p.row.Total = &total
	}
	if err := t.db.SaveProgress(ctx, p.row); err != nil {
		return nil, fmt.Errorf("progress %s: %w", code, err)
	}
	p.saved = time.Now()
	t.mu.Lock()
	t.progress = append(t.progress, p)
	t.mu.Unlock()
	return p, nil
}

// Increment adds n to done.
func (p *Progress) Increment(ctx context.Context, n int64) error {
	p.mu.Lock()
	p.row.Done += n
	p.dirty = true
	return p.maybeSave(ctx)
}

// SetTotal sets the total once it is known.
func (p *Progress) SetTotal(ctx context.Context, total int64) error {
	p.mu.Lock()
	p.row.Total = &total
	p.dirty = true
	return p.maybeSave(ctx)
}

// maybeSave writes the row when the interval has passed; it unlocks p.mu.
func (p *Progress) maybeSave(ctx context.Context) error {
	if time.Since(p.saved) < progressInterval {
		p.mu.Unlock()
		return nil
	}
	return p.saveLocked(ctx)
}

func (p *Progress) saveLocked(ctx context.Context) error {
	row := p.row
	p.saved, p.dirty = time.Now(), false
	p.mu.Unlock()
	return p.db.SaveProgress(ctx, row)
}

// Done marks the report completed and writes it.
func (p *Progress) Done(ctx context.Context) error { return p.finish(ctx, "completed") }

func (p *Progress) finish(ctx context.Context, state string) error {
	p.mu.Lock()
	if p.row.State != "running" {
		p.mu.Unlock()
		return nil
	}
	p.row.State = state
	return p.saveLocked(ctx)
}

// flush writes reports with unsaved changes; the task's final state is
// applied to running reports by the database when the task finishes.
func (t *Task) flush(ctx context.Context) {
	t.mu.Lock()
	ps := append([]*Progress(nil), t.progress...)
	t.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		if !p.dirty {
			p.mu.Unlock()
			continue
		}
		if err := p.saveLocked(ctx); err != nil {
			t.logger.WarnContext(ctx, "save progress", "code", p.row.Code, "err", err)
		}
	}
}

// SetDone sets done to an absolute count.
func (p *Progress) SetDone(ctx context.Context, done int64) error {
	p.mu.Lock()
	p.row.Done = done
	p.dirty = true
	return p.maybeSave(ctx)
}
