package db

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Task states, as Pulp names them.
const (
	TaskWaiting   = "waiting"
	TaskSkipped   = "skipped"
	TaskRunning   = "running"
	TaskCompleted = "completed"
	TaskFailed    = "failed"
	TaskCanceling = "canceling"
	TaskCanceled  = "canceled"
)

// Notification channels of the tasking system.
const (
	ChannelTaskWakeup = "pulpo_task_wakeup"
	ChannelTaskCancel = "pulpo_task_cancel"
)

// FinalTaskStates are the states a task never leaves.
var FinalTaskStates = []string{TaskSkipped, TaskCompleted, TaskFailed, TaskCanceled}

// Task is a row of tasks.
type Task struct {
	ID                 uuid.UUID
	CreatedAt          time.Time
	UpdatedAt          time.Time
	Name               string
	State              string
	Args               json.RawMessage
	ExclusiveResources []string
	SharedResources    []string
	WorkerID           *uuid.UUID
	WorkerName         string
	LoggingCID         string
	StartedAt          *time.Time
	FinishedAt         *time.Time
	Error              json.RawMessage
	Immediate          bool
	ParentTaskID       *uuid.UUID
	TaskGroupID        *uuid.UUID
	// TraceParent is the W3C traceparent of the dispatching request ("" without tracing).
	TraceParent string
}

const taskColumns = `id, created_at, updated_at, name, state, args, exclusive_resources, shared_resources,
	worker_id, worker_name, logging_cid, started_at, finished_at, error, immediate, parent_task_id, task_group_id, trace_parent`

func scanTask(row pgx.Row) (Task, error) {
	var t Task
	err := row.Scan(&t.ID, &t.CreatedAt, &t.UpdatedAt, &t.Name, &t.State, &t.Args, &t.ExclusiveResources,
		&t.SharedResources, &t.WorkerID, &t.WorkerName, &t.LoggingCID, &t.StartedAt, &t.FinishedAt, &t.Error,
		&t.Immediate, &t.ParentTaskID, &t.TaskGroupID, &t.TraceParent)
	return t, translate(err)
}

// NewTask describes a task to dispatch.
type NewTask struct {
	Name               string
	Args               any
	ExclusiveResources []string
	SharedResources    []string
	LoggingCID         string
	Immediate          bool
	ParentTaskID       *uuid.UUID
	TaskGroupID        *uuid.UUID
	TraceParent        string
}

// InsertTask creates a waiting task. It takes a transaction-scoped advisory
// lock on every resource (in sorted order, so concurrent dispatches cannot
// deadlock) before reading the clock: a later task on a resource always gets
// a later created_at, which is what FIFO order per resource rests on.
func (d *DB) InsertTask(ctx context.Context, nt NewTask) (Task, error) {
	args, err := json.Marshal(nt.Args)
	if err != nil {
		return Task{}, fmt.Errorf("task %s args: %w", nt.Name, err)
	}
	if nt.Args == nil {
		args = []byte("{}")
	}
	excl := normResources(nt.ExclusiveResources)
	shared := slices.DeleteFunc(normResources(nt.SharedResources), func(r string) bool { return slices.Contains(excl, r) })
	all := append(slices.Clone(excl), shared...)
	slices.Sort(all)
	var t Task
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		for _, r := range all {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(4711, hashtext($1))", r); err != nil {
				return translate(err)
			}
		}
		t, err = scanTask(tx.QueryRow(ctx, `INSERT INTO tasks (id, created_at, name, state, args, exclusive_resources,
				shared_resources, logging_cid, immediate, parent_task_id, task_group_id, trace_parent)
			VALUES ($1, clock_timestamp(), $2, 'waiting', $3, $4, $5, $6, $7, $8, $9, $10)
			RETURNING `+taskColumns,
			NewID(), nt.Name, args, excl, shared, nt.LoggingCID, nt.Immediate, nt.ParentTaskID, nt.TaskGroupID, nt.TraceParent))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", ChannelTaskWakeup, t.ID.String())
		return translate(err)
	})
	return t, err
}

// normResources sorts and dedupes; never nil, which pgx would send as NULL.
func normResources(rs []string) []string {
	out := append([]string{}, rs...)
	slices.Sort(out)
	return slices.Compact(out)
}

// blockedSQL is true when an older incomplete task holds a resource of t in a
// conflicting mode: exclusive against anything, shared against exclusive.
const blockedSQL = `EXISTS (
	SELECT 1 FROM tasks o
	WHERE o.state IN ('waiting', 'running', 'canceling') AND o.created_at < t.created_at
	  AND (o.exclusive_resources && (t.exclusive_resources || t.shared_resources)
	       OR o.shared_resources && t.exclusive_resources))`

