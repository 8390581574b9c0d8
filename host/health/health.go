// Package health answers the liveness and readiness probes: /livez says the
// process runs, /readyz says whether it can do its work right now, running
// named checks (database reachable and migrated, storage writable, plugins
// loaded) and answering 503 with a JSON body naming what failed.
package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Check is one readiness condition: nil when met, else an error whose text
// says what is wrong. Probes are unauthenticated, so the text must hold
// nothing secret (the handler shows it; say "cannot reach the database", not
// the connection string).
type Check func(ctx context.Context) error

// Checker runs named checks.
type Checker struct {
	checks  map[string]Check
	timeout time.Duration
	log     *slog.Logger
}

// New returns a checker whose checks each get timeout (default 3 s).
func New(timeout time.Duration, log *slog.Logger) *Checker {
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{checks: map[string]Check{}, timeout: timeout, log: log.With("component", "health")}
}

// Add registers a check under name; call it while wiring, before serving.
func (c *Checker) Add(name string, check Check) { c.checks[name] = check }

// Result is one check's outcome.
type Result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Report is the /readyz body.
type Report struct {
	Status string            `json:"status"` // "ok" or "unavailable"
	Failed []string          `json:"failed,omitempty"`
	Checks map[string]Result `json:"checks"`
}

// Run runs every check at once and reports them.
func (c *Checker) Run(ctx context.Context) Report {
	rep := Report{Status: "ok", Checks: make(map[string]Result, len(c.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range c.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			err := check(cctx)
			if err == nil && cctx.Err() != nil {
				err = cctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Checks[name] = Result{Error: err.Error()}
				rep.Failed = append(rep.Failed, name)
				return
			}
			rep.Checks[name] = Result{OK: true}
		})
	}
	wg.Wait()
	if len(rep.Failed) > 0 {
		slices.Sort(rep.Failed)
		rep.Status = "unavailable"
	}
	return rep
}

// Ready serves /readyz: 200 when every check passed, else 503; the body is
// the Report either way.
func (c *Checker) Ready() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := c.Run(r.Context())
		status := http.StatusOK
		if len(rep.Failed) > 0 {
			status = http.StatusServiceUnavailable
			c.log.WarnContext(r.Context(), "not ready", "failed", rep.Failed)
		}
		writeJSON(w, status, rep)
	})
}

// Live serves /livez: 200 while the process can answer at all.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // maps of strings and bools always marshal
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n')) //nolint:errcheck // prober went away
}
