package api

import (
	"encoding/json"
	"net/http"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

type contentBody struct {
	base
	PulpType   string            `json:"pulp_type" readOnly:"true" doc:"The Pulp type of this content, e.g. file.file."`
	PulpLabels map[string]string `json:"pulp_labels"`
}

// contentFilters are the filters of every content list.
var contentFilters = append(commonFilters(),
	filter{Param: "repository_version", Field: "repository_version", Kind: kVersion, Doc: "Repository Version referenced by HREF"},
	filter{Param: "repository_version_added", Field: "repository_version_added", Kind: kVersion, Doc: "Repository Version referenced by HREF"},
	filter{Param: "repository_version_removed", Field: "repository_version_removed", Kind: kVersion, Doc: "Repository Version referenced by HREF"},
	filter{Param: "pulp_label_select", Field: "pulp_label_select", Kind: kRaw, Doc: "Filter labels by search string"},
	filter{Param: "orphaned_for", Field: "orphaned_for", Kind: kInt, Doc: "Minutes Content has been orphaned for."},
)

var contentOrdering = []string{"pulp_created", "pulp_last_updated", "pulp_type"}

// renderContent flattens plugin fields next to the core fields.
func (s *Server) renderContent(c db.Content) map[string]any {
	out := map[string]any{}
	if len(c.Fields) > 0 {
		_ = json.Unmarshal(c.Fields, &out)
	}
	labels := c.PulpLabels
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range map[string]any{
		"pulp_href": s.types.contentHref(c.PulpType, c.ID), "prn": prn(c.PulpType, c.ID),
		"pulp_created": c.CreatedAt, "pulp_last_updated": c.UpdatedAt, "pulp_type": c.PulpType, "pulp_labels": labels,
	} {
		out[k] = v
	}
	return out
}

func (s *Server) contentRoutes() error {
	filters := append(contentFilters,
		filter{Param: "pulp_type", Field: "pulp_type", Kind: kString, Doc: "Pulp type"},
		filter{Param: "pulp_type__in", Field: "pulp_type", Op: "in", Kind: kStrings, Doc: "Pulp type is in"})
	schema := s.spec.Component("MultipleArtifactContentResponse", openapi.SchemaOf(contentBody{}))
	return s.route("GET", href.APIRoot+"content/", openapi.Operation{ID: "content_list", Summary: "List content",
		Description: "Content of every type, with each type's own fields.", Tags: []string{"Content"},
		Params:    listParams(filters, contentOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(schema)}, 400: s.spec.ErrorResponse("Bad request")},
	}, func(w http.ResponseWriter, r *http.Request) error {
		lq, err := parseList(r, filters, contentOrdering)
		if err != nil {
			return err
		}
		p, err := s.DB.ListContents(r.Context(), lq.ListParams)
		if err != nil {
			return err
		}
		return writePage(w, r, lq, p.Count, p.Items, func(c db.Content) any { return s.renderContent(c) })
	})
}
