package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
	"github.com/pulpo/pulpo/host/tracing"
)

// Dispatcher queues tasks; tasks.Node implements it.
type Dispatcher interface {
	Dispatch(ctx context.Context, s tasks.Spec) (db.Task, error)
}

// Deps are what the API needs from the rest of the host.
type Deps struct {
	DB        *db.DB
	Storage   storage.Driver
	Artifacts *artifact.Store
	Tasks     Dispatcher
	Types     Types
	// Versions are the component versions shown in status/ and the OpenAPI info.
	Versions map[string]string
	// StorageUsage reports the storage's total, used and free bytes.
	StorageUsage func(ctx context.Context) (total, used, free int64, err error)
	// MaxChunkSize bounds one upload chunk.
	MaxChunkSize int64
	// ContentOrigin and ContentPathPrefix are shown in status/.
	ContentOrigin, ContentPathPrefix string
	Logger                           *slog.Logger
	// Requests, when set, records every finished request by route pattern.
	Requests RequestObserver
	// Auth checks every route's permissions (authz.go); nil turns the
	// checks off, for tests of other concerns. Users is told when a user
	// changes so cached credentials are dropped.
	Auth  *auth.Authorizer
	Users interface{ Forget() }
}

// RequestObserver records finished requests, e.g. as metrics. route is the
// pattern the request matched, so its values are bounded.
type RequestObserver interface {
	ObserveRequest(route, method string, status int, elapsed time.Duration)
}

// Server is the REST API handler.
type Server struct {
	Deps
	mux   *http.ServeMux
	spec  *openapi.Builder
	doc   []byte
	types typeIndex
	log   *slog.Logger
}

// handlerFunc is a route handler; a returned error is rendered as JSON.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New builds the API and its OpenAPI document; an invalid document is an error.
func New(d Deps) (*Server, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxChunkSize <= 0 {
		d.MaxChunkSize = 100 << 20
	}
	s := &Server{Deps: d, mux: http.NewServeMux(), log: d.Logger.With("component", "api")}
	idx, err := indexTypes(d.Types)
	if err != nil {
		return nil, err
	}
	s.types = idx
	s.spec = openapi.NewBuilder(openapi.Info{
		Title:       "Pulpo API",
		Version:     "v3",
		Description: "Fetch, Upload, Organize, and Distribute Software Packages",
		AppVersions: d.Versions,
	})
	s.spec.SecurityScheme("basicAuth", openapi.SecurityScheme{Type: "http", Scheme: "basic"})
	for _, add := range []func() error{
		s.statusRoutes, s.healthRoutes, s.repairRoutes, s.artifactRoutes, s.uploadRoutes, s.taskRoutes,
		s.repositoryRoutes, s.remoteRoutes, s.contentRoutes, s.orphanRoutes,
		s.publicationRoutes, s.distributionRoutes, s.guardRoutes,
		s.userRoutes, s.roleRoutes,
	} {
		if err := add(); err != nil {
			return nil, err
		}
	}
	doc := s.spec.Doc()
	if err := openapi.Validate(doc); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	if s.doc, err = doc.JSON(); err != nil {
		return nil, err
	}
	s.mux.HandleFunc("GET "+href.APIRoot+"docs/api.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.doc) //nolint:errcheck // client went away
	})
	s.mux.HandleFunc(href.APIRoot, func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errNotFound)
	})
	return s, nil
}

// routeDef is one row of a resource's route table.
type routeDef struct {
	method, path string
	op           openapi.Operation
	h            handlerFunc
}

// routes registers a resource's route table.
func (s *Server) routes(defs []routeDef) error {
	for _, d := range defs {
		if err := s.route(d.method, d.path, d.op, d.h); err != nil {
			return err
		}
	}
	return nil
}

// route registers a handler in the mux and its operation in the document.
func (s *Server) route(method, path string, op openapi.Operation, h handlerFunc) error {
	if err := s.spec.Add(method, path, op); err != nil {
		return err
	}
	h = s.authorize(accessFor(method, path), h)
	s.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
	return nil
}

// ServeHTTP adds a request id, recovers panics and logs each request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := r.Header.Get("X-Request-ID")
	if rid == "" || len(rid) > 64 {
		rid = strings.ReplaceAll(uuid.NewString(), "-", "")
	}
	w.Header().Set("X-Request-ID", rid)
	r = r.WithContext(tasks.WithRequestID(r.Context(), rid))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(r.Context(), "panic serving request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
			if !sw.wrote {
				s.writeError(sw, r, fmt.Errorf("panic: %v", p))
			}
		}
		if s.Requests != nil {
			s.Requests.ObserveRequest(routeOf(r.Pattern), r.Method, sw.status, time.Since(start))
		}
		if span := tracing.SpanFrom(r.Context()); span != nil {
			span.SetName(r.Method + " " + routeOf(r.Pattern))
			span.SetAttrs(tracing.String("http.route", routeOf(r.Pattern)), tracing.String("pulp.request_id", rid))
		}
		s.log.InfoContext(r.Context(), "request", "request_id", rid, "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration_ms", time.Since(start).Milliseconds())
	}()
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toHTTP(err)
	if e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, e.Status, e.Body) //nolint:errcheck // client went away
}

// asyncResponse is Pulp's 202 body.
type asyncResponse struct {
	Task string `json:"task"`
}

// dispatch queues a task and answers 202 {"task": href}.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, spec tasks.Spec) error {
	t, err := s.Tasks.Dispatch(r.Context(), spec)
	if err != nil {
		return err
	}
	if err := s.ownTask(r.Context(), href.Flat(href.Tasks, t.ID)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, asyncResponse{Task: href.Flat(href.Tasks, t.ID)})
}

// pathID parses the {pulp_id} path value.
func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("pulp_id"))
	if err != nil {
		return id, errNotFound
	}
	return id, nil
}

// detailJSON renders one object honouring fields/exclude_fields.
func detailJSON(w http.ResponseWriter, r *http.Request, status int, v any) error {
	out, err := parseSelection(r.URL.Query()).apply(v)
	if err != nil {
		return err
	}
	return writeJSON(w, status, out)
}

// prn is Pulp's resource name for a typed or flat resource.
func prn(model string, id uuid.UUID) string { return "prn:" + model + ":" + id.String() }