// ClaimTask moves the oldest runnable waiting task whose name is in names to
// running for worker, or returns ErrNotFound. With only set, it claims that
// task alone (an immediate task run by the process that dispatched it).
func (d *DB) ClaimTask(ctx context.Context, worker uuid.UUID, workerName string, names []string, only *uuid.UUID) (Task, error) {
	return scanTask(d.pool.QueryRow(ctx, `
		WITH cand AS (
			SELECT t.id FROM tasks t
			WHERE t.state = 'waiting' AND t.name = ANY($3) AND ($4::uuid IS NULL OR t.id = $4)
			  AND NOT `+blockedSQL+`
			ORDER BY t.immediate DESC, t.created_at
			LIMIT 1
			FOR UPDATE OF t SKIP LOCKED)
		UPDATE tasks SET state = 'running', worker_id = $1, worker_name = $2,
			started_at = clock_timestamp(), updated_at = clock_timestamp()
		FROM cand WHERE tasks.id = cand.id
		RETURNING `+prefixed("tasks.", taskColumns), worker, workerName, names, only))
}

// FinishTask records the end of a task the worker holds. The update is
// guarded by the worker id: a task reaped as abandoned is not overwritten.
// A task that was asked to cancel and returned an error ends canceled.
func (d *DB) FinishTask(ctx context.Context, id, worker uuid.UUID, state string, taskErr any) (Task, error) {
	var errJSON []byte
	if taskErr != nil {
		b, err := json.Marshal(taskErr)
		if err != nil {
			return Task{}, err
		}
		errJSON = b
	}
	t, err := scanTask(d.pool.QueryRow(ctx, `
		UPDATE tasks SET
			state = CASE WHEN state = 'canceling' AND $3 <> 'completed' THEN 'canceled' ELSE $3 END,
			error = CASE WHEN state = 'canceling' AND $3 <> 'completed' THEN NULL ELSE $4::jsonb END,
			finished_at = clock_timestamp(), updated_at = clock_timestamp()
		WHERE id = $1 AND worker_id = $2 AND state IN ('running', 'canceling')
		RETURNING `+taskColumns, id, worker, state, errJSON))
	if err != nil {
		return t, fmt.Errorf("finish task %s: %w", id, err)
	}
	d.finishProgress(ctx, id, t.State)
	if err := d.Notify(ctx, ChannelTaskWakeup, ""); err != nil {
		d.logger.WarnContext(ctx, "notify wakeup", "err", err)
	}
	return t, nil
}

// finishProgress moves reports still running to the task's final state.
func (d *DB) finishProgress(ctx context.Context, task uuid.UUID, state string) {
	final := state
	if state == TaskCanceling {
		final = TaskCanceled
	}
	if _, err := d.pool.Exec(ctx, `UPDATE progress_reports SET state = $2
		WHERE task_id = $1 AND state IN ('waiting', 'running')`, task, final); err != nil {
		d.logger.WarnContext(ctx, "finish progress reports", "task", task, "err", err)
	}
}

// CancelTask asks a task to stop: a waiting task is canceled at once, a
// running one becomes canceling and its worker is told through NOTIFY.
// A task already in a final state gives ErrConflict.
func (d *DB) CancelTask(ctx context.Context, id uuid.UUID) (Task, error) {
	t, err := scanTask(d.pool.QueryRow(ctx, `
		UPDATE tasks SET
			state = CASE WHEN state = 'waiting' THEN 'canceled' ELSE 'canceling' END,
			finished_at = CASE WHEN state = 'waiting' THEN clock_timestamp() END,
			updated_at = clock_timestamp()
		WHERE id = $1 AND state IN ('waiting', 'running', 'canceling')
		RETURNING `+taskColumns, id))
	if err == ErrNotFound {
		if cur, gerr := d.GetTask(ctx, id); gerr == nil {
			return cur, fmt.Errorf("task %s is already %s: %w", id, cur.State, ErrConflict)
		}
		return t, err
	}
	if err != nil {
		return t, err
	}
	ch := ChannelTaskWakeup
	if t.State == TaskCanceling {
		ch = ChannelTaskCancel
	}
	if err := d.Notify(ctx, ch, id.String()); err != nil {
		return t, err
	}
	return t, nil
}

// GetTask reads one task.
func (d *DB) GetTask(ctx context.Context, id uuid.UUID) (Task, error) {
	return scanTask(d.pool.QueryRow(ctx, "SELECT "+taskColumns+" FROM tasks WHERE id = $1", id))
}

