package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

type progressResponse struct {
	Message string  `json:"message"`
	Code    string  `json:"code"`
	State   string  `json:"state"`
	Total   *int64  `json:"total"`
	Done    int64   `json:"done"`
	Suffix  *string `json:"suffix"`
}

type taskResponse struct {
	base
	State                   string             `json:"state" enum:"waiting,skipped,running,completed,failed,canceled,canceling"`
	Name                    string             `json:"name" doc:"The name of task."`
	LoggingCID              string             `json:"logging_cid" doc:"The logging correlation id associated with this task"`
	CreatedBy               *string            `json:"created_by" format:"uri"`
	UnblockedAt             *time.Time         `json:"unblocked_at" doc:"Timestamp of when this task was identified ready for pickup."`
	StartedAt               *time.Time         `json:"started_at" doc:"Timestamp of when this task started execution."`
	FinishedAt              *time.Time         `json:"finished_at" doc:"Timestamp of when this task stopped execution."`
	Error                   map[string]any     `json:"error" doc:"A JSON Object of a fatal error encountered during the execution of this task."`
	Worker                  *string            `json:"worker" format:"uri" doc:"The worker that ran this task."`
	ParentTask              *string            `json:"parent_task" format:"uri"`
	ChildTasks              []string           `json:"child_tasks"`
	TaskGroup               *string            `json:"task_group" format:"uri"`
	ProgressReports         []progressResponse `json:"progress_reports"`
	CreatedResources        []string           `json:"created_resources"`
	ReservedResourcesRecord []string           `json:"reserved_resources_record"`
	Result                  map[string]any     `json:"result"`
}

func hrefPtr(kind string, id *uuid.UUID) *string {
	if id == nil {
		return nil
	}
	h := href.Flat(kind, *id)
	return &h
}

func renderTask(t db.Task, x *db.TaskExtras) taskResponse {
	out := taskResponse{
		base:  base{PulpHref: href.Flat(href.Tasks, t.ID), PRN: prn("core.task", t.ID), PulpCreated: t.CreatedAt, PulpLastUpdated: t.UpdatedAt},
		State: t.State, Name: t.Name, LoggingCID: t.LoggingCID, UnblockedAt: t.StartedAt, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
		Worker: hrefPtr(href.Workers, t.WorkerID), ParentTask: hrefPtr(href.Tasks, t.ParentTaskID), TaskGroup: hrefPtr(href.TaskGroups, t.TaskGroupID),
		ChildTasks: []string{}, ProgressReports: []progressResponse{}, CreatedResources: []string{},
		ReservedResourcesRecord: slices.Clone(t.ExclusiveResources),
	}
	for _, r := range t.SharedResources {
		out.ReservedResourcesRecord = append(out.ReservedResourcesRecord, "shared:"+r)
	}
	if len(t.Error) > 0 {
		_ = json.Unmarshal(t.Error, &out.Error)
	}
	if x != nil {
		for _, p := range x.Progress {
			out.ProgressReports = append(out.ProgressReports, progressResponse{Message: p.Message, Code: p.Code, State: p.State, Total: p.Total, Done: p.Done, Suffix: p.Suffix})
		}
		out.CreatedResources = append(out.CreatedResources, x.CreatedResources...)
		for _, c := range x.Children {
			out.ChildTasks = append(out.ChildTasks, href.Flat(href.Tasks, c))
		}
	}
	return out
}

