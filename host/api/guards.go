package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// Content guard types the host enforces in the content app.
const (
	GuardHeader   = "core.header"
	GuardRedirect = "core.content_redirect"
)

type guardBody struct {
	base
	Name        string  `json:"name" doc:"The unique name."`
	Description *string `json:"description,omitempty" doc:"An optional description."`
}

type headerGuardBody struct {
	guardBody
	HeaderName  string `json:"header_name" doc:"The header name the guard will check on."`
	HeaderValue string `json:"header_value" doc:"The value that will authorize the request."`
}

var guardFilters = append(commonFilters(), textFilters("name")...)

var guardOrdering = []string{"pulp_id", "pulp_created", "pulp_last_updated", "name"}

// guardHref is a guard's href: contentguards/core/<kind>/<id>/.
func guardHref(pulpType string, id uuid.UUID) string {
	p, e := segments(pulpType)
	return href.Typed(href.ContentGuards, p, e, id)
}

func renderGuardAny(g db.ContentGuard) any { return renderGuard(g) }

// renderGuard shows a guard's settings except its secrets.
func renderGuard(g db.ContentGuard) map[string]any {
	out := map[string]any{}
	if g.PulpType == GuardHeader && len(g.Fields) > 0 {
		_ = json.Unmarshal(g.Fields, &out)
	}
	for k, v := range map[string]any{
		"pulp_href": guardHref(g.PulpType, g.ID), "prn": prn(g.PulpType+"contentguard", g.ID),
		"pulp_created": g.CreatedAt, "pulp_last_updated": g.UpdatedAt, "pulp_type": g.PulpType,
		"name": g.Name, "description": g.Description,
	} {
		out[k] = v
	}
	return out
}

func (s *Server) guardRoutes() error {
	generic := s.spec.Component("ContentGuard", openapi.SchemaOf(guardBody{}))
	filters := append(guardFilters, typeFilters()...)
	if err := s.route("GET", href.APIRoot+"contentguards/", openapi.Operation{ID: "contentguards_list", Summary: "List content guards",
		Tags: []string{"Contentguards"}, Params: listParams(filters, guardOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(generic)}, 400: s.spec.ErrorResponse("Bad request")},
	}, listOf(filters, guardOrdering, "", s.DB.ListContentGuards, renderGuardAny)); err != nil {
		return err
	}
	for _, g := range []struct {
		pulpType, schema string
		body             any
	}{
		{GuardHeader, "HeaderContentGuard", headerGuardBody{}},
		{GuardRedirect, "ContentRedirectContentGuard", guardBody{}},
		{GuardRBAC, "RBACContentGuard", guardBody{}},
	} {
		p, e := segments(g.pulpType)
		resp, req, patch := s.schemas(g.schema, "", g.body, nil)
		if err := s.familyRoutes(family{
			master: href.ContentGuards, plugin: p, endpoint: e, noun: g.pulpType + " content guard",
			resp: resp, req: req, patch: patch, filters: guardFilters, ordering: guardOrdering,
			list:   listOf(guardFilters, guardOrdering, g.pulpType, s.DB.ListContentGuards, renderGuardAny),
			create: s.writeGuard(g.pulpType, true, false), read: readOne(func(r *http.Request) (db.ContentGuard, error) { return s.guardFromPath(r, g.pulpType) }, renderGuard),
			update: s.writeGuard(g.pulpType, false, false), partialUpdate: s.writeGuard(g.pulpType, false, true),
			del: s.deleteGuard(g.pulpType),
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) guardFromPath(r *http.Request, pulpType string) (db.ContentGuard, error) {
	return typedFromPath(r, s.DB.GetContentGuard, func(g db.ContentGuard) string { return g.PulpType }, pulpType)
}

func (s *Server) deleteGuard(pulpType string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		g, err := s.guardFromPath(r, pulpType)
		if err != nil {
			return err
		}
		if err := s.DB.DeleteContentGuard(r.Context(), g.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// writeGuard creates or updates a guard synchronously, as Pulp does.
func (s *Server) writeGuard(pulpType string, create, partial bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		g := db.ContentGuard{PulpType: pulpType}
		if !create {
			var err error
			if g, err = s.guardFromPath(r, pulpType); err != nil {
				return err
			}
		}
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		if err := guardInput(o, &g, create, partial); err != nil {
			return err
		}
		if err := uniqueName(r, s.DB.ListContentGuards, func(x db.ContentGuard) uuid.UUID { return x.ID }, g.Name, g.ID); err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			g, err = s.DB.CreateContentGuard(r.Context(), g)
			status = http.StatusCreated
		} else {
			g, err = s.DB.UpdateContentGuard(r.Context(), g)
		}
		if errors.Is(err, db.ErrConflict) {
			return fieldError("name", "This field must be unique.")
		}
		if err != nil {
			return err
		}
		if create {
			if err := ownCreated(r, guardHref(g.PulpType, g.ID)); err != nil {
				return err
			}
		}
		return writeJSON(w, status, renderGuard(g))
	}
}

func guardInput(o object, g *db.ContentGuard, create, partial bool) error {
	fe := fieldErrors{}
	known := map[string]bool{"name": true, "description": true}
	if g.PulpType == GuardHeader {
		known["header_name"], known["header_value"] = true, true
	}
	o.unexpected(fe, known)
	if name, present := o.str(fe, "name", false); name != nil {
		if strings.TrimSpace(*name) == "" {
			fe.add("name", "This field may not be blank.")
		}
		g.Name = *name
	} else if !present && !partial {
		fe.add("name", "This field is required.")
	}
	if d, present := o.str(fe, "description", true); present {
		g.Description = d
	} else if !partial {
		g.Description = nil
	}
	settings := map[string]string{}
	if len(g.Fields) > 0 {
		_ = json.Unmarshal(g.Fields, &settings)
	}
	switch g.PulpType {
	case GuardHeader:
		for _, k := range []string{"header_name", "header_value"} {
			v, present := o.str(fe, k, false)
			switch {
			case v != nil && strings.TrimSpace(*v) == "":
				fe.add(k, "This field may not be blank.")
			case v != nil:
				settings[k] = *v
			case !present && !partial:
				fe.add(k, "This field is required.")
			}
		}
	case GuardRedirect:
		if create {
			// The secret signs content URLs; it is made here and never shown.
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			settings["shared_secret"] = hex.EncodeToString(b)
		}
	}
	g.Fields, _ = json.Marshal(settings)
	return fe.err()
}
