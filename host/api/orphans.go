package api

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/tasks"
)

// OrphansResource is the lock orphan cleanup holds, so two never overlap.
const OrphansResource = "/pulp/api/v3/orphans/cleanup/"

type orphansCleanupBody struct {
	ContentHrefs         []string `json:"content_hrefs,omitempty" doc:"Will delete specified content and associated Artifacts if they are orphans."`
	OrphanProtectionTime *int     `json:"orphan_protection_time,omitempty" doc:"The time in minutes for how long Pulp will hold orphan Content and Artifacts before they become candidates for deletion by this orphan cleanup task."`
}

func (s *Server) orphanRoutes() error {
	return s.route("POST", href.APIRoot+"orphans/cleanup/", openapi.Operation{ID: "orphans_cleanup_cleanup", Summary: "Delete orphans",
		Description: "Trigger an asynchronous orphan cleanup operation.", Tags: []string{"Orphans: Cleanup"},
		Body:      &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": s.spec.RequestOf("OrphansCleanup", orphansCleanupBody{})}},
		Responses: map[int]openapi.Response{202: {Description: "Accepted", Schema: s.spec.AsyncOperation()}, 400: s.spec.ErrorResponse("Bad request")},
	}, func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			ContentHrefs *[]string `json:"content_hrefs"`
			Protection   *int      `json:"orphan_protection_time"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		args := coretask.OrphanCleanupArgs{ProtectionMinutes: req.Protection}
		if req.Protection != nil && *req.Protection < 0 {
			return fieldError("orphan_protection_time", "Ensure this value is greater than or equal to 0.")
		}
		if req.ContentHrefs != nil {
			args.Content = []uuid.UUID{}
			for _, h := range *req.ContentHrefs {
				ref, err := href.Parse(h)
				if err != nil || ref.Master != href.Content || ref.IsVersion() {
					return fieldError("content_hrefs", "Invalid content href %q.", h)
				}
				args.Content = append(args.Content, ref.ID)
			}
		}
		return s.dispatch(w, r, tasks.Spec{Name: coretask.OrphanCleanup, Args: args, Exclusive: []string{OrphansResource}})
	})
}
