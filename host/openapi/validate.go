package openapi

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Validate checks what clients of the document rely on: operationIds are
// set and unique; every operation has responses, each with a description and,
// unless it is a 204, a schema; every path template parameter is declared as
// a required path parameter and every declared one is in the path; request
// bodies have content; every "$ref" resolves in components/schemas; security
// requirements name registered schemes. It also reports what the [Builder]
// could not return at the time, such as component name clashes. All problems
// are returned together, in a stable order.
func Validate(d *Doc) error {
	v := &validator{d: d, ids: map[string]string{}}
	v.errs = append(v.errs, d.errs...)
	if d.OpenAPI != Version {
		v.fail("openapi: version %q, want %q", d.OpenAPI, Version)
	}
	if d.Info.Title == "" || d.Info.Version == "" {
		v.fail("info: title and version are required")
	}
	for _, k := range slices.Sorted(maps.Keys(d.Info.Extensions)) {
		if !strings.HasPrefix(k, "x-") {
			v.fail("info: extension %q must start with x-", k)
		}
	}
	v.security("security", d.Security)
	for _, p := range slices.Sorted(maps.Keys(d.Paths)) {
		for m, op := range d.Paths[p].operations() {
			v.operation(m, p, op)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.Components.Schemas)) {
		where := "components/schemas/" + n
		if !validName(n) {
			v.fail("%s: name must match [a-zA-Z0-9._-]+", where)
		}
		v.schema(where, d.Components.Schemas[n])
	}
	return errors.Join(v.errs...)
}

type validator struct {
	d    *Doc
	ids  map[string]string // operationId -> where
	errs []error
}

func (v *validator) fail(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *validator) operation(method, path string, op *Operation) {
	where := method + " " + path
	switch prev, dup := v.ids[op.ID]; {
	case op.ID == "":
		v.fail("%s: empty operationId", where)
	case dup:
		v.fail("%s: duplicate operationId %q (already used by %s)", where, op.ID, prev)
	default:
		v.ids[op.ID] = where
	}
	where += " (" + op.ID + ")"
	v.params(where, path, op.Params)
	if op.Body != nil {
		if len(op.Body.Content) == 0 {
			v.fail("%s: request body has no content", where)
		}
		for _, mt := range slices.Sorted(maps.Keys(op.Body.Content)) {
			v.required(where+": request body "+mt, op.Body.Content[mt])
		}
	}
	if len(op.Responses) == 0 {
		v.fail("%s: no responses", where)
	}
	for _, code := range slices.Sorted(maps.Keys(op.Responses)) {
		r, rw := op.Responses[code], where+": response "+strconv.Itoa(code)
		switch {
		case code < 100 || code > 599:
			v.fail("%s: not an HTTP status", rw)
		case r.Description == "":
			v.fail("%s: missing description", rw)
		}
		if code == 204 && r.Schema != nil {
			v.fail("%s: has a schema but no content", rw)
		} else if code != 204 {
			v.required(rw, r.Schema)
		}
		for _, h := range slices.Sorted(maps.Keys(r.Headers)) {
			v.required(rw+": header "+h, r.Headers[h])
		}
	}
	if op.Security != nil {
		v.security(where+": security", op.Security)
	}
}

func (v *validator) params(where, path string, params []Param) {
	seen := map[string]bool{}
	for _, p := range params {
		pw := fmt.Sprintf("%s: %s parameter %q", where, p.In, p.Name)
		switch {
		case p.Name == "":
			v.fail("%s: empty name", pw)
		case p.In != "query" && p.In != "path" && p.In != "header":
			v.fail("%s: in must be query, path or header", pw)
		case seen[p.In+" "+p.Name]:
			v.fail("%s: declared twice", pw)
		case p.In == "path" && !strings.Contains(path, "{"+p.Name+"}"):
			v.fail("%s: not in the path", pw)
		case p.In == "path" && !p.Required:
			v.fail("%s: must be required", pw)
		}
		seen[p.In+" "+p.Name] = true
		v.required(pw, p.Schema)
	}
	for rest := path; ; {
		_, after, ok := strings.Cut(rest, "{")
		if !ok {
			break
		}
		name, tail, _ := strings.Cut(after, "}")
		if !seen["path "+name] {
			v.fail("%s: path parameter %q not declared", where, name)
		}
		rest = tail
	}
}

func (v *validator) security(where string, reqs []SecurityRequirement) {
	for _, req := range reqs {
		for _, n := range slices.Sorted(maps.Keys(req)) {
			if v.d.Components.SecuritySchemes[n] == nil {
				v.fail("%s: unknown security scheme %q", where, n)
			}
		}
	}
}

// required checks a schema that must be present.
func (v *validator) required(where string, s *Schema) {
	if s == nil {
		v.fail("%s: missing schema", where)
		return
	}
	v.schema(where, s)
}

// schema checks s and every schema nested in it.
func (v *validator) schema(where string, s *Schema) {
	v.walk(where, s, map[*Schema]bool{})
}

func (v *validator) walk(where string, s *Schema, seen map[*Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	if s.Ref != "" {
		if n, ok := refName(s.Ref); !ok || v.d.Components.Schemas[n] == nil {
			v.fail("%s: dangling $ref %q", where, s.Ref)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		v.walk(where+"."+k, s.Properties[k], seen)
	}
	v.walk(where+"[]", s.Items, seen)
	switch ap := s.AdditionalProperties.(type) {
	case nil, bool:
	case *Schema:
		v.walk(where+"{}", ap, seen)
	default:
		v.fail("%s: additionalProperties is %T, want bool or *Schema", where, ap)
	}
	for _, list := range [][]*Schema{s.AllOf, s.OneOf, s.AnyOf} {
		for _, c := range list {
			v.walk(where, c, seen)
		}
	}
}