var taskFilters = append(append(append(append(append(commonFilters(),
	textFilters("name", "", "in", "contains")...),
	filter{Param: "state", Field: "state", Kind: kString, Doc: "Filter results where state matches value"},
	filter{Param: "state__in", Field: "state", Op: "in", Kind: kStrings, Doc: "Multiple values may be separated by commas."},
	filter{Param: "state__ne", Field: "state", Op: "ne", Kind: kString, Doc: "Filter results where state is not value"},
	filter{Param: "logging_cid", Field: "logging_cid", Kind: kString, Doc: "Filter results where logging_cid matches value"},
	filter{Param: "logging_cid__contains", Field: "logging_cid", Op: "contains", Kind: kString, Doc: "Filter results where logging_cid contains value"},
	filter{Param: "parent_task", Field: "parent_task", Kind: kHref, Doc: "Filter results where parent_task matches value"},
	filter{Param: "task_group", Field: "task_group", Kind: kHref, Doc: "Filter results where task_group matches value"},
	filter{Param: "worker", Field: "worker", Kind: kHref, Doc: "Filter results where worker matches value"},
	filter{Param: "reserved_resources", Field: "reserved_resources", Kind: kString, Doc: "Tasks holding this resource"},
	filter{Param: "reserved_resources__in", Field: "reserved_resources", Op: "in", Kind: kStrings, Doc: "Tasks holding any of these resources"},
	filter{Param: "exclusive_resources", Field: "exclusive_resources", Op: "has", Kind: kString, Doc: "Tasks holding this resource exclusively"},
	filter{Param: "shared_resources", Field: "shared_resources", Op: "has", Kind: kString, Doc: "Tasks sharing this resource"},
	filter{Param: "created_resources", Field: "created_resources", Kind: kString, Doc: "Tasks that created this resource"},
), timeFilters("pulp_created", "pulp_created")...), timeFilters("started_at", "started_at")...), timeFilters("finished_at", "finished_at")...)

var taskOrdering = []string{"pulp_created", "pulp_last_updated", "started_at", "finished_at", "state", "name"}

type taskPatch struct {
	State string `json:"state" enum:"canceled"`
}

type taskGroupTask struct {
	PulpHref    string     `json:"pulp_href" format:"uri"`
	PulpCreated time.Time  `json:"pulp_created"`
	Name        string     `json:"name"`
	State       string     `json:"state"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

type taskGroupResponse struct {
	PulpHref             string          `json:"pulp_href" format:"uri"`
	PRN                  string          `json:"prn"`
	Description          string          `json:"description"`
	AllTasksDispatched   bool            `json:"all_tasks_dispatched"`
	Waiting              int64           `json:"waiting"`
	Skipped              int64           `json:"skipped"`
	Running              int64           `json:"running"`
	Completed            int64           `json:"completed"`
	Canceled             int64           `json:"canceled"`
	Failed               int64           `json:"failed"`
	Canceling            int64           `json:"canceling"`
	GroupProgressReports []any           `json:"group_progress_reports"`
	Tasks                []taskGroupTask `json:"tasks"`
}

type workerResponse struct {
	base
	Name          string            `json:"name"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	Online        bool              `json:"online"`
	CurrentTask   *string           `json:"current_task" format:"uri"`
	Versions      map[string]string `json:"versions"`
}

var workerFilters = append(textFilters("name", "", "in", "contains"),
	filter{Param: "online", Field: "online", Kind: kBool, Doc: "Only workers with a fresh heartbeat"},
	filter{Param: "missing", Field: "missing", Kind: kBool, Doc: "Only workers whose heartbeat expired"},
)