// DeleteTask removes a task in a final state; others give ErrConflict.
func (d *DB) DeleteTask(ctx context.Context, id uuid.UUID) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM tasks WHERE id = $1 AND state = ANY($2)", id, FinalTaskStates)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		t, err := d.GetTask(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("task %s is %s, not in a final state: %w", id, t.State, ErrConflict)
	}
	return nil
}

// TaskState reads just the state, for workers polling for cancellation.
func (d *DB) TaskState(ctx context.Context, id uuid.UUID) (string, error) {
	var s string
	err := d.pool.QueryRow(ctx, "SELECT state FROM tasks WHERE id = $1", id).Scan(&s)
	return s, translate(err)
}

// AddCreatedResource records an href a task created.
func (d *DB) AddCreatedResource(ctx context.Context, task uuid.UUID, href string) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO created_resources (task_id, href) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, task, href)
	return translate(err)
}

// CreatedResources lists the hrefs a task created, in creation order.
func (d *DB) CreatedResources(ctx context.Context, task uuid.UUID) ([]string, error) {
	rows, err := d.pool.Query(ctx, "SELECT href FROM created_resources WHERE task_id = $1 ORDER BY position", task)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ProgressReport is a row of progress_reports.
type ProgressReport struct {
	ID      uuid.UUID
	TaskID  uuid.UUID
	Message string
	Code    string
	State   string
	Total   *int64
	Done    int64
	Suffix  *string
}

// SaveProgress inserts or updates a report (by id).
func (d *DB) SaveProgress(ctx context.Context, p ProgressReport) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO progress_reports (id, task_id, message, code, state, total, done, suffix)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET message = $3, state = $5, total = $6, done = $7, suffix = $8`,
		p.ID, p.TaskID, p.Message, p.Code, p.State, p.Total, p.Done, p.Suffix)
	return translate(err)
}

// ProgressReports lists a task's reports in creation order.
func (d *DB) ProgressReports(ctx context.Context, task uuid.UUID) ([]ProgressReport, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, task_id, message, code, state, total, done, suffix
		FROM progress_reports WHERE task_id = $1 ORDER BY created_at, id`, task)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProgressReport, error) {
		var p ProgressReport
		err := r.Scan(&p.ID, &p.TaskID, &p.Message, &p.Code, &p.State, &p.Total, &p.Done, &p.Suffix)
		return p, err
	})
}

// prefixed qualifies each column of a comma-separated list with prefix.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

var taskList = listSpec{
	from: "tasks t",
	columns: map[string]string{
		"pulp_id": "t.id", "pulp_created": "t.created_at", "pulp_last_updated": "t.updated_at",
		"name": "t.name", "state": "t.state", "logging_cid": "t.logging_cid",
		"started_at": "t.started_at", "finished_at": "t.finished_at",
		"parent_task": "t.parent_task_id", "task_group": "t.task_group_id", "worker": "t.worker_id",
		"exclusive_resources": "t.exclusive_resources", "shared_resources": "t.shared_resources",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"reserved_resources": func(f Filter, arg func(any) string) (string, error) {
			if f.Op == "in" {
				return "(t.exclusive_resources || t.shared_resources) && " + arg(f.Value) + "::text[]", nil
			}
			return arg(f.Value) + " = ANY(t.exclusive_resources || t.shared_resources)", nil
		},
		"created_resources": func(f Filter, arg func(any) string) (string, error) {
			return "EXISTS (SELECT 1 FROM created_resources cr WHERE cr.task_id = t.id AND cr.href = " + arg(f.Value) + ")", nil
		},
	},
	idExpr: "t.id",
}

// ListTasks lists tasks, newest first by default.
func (d *DB) ListTasks(ctx context.Context, p ListParams) (Page[Task], error) {
	return listRows(ctx, d.pool, taskList, prefixed("t.", taskColumns), p, scanTask)
}

