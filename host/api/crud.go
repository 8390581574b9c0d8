package api

import (
	"context"
	"errors"
	"net/http"

	"strings"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// family describes the standard routes of one typed resource family:
// <prefix> lists and creates, <prefix>{pulp_id}/ reads, updates and deletes.
// A nil handler leaves its route out. Writes marked async answer 202 with a
// task, as Pulp does for objects other tasks lock.
type family struct {
	master, plugin, endpoint string // URL segments, e.g. "distributions", "file", "file"
	noun                     string // e.g. "file.file distribution"
	model                    string // schema name suffix, e.g. "Distribution"
	resp, req, patch         *openapi.Schema
	filters                  []filter
	ordering                 []string

	list, create, read, update, partialUpdate, del handlerFunc
	createAsync, updateAsync, deleteAsync          bool
}

// schemas builds the response, request and patch components of a family
// whose core body is v and whose plugin fields are fields.
func (s *Server) schemas(name, model string, v any, fields []Field) (resp, req, patch *openapi.Schema) {
	resp = s.spec.Component(name+model+"Response", extend(openapi.SchemaOf(v), fields, false))
	reqInline := extend(s.requestSchema(v), fields, true)
	req = s.spec.Component(name+model, reqInline)
	patched := *reqInline
	patched.Required = nil
	patch = s.spec.Component("Patched"+name+model, &patched)
	return resp, req, patch
}

func (f family) prefix() string {
	return href.APIRoot + f.master + "/" + f.plugin + "/" + f.endpoint + "/"
}

func (f family) tag() string {
	return strings.ToUpper(f.master[:1]) + f.master[1:] + ": " + tag(f.plugin, f.endpoint)
}

// familyRoutes registers a family's standard routes.
func (s *Server) familyRoutes(f family) error {
	prefix := f.prefix()
	one := prefix + "{pulp_id}/"
	id := func(action string) string { return opName(f.master, f.plugin, f.endpoint, action) }
	tags := []string{f.tag()}
	bad, notFound := s.spec.ErrorResponse("Bad request"), s.spec.ErrorResponse("Not found")
	async := openapi.Response{Description: "Accepted", Schema: s.spec.AsyncOperation()}
	body := func(sc *openapi.Schema) *openapi.Body {
		return &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": sc}}
	}
	write := func(isAsync bool, status int, schema *openapi.Schema, desc string, extra map[int]openapi.Response) (map[int]openapi.Response, string) {
		out := map[int]openapi.Response{}
		for k, v := range extra {
			out[k] = v
		}
		if isAsync {
			out[202] = async
			return out, "Trigger an asynchronous task to " + desc + "."
		}
		out[status] = openapi.Response{Description: "OK", Schema: schema}
		if status == 204 {
			out[status] = openapi.Response{Description: "No content"}
		}
		return out, ""
	}
	var defs []routeDef
	if f.list != nil {
		defs = append(defs, routeDef{"GET", prefix, openapi.Operation{ID: id("list"), Summary: "List " + f.noun + "s", Tags: tags,
			Params:    listParams(f.filters, f.ordering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(f.resp)}, 400: bad}}, f.list})
	}
	if f.create != nil {
		resp, desc := write(f.createAsync, 201, f.resp, "create a "+f.noun, map[int]openapi.Response{400: bad})
		defs = append(defs, routeDef{"POST", prefix, openapi.Operation{ID: id("create"), Summary: "Create a " + f.noun, Tags: tags,
			Description: desc, Body: body(f.req), Responses: resp}, f.create})
	}
	if f.read != nil {
		defs = append(defs, routeDef{"GET", one, openapi.Operation{ID: id("read"), Summary: "Inspect a " + f.noun, Tags: tags,
			Params: selectionParams(), Responses: map[int]openapi.Response{200: {Description: "OK", Schema: f.resp}, 404: notFound}}, f.read})
	}
	if f.update != nil {
		resp, desc := write(f.updateAsync, 200, f.resp, "update a "+f.noun, map[int]openapi.Response{400: bad, 404: notFound})
		defs = append(defs, routeDef{"PUT", one, openapi.Operation{ID: id("update"), Summary: "Update a " + f.noun, Tags: tags,
			Description: desc, Body: body(f.req), Responses: resp}, f.update})
	}
	if f.partialUpdate != nil {
		resp, desc := write(f.updateAsync, 200, f.resp, "partially update a "+f.noun, map[int]openapi.Response{400: bad, 404: notFound})
		defs = append(defs, routeDef{"PATCH", one, openapi.Operation{ID: id("partial_update"), Summary: "Update a " + f.noun, Tags: tags,
			Description: desc, Body: body(f.patch), Responses: resp}, f.partialUpdate})
	}
	if f.del != nil {
		resp, desc := write(f.deleteAsync, 204, nil, "delete a "+f.noun, map[int]openapi.Response{404: notFound})
		defs = append(defs, routeDef{"DELETE", one, openapi.Operation{ID: id("delete"), Summary: "Delete a " + f.noun, Tags: tags,
			Description: desc, Responses: resp}, f.del})
	}
	return s.routes(defs)
}

// readOne serves the detail of the object load finds for the request.
func readOne[T any](load func(*http.Request) (T, error), render func(T) map[string]any) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := load(r)
		if err != nil {
			return err
		}
		return detailJSON(w, r, http.StatusOK, render(v))
	}
}

// createOne serves a synchronous create: input validates the body onto a
// copy of blank, create stores it (a taken name answers 400 on name), and
// the stored object is rendered with 201.
func createOne[T any](blank T, input func(*http.Request, object, *T) error,
	create func(context.Context, T) (T, error), render func(T) map[string]any) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		v := blank
		if err := input(r, o, &v); err != nil {
			return err
		}
		created, err := create(r.Context(), v)
		if errors.Is(err, db.ErrConflict) {
			return fieldError("name", "This field must be unique.")
		}
		if err != nil {
			return err
		}
		out := render(created)
		if h, ok := out["pulp_href"].(string); ok {
			if err := ownCreated(r, h); err != nil {
				return err
			}
		}
		return writeJSON(w, http.StatusCreated, out)
	}
}

// declared finds the plugin-declared type named pulpType.
func declared[T any](types []T, pulpType string, name func(T) string) (T, bool) {
	for _, t := range types {
		if name(t) == pulpType {
			return t, true
		}
	}
	var zero T
	return zero, false
}
