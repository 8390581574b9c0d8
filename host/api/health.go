package api

import (
	"net/http"
	"strings"

	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// healthRoutes adds pulpcore's liveness probe: 200 while the process serves
// the API, whatever the database's state (a restart would not help there;
// readiness at /readyz says whether the process can do its work).
func (s *Server) healthRoutes() error {
	return s.route("GET", href.APIRoot+"livez/", openapi.Operation{
		ID: "livez_read", Summary: "Inspect liveness of Pulp's REST API.",
		Description: "Returns 200 OK when API is alive.", Tags: []string{"Livez"},
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: s.spec.SchemaOf("LivezResponse", livez{})}},
	}, func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, livez{Status: "ok"})
	})
}

// livez is the liveness body; pulpcore sends none, clients look at the status.
type livez struct {
	Status string `json:"status"`
}

// routeOf is the metrics label of a matched mux pattern ("GET /x/{id}/" ->
// "/x/{id}/"); a request no route matched (404, 405) is "unmatched".
func routeOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}