// PurgeTasks deletes finished tasks in states finished before a time.
func (d *DB) PurgeTasks(ctx context.Context, before time.Time, states []string) (int64, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM tasks WHERE finished_at < $1 AND state = ANY($2) AND state = ANY($3)`,
		before, states, FinalTaskStates)
	return tag.RowsAffected(), translate(err)
}

// TaskGroup is a row of task_groups with its task counts per state.
type TaskGroup struct {
	ID          uuid.UUID
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Description string
	Counts      map[string]int64
}

// InsertTaskGroup creates a group tasks can be dispatched into.
func (d *DB) InsertTaskGroup(ctx context.Context, description string) (TaskGroup, error) {
	g := TaskGroup{ID: NewID(), Description: description}
	err := d.pool.QueryRow(ctx, `INSERT INTO task_groups (id, description) VALUES ($1, $2) RETURNING created_at, updated_at`,
		g.ID, description).Scan(&g.CreatedAt, &g.UpdatedAt)
	return g, translate(err)
}

const taskGroupColumns = `g.id, g.created_at, g.updated_at, g.description,
	(SELECT coalesce(jsonb_object_agg(state, n), '{}') FROM (SELECT state, count(*) n FROM tasks WHERE task_group_id = g.id GROUP BY state) s)`

func scanTaskGroup(row pgx.Row) (TaskGroup, error) {
	var g TaskGroup
	err := row.Scan(&g.ID, &g.CreatedAt, &g.UpdatedAt, &g.Description, &g.Counts)
	return g, translate(err)
}

var taskGroupList = listSpec{
	from:    "task_groups g",
	columns: map[string]string{"pulp_id": "g.id", "pulp_created": "g.created_at", "description": "g.description"},
	idExpr:  "g.id",
}

// GetTaskGroup reads a group with its counts.
func (d *DB) GetTaskGroup(ctx context.Context, id uuid.UUID) (TaskGroup, error) {
	return scanTaskGroup(d.pool.QueryRow(ctx, "SELECT "+taskGroupColumns+" FROM task_groups g WHERE g.id = $1", id))
}

// ListTaskGroups lists groups, newest first.
func (d *DB) ListTaskGroups(ctx context.Context, p ListParams) (Page[TaskGroup], error) {
	return listRows(ctx, d.pool, taskGroupList, taskGroupColumns, p, scanTaskGroup)
}

// TaskExtras are the related rows a task's API representation shows.
type TaskExtras struct {
	Progress         []ProgressReport
	CreatedResources []string
	Children         []uuid.UUID
}

// TaskExtrasFor loads progress reports, created resources and child tasks of
// many tasks in three queries.
func (d *DB) TaskExtrasFor(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*TaskExtras, error) {
	out := make(map[uuid.UUID]*TaskExtras, len(ids))
	for _, id := range ids {
		out[id] = &TaskExtras{}
	}
	rows, err := d.pool.Query(ctx, `SELECT id, task_id, message, code, state, total, done, suffix
		FROM progress_reports WHERE task_id = ANY($1) ORDER BY created_at, id`, ids)
	if err != nil {
		return nil, translate(err)
	}
	for rows.Next() {
		var p ProgressReport
		if err := rows.Scan(&p.ID, &p.TaskID, &p.Message, &p.Code, &p.State, &p.Total, &p.Done, &p.Suffix); err != nil {
			rows.Close()
			return nil, err
		}
		out[p.TaskID].Progress = append(out[p.TaskID].Progress, p)
	}
	rows.Close()
	rows, err = d.pool.Query(ctx, `SELECT task_id, href FROM created_resources WHERE task_id = ANY($1) ORDER BY position`, ids)
	if err != nil {
		return nil, translate(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var h string
		if err := rows.Scan(&id, &h); err != nil {
			rows.Close()
			return nil, err
		}
		out[id].CreatedResources = append(out[id].CreatedResources, h)
	}
	rows.Close()
	rows, err = d.pool.Query(ctx, `SELECT parent_task_id, id FROM tasks WHERE parent_task_id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var parent, child uuid.UUID
		if err := rows.Scan(&parent, &child); err != nil {
			return nil, err
		}
		out[parent].Children = append(out[parent].Children, child)
	}
	return out, translate(rows.Err())
}

// TaskQueue counts the tasks waiting, running and canceling, and gives the
// creation time of the oldest waiting one (zero when none waits). The
// partial index on incomplete tasks keeps it cheap however many tasks ended.
func (d *DB) TaskQueue(ctx context.Context) (counts map[string]int64, oldestWaiting time.Time, err error) {
	rows, err := d.pool.Query(ctx, `SELECT state, count(*), min(created_at) FROM tasks
		WHERE state IN ('waiting', 'running', 'canceling') GROUP BY state`)
	if err != nil {
		return nil, time.Time{}, translate(err)
	}
	defer rows.Close()
	counts = map[string]int64{TaskWaiting: 0, TaskRunning: 0, TaskCanceling: 0}
	for rows.Next() {
		var state string
		var n int64
		var oldest time.Time
		if err := rows.Scan(&state, &n, &oldest); err != nil {
			return nil, time.Time{}, translate(err)
		}
		counts[state] = n
		if state == TaskWaiting {
			oldestWaiting = oldest
		}
	}
	return counts, oldestWaiting, translate(rows.Err())
}
