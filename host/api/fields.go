package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// object is a decoded JSON request body whose keys are checked one by one.
type object map[string]json.RawMessage

func decodeObject(w http.ResponseWriter, r *http.Request) (object, error) {
	var o object
	if err := decodeJSON(w, r, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, detail(http.StatusBadRequest, "Invalid data. Expected a JSON object.")
	}
	return o, nil
}

// unexpected reports every key not in known.
func (o object) unexpected(fe fieldErrors, known map[string]bool) {
	for k := range o {
		if !known[k] {
			fe.add(k, "Unexpected field.")
		}
	}
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// scalar decodes field name as a T: absent gives (nil, false); null gives
// (nil, true) and an error unless nullable; a wrong type records bad.
func scalar[T any](o object, fe fieldErrors, name string, nullable bool, bad string) (val *T, present bool) {
	raw, ok := o[name]
	if !ok {
		return nil, false
	}
	if isNull(raw) {
		if !nullable {
			fe.add(name, "This field may not be null.")
		}
		return nil, true
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		fe.add(name, "%s", bad)
		return nil, true
	}
	return &v, true
}

// str reads a string field.
func (o object) str(fe fieldErrors, name string, nullable bool) (*string, bool) {
	return scalar[string](o, fe, name, nullable, "Not a valid string.")
}

// integer reads an integer field of at least min.
func (o object) integer(fe fieldErrors, name string, nullable bool, min int) (*int, bool) {
	n, present := scalar[int](o, fe, name, nullable, "A valid integer is required.")
	if n != nil && *n < min {
		fe.add(name, "Ensure this value is greater than or equal to %d.", min)
		return nil, true
	}
	return n, present
}

func (o object) labels(fe fieldErrors, name string) (map[string]string, bool) {
	raw, ok := o[name]
	if !ok {
		return nil, false
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		fe.add(name, "Expected a dictionary of string keys and string values.")
		return nil, true
	}
	for k := range m {
		if k == "" || len(k) > 255 {
			fe.add(name, "Label keys must be 1 to 255 characters.")
		}
	}
	return m, true
}

// hrefOf reads an href field pointing at a resource of master kind.
func (o object) hrefOf(fe fieldErrors, name, master string) (ref *href.Ref, present bool) {
	s, present := o.str(fe, name, true)
	if s == nil {
		return nil, present
	}
	r, err := href.Parse(*s)
	if err != nil || r.Master != master || r.IsVersion() {
		fe.add(name, "Invalid hyperlink - %v", firstErr(err, fmt.Errorf("%q is not a %s href", *s, master)))
		return nil, true
	}
	return &r, true
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// pluginFields validates plugin-declared fields into a JSON object, starting
// from old (the stored values) for updates, applying defaults on create.
func (o object) pluginFields(fe fieldErrors, fields []Field, old json.RawMessage, create bool) json.RawMessage {
	vals := map[string]any{}
	if len(old) > 0 {
		_ = json.Unmarshal(old, &vals)
	}
	for _, f := range fields {
		raw, ok := o[f.Name]
		if !ok {
			if create {
				if f.Default != nil {
					vals[f.Name] = f.Default
				} else if f.Required {
					fe.add(f.Name, "This field is required.")
				}
			}
			continue
		}
		if isNull(raw) {
			if !f.Nullable {
				fe.add(f.Name, "This field may not be null.")
				continue
			}
			vals[f.Name] = nil
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil || !typeMatches(f.Type, v) {
			fe.add(f.Name, "Incorrect type. Expected %s.", f.Type)
			continue
		}
		if str, ok := v.(string); ok && len(f.Enum) > 0 && !contains(f.Enum, str) {
			fe.add(f.Name, "\"%s\" is not a valid choice (%s).", str, strings.Join(f.Enum, ", "))
			continue
		}
		vals[f.Name] = v
	}
	b, _ := json.Marshal(vals)
	return b
}

func typeMatches(typ string, v any) bool {
	switch typ {
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	}
	return true
}

// fieldSchemas documents plugin fields in OpenAPI.
func fieldSchemas(fields []Field) map[string]*openapi.Schema {
	out := map[string]*openapi.Schema{}
	for _, f := range fields {
		s := &openapi.Schema{Type: f.Type, Description: f.Description, Nullable: f.Nullable, Default: f.Default}
		for _, e := range f.Enum {
			s.Enum = append(s.Enum, e)
		}
		if f.Type == "object" {
			s.AdditionalProperties = true
		}
		if f.Type == "array" {
			s.Items = &openapi.Schema{}
		}
		out[f.Name] = s
	}
	return out
}

// extend copies a component schema and adds plugin fields to it.
func extend(base *openapi.Schema, fields []Field, required bool) *openapi.Schema {
	s := *base
	s.Properties = map[string]*openapi.Schema{}
	for k, v := range base.Properties {
		s.Properties[k] = v
	}
	s.Required = append([]string(nil), base.Required...)
	for name, fs := range fieldSchemas(fields) {
		s.Properties[name] = fs
	}
	if required {
		for _, f := range fields {
			if f.Required {
				s.Required = append(s.Required, f.Name)
			}
		}
	}
	return &s
}

// repositoryRef loads the repository an href field names; nil when the
// field is absent, null or wrong (then fe names it).
func (s *Server) repositoryRef(ctx context.Context, o object, fe fieldErrors, name string) (*db.Repository, error) {
	ref, _ := o.hrefOf(fe, name, href.Repositories)
	if ref == nil {
		return nil, nil
	}
	repo, err := s.DB.GetRepository(ctx, ref.ID)
	if errors.Is(err, db.ErrNotFound) {
		fe.add(name, "Invalid hyperlink - Object does not exist.")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &repo, nil
}

// versionRef loads the complete repository version a version href field
// names, and its repository; nils when the field is absent, null or wrong
// (then fe names it). An incomplete version does not exist yet.
func (s *Server) versionRef(ctx context.Context, o object, fe fieldErrors, name string) (*db.Repository, *db.RepositoryVersion, error) {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		return nil, nil, nil
	}
	var h string
	if json.Unmarshal(raw, &h) != nil {
		fe.add(name, "Incorrect type. Expected URL string.")
		return nil, nil, nil
	}
	ref, err := href.Parse(h)
	if err != nil || ref.Master != href.Repositories || !ref.IsVersion() {
		fe.add(name, "Invalid hyperlink - %q is not a repository version href", h)
		return nil, nil, nil
	}
	v, err := s.DB.GetVersion(ctx, ref.ID, ref.Version)
	if err == nil && !v.Complete {
		err = db.ErrNotFound
	}
	var repo db.Repository
	if err == nil {
		repo, err = s.DB.GetRepository(ctx, ref.ID)
	}
	if errors.Is(err, db.ErrNotFound) {
		fe.add(name, "Invalid hyperlink - Object does not exist.")
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return &repo, &v, nil
}
