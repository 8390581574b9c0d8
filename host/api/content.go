package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

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

// typedContentFilters adds exact and __in filters on a type's scalar fields.
func typedContentFilters(ct ContentType) []filter {
	out := append([]filter(nil), contentFilters...)
	for _, f := range ct.Fields {
		kind := map[string]string{"string": kString, "integer": kInt, "boolean": kBool}[f.Type]
		if kind == "" {
			continue
		}
		out = append(out, filter{Param: f.Name, Field: "fields." + f.Name, Kind: kind, Doc: "Filter results where " + f.Name + " matches value"})
		if f.Type == "string" {
			out = append(out, filter{Param: f.Name + "__in", Field: "fields." + f.Name, Op: "in", Kind: kStrings, Doc: "Multiple values may be separated by commas."})
		}
	}
	return out
}

// valueText renders a parsed filter value the way ->> renders JSON scalars.
func valueText(v any) any {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return v
}

func (s *Server) typedContentRoutes(ct ContentType) error {
	prefix := href.APIRoot + "content/" + ct.Plugin + "/" + ct.Endpoint + "/"
	name := strings.ReplaceAll(tag(ct.Plugin, ct.Endpoint), " ", "")
	schema := s.spec.Component(name+"ContentResponse", extend(openapi.SchemaOf(contentBody{}), ct.Fields, true))
	filters := typedContentFilters(ct)
	tags := []string{"Content: " + tag(ct.Plugin, ct.Endpoint)}
	id := func(action string) string { return opName("content", ct.Plugin, ct.Endpoint, action) }
	if err := s.route("GET", prefix, openapi.Operation{ID: id("list"), Summary: "List " + ct.PulpType + " content", Tags: tags,
		Params:    listParams(filters, contentOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(schema)}, 400: s.spec.ErrorResponse("Bad request")},
	}, func(w http.ResponseWriter, r *http.Request) error {
		lq, err := parseList(r, filters, contentOrdering)
		if err != nil {
			return err
		}
		for i, f := range lq.Filters {
			lq.Filters[i].Value = valueText(f.Value)
		}
		lq.Filters = append(lq.Filters, db.Filter{Field: "pulp_type", Value: ct.PulpType})
		p, err := s.DB.ListContents(r.Context(), lq.ListParams)
		if err != nil {
			return err
		}
		return writePage(w, r, lq, p.Count, p.Items, func(c db.Content) any { return s.renderContent(c) })
	}); err != nil {
		return err
	}
	if ct.DigestField != "" {
		if err := s.contentCreateRoute(ct, prefix, tags); err != nil {
			return err
		}
	}
	return s.route("GET", prefix+"{pulp_id}/", openapi.Operation{ID: id("read"), Summary: "Inspect a " + ct.PulpType + " unit", Tags: tags,
		Params:    selectionParams(),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: schema}, 404: s.spec.ErrorResponse("Not found")},
	}, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		c, err := s.DB.GetContent(r.Context(), id)
		if err != nil {
			return err
		}
		if c.PulpType != ct.PulpType {
			return errNotFound
		}
		return detailJSON(w, r, http.StatusOK, s.renderContent(c))
	})
}

func (s *Server) contentRoutes() error {
	for _, ct := range s.Types.Contents {
		if err := s.typedContentRoutes(ct); err != nil {
			return err
		}
	}
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