func (s *Server) taskRoutes() error {
	tasksPath := href.APIRoot + "tasks/"
	one := tasksPath + "{pulp_id}/"
	schema := s.spec.SchemaOf("TaskResponse", taskResponse{})
	bad := s.spec.ErrorResponse("Bad request")
	notFound := s.spec.ErrorResponse("Not found")
	groupSchema := s.spec.SchemaOf("TaskGroupResponse", taskGroupResponse{})
	workerSchema := s.spec.SchemaOf("WorkerResponse", workerResponse{})
	return s.routes([]routeDef{
		{"GET", tasksPath, openapi.Operation{ID: "tasks_list", Summary: "List tasks", Tags: []string{"Tasks"}, Params: listParams(taskFilters, taskOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(schema)}, 400: bad}}, s.listTasks},
		{"GET", one, openapi.Operation{ID: "tasks_read", Summary: "Inspect a task", Tags: []string{"Tasks"}, Params: selectionParams(),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: schema}, 404: notFound}}, s.readTask},
		{"PATCH", one, openapi.Operation{ID: "tasks_cancel", Summary: "Cancel a task", Tags: []string{"Tasks"},
			Description: "Ask a waiting or running task to stop. A task already in a final state gives 409.",
			Body:        &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": s.spec.RequestOf("PatchedTaskCancel", taskPatch{})}},
			Responses:   map[int]openapi.Response{200: {Description: "OK", Schema: schema}, 400: bad, 404: notFound, 409: s.spec.ErrorResponse("Task already finished")}}, s.cancelTask},
		{"DELETE", one, openapi.Operation{ID: "tasks_delete", Summary: "Delete a task", Tags: []string{"Tasks"},
			Description: "Delete a task in a final state; others give 409.",
			Responses:   map[int]openapi.Response{204: {Description: "No content"}, 404: notFound, 409: s.spec.ErrorResponse("Task not finished")}}, s.deleteTask},
		{"GET", href.APIRoot + "task-groups/", openapi.Operation{ID: "task_groups_list", Summary: "List task groups", Tags: []string{"Task-Groups"},
			Params:    listParams(commonFilters(), []string{"pulp_created"}),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(groupSchema)}, 400: bad}}, s.listTaskGroups},
		{"GET", href.APIRoot + "task-groups/{pulp_id}/", openapi.Operation{ID: "task_groups_read", Summary: "Inspect a task group", Tags: []string{"Task-Groups"},
			Params: selectionParams(), Responses: map[int]openapi.Response{200: {Description: "OK", Schema: groupSchema}, 404: notFound}}, s.readTaskGroup},
		{"GET", href.APIRoot + "workers/", openapi.Operation{ID: "workers_list", Summary: "List workers", Tags: []string{"Workers"},
			Params:    listParams(workerFilters, nil),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(workerSchema)}, 400: bad}}, s.listWorkers},
		{"GET", href.APIRoot + "workers/{pulp_id}/", openapi.Operation{ID: "workers_read", Summary: "Inspect a worker", Tags: []string{"Workers"},
			Params: selectionParams(), Responses: map[int]openapi.Response{200: {Description: "OK", Schema: workerSchema}, 404: notFound}}, s.readWorker},
	})
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseList(r, taskFilters, taskOrdering)
	if err != nil {
		return err
	}
	p, err := s.DB.ListTasks(r.Context(), lq.ListParams)
	if err != nil {
		return err
	}
	ids := make([]uuid.UUID, len(p.Items))
	for i, t := range p.Items {
		ids[i] = t.ID
	}
	extras, err := s.DB.TaskExtrasFor(r.Context(), ids)
	if err != nil {
		return err
	}
	return writePage(w, r, lq, p.Count, p.Items, func(t db.Task) any { return renderTask(t, extras[t.ID]) })
}

func (s *Server) taskDetail(r *http.Request, t db.Task) (taskResponse, error) {
	extras, err := s.DB.TaskExtrasFor(r.Context(), []uuid.UUID{t.ID})
	if err != nil {
		return taskResponse{}, err
	}
	return renderTask(t, extras[t.ID]), nil
}

func (s *Server) readTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	t, err := s.DB.GetTask(r.Context(), id)
	if err != nil {
		return err
	}
	out, err := s.taskDetail(r, t)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, out)
}

func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		State *string `json:"state"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.State == nil {
		return fieldError("state", "This field is required.")
	}
	if *req.State != db.TaskCanceled {
		return fieldError("state", "The only acceptable value is 'canceled'.")
	}
	t, err := s.DB.CancelTask(r.Context(), id)
	if errors.Is(err, db.ErrConflict) {
		return detail(http.StatusConflict, "Task %s is already in '%s' state", href.Flat(href.Tasks, id), t.State)
	}
	if err != nil {
		return err
	}
	out, err := s.taskDetail(r, t)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.DB.DeleteTask(r.Context(), id); errors.Is(err, db.ErrConflict) {
		return detail(http.StatusConflict, "%v", err)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) renderTaskGroup(r *http.Request, g db.TaskGroup) (taskGroupResponse, error) {
	out := taskGroupResponse{PulpHref: href.Flat(href.TaskGroups, g.ID), PRN: prn("core.taskgroup", g.ID), Description: g.Description,
		AllTasksDispatched: true, GroupProgressReports: []any{}, Tasks: []taskGroupTask{},
		Waiting: g.Counts[db.TaskWaiting], Skipped: g.Counts[db.TaskSkipped], Running: g.Counts[db.TaskRunning],
		Completed: g.Counts[db.TaskCompleted], Canceled: g.Counts[db.TaskCanceled], Failed: g.Counts[db.TaskFailed], Canceling: g.Counts[db.TaskCanceling]}
	p, err := s.DB.ListTasks(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "task_group", Value: g.ID}}, Ordering: []string{"pulp_created"}, Limit: maxLimit})
	for _, t := range p.Items {
		out.Tasks = append(out.Tasks, taskGroupTask{PulpHref: href.Flat(href.Tasks, t.ID), PulpCreated: t.CreatedAt, Name: t.Name, State: t.State, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt})
	}
	return out, err
}

func (s *Server) listTaskGroups(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseList(r, commonFilters(), []string{"pulp_created"})
	if err != nil {
		return err
	}
	p, err := s.DB.ListTaskGroups(r.Context(), lq.ListParams)
	if err != nil {
		return err
	}
	out := make([]taskGroupResponse, 0, len(p.Items))
	for _, g := range p.Items {
		tg, err := s.renderTaskGroup(r, g)
		if err != nil {
			return err
		}
		out = append(out, tg)
	}
	return writePage(w, r, lq, p.Count, out, func(g taskGroupResponse) any { return g })
}

func (s *Server) readTaskGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	g, err := s.DB.GetTaskGroup(r.Context(), id)
	if err != nil {
		return err
	}
	out, err := s.renderTaskGroup(r, g)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, out)
}

func (s *Server) renderWorker(r *http.Request, a db.App) workerResponse {
	out := workerResponse{base: base{PulpHref: href.Flat(href.Workers, a.ID), PRN: prn("core.appstatus", a.ID), PulpCreated: a.StartedAt, PulpLastUpdated: a.LastHeartbeat},
		Name: a.Name, LastHeartbeat: a.LastHeartbeat, Online: a.Online, Versions: a.Versions}
	running, err := s.DB.ListTasks(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "worker", Value: a.ID}, {Field: "state", Op: "in", Value: []string{db.TaskRunning, db.TaskCanceling}}}, Limit: 1})
	if err == nil && len(running.Items) > 0 {
		h := href.Flat(href.Tasks, running.Items[0].ID)
		out.CurrentTask = &h
	}
	return out
}

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseList(r, workerFilters, nil)
	if err != nil {
		return err
	}
	apps, err := s.DB.ListApps(r.Context(), "worker")
	if err != nil {
		return err
	}
	var kept []db.App
	for _, a := range apps {
		if matchWorker(a, lq.Filters) {
			kept = append(kept, a)
		}
	}
	count := int64(len(kept))
	kept = kept[min(lq.Offset, len(kept)):min(lq.Offset+lq.Limit, len(kept))]
	return writePage(w, r, lq, count, kept, func(a db.App) any { return s.renderWorker(r, a) })
}

// matchWorker applies worker filters in memory: workers are few.
func matchWorker(a db.App, filters []db.Filter) bool {
	for _, f := range filters {
		switch f.Field {
		case "online":
			if a.Online != f.Value.(bool) {
				return false
			}
		case "missing":
			if a.Online == f.Value.(bool) {
				return false
			}
		case "name":
			switch f.Op {
			case "":
				if a.Name != f.Value.(string) {
					return false
				}
			case "in":
				if !slices.Contains(f.Value.([]string), a.Name) {
					return false
				}
			case "contains":
				if !strings.Contains(a.Name, f.Value.(string)) {
					return false
				}
			}
		}
	}
	return true
}

func (s *Server) readWorker(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	a, err := s.DB.GetApp(r.Context(), id)
	if err != nil || a.Type != "worker" {
		return errNotFound
	}
	return detailJSON(w, r, http.StatusOK, s.renderWorker(r, a))
}
